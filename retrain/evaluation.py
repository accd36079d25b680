"""Evaluation of registry versions with the serving runtime (``Registry.load``), not torch."""

from __future__ import annotations

import logging
from typing import Any

from models.data import LabeledData
from models.metrics import classification_report
from models.prediction import Prediction
from models.registry import Registry
from models.runtime import Classifier
from retrain.exceptions import RetrainError
from retrain.gate import EvalResult

logger = logging.getLogger(__name__)

_CHUNK = 256


def predict_all(classifier: Classifier, data: LabeledData) -> list[Prediction]:
    """The classifier's prediction for every text of ``data``, in order."""
    if list(classifier.labels) != list(data.label_names):
        raise RetrainError(
            f"{classifier.task}/{classifier.version} has labels {classifier.labels}, "
            f"the evaluation data {data.source} has {data.label_names}"
        )
    predictions: list[Prediction] = []
    for start in range(0, len(data), _CHUNK):
        predictions.extend(classifier.predict(data.texts[start : start + _CHUNK]))
    return predictions


def _ids(predictions: list[Prediction], data: LabeledData) -> list[int]:
    index = {name: i for i, name in enumerate(data.label_names)}
    return [index[p.label] for p in predictions]


def report(classifier: Classifier, data: LabeledData) -> dict[str, Any]:
    """Accuracy, macro-F1 and per-class numbers of a loaded version on ``data``."""
    predicted = _ids(predict_all(classifier, data), data)
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
    """Load ``version`` as serving does (verified) and score both evaluation sets item by item.

    The per-item predictions let the gate pair this version with another scored on the
    same data. Without a drift reference yet, one is written from the held-out predictions
    (:func:`models.drift.build_reference`).
    """
    classifier = registry.load(task, version, threads=threads)
    recent_pred = _ids(predict_all(classifier, recent), recent)
    heldout_preds = predict_all(classifier, heldout)
    heldout_pred = _ids(heldout_preds, heldout)
    on_recent = classification_report(recent.label_ids(), recent_pred, recent.label_names)
    on_heldout = classification_report(heldout.label_ids(), heldout_pred, heldout.label_names)
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
        n_labels=len(heldout.label_names),
        recent_truth=tuple(recent.label_ids()),
        recent_predicted=tuple(recent_pred),
        heldout_truth=tuple(heldout.label_ids()),
        heldout_predicted=tuple(heldout_pred),
    )
