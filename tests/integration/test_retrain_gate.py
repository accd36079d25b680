"""The retrain loop on a real (small) registry: poisoned feedback never reaches production."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from models.data import stratified_sample, task_split
from models.registry import Registry
from retrain.job import run_retrain
from retrain.store import FeedbackRow, FeedbackStore
from tests.model_fixtures import FIXTURE_MIN_INT8_AGREEMENT, copy_registry, fixture_data_dir

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
FLIP = {"negative": "positive", "positive": "neutral", "neutral": "negative"}
# Tiny but real: 2 epochs over ~180 rows plus as many replayed, one thread.
FAST = {"epochs": 2, "batch_size": 16, "lr": 1e-4, "head_lr": 5e-3, "eval_limit": 100, "threads": 1}


def _feed(store: FeedbackStore, data_dir: Path, n: int, *, flip: bool) -> None:
    train, _ = task_split("sentiment", data_dir)
    sample = stratified_sample(train, n, seed=5)
    for i, (text, label) in enumerate(zip(sample.texts, sample.labels, strict=True)):
        store.add_feedback(
            FeedbackRow(
                item_id=f"pb-{i}",
                task="sentiment",
                label=FLIP[label] if flip else label,
                annotator="mallory",
                at=T0,
                text=text,
            )
        )


@pytest.mark.slow
def test_candidate_trained_on_flipped_labels_is_refused(
    trained_registry: Path, tmp_path: Path
) -> None:
    root = copy_registry(trained_registry, tmp_path / "registry")
    registry = Registry(root)
    champion = registry.production("sentiment")
    data_dir = fixture_data_dir()
    store = FeedbackStore.open(f"sqlite:///{tmp_path}/feedback.db")
    _feed(store, data_dir, 240, flip=True)
    published: list[tuple[str, str, str]] = []

    report = run_retrain(
        "sentiment",
        registry_root=root,
        data_dir=data_dir,
        store=store,
        config_overrides=FAST,
        min_new_labels=100,
        heldout_limit=300,
        min_int8_agreement=FIXTURE_MIN_INT8_AGREEMENT,
        publish=lambda *args: published.append(args),
        show_progress=False,
    )

    assert report.status == "refused", report.message
    assert report.candidate is not None and report.candidate in registry.versions("sentiment")
    assert registry.production("sentiment") == champion
    assert published == []
    recorded = registry.decisions("sentiment", report.candidate)[-1]
    assert recorded["decision"] == "refuse"
    assert recorded["champion"] == champion
    failed = [r for r in recorded["reasons"] if r.startswith("FAILED")]
    assert any(r.startswith("FAILED: held-out accuracy") for r in failed), recorded["reasons"]
    numbers = recorded["numbers"]
    assert numbers["candidate_heldout_accuracy"] < numbers["champion_heldout_accuracy"] - 0.01
    # the candidate's manifest names its parent: it was fine-tuned from production
    assert registry.verify("sentiment", report.candidate)["parent"] == champion

    # nothing new since: the next run is skipped, saying so
    again = run_retrain(
        "sentiment", registry_root=root, data_dir=data_dir, store=store, show_progress=False
    )
    assert again.status == "skipped"
    assert "no new labelled texts" in again.message


def test_too_few_new_labels_skip_the_run(trained_registry: Path, tmp_path: Path) -> None:
    root = copy_registry(trained_registry, tmp_path / "registry")
    store = FeedbackStore.open(f"sqlite:///{tmp_path}/feedback.db")
    _feed(store, fixture_data_dir(), 30, flip=False)
    before = Registry(root).versions("sentiment")

    report = run_retrain(
        "sentiment",
        registry_root=root,
        data_dir=fixture_data_dir(),
        store=store,
        min_new_labels=100,
        show_progress=False,
    )

    assert report.status == "skipped"
    assert "30 new labelled text(s)" in report.message and "at least 100" in report.message
    assert Registry(root).versions("sentiment") == before
