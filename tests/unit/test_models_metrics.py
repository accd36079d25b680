"""Accuracy, macro-F1 and the confusion matrix on hand-computed examples."""

from __future__ import annotations

import pytest

from models.metrics import classification_report, confusion_matrix


def test_confusion_matrix_rows_are_truth_columns_predictions() -> None:
    matrix = confusion_matrix([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 0, 2], 3)
    assert matrix.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]


def test_report_matches_hand_computation() -> None:
    # true:  a a b c c c   pred: a b b c a c
    report = classification_report([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 0, 2], ["a", "b", "c"])
    assert report["accuracy"] == pytest.approx(4 / 6)
    # a: P=1/2 R=1/2 F1=1/2; b: P=1/2 R=1 F1=2/3; c: P=1 R=2/3 F1=4/5
    assert report["per_class"]["a"]["f1"] == pytest.approx(0.5)
    assert report["per_class"]["b"]["precision"] == pytest.approx(0.5)
    assert report["per_class"]["b"]["recall"] == pytest.approx(1.0)
    assert report["per_class"]["c"]["f1"] == pytest.approx(0.8)
    assert report["macro_f1"] == pytest.approx((0.5 + 2 / 3 + 0.8) / 3)
    assert report["per_class"]["c"]["support"] == 3


def test_class_never_predicted_counts_zero_f1() -> None:
    report = classification_report([0, 1, 1], [0, 0, 0], ["x", "y"])
    assert report["per_class"]["y"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 2}
    # x: P=1/3 R=1 F1=0.5; y: 0 → macro 0.25
    assert report["macro_f1"] == pytest.approx(0.25)


def test_absent_class_does_not_dilute_macro_f1() -> None:
    report = classification_report([0, 1], [0, 1], ["x", "y", "unused"])
    assert report["macro_f1"] == pytest.approx(1.0)
    assert report["accuracy"] == 1.0


def test_shape_mismatch_is_an_error() -> None:
    with pytest.raises(ValueError, match="shape"):
        confusion_matrix([0, 1], [0], 2)
