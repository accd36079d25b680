"""The data set of one retrain run: new feedback, a held-out feedback slice, and replay.

The new labels (with text) are de-duplicated (the newest label of an item wins, then of a
text). With a recorded :class:`~retrain.holdout.FeedbackHoldout` (what the retrain job
uses), the texts of the recorded slice are judged on by the gate and every other new
label is trained on; without one, a seeded stratified split sets a "recent feedback"
fraction aside. The training rows are joined by a seeded, label-proportional replay
sample of the task's original *training* rows (never its fixed held-out split) against
forgetting.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from models.data import LabeledData, stratified_sample, stratified_split
from retrain.holdout import FeedbackHoldout, text_key
from retrain.store import TrainingRow

logger = logging.getLogger(__name__)

RECENT_FRACTION = 0.25
REPLAY_RATIO = 1.0
DATASET_SEED = 13


@dataclass(frozen=True)
class RetrainDataset:
    """The rows one retrain run trains on and the recent-feedback slice it is judged on."""

    train: LabeledData
    recent: LabeledData
    feedback_train_rows: int
    replay_rows: int
    dropped: dict[str, int] = field(default_factory=dict)
    holdout: dict[str, Any] | None = None

    def summary(self) -> dict[str, Any]:
        summary = {
            "train_rows": len(self.train),
            "feedback_train_rows": self.feedback_train_rows,
            "replay_rows": self.replay_rows,
            "recent_rows": len(self.recent),
            "dropped": dict(self.dropped),
        }
        if self.holdout is not None:
            summary["feedback_heldout"] = dict(self.holdout)
        return summary


def feedback_data(
    rows: Sequence[TrainingRow], label_names: Sequence[str], source: str = "feedback"
) -> tuple[LabeledData, dict[str, int]]:
    """Usable labelled texts from stored feedback, oldest first, and what was dropped why.

    The newest label of an item wins over its earlier ones (a correction), and of two
    items with the same text the newer one is kept, so a text is never both trained on
    and judged on. Labels outside the task's list and blank texts are dropped.
    """
    known = set(label_names)
    dropped = {"unknown_label": 0, "blank_text": 0, "duplicate": 0}
    latest: dict[str, TrainingRow] = {}
    for row in rows:
        if row.label not in known:
            dropped["unknown_label"] += 1
        elif not row.text.strip():
            dropped["blank_text"] += 1
        else:
            if row.item_id in latest:
                dropped["duplicate"] += 1
            latest[row.item_id] = row  # rows come oldest first: the last one is the newest
    by_text: dict[str, TrainingRow] = {}
    for row in sorted(latest.values(), key=lambda r: r.id):
        key = " ".join(row.text.split()).lower()
        if key in by_text:
            dropped["duplicate"] += 1
        by_text[key] = row
    kept = sorted(by_text.values(), key=lambda r: r.id)
    data = LabeledData(
        texts=[r.text.strip() for r in kept],
        labels=[r.label for r in kept],
        label_names=list(label_names),
        source=source,
    )
    return data, dropped


def replay_size(feedback_train_rows: int, ratio: float, available: int) -> int:
    """How many original rows to replay beside ``feedback_train_rows`` new ones."""
    if ratio < 0:
        raise ValueError(f"replay ratio must be >= 0, got {ratio}")
    return min(available, round(feedback_train_rows * ratio))


def concat(parts: Sequence[LabeledData], source: str) -> LabeledData:
    """Rows of every part, in order, under one label list."""
    names = parts[0].label_names
    return LabeledData(
        texts=[t for p in parts for t in p.texts],
        labels=[label for p in parts for label in p.labels],
        label_names=list(names),
        source=source,
    )


def build_dataset(
    feedback: LabeledData,
    original_train: LabeledData,
    *,
    recent_fraction: float = RECENT_FRACTION,
    replay_ratio: float = REPLAY_RATIO,
    seed: int = DATASET_SEED,
    dropped: dict[str, int] | None = None,
    holdout: FeedbackHoldout | None = None,
    earlier: LabeledData | None = None,
) -> RetrainDataset:
    """Split ``feedback`` into training rows and a judged slice; add a replay sample.

    With ``holdout`` the split follows the recorded slice (new texts are assigned to it
    now; the caller saves it): every new text outside it is trained on, and the judged
    slice is every slice text among ``feedback`` and the ``earlier`` labels (those an
    earlier version already learnt from). Without it, ``recent_fraction`` of the new
    feedback is set aside with a seeded stratified split.
    """
    if feedback.label_names != original_train.label_names:
        raise ValueError("feedback and original data have different label lists")
    if len(feedback) < 2:
        raise ValueError(f"need at least 2 feedback rows to split, got {len(feedback)}")
    if holdout is None:
        fb_train, recent = stratified_split(feedback, fraction=recent_fraction, seed=seed)
    else:
        fb_train, recent = holdout.split(feedback)
        if earlier is not None and len(earlier):
            recent = _newest_per_text([holdout.members(earlier), recent], holdout.seed)
    n_replay = replay_size(len(fb_train), replay_ratio, len(original_train))
    parts = [fb_train]
    if n_replay > 0:
        parts.append(stratified_sample(original_train, n_replay, seed=seed))
    train = concat(parts, source=f"{feedback.source} + replay of {original_train.source}")
    logger.info(
        "retrain data: %s feedback rows for training, %s replayed, %s recent for the gate",
        len(fb_train),
        len(train) - len(fb_train),
        len(recent),
    )
    return RetrainDataset(
        train=train,
        recent=LabeledData(recent.texts, recent.labels, recent.label_names, "recent feedback"),
        feedback_train_rows=len(fb_train),
        replay_rows=len(train) - len(fb_train),
        dropped=dict(dropped or {}),
        holdout=None if holdout is None else holdout.summary(),
    )


def _newest_per_text(parts: Sequence[LabeledData], seed: int) -> LabeledData:
    """The rows of ``parts`` (oldest part first), one per text: the newest label wins."""
    merged = concat(parts, source="feedback held-out slice")
    newest: dict[str, int] = {}
    for i, text in enumerate(merged.texts):
        newest[text_key(text, seed)] = i
    return merged.subset(sorted(newest.values()))


def write_jsonl(data: LabeledData, path: Path) -> Path:
    """Write ``text``/``label`` lines that ``models.data.load_user_file`` reads back."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for text, label in zip(data.texts, data.labels, strict=True):
            handle.write(json.dumps({"text": text, "label": label}, ensure_ascii=False) + "\n")
    return path
