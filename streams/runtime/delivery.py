"""Confirmed sends and dead letters: the at-least-once plumbing every agent shares."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
from collections.abc import Awaitable, Iterable
from datetime import UTC, datetime
from typing import Any

from streams.core.records import DeadLetter, encode
from streams.errors import InvalidRecordError
from streams.runtime.metrics import Metrics

logger = logging.getLogger(__name__)


class Outbox:
    """Sends that an agent must see confirmed by the broker before it acknowledges input.

    Faust's ``Topic.send(force=True)`` publishes now (not attached to the current event)
    and returns a future that resolves once the broker has the record.
    """

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        self._pending: list[Awaitable[Any]] = []
        self._topics: list[str] = []

    async def send(self, topic: Any, key: bytes | None, value: bytes) -> None:
        """Queue one record on ``topic``."""
        self._pending.append(await topic.send(key=key, value=value, force=True))
        self._topics.append(topic.get_topic_name())

    async def confirm(self) -> int:
        """Wait until the broker has every queued record; return how many there were."""
        pending, self._pending = self._pending, []
        topics, self._topics = self._topics, []
        if pending:
            await asyncio.gather(*pending)
        for name in topics:
            self.metrics.records_out.labels(name).inc()
        return len(pending)


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode("ascii")


def _headers(raw: Any) -> list[tuple[str, str]]:
    items: Iterable[tuple[Any, Any]] = raw.items() if isinstance(raw, dict) else (raw or [])
    out: list[tuple[str, str]] = []
    for name, value in items:
        data = value if isinstance(value, bytes) else str(value).encode("utf-8")
        out.append((str(name), base64.b64encode(data).decode("ascii")))
    return out


MAX_DEAD_LETTER_VALUE = 256 * 1024
"""Largest original value a dead letter carries whole; a larger one keeps its first bytes,
its size and its SHA-256, so the dead letter always fits a default Kafka message."""


def dead_letter_for(message: Any, error: InvalidRecordError) -> DeadLetter:
    """The dead-letter record of a Kafka message that failed with ``error``.

    Keeps the original key, value and headers (base64), the source coordinates and the
    reason; the detail names fields, never the content.
    """
    value = message.value if isinstance(message.value, bytes) else b""
    return DeadLetter(
        source_topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        key=_b64(message.key if isinstance(message.key, bytes) else None),
        value_b64=_b64(value[:MAX_DEAD_LETTER_VALUE]) or "",
        value_size=len(value),
        value_sha256=hashlib.sha256(value).hexdigest(),
        value_truncated=len(value) > MAX_DEAD_LETTER_VALUE,
        headers=_headers(message.headers),
        reason=error.reason,
        detail=error.detail,
        failed_at=datetime.now(UTC),
    )


async def send_dead_letter(
    outbox: Outbox, dlq: Any, message: Any, error: InvalidRecordError
) -> None:
    """Queue the dead letter of ``message`` on ``dlq`` (confirmed with the outbox)."""
    logger.warning(
        "dead-lettering %s[%s]@%s: %s",
        message.topic,
        message.partition,
        message.offset,
        error.reason,
    )
    key = message.key if isinstance(message.key, bytes) else None
    await outbox.send(dlq, key, encode(dead_letter_for(message, error)))
    outbox.metrics.records_dlq.labels(message.topic, error.reason).inc()
