"""The feedback held-out slice: chosen once, recorded, the rest of the feedback trained on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from models.data import SENTIMENT_LABELS, LabeledData
from retrain.dataset import build_dataset
from retrain.exceptions import RetrainError
from retrain.holdout import HOLDOUT_FILE, FeedbackHoldout

LABELS = list(SENTIMENT_LABELS)


def _data(texts: list[str]) -> LabeledData:
    return LabeledData(texts, [LABELS[i % 3] for i in range(len(texts))], LABELS, "feedback")


def _tweets(start: int, n: int) -> list[str]:
    return [f"tweet number {i} about $ACME" for i in range(start, start + n)]


def test_the_slice_is_chosen_once_and_later_runs_keep_it(tmp_path: Path) -> None:
    path = tmp_path / HOLDOUT_FILE
    first = FeedbackHoldout.load(path, fraction=0.2)
    held = first.assign(_tweets(0, 1000))
    first.save()
    assert 150 <= sum(held) <= 250

    # a later run, with another fraction, in another order: the same texts, the same side
    later = FeedbackHoldout.load(path, fraction=0.9)
    again = later.assign(list(reversed(_tweets(0, 1000))))
    assert list(reversed(again)) == held
    assert sum(later.assign(_tweets(1000, 200))) > 150  # new texts follow the new fraction


def test_the_same_text_lands_on_the_same_side_whatever_its_spacing_or_case(
    tmp_path: Path,
) -> None:
    slice_ = FeedbackHoldout.load(tmp_path / HOLDOUT_FILE, fraction=0.5)
    texts = _tweets(0, 50)
    sides = slice_.assign(texts)
    variants = [f"  {t.upper()}  " for t in texts]
    assert slice_.assign(variants) == sides


def test_once_the_slice_is_full_every_new_label_is_trained_on(tmp_path: Path) -> None:
    slice_ = FeedbackHoldout.load(tmp_path / HOLDOUT_FILE, fraction=0.5, cap=30)
    slice_.assign(_tweets(0, 200))
    assert len(slice_.heldout) == 30
    assert not any(slice_.assign(_tweets(200, 300)))


def test_the_record_holds_no_text(tmp_path: Path) -> None:
    path = tmp_path / HOLDOUT_FILE
    slice_ = FeedbackHoldout.load(path)
    slice_.assign(_tweets(0, 100))
    slice_.save()
    body = path.read_text(encoding="utf-8")
    assert "tweet" not in body and "ACME" not in body
    assert len(json.loads(body)["heldout"]) + len(json.loads(body)["train"]) == 100


def test_a_damaged_record_is_one_line_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / HOLDOUT_FILE
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(RetrainError, match=f"{path}: unreadable feedback held-out record") as err:
        FeedbackHoldout.load(path)
    assert "\n" not in str(err.value)


def test_every_new_label_outside_the_slice_is_trained_on(tmp_path: Path) -> None:
    slice_ = FeedbackHoldout.load(tmp_path / HOLDOUT_FILE, fraction=0.2)
    earlier = _data(_tweets(0, 300))
    slice_.assign(earlier.texts)  # a first run assigned these
    earlier_held = set(slice_.members(earlier).texts)
    new = _data(_tweets(300, 400))
    original = LabeledData(
        [f"phrasebank {i}" for i in range(900)], [LABELS[i % 3] for i in range(900)], LABELS, "pb"
    )

    built = build_dataset(new, original, replay_ratio=1.0, holdout=slice_, earlier=earlier)

    judged = set(built.recent.texts)
    trained = set(built.train.texts)
    assert not judged & trained
    assert earlier_held <= judged  # the slice an earlier run chose is judged on again
    new_held = judged - earlier_held
    assert built.feedback_train_rows + len(new_held) == len(new)  # nothing else set aside
    assert set(new.texts) - new_held <= trained
    assert built.summary()["feedback_heldout"]["heldout_texts"] == len(judged)


def test_earlier_labels_are_never_moved_into_the_slice(tmp_path: Path) -> None:
    slice_ = FeedbackHoldout.load(tmp_path / HOLDOUT_FILE, fraction=0.5)
    before = _data(_tweets(0, 100))  # trained on before the slice existed
    assert len(slice_.members(before)) == 0
    assert not slice_.heldout and not slice_.train
