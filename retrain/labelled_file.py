"""Labelled items from a user's CSV or JSONL file (``id`` optional, ``text``, ``label``).

Without an ``id`` an item is named ``<prefix>-<row index>`` (0-based over the data rows),
the ids ``streamsense replay`` gives the same file's rows, so feedback joins to the
predictions made on the replayed items. Twitter Financial News labels (0 bearish,
1 bullish, 2 neutral) are mapped to the sentiment labels.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from models.data import SENTIMENT_LABELS, TWITTER_LABELS
from retrain.exceptions import RetrainError


@dataclass(frozen=True)
class LabelledItem:
    """One labelled text and the id of the item it labels."""

    item_id: str
    text: str
    label: str


def read_records(
    path: Path, columns: frozenset[str], what: str = "feedback file"
) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, record) of a CSV with ``columns`` (and optionally ``id``) or a JSONL
    file; every problem is one :class:`RetrainError` line naming the file."""
    suffix = path.suffix.lower()
    if suffix not in {".csv", ".jsonl", ".ndjson"}:
        raise RetrainError(f"{path}: expected a .csv or .jsonl file")
    if not path.is_file():
        raise RetrainError(f"{what} not found: {path}")
    with path.open(encoding="utf-8-sig", newline="") as handle:
        if suffix == ".csv":
            reader = csv.DictReader(handle)
            if reader.fieldnames is None or not columns <= set(reader.fieldnames):
                named = " and ".join(f"'{c}'" for c in sorted(columns, reverse=True))
                need = f"the columns {named}" if len(columns) > 1 else f"a {named} column"
                raise RetrainError(f"{path}: needs {need} (and optionally 'id')")
            for line, record in enumerate(reader, start=2):
                yield line, dict(record)
            return
        for line, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise RetrainError(f"{path}: line {line} is not JSON ({exc.msg})") from exc
            if not isinstance(record, dict):
                raise RetrainError(f"{path}: line {line} is not a JSON object")
            yield line, record


def read_labelled(
    path: Path,
    label_names: Sequence[str],
    *,
    id_prefix: str,
    skip: int = 0,
    limit: int | None = None,
) -> Iterator[LabelledItem]:
    """Items of ``path`` from data row ``skip`` on (at most ``limit``), labels checked."""
    known = set(label_names)
    twitter = tuple(label_names) == SENTIMENT_LABELS
    produced = 0
    for index, (line, record) in enumerate(read_records(path, frozenset({"text", "label"}))):
        if index < skip:
            continue
        if limit is not None and produced >= limit:
            return
        text, label = record.get("text"), record.get("label")
        if not isinstance(text, str) or not text.strip() or label is None:
            raise RetrainError(f"{path}: line {line} needs a non-empty 'text' and a 'label'")
        name = str(label).strip()
        if name not in known and twitter and name in TWITTER_LABELS:
            name = TWITTER_LABELS[name]
        if name not in known:
            raise RetrainError(
                f"{path}: line {line} has label {name!r}, not one of the task's labels"
            )
        item_id = record.get("id")
        yield LabelledItem(
            item_id=str(item_id) if item_id not in (None, "") else f"{id_prefix}-{index}",
            text=text.strip(),
            label=name,
        )
        produced += 1


def read_texts(path: Path) -> list[str]:
    """Unlabelled texts (a distillation's transfer texts): a ``.txt`` file, one a line, or
    the ``text`` field of a CSV or JSONL file, whose labels, if any, are ignored."""
    suffix = path.suffix.lower()
    if suffix not in {".txt", ".csv", ".jsonl", ".ndjson"}:
        raise RetrainError(f"{path}: expected a .txt, .csv or .jsonl file")
    if suffix != ".txt":
        texts = (r.get("text") for _, r in read_records(path, frozenset({"text"}), "text file"))
        return [t.strip() for t in texts if isinstance(t, str) and t.strip()]
    if not path.is_file():
        raise RetrainError(f"text file not found: {path}")
    lines = path.read_text(encoding="utf-8-sig").splitlines()
    return [line.strip() for line in lines if line.strip()]
