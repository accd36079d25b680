"""The rows the feedback store takes and gives: predictions, labels, verdicts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class PredictionRow:
    """What a serving model predicted for one item."""

    item_id: str
    task: str
    model_version: str
    label: str
    confidence: float
    at: datetime


@dataclass(frozen=True)
class FeedbackRow:
    """A human label for one item, as it arrived on the feedback topic."""

    item_id: str
    task: str
    label: str
    annotator: str
    at: datetime
    text: str | None = None
    model_version: str | None = None
    predicted_label: str | None = None


@dataclass(frozen=True)
class Judged:
    """A new label joined to the served prediction of its item."""

    predicted_label: str
    model_version: str | None
    correct: bool


@dataclass(frozen=True)
class TrainingRow:
    """A stored label that carries its text, usable for fine-tuning."""

    id: int
    item_id: str
    label: str
    text: str
    annotator: str
    at: str
