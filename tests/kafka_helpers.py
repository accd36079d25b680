"""Small helpers the integration tests share: topics, producing, collecting.

``security``: a secured cluster's kafka-python settings
(``streams.edges.security.kafka_python_config``); none for the PLAINTEXT test broker.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic


def create_topics(
    bootstrap: str,
    names: Iterable[str],
    partitions: int = 4,
    security: Mapping[str, Any] | None = None,
) -> None:
    """Create ``names`` with ``partitions`` partitions each and wait until they are usable."""
    admin = KafkaAdminClient(
        bootstrap_servers=bootstrap, client_id="streamsense-tests", **(security or {})
    )
    try:
        admin.create_topics([NewTopic(n, partitions, 1) for n in names])
    finally:
        admin.close()


def produce(
    bootstrap: str,
    topic: str,
    records: Iterable[tuple[bytes | None, bytes]],
    security: Mapping[str, Any] | None = None,
) -> int:
    """Send ``(key, value)`` pairs, wait for every acknowledgement, return how many."""
    producer = KafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        linger_ms=5,
        max_request_size=8 * 1024 * 1024,
        **(security or {}),
    )
    count = 0
    try:
        for key, value in records:
            producer.send(topic, key=key, value=value)
            count += 1
        producer.flush(timeout=30)
    finally:
        producer.close()
    return count


def consume_until(
    bootstrap: str,
    topic: str,
    done: Callable[[list[bytes]], bool],
    timeout_s: float = 60.0,
    security: Mapping[str, Any] | None = None,
) -> list[bytes]:
    """Read ``topic`` from the beginning until ``done(values)`` or the timeout."""
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        **(security or {}),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=1000,
    )
    values: list[bytes] = []
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            for message in consumer:
                values.append(message.value)
            if done(values):
                break
    finally:
        consumer.close()
    return values
