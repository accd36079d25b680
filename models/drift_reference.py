"""Compute and store a version's drift reference from the data it was validated on."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from models.data import SPLIT_SEED, LabeledData, stratified_split, task_split
from models.drift import DriftReference, build_reference, compare
from models.prediction import Prediction
from models.registry import Registry
from models.runtime import Classifier

logger = logging.getLogger(__name__)

_CHUNK = 256
CONTROL_FRACTION = 1 / 3
"""Share of the held-out split kept out of the reference as its no-drift control."""


def reference_and_control(task: str, data_dir: Path) -> tuple[LabeledData, LabeledData]:
    """The held-out split cut (seeded, stratified) into the reference part and the control."""
    _, heldout = task_split(task, data_dir)
    return stratified_split(heldout, fraction=CONTROL_FRACTION, seed=SPLIT_SEED)


def _predict(classifier: Classifier, texts: Sequence[str]) -> list[Prediction]:
    out: list[Prediction] = []
    for start in range(0, len(texts), _CHUNK):
        out.extend(classifier.predict(texts[start : start + _CHUNK]))
    return out


def ensure_drift_reference(
    registry: Registry,
    task: str,
    version: str,
    data_dir: Path,
    *,
    extra: LabeledData | None = None,
    extra_vocabulary: Sequence[str] = (),
    classifier: Classifier | None = None,
    threads: int = 0,
    rebuild: bool = False,
) -> DriftReference:
    """The stored reference of ``version``, computed and written first when there is none.

    Computed by scoring two thirds of the task's held-out split (plus ``extra``, e.g. the
    feedback slice a fine-tuned version was judged on) with the serving runtime; the
    vocabulary comes from the original training split plus ``extra_vocabulary`` (the
    texts it was fine-tuned on). The last third of the held-out split is scored against
    the reference as a control: its PSI, stored with the reference, is the noise floor of
    a sample without drift. ``classifier`` reuses a version already loaded.
    """
    if not rebuild:
        stored = registry.drift_reference(task, version)
        if stored is not None:
            return stored
    train, _ = task_split(task, data_dir)
    heldout, control = reference_and_control(task, data_dir)
    texts = list(heldout.texts)
    source = f"{heldout.source} held-out ({len(heldout)})"
    if extra is not None and len(extra):
        texts += extra.texts
        source += f" + {extra.source} ({len(extra)})"
    model = classifier or registry.load(task, version, threads=threads)
    reference = build_reference(
        task,
        version,
        texts,
        _predict(model, texts),
        model.labels,
        [*train.texts, *extra_vocabulary],
        source=source,
    )
    control_psi = compare(reference, control.texts, _predict(model, control.texts))
    reference = replace(
        reference,
        control={
            "n": len(control),
            "psi": {f: round(v, 4) for f, v in control_psi.items()},
            "score": round(max(control_psi.values()), 4),
        },
    )
    registry.write_drift_reference(reference)
    return reference
