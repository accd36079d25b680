"""Reading labelled feedback files: ids that match the replayed items, Twitter labels."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.data import SENTIMENT_LABELS
from retrain.exceptions import RetrainError
from retrain.labelled_file import LabelledItem, read_labelled


def test_twitter_csv_rows_get_replay_ids_and_sentiment_labels(tmp_path: Path) -> None:
    path = tmp_path / "sent.csv"
    path.write_text('text,label\n"$AAPL up, nicely",1\nMarkets flat,2\nOil slumps,0\n')
    items = list(read_labelled(path, SENTIMENT_LABELS, id_prefix="tw", skip=1, limit=5))
    assert items == [
        LabelledItem("tw-1", "Markets flat", "neutral"),
        LabelledItem("tw-2", "Oil slumps", "negative"),
    ]


def test_jsonl_with_ids_and_label_names(tmp_path: Path) -> None:
    path = tmp_path / "fb.jsonl"
    path.write_text('{"id": "m-9", "text": "card lost", "label": "lost_or_stolen_card"}\n\n')
    items = list(read_labelled(path, ["lost_or_stolen_card"], id_prefix="b77", limit=1))
    assert items == [LabelledItem("m-9", "card lost", "lost_or_stolen_card")]


def test_unknown_label_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "fb.csv"
    path.write_text("text,label\nfine,neutral\nhm,bullish\n")
    with pytest.raises(RetrainError, match="line 3 has label 'bullish'"):
        list(read_labelled(path, SENTIMENT_LABELS, id_prefix="tw"))


def test_missing_columns_are_reported(tmp_path: Path) -> None:
    path = tmp_path / "fb.csv"
    path.write_text("sentence,label\nfine,neutral\n")
    with pytest.raises(RetrainError, match="'text' and 'label'"):
        list(read_labelled(path, SENTIMENT_LABELS, id_prefix="tw"))
