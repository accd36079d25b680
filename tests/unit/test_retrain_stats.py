"""Paired statistics of the gate against textbook values and known properties."""

from __future__ import annotations

import numpy as np
import pytest

from models.metrics import classification_report
from retrain.stats import (
    labels_needed,
    macro_f1_rows,
    mcnemar_exact,
    mcnemar_midp,
    paired_comparison,
)


def test_mcnemar_matches_the_published_example() -> None:
    # Fagerland, Lydersen & Laake (2013), BMC Med Res Methodol 13:91, Table 1 (Bentur et al.):
    # 1 vs 7 discordant pairs: exact conditional p = 0.070, mid-p = 0.039.
    assert mcnemar_exact(1, 7) == pytest.approx(0.0703, abs=1e-4)
    assert mcnemar_midp(1, 7).p_value == pytest.approx(0.0391, abs=1e-4)
    assert mcnemar_midp(7, 1).p_value == mcnemar_midp(1, 7).p_value


def test_mcnemar_exact_values_and_edges() -> None:
    assert mcnemar_midp(0, 0).p_value == 1.0  # nothing tells them apart
    assert mcnemar_midp(5, 5).p_value == 1.0
    # 0 vs 10: mid-p = 2 * (1/1024 - 1/2048) = 1/1024
    assert mcnemar_midp(0, 10).p_value == pytest.approx(1 / 1024)
    with pytest.raises(ValueError, match="discordant counts"):
        mcnemar_midp(-1, 3)


def test_macro_f1_rows_agrees_with_the_report() -> None:
    rng = np.random.default_rng(1)
    truth = rng.integers(0, 4, size=(5, 60))
    pred = np.where(rng.random((5, 60)) < 0.7, truth, rng.integers(0, 4, size=(5, 60)))
    rows = macro_f1_rows(truth, pred, 4)
    for i in range(5):
        expected = classification_report(truth[i], pred[i], ["a", "b", "c", "d"])["macro_f1"]
        assert rows[i] == pytest.approx(expected)


def test_bootstrap_interval_is_seeded_and_brackets_the_estimate() -> None:
    rng = np.random.default_rng(7)
    truth = rng.integers(0, 3, size=500)
    champ = np.where(rng.random(500) < 0.75, truth, (truth + 1) % 3)
    cand = np.where(rng.random(500) < 0.80, truth, (truth + 1) % 3)
    one = paired_comparison(truth, champ, cand, 3, seed=3)
    two = paired_comparison(truth, champ, cand, 3, seed=3)
    assert one == two
    assert one.accuracy.low < one.accuracy.estimate < one.accuracy.high
    assert one.macro_f1.low < one.macro_f1.estimate < one.macro_f1.high
    # the paired interval's width matches the normal approximation sqrt(var(d)/n)
    d = (cand == truth).astype(float) - (champ == truth).astype(float)
    half = 1.96 * d.std(ddof=1) / np.sqrt(500)
    assert (one.accuracy.high - one.accuracy.low) / 2 == pytest.approx(half, rel=0.15)


def test_identical_models_give_a_zero_interval() -> None:
    truth = [0, 1, 2] * 50
    pred = [0, 1, 1] * 50
    result = paired_comparison(truth, pred, pred, 3)
    assert result.mcnemar.p_value == 1.0
    assert (result.accuracy.low, result.accuracy.high) == (0.0, 0.0)


def test_mismatched_or_out_of_range_inputs_are_one_line_errors() -> None:
    with pytest.raises(ValueError, match="one entry per item"):
        paired_comparison([0, 1], [0], [0, 1], 2)
    with pytest.raises(ValueError, match=r"outside 0\.\.1"):
        paired_comparison([0, 2], [0, 1], [0, 1], 2)


def test_labels_needed_follows_connors_formula() -> None:
    # psi = 0.10, delta = 0.05, alpha 0.05, power 0.8:
    # (1.95996 * sqrt(0.1) + 0.84162 * sqrt(0.0975))^2 / 0.0025 = 311.5 -> 312
    assert labels_needed(25, 75, 1000) == 312
    assert labels_needed(5, 5, 100) is None  # no gain to detect
    assert labels_needed(6, 4, 100) is None
    # a smaller effect with the same discordance needs more labels
    assert (labels_needed(45, 55, 1000) or 0) > (labels_needed(25, 75, 1000) or 0)
