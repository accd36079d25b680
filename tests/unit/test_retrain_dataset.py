"""Building a retrain data set: de-duplication, the recent slice, and the replay ratio."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from models.data import SENTIMENT_LABELS, LabeledData, load_user_file
from retrain.dataset import build_dataset, feedback_data, replay_size, write_jsonl
from retrain.store import TrainingRow

LABELS = list(SENTIMENT_LABELS)


def _rows(n: int, start: int = 1) -> list[TrainingRow]:
    return [
        TrainingRow(i, f"tw-{i}", LABELS[i % 3], f"tweet number {i}", "ann", "2026-11-28")
        for i in range(start, start + n)
    ]


def _original(n: int) -> LabeledData:
    return LabeledData(
        texts=[f"phrasebank sentence {i}" for i in range(n)],
        labels=[LABELS[i % 3] for i in range(n)],
        label_names=LABELS,
        source="phrasebank",
    )


def test_newest_label_of_an_item_wins_and_bad_rows_are_dropped() -> None:
    rows = [
        TrainingRow(1, "tw-1", "negative", "Stock falls", "a", "t1"),
        TrainingRow(2, "tw-1", "neutral", "Stock falls", "b", "t2"),  # correction
        TrainingRow(3, "tw-2", "bullish", "Great quarter", "a", "t3"),  # not a task label
        TrainingRow(4, "tw-3", "positive", "  ", "a", "t4"),
        TrainingRow(5, "tw-4", "positive", "Great  QUARTER", "a", "t5"),
        TrainingRow(6, "tw-5", "negative", "great quarter", "a", "t6"),  # same text, newer
    ]
    data, dropped = feedback_data(rows, LABELS)
    assert list(zip(data.texts, data.labels, strict=True)) == [
        ("Stock falls", "neutral"),
        ("great quarter", "negative"),
    ]
    assert dropped == {"unknown_label": 1, "blank_text": 1, "duplicate": 2}


def test_recent_slice_is_held_out_and_disjoint_from_training() -> None:
    feedback, _ = feedback_data(_rows(400), LABELS)
    built = build_dataset(feedback, _original(2000), recent_fraction=0.25, replay_ratio=1.0)
    assert len(built.recent) == 100
    assert built.feedback_train_rows == 300
    assert not set(built.recent.texts) & set(built.train.texts)
    assert set(built.recent.texts) | set(built.train.texts) >= set(feedback.texts)
    assert built.recent.label_counts() == {"negative": 33, "neutral": 34, "positive": 33}


@pytest.mark.parametrize(("ratio", "expected"), [(0.0, 0), (0.5, 150), (1.0, 300), (2.0, 600)])
def test_replay_ratio_sets_the_number_of_original_rows(ratio: float, expected: int) -> None:
    feedback, _ = feedback_data(_rows(400), LABELS)
    built = build_dataset(feedback, _original(2000), replay_ratio=ratio)
    assert built.replay_rows == expected
    replayed = [t for t in built.train.texts if t.startswith("phrasebank")]
    assert len(replayed) == expected
    assert len(built.train) == 300 + expected


def test_replay_is_capped_by_the_original_data() -> None:
    assert replay_size(300, 10.0, available=1000) == 1000
    with pytest.raises(ValueError, match="replay ratio"):
        replay_size(300, -1.0, available=1000)


def test_same_seed_same_data_set() -> None:
    feedback, _ = feedback_data(_rows(200), LABELS)
    a = build_dataset(feedback, _original(500), seed=5)
    b = build_dataset(feedback, _original(500), seed=5)
    c = build_dataset(feedback, _original(500), seed=6)
    assert a.train.texts == b.train.texts and a.recent.texts == b.recent.texts
    assert a.recent.texts != c.recent.texts


def test_written_file_reads_back_as_a_training_file(tmp_path: Path) -> None:
    feedback, _ = feedback_data(_rows(30), LABELS)
    built = build_dataset(feedback, _original(100))
    path = write_jsonl(built.train, tmp_path / "d" / "train.jsonl")
    loaded = load_user_file(path, LABELS)
    assert loaded.texts == built.train.texts and loaded.labels == built.train.labels
    assert json.loads(path.read_text().splitlines()[0]).keys() == {"text", "label"}
