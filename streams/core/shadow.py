"""Shadow scoring accounting: how a candidate in shadow compares with production on the
same live items (pure; the scorer does the scoring and serves production's output only).

Per batch: how many items both scored, how often they agree on the label, and the sum of
the confidence shift (shadow's confidence in its label minus production's in its own).
When feedback arrives for an item both scored, :func:`judge` says which of them was
right, so both models' online accuracy is measured on the same items.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from models.prediction import Prediction

DEFAULT_WINDOW = 1000


@dataclass(frozen=True)
class ShadowBatch:
    """One batch scored by production and by the shadow version."""

    items: int
    agreements: int
    confidence_shift_sum: float

    @property
    def agreement(self) -> float:
        return self.agreements / self.items if self.items else 1.0


def compare_batch(production: Sequence[Prediction], shadow: Sequence[Prediction]) -> ShadowBatch:
    """Agreement and confidence shift of ``shadow`` against ``production``, item by item."""
    if len(production) != len(shadow):
        raise ValueError(
            f"shadow scored {len(shadow)} items of a batch of {len(production)}: "
            "both models must score the same items"
        )
    agreements = sum(1 for p, s in zip(production, shadow, strict=True) if p.label == s.label)
    shift = sum(s.confidence - p.confidence for p, s in zip(production, shadow, strict=True))
    return ShadowBatch(items=len(production), agreements=agreements, confidence_shift_sum=shift)


def judge(label: str, production_label: str, shadow_label: str) -> tuple[bool, bool]:
    """Whether production and shadow were right about an item whose true ``label`` arrived."""
    return production_label == label, shadow_label == label


class ShadowTally:
    """Agreement rate and mean confidence shift over the last ``window`` items."""

    def __init__(self, window: int = DEFAULT_WINDOW) -> None:
        if window < 1:
            raise ValueError(f"shadow window must hold >= 1 item, got {window}")
        self.window = window
        self._items: deque[tuple[bool, float]] = deque(maxlen=window)

    def add(self, production: Sequence[Prediction], shadow: Sequence[Prediction]) -> ShadowBatch:
        batch = compare_batch(production, shadow)
        for p, s in zip(production, shadow, strict=True):
            self._items.append((p.label == s.label, s.confidence - p.confidence))
        return batch

    @property
    def items(self) -> int:
        return len(self._items)

    def agreement(self) -> float | None:
        if not self._items:
            return None
        return sum(1 for agree, _ in self._items if agree) / len(self._items)

    def confidence_shift(self) -> float | None:
        if not self._items:
            return None
        return sum(shift for _, shift in self._items) / len(self._items)
