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
