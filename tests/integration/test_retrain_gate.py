"""The retrain loop on a real (small) registry: poisoned feedback never reaches production,
thin evidence is held back, a clearly better candidate is promoted and announced."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from models.data import TWITTER_FILE, load_twitter, stratified_sample, task_split
from models.registry import Registry
from retrain.gate import EvalResult, GatePolicy, decide
from retrain.job import run_retrain
from retrain.store import FeedbackRow, FeedbackStore
from streams.cli.retrain import make_publisher
from streams.core.records import ModelControl, decode
from streams.settings import Settings
from tests.kafka_helpers import consume_until, create_topics
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


def _feed_twitter(store: FeedbackStore, data_dir: Path, start: int, n: int) -> None:
    """Correctly labelled Twitter headlines: the domain the PhraseBank model has not seen."""
    tweets = stratified_sample(load_twitter(data_dir / TWITTER_FILE), 1000, seed=7)
    for i in range(start, start + n):
        store.add_feedback(
            FeedbackRow(
                item_id=f"tw-{i}",
                task="sentiment",
                label=tweets.labels[i],
                annotator="desk",
                at=T0,
                text=tweets.texts[i],
            )
        )


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_a_clearly_better_candidate_is_promoted_and_thin_evidence_is_not(
    trained_registry: Path,
    tmp_path: Path,
    kafka_bootstrap: str,
    settings: Settings,
    unique: str,
) -> None:
    root = copy_registry(trained_registry, tmp_path / "registry")
    registry = Registry(root)
    champion = registry.production("sentiment")
    data_dir = fixture_data_dir()
    control_topic = f"models.control-{unique}"
    create_topics(kafka_bootstrap, [control_topic], partitions=1)
    publish = make_publisher(
        settings.model_copy(
            update={"kafka_bootstrap": kafka_bootstrap, "topic_models_control": control_topic}
        )
    )
    store = FeedbackStore.open(f"sqlite:///{tmp_path}/feedback.db")
    # 400 correctly labelled tweets: most trained on, a quarter of the usable ones judged on
    _feed_twitter(store, data_dir, 0, 400)
    # The fixture's model is briefly trained: 300 held-out texts move by a few points
    # between its fine-tunes, so the held-out tolerance is wider than production's; the
    # judged slice is ~75 tweets, so the minimum slice is 50 here.
    policy = GatePolicy(tolerance=0.05, alpha=0.05, min_slice=50)

    report = run_retrain(
        "sentiment",
        registry_root=root,
        data_dir=data_dir,
        store=store,
        config_overrides=FAST,
        min_new_labels=100,
        heldout_limit=300,
        min_int8_agreement=FIXTURE_MIN_INT8_AGREEMENT,
        policy=policy,
        publish=publish,
        show_progress=False,
    )

    assert report.status == "promoted", report.message
    assert report.champion == champion
    candidate = report.candidate
    assert candidate is not None and registry.production("sentiment") == candidate
    record = registry.decisions("sentiment", candidate)[-1]
    recent = record["intervals"]["recent_accuracy"]
    print(f"\npromoted: {record['summary']}\nintervals: {record['intervals']}")
    assert record["decision"] == "promote"
    assert recent["n"] >= 50 and recent["p_value"] < 0.05 and recent["low"] > 0
    assert record["intervals"]["heldout_accuracy"]["low"] >= -0.05
    assert "p=" in registry.alias("sentiment")["history"][-1]["reason"]
    # announced on the real broker: the workers' control topic names the new version
    values = consume_until(kafka_bootstrap, control_topic, lambda v: len(v) >= 1, timeout_s=30)
    assert [decode(ModelControl, v).version for v in values] == [candidate]
    # its drift reference is stored beside it, built with the tweets it was judged on
    reference = registry.drift_reference("sentiment", candidate)
    assert reference is not None and "feedback" in reference.source

    # The same two models judged on only the first 30 of those tweets, under the default
    # minimum slice of 100: held back, saying how many more labels it would take.
    cand, champ = report.candidate_eval, report.champion_eval
    assert cand is not None and champ is not None
    thin = decide(_first(cand, 30), _first(champ, 30), policy=GatePolicy())
    print(f"thin: {thin.summary()}")
    assert thin.outcome == "not_enough_evidence", thin.reasons
    assert thin.labels_needed is not None and thin.labels_needed >= 70


def _first(result: EvalResult, n: int) -> EvalResult:
    """``result`` restricted to its first ``n`` recent items (the held-out part unchanged)."""
    truth, predicted = result.recent_truth[:n], result.recent_predicted[:n]
    accuracy = sum(t == p for t, p in zip(truth, predicted, strict=True)) / n
    return replace(
        result,
        recent_accuracy=accuracy,
        recent_macro_f1=accuracy,
        recent_n=n,
        recent_truth=truth,
        recent_predicted=predicted,
    )
