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
class ShadowRow:
    """What a version in shadow predicted for an item, beside what production served."""

    item_id: str
    task: str
    version: str
    label: str
    production_version: str
    production_label: str
    at: datetime


@dataclass(frozen=True)
class ShadowPair:
    """A labelled item both production and the shadow version scored: the true label
    (the item's newest) and each model's prediction."""

    item_id: str
    label: str
    production_label: str
    shadow_label: str


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
    """A new label joined to the served prediction of its item, and to what each version
    in shadow predicted for it: ``shadow`` holds (production right, shadow right) pairs."""

    predicted_label: str
    model_version: str | None
    correct: bool
    shadow: tuple[tuple[bool, bool], ...] = ()


@dataclass(frozen=True)
class TrainingRow:
    """A stored label that carries its text, usable for fine-tuning."""

    id: int
    item_id: str
    label: str
    text: str
    annotator: str
    at: str
