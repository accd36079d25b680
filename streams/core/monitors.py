"""Pieces shared by the alert monitors: event time, alert ids, time-decayed means.

The monitors themselves are ``streams.core.ticker_monitor`` (news sentiment per ticker) and
``streams.core.intent_monitor`` (complaint spikes per intent). Both are pure: state in,
state and alerts out, all time taken from the events.
"""

from __future__ import annotations

import hashlib
import math
from datetime import UTC, datetime, timedelta

from streams.core.records import EARLIEST_TIME


def epoch(at: datetime) -> float:
    """Seconds since the epoch; a naive datetime is taken to be UTC."""
    return (at if at.tzinfo is not None else at.replace(tzinfo=UTC)).timestamp()


def from_epoch(seconds: float) -> datetime:
    """The UTC datetime of an epoch timestamp."""
    return datetime.fromtimestamp(seconds, tz=UTC)


def window_start(end: float, length: timedelta) -> datetime:
    """Start of the window of ``length`` that ends at ``end`` (epoch seconds), never before
    the earliest time a record may carry."""
    return from_epoch(max(end - length.total_seconds(), EARLIEST_TIME.timestamp()))


def window_bucket(seconds: float, length: timedelta) -> int:
    """Index of the fixed-length time bucket holding ``seconds`` (whole seconds when the
    length is zero, e.g. a cooldown turned off)."""
    span = length.total_seconds()
    return math.floor(seconds / span) if span > 0 else math.floor(seconds)


def alert_id(kind: str, subject: str, bucket: int) -> str:
    """Deterministic id of the alert of ``kind`` about ``subject`` in time bucket ``bucket``.

    A monitor raises at most one alert per kind and subject per cooldown and buckets by
    the cooldown, so distinct alerts get distinct ids while the same alert recomputed
    after a crash or a redelivery gets the same one.
    """
    digest = hashlib.sha256(f"{kind}\x1f{subject}\x1f{bucket}".encode()).hexdigest()
    return digest[:32]


def decay(elapsed: float, half_life: timedelta) -> float:
    """Weight left after ``elapsed`` seconds with the given half-life."""
    return float(0.5 ** (max(elapsed, 0.0) / half_life.total_seconds()))
