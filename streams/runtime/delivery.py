"""Confirmed sends and dead letters: the at-least-once plumbing every agent shares."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import traceback
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from streams.core.records import DeadLetter, encode
from streams.errors import InvalidRecordError
from streams.runtime.metrics import Metrics

logger = logging.getLogger(__name__)


class Outbox:
    """Sends that an agent must see confirmed by the broker before it acknowledges input.

    Faust's ``Topic.send(force=True)`` publishes now (not attached to the current event)
    and returns a future that resolves once the broker has the record. ``send_now`` (from
    :func:`send_now_for`) is called when the batch waits for its confirms: its records
    then leave without waiting out the producer's linger.
    """

    def __init__(self, metrics: Metrics, send_now: Callable[[], None] | None = None) -> None:
        self.metrics = metrics
        self._send_now = send_now
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
            if self._send_now is not None:
                self._send_now()
            await asyncio.gather(*pending)
        for name in topics:
            self.metrics.records_out.labels(name).inc()
        return len(pending)


_FLUSHES: set[asyncio.Future[Any]] = set()


def send_now_for(app: Any) -> Callable[[], None]:
    """A function that makes ``app``'s producer send the records it holds now.

    The producer holds records for ``STREAMSENSE_PRODUCER_LINGER_S`` (5 ms) to send more of
    them per request; once a batch has queued all its outputs and waits for their confirms,
    holding them longer only delays the batch. Faust's aiokafka driver keeps the aiokafka
    producer in ``Producer._producer``, and aiokafka (0.14) its open batches in
    ``_message_accumulator``, whose ``flush_for_commit`` closes them (so they are ready to
    send) and wakes the sender. Where that is not there (another driver, a version that
    moved it), the records leave at the end of the linger as before (logged once).
    """
    warned = False

    def send_now() -> None:
        nonlocal warned
        producer = getattr(getattr(app, "producer", None), "_producer", None)
        if producer is None:  # not started: it holds nothing
            return
        flush = getattr(getattr(producer, "_message_accumulator", None), "flush_for_commit", None)
        if flush is None:
            if not warned:
                logger.warning("the producer cannot be told to send now; sends wait the linger")
                warned = True
            return
        # the flush also waits for the batches' deliveries: each sender awaits its own
        task = asyncio.ensure_future(flush())
        _FLUSHES.add(task)
        task.add_done_callback(_FLUSHES.discard)

    return send_now


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode("ascii")


MAX_DEAD_LETTER_VALUE = 256 * 1024
"""Largest original value a dead letter carries whole; a larger one keeps its first bytes,
its size and its SHA-256, so the dead letter always fits a default Kafka message."""
MAX_DEAD_LETTER_KEY = 16 * 1024
"""Largest original key a dead letter carries (and uses as its own key) whole."""
MAX_DEAD_LETTER_HEADERS = 64 * 1024
"""Header bytes (names and values) a dead letter carries; the headers past it are left out."""
MAX_DETAIL_CHARS = 2000


def _name_bytes(name: Any) -> bytes:
    """A header name's original bytes (a str from the record guard keeps non-UTF-8 bytes as
    lone surrogates)."""
    if isinstance(name, bytes):
        return name
    return str(name).encode("utf-8", "surrogateescape")


def _headers(raw: Any) -> tuple[list[tuple[str, str | None]], list[str] | None, bool]:
    """(name, base64 value) pairs within the budget, every name's bytes as base64 when one is
    not UTF-8, and whether headers were left out."""
    items: Iterable[tuple[Any, Any]] = raw.items() if isinstance(raw, dict) else (raw or [])
    out: list[tuple[str, str | None]] = []
    names: list[bytes] = []
    budget = MAX_DEAD_LETTER_HEADERS
    truncated = False
    for name, value in items:
        data = value if isinstance(value, bytes) or value is None else str(value).encode()
        name_bytes = _name_bytes(name)
        budget -= len(name_bytes) + len(data or b"")
        if budget < 0:
            truncated = True
            break
        names.append(name_bytes)
        out.append((name_bytes.decode("utf-8", "backslashreplace"), _b64(data)))
    clean = all(_is_utf8(n) for n in names)
    return out, None if clean else [base64.b64encode(n).decode("ascii") for n in names], truncated


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _key(message: Any) -> bytes | None:
    """The message's key as bytes, or None when it has none (or it is not bytes)."""
    return message.key if isinstance(message.key, bytes) else None


def dead_letter_for(message: Any, error: InvalidRecordError) -> DeadLetter:
    """The dead-letter record of a Kafka message that failed with ``error``.

    Keeps the original key, value and headers (base64; a large key, value or header set in
    part, with the full sizes), the source coordinates and the reason; the detail names
    fields, never the content.
    """
    value = message.value if isinstance(message.value, bytes) else b""
    key = _key(message)
    headers, header_names, headers_truncated = _headers(message.headers)
    return DeadLetter(
        source_topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        key=_b64(None if key is None else key[:MAX_DEAD_LETTER_KEY]),
        key_size=0 if key is None else len(key),
        value_b64=_b64(value[:MAX_DEAD_LETTER_VALUE]) or "",
        value_size=len(value),
        value_sha256=hashlib.sha256(value).hexdigest(),
        value_truncated=len(value) > MAX_DEAD_LETTER_VALUE,
        headers=headers,
        header_names_b64=header_names,
        headers_truncated=headers_truncated,
        reason=error.reason,
        detail=error.detail[:MAX_DETAIL_CHARS],
        failed_at=datetime.now(UTC),
    )


def record_error(step: str, exc: Exception) -> InvalidRecordError:
    """The dead-letter reason for ``exc``, raised by a pure step over a record's content.

    An ``InvalidRecordError`` is its own reason; any other exception is a
    ``processing_error`` named by the step, its type and the innermost code location (never
    its message, which may quote the content).
    """
    if isinstance(exc, InvalidRecordError):
        return exc
    where = ""
    frames = traceback.extract_tb(exc.__traceback__)
    if frames:
        last = frames[-1]
        where = f" at {Path(last.filename).name}:{last.lineno} in {last.name}"
    return InvalidRecordError("processing_error", f"{step}: {type(exc).__name__}{where}")


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
    key = _key(message)
    if key is not None and len(key) > MAX_DEAD_LETTER_KEY:
        key = None  # it is in the dead letter (in part); a dead letter must stay small
    await outbox.send(dlq, key, encode(dead_letter_for(message, error)))
    outbox.metrics.records_dlq.labels(message.topic, error.reason).inc()
