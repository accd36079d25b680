"""Which items to ask annotators about: disputed ones first, then the least confident.

The rule (also in the README): every item is scored by the production model (the
champion) and, when one is named, by a candidate version. Items on which the two
disagree come first; then every other item. Within each group the item with the
smallest *margin* comes first, the margin being the champion's top probability minus
its second (a near-tie between two labels is where one more label teaches the most).
Identical texts (case and spacing aside) are offered once.
"""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from retrain.exceptions import RetrainError
from retrain.labelled_file import read_records

logger = logging.getLogger(__name__)

FIELDS = (
    "id",
    "text",
    "label",
    "predicted",
    "confidence",
    "margin",
    "candidate_predicted",
    "reason",
)


@dataclass(frozen=True)
class Item:
    """One unlabelled item from the stream."""

    item_id: str
    text: str


@dataclass(frozen=True)
class LabelRequest:
    """An item offered for labelling, with why it was chosen; ``label`` is for the annotator."""

    id: str
    text: str
    label: str
    predicted: str
    confidence: float
    margin: float
    candidate_predicted: str
    reason: str


def margins(probs: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Top probability minus the second one, per row (0: a tie, 1: certain)."""
    if probs.ndim != 2 or probs.shape[1] < 2:
        raise ValueError(f"expected an (items, labels>=2) array, got shape {probs.shape}")
    top2 = np.sort(probs, axis=1)[:, -2:]
    result: npt.NDArray[np.float64] = top2[:, 1] - top2[:, 0]
    return result


def labelling_order(
    champion: npt.NDArray[np.float64], candidate: npt.NDArray[np.float64] | None = None
) -> list[int]:
    """Row indices in the order they should be labelled (see the module's rule)."""
    margin = margins(champion)
    disputed = np.zeros(len(champion), dtype=bool)
    if candidate is not None:
        if candidate.shape != champion.shape:
            raise ValueError(f"candidate scores {candidate.shape} vs champion {champion.shape}")
        disputed = champion.argmax(axis=1) != candidate.argmax(axis=1)
    # lexsort: the last key is the primary one; stable, so ties keep the input order
    return [int(i) for i in np.lexsort((np.arange(len(margin)), margin, ~disputed))]


def read_items(path: Path, id_prefix: str) -> list[Item]:
    """Items of a CSV/JSONL file with ``text`` (``id`` optional, other columns ignored).

    Items without an id are named ``<prefix>-<row index>``, as ``streamsense replay``
    names them. Identical texts (case and spacing aside) are kept once, the first time.
    """
    items: list[Item] = []
    seen: set[str] = set()
    for index, (line, record) in enumerate(read_records(path, frozenset({"text"}), "items file")):
        text = record.get("text")
        if not isinstance(text, str) or not text.strip():
            raise RetrainError(f"{path}: line {line} needs a non-empty 'text'")
        key = " ".join(text.split()).lower()
        if key in seen:
            continue
        seen.add(key)
        item_id = record.get("id")
        name = str(item_id) if item_id not in (None, "") else f"{id_prefix}-{index}"
        items.append(Item(name, text.strip()))
    return items


def label_requests(
    items: Sequence[Item],
    label_names: Sequence[str],
    champion: npt.NDArray[np.float64],
    candidate: npt.NDArray[np.float64] | None,
    count: int,
) -> list[LabelRequest]:
    """The first ``count`` items in labelling order, with the numbers behind the choice."""
    order = labelling_order(champion, candidate)[:count]
    margin = margins(champion)
    requests = []
    for i in order:
        predicted = label_names[int(champion[i].argmax())]
        other = "" if candidate is None else label_names[int(candidate[i].argmax())]
        disputed = candidate is not None and other != predicted
        requests.append(
            LabelRequest(
                id=items[i].item_id,
                text=items[i].text,
                label="",
                predicted=predicted,
                confidence=round(float(champion[i].max()), 6),
                margin=round(float(margin[i]), 6),
                candidate_predicted=other,
                reason="disagreement" if disputed else "least confident",
            )
        )
    return requests


def write_requests(path: Path, requests: Sequence[LabelRequest]) -> Path:
    """Write a CSV or JSONL file (by suffix) an annotator fills in and `feedback` reads."""
    suffix = path.suffix.lower()
    if suffix not in {".csv", ".jsonl", ".ndjson"}:
        raise RetrainError(f"{path}: expected a .csv or .jsonl output file")
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        if suffix == ".csv":
            writer = csv.DictWriter(handle, fieldnames=list(FIELDS))
            writer.writeheader()
            writer.writerows(asdict(r) for r in requests)
        else:
            for r in requests:
                handle.write(json.dumps(asdict(r), ensure_ascii=False) + "\n")
    logger.info("wrote %s item(s) for labelling to %s", len(requests), path)
    return path
