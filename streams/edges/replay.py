"""Real labeled data replayed as the live stream: news items, customer messages, feedback."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kafka import KafkaProducer

from models.data import LabeledData
from streams.core.records import CustomerMessage, Feedback, NewsItem, encode

CHANNELS = ("chat", "email", "app", "phone")


@dataclass(frozen=True)
class ReplayItem:
    """One record to produce, its key, and the gold label it came with."""

    topic_kind: str
    key: bytes
    value: bytes
    item_id: str
    label: str
    text: str


def news_items(
    data: LabeledData,
    *,
    prefix: str = "tw",
    source: str = "twitter",
    tickers: list[str] | None = None,
) -> Iterator[ReplayItem]:
    """Each labeled text as a news item, published now; tickers from its cashtags unless
    ``tickers`` names them."""
    for row, (text, label) in enumerate(zip(data.texts, data.labels, strict=True)):
        item_id = f"{prefix}-{row}"
        record = NewsItem(
            id=item_id,
            published_at=datetime.now(UTC),
            source=source,
            headline=text,
            tickers=tickers,
        )
        yield ReplayItem("news", item_id.encode(), encode(record), item_id, label, text)


def customer_messages(
    data: LabeledData, *, prefix: str = "b77", customers: int = 500, seed: int = 7
) -> Iterator[ReplayItem]:
    """Each labeled text as a message from one of ``customers`` customers (seeded)."""
    rng = random.Random(seed)
    for row, (text, label) in enumerate(zip(data.texts, data.labels, strict=True)):
        item_id = f"{prefix}-{row}"
        customer = f"cust-{rng.randrange(customers):05d}"
        record = CustomerMessage(
            id=item_id,
            sent_at=datetime.now(UTC),
            customer_id=customer,
            channel=rng.choice(CHANNELS),
            text=text,
        )
        yield ReplayItem("messages", customer.encode(), encode(record), item_id, label, text)


def feedback_for(item: ReplayItem, task: str, annotator: str = "replay") -> bytes:
    """The feedback record that labels ``item`` with its gold label."""
    return encode(
        Feedback(
            item_id=item.item_id,
            task=task,  # type: ignore[arg-type]
            label=item.label,
            annotator=annotator,
            at=datetime.now(UTC),
            text=item.text,
        )
    )


def produce_items(
    bootstrap: str,
    topic: str,
    items: Iterable[ReplayItem],
    *,
    security: Mapping[str, Any],
    rate: float = 0.0,
    feedback_topic: str | None = None,
    feedback_task: str = "sentiment",
    stop: threading.Event | None = None,
    feedback_every: int = 1,
) -> int:
    """Produce ``items`` (at ``rate`` per second; 0 = as fast as possible); return the count.

    With ``feedback_topic``, the gold label of every ``feedback_every``-th item follows as
    feedback (annotator ``replay``). ``security`` is the cluster's kafka-python security
    configuration (:func:`streams.edges.security.kafka_python_config`).
    """
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5, **security)
    count = 0
    started = time.monotonic()
    try:
        for item in items:
            if stop is not None and stop.is_set():
                break
            producer.send(topic, key=item.key, value=item.value)
            if feedback_topic and count % feedback_every == 0:
                producer.send(
                    feedback_topic,
                    key=item.item_id.encode(),
                    value=feedback_for(item, feedback_task),
                )
            count += 1
            if rate > 0:
                delay = started + count / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
        producer.flush(timeout=60)
    finally:
        producer.close()
    return count
