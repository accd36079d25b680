"""Complaint-spike alerts per intent: the count in a short window against its usual rate.

One ``IntentState`` per intent (a Faust table row, via ``to_dict``/``from_dict``). The
baseline is an EWMA of per-bucket counts (empty buckets count as zero), bias-corrected
while young and never below a floor. Evidence is message ids only, never text.
"""

from __future__ import annotations

import base64
import bisect
import struct
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from streams.core.monitors import alert_id, epoch, from_epoch, window_bucket, window_start
from streams.core.records import (
    DEFAULT_MAX_FUTURE_SKEW,
    Alert,
    AlertKind,
    RoutedTicket,
    check_event_time,
)

COMPLAINT_SPIKE: AlertKind = "complaint_spike"


@dataclass(frozen=True)
class IntentParams:
    """Thresholds and windows of the intent monitor."""

    window: timedelta = timedelta(minutes=5)
    bucket: timedelta = timedelta(minutes=1)
    baseline_half_life: timedelta = timedelta(hours=1)
    """Half-life of the per-bucket count EWMA, in event time."""
    baseline_floor: float = 0.2
    """Smallest baseline count per bucket, so a rare intent needs more than one message."""
    min_count: int = 10
    factor: float = 3.0
    """A spike is a window count of at least max(min_count, factor x baseline count)."""
    warmup_buckets: int = 5
    """Buckets an intent's baseline needs before it can raise an alert."""
    cooldown: timedelta = timedelta(minutes=30)
    max_evidence: int = 20
    max_window_items: int = 5000
    max_future_skew: timedelta = DEFAULT_MAX_FUTURE_SKEW
    """A message dated further past the wall clock is refused (``event_time_in_future``)."""

    @property
    def alpha(self) -> float:
        """EWMA weight of the newest bucket."""
        return 1.0 - float(0.5 ** (self.bucket / self.baseline_half_life))


@dataclass(frozen=True)
class IntentEvent:
    """What the intent monitor needs from one routed ticket."""

    intent: str
    id: str
    at: datetime
    model_version: str

    @classmethod
    def from_ticket(cls, ticket: RoutedTicket) -> IntentEvent:
        """The event of a routed ticket (event time: when the customer sent it)."""
        return cls(ticket.intent, ticket.id, ticket.sent_at, ticket.model_version)


@dataclass(frozen=True)
class IntentState:
    """An intent's recent message ids, baseline and cooldown; JSON-ready through ``to_dict``.

    The window is two parallel tuples, sorted by (event time, id): every per-message step
    (the duplicate check, the insertion, the cut, the row's lists) is then one C-level
    operation on a tuple, never a Python loop over the window.
    """

    subject: str
    watermark: float | None = None
    ids: tuple[str, ...] = ()
    """Message ids in the window, oldest first."""
    times: tuple[float, ...] = ()
    """Event time (epoch seconds) of each id in ``ids``."""
    bucket: int | None = None
    bucket_count: int = 0
    ewma: float = 0.0
    buckets_seen: int = 0
    cooldown_until: float | None = None

    @property
    def items(self) -> list[tuple[str, float]]:
        """(message id, event time) in the window, oldest first."""
        return list(zip(self.ids, self.times, strict=True))

    def baseline_per_bucket(self, params: IntentParams) -> float:
        """Usual messages per bucket (bias-corrected EWMA, at least the floor)."""
        if self.buckets_seen == 0:
            return params.baseline_floor
        corrected = self.ewma / (1.0 - (1.0 - params.alpha) ** self.buckets_seen)
        return max(corrected, params.baseline_floor)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: the window as a list of ``ids`` and their ``times`` packed (see
        :func:`_pack_times`)."""
        return {
            "subject": self.subject,
            "watermark": self.watermark,
            "ids": list(self.ids),
            "times": _pack_times(self.times),
            "bucket": self.bucket,
            "bucket_count": self.bucket_count,
            "ewma": self.ewma,
            "buckets_seen": self.buckets_seen,
            "cooldown_until": self.cooldown_until,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> IntentState:
        """Inverse of ``to_dict``; also reads rows written before 2026-12-06, whose window
        is one list of ``[id, time]`` pairs under ``items``."""
        if "items" in data:
            pairs = [(str(i), float(t)) for i, t in data["items"]]
            ids, times = tuple(i for i, _ in pairs), tuple(t for _, t in pairs)
        else:
            ids, times = tuple(map(str, data["ids"])), _unpack_times(data["times"])
        if len(ids) != len(times):
            raise ValueError(f"{len(ids)} ids but {len(times)} times")
        return cls(
            subject=str(data["subject"]),
            watermark=data.get("watermark"),
            ids=ids,
            times=times,
            bucket=data.get("bucket"),
            bucket_count=int(data["bucket_count"]),
            ewma=float(data["ewma"]),
            buckets_seen=int(data["buckets_seen"]),
            cooldown_until=data.get("cooldown_until"),
        )


def _pack_times(times: tuple[float, ...]) -> str:
    """Event times as base64 of little-endian float64s: exact, and written 20 x faster
    than a JSON list of floats (whose repr cost 0.4 ms per 1,000-item window, at every
    batch that touched the intent)."""
    return base64.b64encode(struct.pack(f"<{len(times)}d", *times)).decode("ascii")


def _unpack_times(packed: str) -> tuple[float, ...]:
    raw = base64.b64decode(packed, validate=True)
    if len(raw) % 8:
        raise ValueError(f"{len(raw)} bytes of times is not a whole number of float64s")
    return struct.unpack(f"<{len(raw) // 8}d", raw)


def _count_in_bucket(state: IntentState, bucket: int, params: IntentParams) -> dict[str, Any]:
    """The fields that change when one message counts in ``bucket``: the buckets before it
    close into the EWMA."""
    if state.bucket is None:
        return {"bucket": bucket, "bucket_count": 1}
    if bucket < state.bucket:  # late: its bucket is already in the baseline
        return {}
    if bucket == state.bucket:
        return {"bucket_count": state.bucket_count + 1}
    alpha = params.alpha
    ewma = alpha * state.bucket_count + (1.0 - alpha) * state.ewma
    empty = min(bucket - state.bucket - 1, 100_000)
    ewma *= (1.0 - alpha) ** empty
    return {
        "bucket": bucket,
        "bucket_count": 1,
        "ewma": ewma,
        "buckets_seen": state.buckets_seen + 1 + empty,
    }


def is_late(state: IntentState | None, event: IntentEvent, params: IntentParams) -> bool:
    """True when ``event`` is older than the intent's window: :func:`update_intent` drops it."""
    if state is None or state.watermark is None:
        return False
    return epoch(event.at) <= state.watermark - params.window.total_seconds()


def update_intent(
    state: IntentState | None, event: IntentEvent, params: IntentParams, *, now: datetime
) -> tuple[IntentState, list[Alert]]:
    """Add one routed message to its intent's state; return the new state and any alert.

    Time is event time (``event.at``); ``now`` stamps ``raised_at`` and refuses a message
    dated more than ``params.max_future_skew`` ahead of it (``InvalidRecordError``). A
    message id already in the window, or a message older than the window, changes nothing.
    """
    check_event_time(event.at, now, params.max_future_skew)
    state = state or IntentState(subject=event.intent)
    at = epoch(event.at)
    span = params.window.total_seconds()
    if is_late(state, event, params):
        return state, []
    if event.id in state.ids:
        return state, []
    counted = _count_in_bucket(state, window_bucket(at, params.bucket), params)
    watermark = at if state.watermark is None else max(state.watermark, at)
    # the window stays sorted by (event time, id): one insertion and one cut by bisection
    # on the times (re-sorting the window per message, then building the row's pairs in
    # Python, cost the worker more CPU than anything but the models once windows filled)
    ids, times = state.ids, state.times
    lo, hi = bisect.bisect_left(times, at), bisect.bisect_right(times, at)
    pos = bisect.bisect_right(ids, event.id, lo, hi) if hi > lo else lo
    ids = (*ids[:pos], event.id, *ids[pos:])
    times = (*times[:pos], at, *times[pos:])
    first = max(bisect.bisect_right(times, watermark - span), len(times) - params.max_window_items)
    if first > 0:
        ids, times = ids[first:], times[first:]
    state = replace(state, **counted, watermark=watermark, ids=ids, times=times)
    count = len(ids)

    buckets_per_window = params.window / params.bucket
    baseline = state.baseline_per_bucket(params) * buckets_per_window
    threshold = max(params.min_count, params.factor * baseline)
    cooling = state.cooldown_until is not None and watermark < state.cooldown_until
    if count < threshold or cooling or state.buckets_seen < params.warmup_buckets:
        return state, []
    alert = Alert(
        alert_id=alert_id(
            COMPLAINT_SPIKE, state.subject, window_bucket(watermark, params.cooldown)
        ),
        kind=COMPLAINT_SPIKE,
        subject=state.subject,
        window_start=window_start(watermark, params.window),
        window_end=from_epoch(watermark),
        value=float(count),
        baseline=baseline,
        evidence_ids=list(ids[-params.max_evidence :]),
        evidence=[],
        model_version=event.model_version,
        raised_at=now,
    )
    state = replace(state, cooldown_until=watermark + params.cooldown.total_seconds())
    return state, [alert]
