"""Batch scoring of a CSV or JSONL file into JSON lines, one output line per input record."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from models.exceptions import DataError
from models.runtime import Classifier


@dataclass(frozen=True)
class ScoreSummary:
    """Counts of a scoring run."""

    records: int
    scored: int
    errors: int


def read_records(path: Path) -> Iterator[dict[str, Any]]:
    """Records of a ``.csv`` (header row) or ``.jsonl`` file.

    A JSONL line that is not a JSON object yields ``{"__error__": reason}`` so the
    caller can report it in place and go on.
    """
    suffix = path.suffix.lower()
    if not path.is_file():
        raise DataError(f"input file not found: {path}")
    if suffix == ".csv":
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle)
            if reader.fieldnames is None or "text" not in reader.fieldnames:
                raise DataError(f"{path}: the CSV header needs a 'text' column")
            for row in reader:
                yield dict(row)
        return
    if suffix not in {".jsonl", ".ndjson"}:
        raise DataError(f"{path}: expected a .csv or .jsonl input file")
    with path.open(encoding="utf-8-sig") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                yield {"__error__": f"line {number} is not valid JSON: {exc.msg}"}
                continue
            if not isinstance(record, dict):
                yield {"__error__": f"line {number} is not a JSON object"}
                continue
            yield record


def _problem(record: dict[str, Any]) -> str | None:
    if "__error__" in record:
        return str(record["__error__"])
    if "text" not in record or record["text"] is None:
        return "missing 'text'"
    text = record["text"]
    if not isinstance(text, str):
        return f"'text' is a {type(text).__name__}, not a string"
    if not text.strip():
        return "empty 'text'"
    return None


def score_file(
    classifier: Classifier,
    source: Path,
    target: Path,
    *,
    batch_size: int = 64,
    on_batch: Callable[[int], None] | None = None,
) -> ScoreSummary:
    """Score every record of ``source`` into ``target`` (JSON lines, input order).

    Each output line has ``id`` (when the input has one), ``label``, ``probs`` and
    ``model_version``; a record that cannot be scored gets ``error`` instead of a label.
    ``on_batch`` is called with the number of records written after each batch.
    """
    counts = {"records": 0, "scored": 0, "errors": 0}
    pending: list[dict[str, Any]] = []
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("w", encoding="utf-8") as out:
        for record in read_records(source):
            pending.append(record)
            if len(pending) >= batch_size:
                _flush(classifier, pending, out, counts, on_batch)
        _flush(classifier, pending, out, counts, on_batch)
    return ScoreSummary(**counts)


def _flush(
    classifier: Classifier,
    pending: list[dict[str, Any]],
    out: TextIO,
    counts: dict[str, int],
    on_batch: Callable[[int], None] | None,
) -> None:
    if not pending:
        return
    problems = [_problem(r) for r in pending]
    texts = [str(r["text"]) for r, p in zip(pending, problems, strict=True) if p is None]
    predictions = iter(classifier.predict(texts)) if texts else iter(())
    for record, problem in zip(pending, problems, strict=True):
        line: dict[str, Any] = {}
        if record.get("id") not in (None, ""):
            line["id"] = record["id"]
        if problem is None:
            prediction = next(predictions)
            line["label"] = prediction.label
            line["probs"] = prediction.probs
            counts["scored"] += 1
        else:
            line["error"] = problem
            counts["errors"] += 1
        line["model_version"] = classifier.version
        out.write(json.dumps(line, ensure_ascii=False) + "\n")
    counts["records"] += len(pending)
    if on_batch is not None:
        on_batch(len(pending))
    pending.clear()
