"""Drift profiles and the sliding-window drift monitor (pure; no model, no broker)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from models.drift import (
    DriftReference,
    DriftReferenceError,
    build_reference,
    compare,
    decile_edges,
    psi,
    text_features,
    vocabulary,
)
from models.exceptions import RegistryError
from models.prediction import Prediction
from models.registry import Registry
from streams.core.drift import DriftMonitor

LABELS = ("negative", "neutral", "positive")
WORDS = [
    "profit",
    "rose",
    "sales",
    "fell",
    "the",
    "company",
    "said",
    "quarter",
    "net",
    "operating",
    "loss",
]


def _pred(label: str, confidence: float) -> Prediction:
    rest = (1 - confidence) / 2
    return Prediction(label, {name: confidence if name == label else rest for name in LABELS})


def _stream(seed: int, n: int, *, shifted: bool) -> tuple[list[str], list[Prediction]]:
    rng = random.Random(seed)
    texts: list[str] = []
    preds: list[Prediction] = []
    for _ in range(n):
        if shifted:  # short, full of unknown words, one label, unsure
            texts.append(" ".join(rng.choice(["$tsla", "lol", "moon", "rekt"]) for _ in range(4)))
            preds.append(_pred("positive", rng.uniform(0.4, 0.6)))
        else:
            texts.append(" ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 30))))
            preds.append(_pred(rng.choice(LABELS), rng.uniform(0.5, 1.0)))
    return texts, preds


def _reference(n: int = 2000) -> DriftReference:
    texts, preds = _stream(1, n, shifted=False)
    return build_reference("sentiment", "v0001-20261130T100000", texts, preds, LABELS, WORDS * 2)


def test_psi_is_zero_for_equal_shares_and_matches_the_formula() -> None:
    assert psi([10, 20, 30], [10, 20, 30]) == 0.0
    assert psi([10, 20, 30], [20, 40, 60]) == pytest.approx(0.0, abs=1e-4)
    # shares 0.5/0.5 vs 0.6/0.4: 0.1 ln 1.2 + 0.1 ln 1.25 = 0.04055 (smoothing negligible)
    assert psi([5000, 5000], [6000, 4000]) == pytest.approx(0.04055, abs=1e-4)
    assert psi([10, 0], [0, 10]) > 1  # empty bins stay finite
    with pytest.raises(ValueError, match="bins"):
        psi([1, 2], [1])


def test_decile_edges_and_text_features() -> None:
    assert decile_edges([float(i) for i in range(100)]) == [float(10 * k) for k in range(1, 10)]
    assert decile_edges([0.0] * 50 + [1.0] * 50) == [1.0]
    vocab = vocabulary(["Profit rose.", "profit fell", "rose again"])
    assert text_features("Profit rose, $TSLA moon", vocab) == (4.0, 0.5)
    assert text_features("", vocab) == (0.0, 0.0)


def test_monitor_reports_only_once_the_window_has_enough_items() -> None:
    monitor = DriftMonitor(_reference(), window=300, min_items=100)
    texts, preds = _stream(2, 99, shifted=False)
    assert monitor.observe(texts, preds) is None
    report = monitor.observe(texts[:1], preds[:1])
    assert report is not None and report.items == 100


def test_same_distribution_stays_quiet_and_a_shift_raises_the_score() -> None:
    reference = _reference()
    quiet = DriftMonitor(reference, window=500, min_items=200)
    for start in range(0, 1000, 32):
        texts, preds = _stream(start + 3, 32, shifted=False)
        report = quiet.observe(texts, preds)
    assert report is not None
    assert report.score < 0.1, report.as_dict()
    texts, preds = _stream(4, 500, shifted=True)
    shifted = quiet.observe(texts, preds)
    assert shifted is not None and shifted.drifted(0.25)
    assert {f for f, v in shifted.psi.items() if v > 0.25} == {
        "label",
        "confidence",
        "length",
        "oov",
    }


def test_the_window_slides_and_equals_a_fresh_comparison_of_its_items() -> None:
    reference = _reference()
    monitor = DriftMonitor(reference, window=200, min_items=50)
    old_texts, old_preds = _stream(5, 300, shifted=True)
    new_texts, new_preds = _stream(6, 200, shifted=False)
    monitor.observe(old_texts, old_preds)
    report = monitor.observe(new_texts, new_preds)
    assert report is not None and report.items == 200
    assert dict(report.psi) == pytest.approx(compare(reference, new_texts, new_preds))
    assert report.score < 0.25  # the shifted items have left the window


def test_reference_round_trips_through_the_registry(tmp_path: Path) -> None:
    version = "v0001-20261130T100000"
    (tmp_path / "sentiment" / version).mkdir(parents=True)
    registry = Registry(tmp_path)
    assert registry.drift_reference("sentiment", version) is None
    reference = _reference(300)
    path = registry.write_drift_reference(reference)
    assert registry.drift_reference("sentiment", version) == reference
    body = json.loads(path.read_text())
    assert "profit" not in path.read_text()  # words are stored as hashes only
    body["counts"]["label"] = [1, 2]
    path.write_text(json.dumps(body))
    with pytest.raises(DriftReferenceError, match=r"drift_reference.json is not valid: label"):
        registry.drift_reference("sentiment", version)
    path.write_text("{not json")
    with pytest.raises(RegistryError, match="not readable JSON"):
        registry.drift_reference("sentiment", version)


def test_a_label_the_reference_does_not_know_is_a_clear_error() -> None:
    monitor = DriftMonitor(_reference(300), window=100, min_items=10)
    with pytest.raises(DriftReferenceError, match="has no label 'bullish'"):
        monitor.observe(["x"], [Prediction("bullish", {"bullish": 1.0})])
    with pytest.raises(ValueError, match="min_items"):
        DriftMonitor(_reference(300), window=10, min_items=20)
