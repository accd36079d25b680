"""Data loaders and the seeded, stratified held-out split."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from models.data import (
    LabeledData,
    load_phrasebank,
    load_twitter,
    load_user_file,
    stratified_sample,
    stratified_split,
)
from models.exceptions import DataError


def test_phrasebank_handles_bom_crlf_and_at_signs(tmp_path: Path) -> None:
    path = tmp_path / "pb.txt"
    raw = (
        "\ufeffProfit rose 5 % .@positive\r\n"
        "Contact us at info@example.com for details .@neutral\r\n"
        "\r\n"
        "Sales fell @ the Helsinki unit.@negative\r\n"
    )
    path.write_bytes(raw.encode("utf-8"))
    data = load_phrasebank(path)
    assert data.texts == [
        "Profit rose 5 % .",
        "Contact us at info@example.com for details .",
        "Sales fell @ the Helsinki unit.",
    ]
    assert data.labels == ["positive", "neutral", "negative"]
    assert not data.texts[0].startswith("\ufeff")
    assert data.label_names == ["negative", "neutral", "positive"]


def test_phrasebank_rejects_unknown_label_naming_the_record(tmp_path: Path) -> None:
    path = tmp_path / "pb.txt"
    path.write_text("Fine sentence.@neutral\nOther sentence.@bullish\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"record 2 has label 'bullish'"):
        load_phrasebank(path)


def test_phrasebank_line_without_label_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "pb.txt"
    path.write_text("no label on this line\n", encoding="utf-8")
    with pytest.raises(DataError, match="line 1"):
        load_phrasebank(path)


def test_twitter_labels_map_to_sentiment_names(tmp_path: Path) -> None:
    path = tmp_path / "tw.csv"
    path.write_text('text,label\n"$AAPL down, ugly",0\n$TSLA soars,1\nFed meets,2\n', "utf-8")
    data = load_twitter(path)
    assert data.labels == ["negative", "positive", "neutral"]
    assert data.texts[0] == "$AAPL down, ugly"


def test_user_jsonl_and_csv(tmp_path: Path) -> None:
    jsonl = tmp_path / "mine.jsonl"
    jsonl.write_text(
        '{"text": "good", "label": "positive"}\n\n{"text": "bad", "label": "negative"}\n'
    )
    assert load_user_file(jsonl, ["negative", "neutral", "positive"]).labels == [
        "positive",
        "negative",
    ]
    csv_file = tmp_path / "mine.csv"
    csv_file.write_text("text,label\nhello,greeting\n")
    with pytest.raises(DataError, match="greeting"):
        load_user_file(csv_file, ["negative", "neutral", "positive"])
    with pytest.raises(DataError, match=r"expected a \.csv or \.jsonl"):
        load_user_file(tmp_path / "mine.parquet", ["a"])


def _toy(n_per_label: dict[str, int]) -> LabeledData:
    texts, labels = [], []
    for label, n in n_per_label.items():
        for i in range(n):
            texts.append(f"{label} example {i}")
            labels.append(label)
    return LabeledData(texts, labels, list(n_per_label), source="toy")


def test_split_is_stratified_disjoint_and_complete() -> None:
    data = _toy({"a": 50, "b": 30, "c": 20})
    train, heldout = stratified_split(data, fraction=0.2, seed=13)
    assert Counter(heldout.labels) == {"a": 10, "b": 6, "c": 4}
    assert Counter(train.labels) == {"a": 40, "b": 24, "c": 16}
    assert not set(train.texts) & set(heldout.texts)
    assert sorted(train.texts + heldout.texts) == sorted(data.texts)


def test_split_is_deterministic_and_seed_dependent() -> None:
    data = _toy({"a": 50, "b": 30, "c": 20})
    first = stratified_split(data, seed=13)[1].texts
    assert stratified_split(data, seed=13)[1].texts == first
    assert stratified_split(data, seed=14)[1].texts != first


def test_split_keeps_rare_labels_on_both_sides() -> None:
    train, heldout = stratified_split(_toy({"a": 40, "rare": 2}), fraction=0.2, seed=13)
    assert "rare" in train.labels
    assert "rare" in heldout.labels


def test_stratified_sample_size_and_proportions() -> None:
    sample = stratified_sample(_toy({"a": 80, "b": 20}), 50, seed=1)
    assert Counter(sample.labels) == {"a": 40, "b": 10}
    assert stratified_sample(_toy({"a": 3}), 10, seed=1).texts == _toy({"a": 3}).texts
