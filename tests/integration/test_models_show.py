"""`streamsense models show`: production, shadow, the last gate decision with its interval,
and the drift score of the served predictions, on a real registry and feedback store."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from models.drift import build_reference
from models.exceptions import RegistryError
from models.prediction import Prediction
from models.registry import Registry
from retrain.gate import EvalResult, decide
from retrain.store import FeedbackStore, PredictionRow
from streams.cli import models as cli_models
from streams.settings import Settings
from tests.model_fixtures import copy_registry

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def test_models_show_says_production_shadow_decision_and_drift(
    trained_registry: Path, tmp_path: Path
) -> None:
    root = copy_registry(trained_registry, tmp_path / "registry")
    registry = Registry(root)
    champion = registry.production("sentiment")
    assert champion is not None
    candidate = registry.register_copy("sentiment", champion)
    truth = tuple(i % 3 for i in range(153))
    # the real gate's record of a thin-evidence decision: 153 items, 5 fixed vs 4 broken
    cand = EvalResult(
        candidate,
        0.9,
        0.9,
        153,
        0.8,
        0.8,
        300,
        3,
        truth,
        tuple((t + 1) % 3 if i < 4 else t for i, t in enumerate(truth)),
        tuple(i % 3 for i in range(300)),
        tuple(i % 3 for i in range(300)),
    )
    champ = EvalResult(
        champion,
        0.9,
        0.9,
        153,
        0.8,
        0.8,
        300,
        3,
        truth,
        tuple((t + 1) % 3 if 4 <= i < 9 else t for i, t in enumerate(truth)),
        tuple(i % 3 for i in range(300)),
        tuple(i % 3 for i in range(300)),
    )
    decision = decide(cand, champ)
    registry.record_decision("sentiment", candidate, {**decision.as_dict(), "gate": "retrain"})
    registry.set_shadow("sentiment", candidate, "test: thin evidence, watch it on live traffic")
    with pytest.raises(RegistryError, match="only a candidate"):
        registry.set_shadow("sentiment", champion, "no")

    labels = ("negative", "neutral", "positive")
    rng = random.Random(3)

    def pred(label: str, conf: float) -> Prediction:
        return Prediction(label, {n: conf if n == label else (1 - conf) / 2 for n in labels})

    reference = build_reference(
        "sentiment",
        champion,
        ["a text"] * 600,
        [pred(rng.choice(labels), rng.uniform(0.5, 1.0)) for _ in range(600)],
        labels,
        ["a text"] * 2,
    )
    registry.write_drift_reference(reference)
    store_url = f"sqlite:///{tmp_path}/feedback.db"
    with FeedbackStore.open(store_url) as store:  # served: all positive, unsure
        store.record_predictions(
            [
                PredictionRow(
                    f"n{i}", "sentiment", champion, "positive", 0.4, T0 + timedelta(seconds=i)
                )
                for i in range(300)
            ]
        )
    settings = Settings(registry_dir=root, feedback_db_url=store_url)
    app = typer.Typer()
    cli_models.register(app, lambda: settings)

    result = CliRunner().invoke(app, ["models", "show", "sentiment"])

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == f"sentiment: production {champion}; shadow {candidate}"
    assert lines[1].startswith(f"  last gate decision: not enough evidence {candidate} (")
    assert "recent accuracy +0.65 pts [" in lines[1] and "p=0.754" in lines[1]
    assert "more labels needed" in lines[1]
    assert lines[2].startswith("  drift score (largest PSI of the served predictions): ")
    assert float(lines[2].split(": ")[1].split()[0]) > 0.25

    promoted = CliRunner().invoke(app, ["models", "promote", "sentiment", candidate])
    assert promoted.exit_code == 0, promoted.output
    assert registry.shadow("sentiment") is None  # promoting the shadow version ends its shadow
