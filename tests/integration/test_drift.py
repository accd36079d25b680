"""Drift on real data: a PhraseBank-trained sentiment model meets Twitter headlines.

The registry's real (small) model, its drift reference computed from the PhraseBank
held-out split, and the scorer's per-batch call of the drift monitor.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from models.data import TWITTER_FILE, load_twitter, stratified_sample
from models.drift_reference import ensure_drift_reference, reference_and_control
from models.registry import Registry
from models.runtime import Classifier
from streams.core.drift import DriftMonitor, DriftReport
from tests.model_fixtures import copy_registry, fixture_data_dir

BATCH = 32


def _stream(monitor: DriftMonitor, classifier: Classifier, texts: list[str]) -> DriftReport:
    report = None
    for start in range(0, len(texts), BATCH):
        batch = texts[start : start + BATCH]
        report = monitor.observe(batch, classifier.predict(batch))  # the scorer's hook
    assert report is not None, "the window never reached min_items"
    return report


@pytest.mark.slow
def test_drift_rises_on_twitter_and_stays_quiet_on_phrasebank(
    trained_registry: Path, tmp_path: Path
) -> None:
    root = copy_registry(trained_registry, tmp_path / "registry")
    registry = Registry(root)
    data_dir = fixture_data_dir()
    version = registry.production("sentiment")
    assert version is not None
    classifier = registry.load("sentiment", version, threads=1)

    reference = ensure_drift_reference(
        registry, "sentiment", version, data_dir, classifier=classifier
    )
    # stored beside the version, outside the hashed files: the version still verifies
    assert registry.drift_reference("sentiment", version) == reference
    registry.verify("sentiment", version)
    assert reference.control is not None and reference.control["score"] < 0.1

    _, phrasebank = reference_and_control("sentiment", data_dir)  # held-out, not in the reference
    quiet = _stream(
        DriftMonitor(reference, window=1000, min_items=200), classifier, phrasebank.texts
    )
    twitter = stratified_sample(load_twitter(data_dir / TWITTER_FILE), 1000, seed=5).texts
    shifted = _stream(DriftMonitor(reference, window=1000, min_items=200), classifier, twitter)

    print(f"\nPhraseBank control: {quiet.as_dict()}\nTwitter: {shifted.as_dict()}")
    assert quiet.score < 0.1, quiet.as_dict()
    assert shifted.score > 0.25, shifted.as_dict()
    assert shifted.psi["oov"] > 0.25 and shifted.psi["length"] > 0.25, shifted.as_dict()


def _gauge(port: int, name: str, task: str) -> float:
    from tests.pipeline_helpers import metric_value

    value = metric_value(port, name, task=task)
    assert value is not None, f"{name} for {task} is not exported"
    return value


def test_a_worker_reports_the_drift_of_the_traffic_it_serves(
    kafka_bootstrap: str, trained_registry: Path, tmp_path: Path, unique: str
) -> None:
    """The scorer's hook in a real worker: Twitter headlines served by the PhraseBank model
    drive streamsense_drift_score past the alert threshold (0.25)."""
    import time

    from streams.edges.replay import news_items
    from tests.kafka_helpers import produce
    from tests.pipeline_helpers import Pipeline, TopicReader

    root = copy_registry(trained_registry, tmp_path / "registry")
    registry = Registry(root)
    version = registry.production("sentiment")
    assert version is not None
    ensure_drift_reference(registry, "sentiment", version, fixture_data_dir())
    pipe = Pipeline.create(
        kafka_bootstrap, unique, root, tmp_path, drift_min_items="60", drift_window="200"
    )
    pipe.start_worker()
    s = pipe.settings
    twitter = stratified_sample(load_twitter(fixture_data_dir() / TWITTER_FILE), 240, seed=9)
    items = list(news_items(twitter, prefix="drift"))
    produce(pipe.bootstrap, s.topic_news_raw, [(i.key, i.value) for i in items])
    scored = TopicReader(pipe.bootstrap, s.topic_news_scored)
    try:
        scored.wait_for_ids({i.item_id for i in items}, 240, pipe.assert_never_restarted)
        deadline = time.monotonic() + 30
        score = float("nan")
        while time.monotonic() < deadline and not score > 0.25:
            score = _gauge(pipe.metrics_ports[0], "streamsense_drift_score", "sentiment")
            time.sleep(1)
        intent = _gauge(pipe.metrics_ports[0], "streamsense_drift_score", "intent")
    finally:
        pipe.stop_all()
        scored.close()
    print(f"\nworker drift score on Twitter headlines: {score:.2f}")
    assert score > 0.25, score
    assert intent != intent  # NaN: no intent traffic, no reference, nothing measured
