"""`streamsense models shadow-review` on a real registry, feedback store and broker: a
candidate as good as production on its labelled live items is promoted and announced; one
significantly worse has its shadow ended; one still short of labels keeps waiting."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from models.registry import Registry
from retrain.store import FeedbackRow, FeedbackStore, ShadowRow
from streams.cli import models as cli_models
from streams.core.records import ModelControl, decode
from streams.settings import Settings
from tests.kafka_helpers import consume_until, create_topics
from tests.model_fixtures import copy_registry

pytestmark = pytest.mark.integration

LABELS = ("negative", "neutral", "positive")


def _live_items(
    store: FeedbackStore, champion: str, candidate: str, production_only: int, shadow_only: int
) -> None:
    """300 items scored by both since the shadow began, then labelled: the two disagree
    about correctness on ``production_only`` + ``shadow_only`` of them."""
    now = datetime.now(UTC)
    rows, labels = [], []
    for i in range(300):
        truth = LABELS[i % 3]
        wrong = LABELS[(i + 1) % 3]
        production, shadow = truth, truth
        if i < production_only:
            shadow = wrong
        elif i < production_only + shadow_only:
            production = wrong
        rows.append(ShadowRow(f"n{i}", "sentiment", candidate, shadow, champion, production, now))
        labels.append(FeedbackRow(f"n{i}", "sentiment", truth, "desk", now + timedelta(seconds=1)))
    store.record_shadow(rows)
    for row in labels:
        store.add_feedback(row)


@pytest.mark.parametrize(
    ("production_only", "shadow_only", "outcome"),
    [(4, 16, "promote"), (30, 5, "end")],
)
def test_a_shadow_review_promotes_or_ends_on_the_labelled_live_items(
    trained_registry: Path,
    tmp_path: Path,
    kafka_bootstrap: str,
    unique: str,
    production_only: int,
    shadow_only: int,
    outcome: str,
) -> None:
    root = copy_registry(trained_registry, tmp_path / "registry")
    registry = Registry(root)
    champion = registry.production("sentiment")
    assert champion is not None
    candidate = registry.register_copy("sentiment", champion)
    registry.set_shadow("sentiment", candidate, "test: passed the gate, shadow first")
    control = f"models.control-{unique}"
    create_topics(kafka_bootstrap, [control], partitions=1)
    store_url = f"sqlite:///{tmp_path}/feedback.db"
    settings = Settings(
        registry_dir=root,
        feedback_db_url=store_url,
        kafka_bootstrap=kafka_bootstrap,
        topic_models_control=control,
    )
    app = typer.Typer()
    cli_models.register(app, lambda: settings)
    review = ["models", "shadow-review", "sentiment", "--min-duration-s", "0"]

    # no label yet: the period goes on
    with FeedbackStore.open(store_url) as store:
        waiting = CliRunner().invoke(app, review)
        assert waiting.exit_code == 0, waiting.output
        assert "shadow review: wait (0 labelled items" in waiting.output
        assert registry.shadow("sentiment") == candidate
        _live_items(store, champion, candidate, production_only, shadow_only)

    result = CliRunner().invoke(app, review)

    assert result.exit_code == 0, result.output
    assert f"shadow review: {outcome} (300 labelled items, online accuracy" in result.output
    assert registry.shadow("sentiment") is None
    recorded = registry.decisions("sentiment", candidate)[-1]
    assert recorded["decision"] == f"shadow_{outcome}"
    assert recorded["intervals"]["online_accuracy"]["n"] == 300
    if outcome == "promote":
        assert registry.production("sentiment") == candidate
        values = consume_until(kafka_bootstrap, control, lambda v: len(v) >= 1, timeout_s=30)
        assert [decode(ModelControl, v).version for v in values] == [candidate]
        assert "shadow review: promote" in registry.alias("sentiment")["history"][-1]["reason"]
    else:
        assert registry.production("sentiment") == champion
        assert "significantly worse online" in result.output
