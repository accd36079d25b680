"""Choosing items for labelling: disputed first, then the smallest margin."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.data import SENTIMENT_LABELS
from retrain.active import (
    Item,
    label_requests,
    labelling_order,
    margins,
    read_items,
    write_requests,
)
from retrain.exceptions import RetrainError
from retrain.labelled_file import read_labelled

LABELS = list(SENTIMENT_LABELS)
CHAMPION = np.array(
    [
        [0.90, 0.05, 0.05],  # 0 sure
        [0.40, 0.35, 0.25],  # 1 near-tie (margin 0.05)
        [0.10, 0.50, 0.40],  # 2 margin 0.10
        [0.05, 0.70, 0.25],  # 3 margin 0.45
    ]
)


def test_least_confident_first_without_a_candidate() -> None:
    assert np.allclose(margins(CHAMPION), [0.85, 0.05, 0.10, 0.45])
    assert labelling_order(CHAMPION) == [1, 2, 3, 0]


def test_disagreements_with_the_candidate_come_first() -> None:
    candidate = CHAMPION.copy()
    candidate[0] = [0.1, 0.1, 0.8]  # the sure item is disputed
    candidate[3] = [0.1, 0.1, 0.8]
    assert labelling_order(CHAMPION, candidate) == [3, 0, 1, 2]
    items = [Item(f"tw-{i}", f"text {i}") for i in range(4)]
    requests = label_requests(items, LABELS, CHAMPION, candidate, count=3)
    assert [(r.id, r.reason) for r in requests] == [
        ("tw-3", "disagreement"),
        ("tw-0", "disagreement"),
        ("tw-1", "least confident"),
    ]
    assert (requests[0].predicted, requests[0].candidate_predicted) == ("neutral", "positive")


def test_items_get_replay_ids_and_repeated_texts_are_offered_once(tmp_path: Path) -> None:
    path = tmp_path / "stream.csv"
    path.write_text("text,id\nOil slumps,n-7\n$AAPL up,\n  oil  SLUMPS ,\nFed holds,\n")
    assert read_items(path, "tw") == [
        Item("n-7", "Oil slumps"),
        Item("tw-1", "$AAPL up"),
        Item("tw-3", "Fed holds"),
    ]
    with pytest.raises(RetrainError, match="needs a 'text' column"):
        (tmp_path / "bad.csv").write_text("body\nx\n")
        read_items(tmp_path / "bad.csv", "tw")


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_a_filled_in_export_is_read_back_as_feedback(tmp_path: Path, suffix: str) -> None:
    items = [Item(f"tw-{i}", f'text, "quoted" {i}') for i in range(4)]
    requests = label_requests(items, LABELS, CHAMPION, None, count=4)
    path = write_requests(tmp_path / f"to-label{suffix}", requests)
    filled = path.read_text(encoding="utf-8")
    if suffix == ".csv":
        filled = filled.replace(",,neutral", ",positive,neutral").replace(",,", ",negative,")
    else:
        filled = filled.replace('"label": ""', '"label": "positive"')
    path.write_text(filled, encoding="utf-8")
    back = list(read_labelled(path, LABELS, id_prefix="tw"))
    assert [(b.item_id, b.text) for b in back] == [(r.id, r.text) for r in requests]
    assert all(b.label in LABELS for b in back)
