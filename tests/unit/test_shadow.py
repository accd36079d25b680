"""Shadow accounting: agreement, confidence shift and paired online accuracy (pure)."""

from __future__ import annotations

import pytest

from models.prediction import Prediction
from streams.core.shadow import ShadowTally, compare_batch, judge


def _p(label: str, confidence: float) -> Prediction:
    other = "neutral" if label != "neutral" else "positive"
    return Prediction(label, {label: confidence, other: 1 - confidence})


def test_a_batch_counts_agreement_and_confidence_shift() -> None:
    production = [_p("positive", 0.9), _p("neutral", 0.6), _p("negative", 0.7)]
    shadow = [_p("positive", 0.95), _p("positive", 0.8), _p("negative", 0.5)]
    batch = compare_batch(production, shadow)
    assert (batch.items, batch.agreements) == (3, 2)
    assert batch.agreement == pytest.approx(2 / 3)
    assert batch.confidence_shift_sum == pytest.approx(0.05 + 0.2 - 0.2)
    with pytest.raises(ValueError, match="same items"):
        compare_batch(production, shadow[:2])


def test_the_tally_keeps_a_window_of_items() -> None:
    tally = ShadowTally(window=4)
    assert tally.agreement() is None and tally.confidence_shift() is None
    tally.add([_p("positive", 0.5)] * 4, [_p("negative", 0.5)] * 4)  # all disagree
    tally.add([_p("positive", 0.5)] * 2, [_p("positive", 0.7)] * 2)  # two agree, +0.2
    assert tally.items == 4
    assert tally.agreement() == pytest.approx(0.5)
    assert tally.confidence_shift() == pytest.approx(0.1)


def test_judge_says_who_was_right() -> None:
    assert judge("positive", "positive", "neutral") == (True, False)
    assert judge("negative", "positive", "negative") == (False, True)
