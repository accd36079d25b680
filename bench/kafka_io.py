"""Producing bench inputs and timing the outputs as the bench's own consumer receives them."""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from kafka import KafkaConsumer, KafkaProducer
from kafka import TopicPartition as KafkaTP

from streams.core.records import CustomerMessage, NewsItem, encode
from streams.edges.replay import CHANNELS
from streams.runtime.lag import committed_lag


def message_record(item_id: str, text: str, rng: random.Random) -> tuple[bytes, bytes]:
    """(key, value) of a customer message sent now, from one of 500 customers."""
    customer = f"cust-{rng.randrange(500):05d}"
    record = CustomerMessage(
        id=item_id,
        sent_at=datetime.now(UTC),
        customer_id=customer,
        channel=rng.choice(CHANNELS),
        text=text,
    )
    return customer.encode(), encode(record)


def news_record(item_id: str, text: str) -> tuple[bytes, bytes]:
    """(key, value) of a news item published now (tickers from its cashtags)."""
    record = NewsItem(id=item_id, published_at=datetime.now(UTC), source="twitter", headline=text)
    return item_id.encode(), encode(record)


def _producer(bootstrap: str, security: Mapping[str, Any], linger_ms: int) -> KafkaProducer:
    return KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=linger_ms, **security)


def produce_all(
    bootstrap: str,
    security: Mapping[str, Any],
    topic: str,
    records: Iterable[tuple[bytes, bytes]],
) -> int:
    """Produce as fast as the client goes; return the count once the broker has all.

    ``security``: the cluster's kafka-python security configuration, as every client here
    takes it (:func:`streams.edges.security.kafka_python_config`).
    """
    producer = _producer(bootstrap, security, linger_ms=5)
    count = 0
    try:
        for key, value in records:
            producer.send(topic, key=key, value=value)
            count += 1
        producer.flush(timeout=60)
    finally:
        producer.close()
    return count


def produce_paced(
    bootstrap: str,
    security: Mapping[str, Any],
    topic: str,
    texts: Sequence[str],
    rate: float,
    duration_s: float,
    prefix: str,
) -> dict[str, float]:
    """Send customer messages at ``rate``/s for ``duration_s``; return id → send time.

    Each record's ``sent_at`` is stamped just before its send; the returned times are
    ``time.monotonic()`` taken at the same moment.
    """
    producer = _producer(bootstrap, security, linger_ms=0)
    rng = random.Random(11)
    sent: dict[str, float] = {}
    total = max(1, int(rate * duration_s))
    started = time.monotonic()
    try:
        for n in range(total):
            delay = started + n / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            item_id = f"{prefix}-{n}"
            key, value = message_record(item_id, texts[n % len(texts)], rng)
            sent[item_id] = time.monotonic()
            producer.send(topic, key=key, value=value)
        producer.flush(timeout=60)
    finally:
        producer.close()
    return sent


class Collector:
    """A consumer thread that keeps the first receive time (monotonic) of every output id."""

    def __init__(self, bootstrap: str, security: Mapping[str, Any], topics: Sequence[str]) -> None:
        self._consumer = KafkaConsumer(
            bootstrap_servers=bootstrap,
            **security,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=50,
        )
        partitions = [
            KafkaTP(topic, p)
            for topic in topics
            for p in sorted(self._consumer.partitions_for_topic(topic) or ())
        ]
        self._consumer.assign(partitions)
        self._consumer.seek_to_beginning(*partitions)
        self._lock = threading.Lock()
        self._seen: dict[str, dict[str, float]] = {topic: {} for topic in topics}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-collector", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            batches = self._consumer.poll(timeout_ms=100)
            now = time.monotonic()
            with self._lock:
                for tp, messages in batches.items():
                    seen = self._seen[tp.topic]
                    for message in messages:
                        item_id = json.loads(message.value)["id"]
                        seen.setdefault(item_id, now)

    def times(self, topic: str, ids: Iterable[str]) -> dict[str, float]:
        """Receive times of those of ``ids`` that arrived on ``topic``."""
        with self._lock:
            seen = self._seen[topic]
            return {i: seen[i] for i in ids if i in seen}

    def wait_for(
        self, topic: str, ids: Sequence[str], timeout_s: float, check: Callable[[], None]
    ) -> dict[str, float]:
        """Wait until every id arrived on ``topic`` (or the timeout); return their times."""
        deadline = time.monotonic() + timeout_s
        wanted = set(ids)
        while True:
            got = self.times(topic, wanted)
            if len(got) == len(wanted) or time.monotonic() > deadline:
                return got
            check()
            time.sleep(0.2)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self._consumer.close()


def wait_drained(
    bootstrap: str,
    security: Mapping[str, Any],
    group: str,
    topics: Sequence[str],
    timeout_s: float,
    check: Callable[[], None],
) -> float:
    """Wait until ``group`` has committed every record of ``topics`` (twice in a row, a
    second apart); return the seconds it took (the timeout when it never did)."""
    started = time.monotonic()
    clean = 0
    while time.monotonic() - started < timeout_s:
        check()
        lag = sum(committed_lag(bootstrap, security, group, topics).values())
        clean = clean + 1 if lag == 0 else 0
        if clean >= 2:
            break
        time.sleep(1.0)
    return time.monotonic() - started
