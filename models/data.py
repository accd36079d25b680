"""Labeled data sets: loaders for the shipped corpora and user files, seeded splits.

Every loader returns a :class:`LabeledData` whose ``labels`` are names from the task's
label list. Paths always come from the caller (the ``data_dir`` setting); nothing here
knows where the data lives.
"""

from __future__ import annotations

import csv
import json
import random
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from models.exceptions import DataError

SENTIMENT_LABELS: tuple[str, ...] = ("negative", "neutral", "positive")
TASKS: tuple[str, ...] = ("sentiment", "intent")
HELDOUT_FRACTION = 0.2
SPLIT_SEED = 13

PHRASEBANK_FILE = Path("financial_phrasebank") / "Sentences_50Agree.txt"
BANKING77_FILE = Path("banking77") / "train.csv"
BANKING77_CATEGORIES = Path("banking77") / "categories.json"
TWITTER_FILE = Path("twitter_financial_news") / "sent_train.csv"
TWITTER_LABELS = {"0": "negative", "1": "positive", "2": "neutral"}


@dataclass(frozen=True)
class LabeledData:
    """Texts with one label each, plus the label vocabulary and where they came from."""

    texts: list[str]
    labels: list[str]
    label_names: list[str]
    source: str
    extra: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.texts)

    def label_ids(self) -> list[int]:
        index = {name: i for i, name in enumerate(self.label_names)}
        return [index[label] for label in self.labels]

    def label_counts(self) -> dict[str, int]:
        counts = Counter(self.labels)
        return {name: counts.get(name, 0) for name in self.label_names}

    def subset(self, indices: Iterable[int]) -> LabeledData:
        idx = list(indices)
        return LabeledData(
            texts=[self.texts[i] for i in idx],
            labels=[self.labels[i] for i in idx],
            label_names=self.label_names,
            source=self.source,
            extra=dict(self.extra),
        )

    def summary(self) -> dict[str, Any]:
        return {"source": self.source, "rows": len(self), "label_counts": self.label_counts()}


def _require(path: Path) -> Path:
    if not path.is_file():
        raise DataError(f"data file not found: {path} (set STREAMSENSE_DATA_DIR or pass --data)")
    return path


def _checked(
    texts: list[str], labels: list[str], names: Sequence[str], source: Path
) -> LabeledData:
    known = set(names)
    for row, label in enumerate(labels, start=1):
        if label not in known:
            raise DataError(
                f"{source}: record {row} has label {label!r}, not one of the task's labels"
            )
    return LabeledData(texts=texts, labels=labels, label_names=list(names), source=str(source))


def load_phrasebank(path: Path) -> LabeledData:
    """Financial PhraseBank ``sentence@label`` lines (BOM, CRLF and '@' in text allowed)."""
    text = _require(path).read_text(encoding="utf-8-sig")
    texts: list[str] = []
    labels: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        sentence, sep, label = line.rpartition("@")
        if not sep or not sentence.strip():
            raise DataError(f"{path}: line {number} is not 'sentence@label'")
        texts.append(sentence.strip())
        labels.append(label.strip().lower())
    return _checked(texts, labels, SENTIMENT_LABELS, path)


def banking77_labels(data_dir: Path) -> list[str]:
    """The 77 intent names in the order of ``categories.json``."""
    path = _require(data_dir / BANKING77_CATEGORIES)
    names = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise DataError(f"{path}: expected a JSON list of category names")
    return list(names)


def _read_csv(path: Path, text_col: str, label_col: str) -> tuple[list[str], list[str]]:
    texts: list[str] = []
    labels: list[str] = []
    with _require(path).open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or not {text_col, label_col} <= set(reader.fieldnames):
            raise DataError(f"{path}: needs the columns {text_col!r} and {label_col!r}")
        for row, record in enumerate(reader, start=2):
            text, label = record.get(text_col), record.get(label_col)
            if not text or not text.strip() or label is None:
                raise DataError(f"{path}: line {row} has an empty {text_col!r} or {label_col!r}")
            texts.append(text.strip())
            labels.append(label.strip())
    return texts, labels


def load_banking77(data_dir: Path) -> LabeledData:
    """BANKING77 ``train.csv`` (text,category) with labels in ``categories.json`` order."""
    names = banking77_labels(data_dir)
    path = data_dir / BANKING77_FILE
    texts, labels = _read_csv(path, "text", "category")
    return _checked(texts, labels, names, path)


def load_twitter(path: Path) -> LabeledData:
    """Twitter Financial News sentiment: 0 bearish → negative, 1 bullish → positive, 2 neutral."""
    texts, raw = _read_csv(path, "text", "label")
    labels = []
    for row, value in enumerate(raw, start=2):
        if value not in TWITTER_LABELS:
            raise DataError(f"{path}: line {row} has label {value!r}, expected 0, 1 or 2")
        labels.append(TWITTER_LABELS[value])
    return _checked(texts, labels, SENTIMENT_LABELS, path)


def load_user_file(path: Path, label_names: Sequence[str]) -> LabeledData:
    """A user's CSV or JSONL file with ``text`` and ``label`` fields."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        texts, labels = _read_csv(path, "text", "label")
        return _checked(texts, labels, label_names, path)
    if suffix not in {".jsonl", ".ndjson"}:
        raise DataError(f"{path}: expected a .csv or .jsonl file")
    texts, labels = [], []
    with _require(path).open(encoding="utf-8-sig") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}: line {number} is not JSON ({exc.msg})") from exc
            text = record.get("text") if isinstance(record, dict) else None
            label = record.get("label") if isinstance(record, dict) else None
            if not isinstance(text, str) or not text.strip() or not isinstance(label, str):
                raise DataError(f"{path}: line {number} needs a non-empty 'text' and a 'label'")
            texts.append(text.strip())
            labels.append(label.strip())
    return _checked(texts, labels, label_names, path)


def task_labels(task: str, data_dir: Path) -> list[str]:
    """The label list of a task."""
    if task == "sentiment":
        return list(SENTIMENT_LABELS)
    if task == "intent":
        return banking77_labels(data_dir)
    raise DataError(f"unknown task {task!r}; expected one of {', '.join(TASKS)}")


def load_task_data(task: str, data_dir: Path, data_file: Path | None = None) -> LabeledData:
    """The initial training corpus of a task, or the user's file when one is given."""
    if data_file is not None:
        return load_user_file(data_file, task_labels(task, data_dir))
    if task == "sentiment":
        return load_phrasebank(data_dir / PHRASEBANK_FILE)
    if task == "intent":
        return load_banking77(data_dir)
    raise DataError(f"unknown task {task!r}; expected one of {', '.join(TASKS)}")


def split_record() -> dict[str, Any]:
    """How :func:`task_split` splits, as manifests record it."""
    return {"heldout_fraction": HELDOUT_FRACTION, "seed": SPLIT_SEED, "stratified": True}


def stratified_split(
    data: LabeledData, fraction: float = HELDOUT_FRACTION, seed: int = SPLIT_SEED
) -> tuple[LabeledData, LabeledData]:
    """Split into (train, heldout): per label, a seeded shuffle puts round(n*fraction) aside.

    Deterministic for the same rows, fraction and seed; every label with two or more
    rows lands in both parts.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    rng = random.Random(seed)
    by_label: dict[str, list[int]] = {}
    for i, label in enumerate(data.labels):
        by_label.setdefault(label, []).append(i)
    train_idx: list[int] = []
    heldout_idx: list[int] = []
    for label in data.label_names:
        members = by_label.get(label, [])
        rng.shuffle(members)
        n_held = round(len(members) * fraction)
        if len(members) >= 2:
            n_held = min(max(n_held, 1), len(members) - 1)
        heldout_idx.extend(members[:n_held])
        train_idx.extend(members[n_held:])
    return data.subset(sorted(train_idx)), data.subset(sorted(heldout_idx))


def stratified_sample(data: LabeledData, size: int, seed: int) -> LabeledData:
    """A seeded, label-proportional sample of ``size`` rows (all rows if fewer)."""
    if size >= len(data):
        return data
    _, sample = stratified_split(data, fraction=size / len(data), seed=seed)
    return sample


def task_split(
    task: str, data_dir: Path, data_file: Path | None = None
) -> tuple[LabeledData, LabeledData]:
    """The fixed (train, heldout) split of a task: 20% stratified held out, seed 13.

    The retrain gate evaluates candidates on the held-out part, so this never changes
    for the same data.
    """
    return stratified_split(load_task_data(task, data_dir, data_file))
