"""The scheduler's drift score from the served predictions in a real SQLite store."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

from models.drift import build_reference
from models.prediction import Prediction
from models.registry import Registry
from retrain.drift_source import served_drift
from retrain.store import FeedbackStore, PredictionRow

LABELS = ("negative", "neutral", "positive")
VERSION = "v0001-20261130T100000"
T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def _pred(label: str, confidence: float) -> Prediction:
    rest = (1 - confidence) / 2
    return Prediction(label, {n: confidence if n == label else rest for n in LABELS})


def _registry(tmp_path: Path) -> Registry:
    (tmp_path / "registry" / "sentiment" / VERSION).mkdir(parents=True)
    registry = Registry(tmp_path / "registry")
    (tmp_path / "registry" / "sentiment" / "production.json").write_text(
        json.dumps({"task": "sentiment", "version": VERSION, "history": []})
    )
    rng = random.Random(1)
    preds = [_pred(rng.choice(LABELS), rng.uniform(0.5, 1.0)) for _ in range(600)]
    registry.write_drift_reference(
        build_reference("sentiment", VERSION, ["text"] * 600, preds, LABELS, ["text"])
    )
    return registry


def _serve(store: FeedbackStore, n: int, *, shifted: bool, start: int = 0) -> None:
    rng = random.Random(start)
    rows = []
    for i in range(start, start + n):
        label = "positive" if shifted else rng.choice(LABELS)
        conf = rng.uniform(0.34, 0.5) if shifted else rng.uniform(0.5, 1.0)
        rows.append(
            PredictionRow(f"i{i}", "sentiment", VERSION, label, conf, T0 + timedelta(seconds=i))
        )
    store.record_predictions(rows)


def test_served_predictions_that_shift_raise_the_scheduler_drift(tmp_path: Path) -> None:
    registry = _registry(tmp_path)
    with FeedbackStore.open(f"sqlite:///{tmp_path}/feedback.db") as store:
        assert served_drift(store, registry, "sentiment", min_items=200) is None  # nothing yet
        _serve(store, 400, shifted=False)
        quiet = served_drift(store, registry, "sentiment", window=400, min_items=200)
        assert quiet is not None and quiet < 0.1
        _serve(store, 400, shifted=True, start=400)  # the latest 400 are the shifted ones
        shifted = served_drift(store, registry, "sentiment", window=400, min_items=200)
        assert shifted is not None and shifted > 0.25


def test_no_reference_or_no_production_means_no_score(tmp_path: Path) -> None:
    registry = Registry(tmp_path / "empty")
    with FeedbackStore.open(f"sqlite:///{tmp_path}/feedback.db") as store:
        _serve(store, 300, shifted=True)
        assert served_drift(store, registry, "sentiment") is None
