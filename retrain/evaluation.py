"""Evaluation of registry versions with the serving runtime (``Registry.load``), not torch."""

from __future__ import annotations

import logging
from typing import Any

from models.data import LabeledData
from models.metrics import classification_report
from models.registry import Registry
from models.runtime import Classifier
from retrain.exceptions import RetrainError
from retrain.gate import EvalResult

logger = logging.getLogger(__name__)

_CHUNK = 256


def report(classifier: Classifier, data: LabeledData) -> dict[str, Any]:
    """Accuracy, macro-F1 and per-class numbers of a loaded version on ``data``."""
    if list(classifier.labels) != list(data.label_names):
        raise RetrainError(
            f"{classifier.task}/{classifier.version} has labels {classifier.labels}, "
            f"the evaluation data {data.source} has {data.label_names}"
        )
    index = {name: i for i, name in enumerate(data.label_names)}
    predicted: list[int] = []
    for start in range(0, len(data), _CHUNK):
        batch = classifier.predict(data.texts[start : start + _CHUNK])
        predicted.extend(index[p.label] for p in batch)
    return classification_report(data.label_ids(), predicted, data.label_names)


def evaluate_version(
    registry: Registry,
    task: str,
    version: str,
    recent: LabeledData,
    heldout: LabeledData,
    *,
    threads: int = 0,
) -> EvalResult:
    """Load ``version`` as serving does (verified) and score both evaluation sets."""
    classifier = registry.load(task, version, threads=threads)
    on_recent = report(classifier, recent)
    on_heldout = report(classifier, heldout)
    logger.info(
        "%s/%s: recent accuracy %.4f (n=%s), held-out accuracy %.4f (n=%s), %s",
        task,
        version,
        on_recent["accuracy"],
        on_recent["n"],
        on_heldout["accuracy"],
        on_heldout["n"],
        classifier.model_file,
    )
    return EvalResult(
        version=version,
        recent_accuracy=on_recent["accuracy"],
        recent_macro_f1=on_recent["macro_f1"],
        recent_n=on_recent["n"],
        heldout_accuracy=on_heldout["accuracy"],
        heldout_macro_f1=on_heldout["macro_f1"],
        heldout_n=on_heldout["n"],
    )
