"""Classification metrics computed with numpy: accuracy, macro-F1, per-class report."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt


def confusion_matrix(
    y_true: Sequence[int] | npt.NDArray[np.int64],
    y_pred: Sequence[int] | npt.NDArray[np.int64],
    n_labels: int,
) -> npt.NDArray[np.int64]:
    """Counts with rows = true label, columns = predicted label."""
    true = np.asarray(y_true, dtype=np.int64)
    pred = np.asarray(y_pred, dtype=np.int64)
    if true.shape != pred.shape:
        raise ValueError(f"y_true has shape {true.shape}, y_pred {pred.shape}")
    matrix = np.zeros((n_labels, n_labels), dtype=np.int64)
    np.add.at(matrix, (true, pred), 1)
    return matrix


def classification_report(
    y_true: Sequence[int] | npt.NDArray[np.int64],
    y_pred: Sequence[int] | npt.NDArray[np.int64],
    label_names: Sequence[str],
) -> dict[str, Any]:
    """Accuracy, macro-F1 and per-class precision/recall/F1/support, plus the confusion matrix.

    A class with no predictions has precision 0; with no support, recall 0. Macro-F1
    averages over the classes that occur in ``y_true`` or ``y_pred``.
    """
    matrix = confusion_matrix(y_true, y_pred, len(label_names))
    tp = np.diag(matrix).astype(np.float64)
    support = matrix.sum(axis=1).astype(np.float64)
    predicted = matrix.sum(axis=0).astype(np.float64)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    present = (support > 0) | (predicted > 0)
    total = matrix.sum()
    return {
        "accuracy": float(tp.sum() / total) if total else 0.0,
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "n": int(total),
        "per_class": {
            name: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, name in enumerate(label_names)
        },
        "labels": list(label_names),
        "confusion_matrix": matrix.tolist(),
    }
