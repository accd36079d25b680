"""Drift of one task's live traffic from its model version's reference: a sliding window.

The scorer calls :meth:`DriftMonitor.observe` once per batch with the texts it scored
and their predictions; the monitor keeps the feature bins of the last ``window`` items
(running counts, O(batch) per call) and compares them with the reference histograms of
:class:`models.drift.DriftReference` by PSI. The drift **score** is the largest PSI over
the features: a shift in what comes in (length, vocabulary) or in what the model says
(labels, confidence) each counts.

Holds no text: only bin numbers.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from models.drift import FEATURES, DriftReference, psi
from models.prediction import Prediction

DEFAULT_WINDOW = 1000
DEFAULT_MIN_ITEMS = 200
MODERATE = 0.1
MAJOR = 0.25


@dataclass(frozen=True)
class DriftReport:
    """PSI per feature of the current window, and the drift score (their maximum)."""

    task: str
    version: str
    items: int
    psi: Mapping[str, float]
    score: float

    def drifted(self, threshold: float = MAJOR) -> bool:
        return self.score >= threshold

    def as_dict(self) -> dict[str, object]:
        return {
            "task": self.task,
            "version": self.version,
            "items": self.items,
            "psi": {f: round(v, 4) for f, v in self.psi.items()},
            "score": round(self.score, 4),
        }


class DriftMonitor:
    """The last ``window`` scored items of a task compared with a version's reference."""

    def __init__(
        self,
        reference: DriftReference,
        *,
        window: int = DEFAULT_WINDOW,
        min_items: int = DEFAULT_MIN_ITEMS,
    ) -> None:
        if window < 1 or not 1 <= min_items <= window:
            raise ValueError(
                f"drift window must hold >= 1 item and min_items must be in 1..window, "
                f"got window={window}, min_items={min_items}"
            )
        self.reference = reference
        self.window = window
        self.min_items = min_items
        self._items: deque[tuple[int, int, int, int]] = deque()
        self._counts = [[0] * reference.bins(f) for f in FEATURES]

    @property
    def items(self) -> int:
        return len(self._items)

    def observe(
        self, texts: Sequence[str], predictions: Sequence[Prediction]
    ) -> DriftReport | None:
        """Add one scored batch; the report once the window holds ``min_items`` items."""
        if len(texts) != len(predictions):
            raise ValueError(f"{len(texts)} texts but {len(predictions)} predictions")
        for text, prediction in zip(texts, predictions, strict=True):
            bins = self.reference.item_bins(text, prediction)
            self._items.append(bins)
            for counts, b in zip(self._counts, bins, strict=True):
                counts[b] += 1
            if len(self._items) > self.window:
                for counts, b in zip(self._counts, self._items.popleft(), strict=True):
                    counts[b] -= 1
        return self.report()

    def report(self) -> DriftReport | None:
        """PSI per feature and the score; None while the window is below ``min_items``."""
        if len(self._items) < self.min_items:
            return None
        values = {
            feature: psi(self.reference.counts[feature], counts)
            for feature, counts in zip(FEATURES, self._counts, strict=True)
        }
        return DriftReport(
            task=self.reference.task,
            version=self.reference.version,
            items=len(self._items),
            psi=values,
            score=max(values.values()),
        )
