"""Errors raised by the retrain package."""

from __future__ import annotations

from streamsense.errors import StreamsenseError


class RetrainError(StreamsenseError):
    """Base class of every error the retrain package raises on purpose."""


class StoreError(RetrainError):
    """The feedback store cannot be opened or used (bad URL, missing driver, bad schema)."""


class ScheduleError(RetrainError):
    """A retrain schedule is invalid (crontab string, threshold, interval)."""
