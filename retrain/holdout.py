"""The feedback held-out slice: chosen once per text, recorded, never trained on.

Every labelled text is assigned once, the first time a retrain run sees it, either to the
held-out slice (judged on by the gate, never trained on) or to training, and the choice
is written to ``<registry>/<task>/feedback-heldout.json``. Later runs read the file, so a
text never changes side, even when the fraction or the cap changes. A new text joins the
slice when a seeded hash of it falls under ``fraction`` and the slice holds fewer than
``cap`` texts; once the slice is full every new label is trained on.

Texts are keyed by a salted sha256 of their normalised form (lower case, whitespace
collapsed): the file holds no customer text, and two items with the same text always land
on the same side, so a text is never both trained on and judged on.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from models.data import LabeledData
from retrain.exceptions import RetrainError

logger = logging.getLogger(__name__)

HOLDOUT_FILE = "feedback-heldout.json"
HOLDOUT_FORMAT = 1
HOLDOUT_FRACTION = 0.2
HOLDOUT_CAP = 1000
HOLDOUT_SEED = 13


def text_key(text: str, seed: int = HOLDOUT_SEED) -> str:
    """A stable 16-hex-digit key of a text (normalised), salted with ``seed``."""
    normal = " ".join(text.split()).lower()
    return hashlib.sha256(f"{seed}:{normal}".encode()).hexdigest()[:16]


def _unit(key: str) -> float:
    """The key as a number in [0, 1): uniform over texts, fixed for a text."""
    return int(key[:8], 16) / 16**8


@dataclass
class FeedbackHoldout:
    """The recorded assignment of feedback texts to the held-out slice or to training."""

    path: Path
    fraction: float = HOLDOUT_FRACTION
    cap: int = HOLDOUT_CAP
    seed: int = HOLDOUT_SEED
    heldout: set[str] = field(default_factory=set)
    train: set[str] = field(default_factory=set)
    created_at: str = ""

    @classmethod
    def load(
        cls,
        path: Path,
        *,
        fraction: float = HOLDOUT_FRACTION,
        cap: int = HOLDOUT_CAP,
        seed: int = HOLDOUT_SEED,
    ) -> FeedbackHoldout:
        """The recorded slice at ``path`` (an empty one when the file does not exist).

        A recorded seed wins over ``seed`` (the keys depend on it); ``fraction`` and
        ``cap`` apply to texts not yet assigned.
        """
        if not 0.0 < fraction < 1.0:
            raise RetrainError(f"feedback held-out fraction must be in (0, 1), got {fraction}")
        if cap < 1:
            raise RetrainError(f"feedback held-out cap must be >= 1, got {cap}")
        if not path.is_file():
            return cls(path, fraction, cap, seed, created_at=datetime.now(UTC).isoformat())
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            if raw.get("format") != HOLDOUT_FORMAT:
                raise ValueError(f"format {raw.get('format')!r}, expected {HOLDOUT_FORMAT}")
            return cls(
                path,
                fraction,
                cap,
                int(raw["seed"]),
                heldout=set(map(str, raw["heldout"])),
                train=set(map(str, raw["train"])),
                created_at=str(raw.get("created_at", "")),
            )
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise RetrainError(
                f"{path}: unreadable feedback held-out record ({exc}); restore it from a "
                "backup, or delete it to choose a new slice (the gate then judges on new texts)"
            ) from exc

    def assign(self, texts: Sequence[str]) -> list[bool]:
        """Whether each text is held out; texts seen for the first time are assigned now."""
        result: list[bool] = []
        for text in texts:
            key = text_key(text, self.seed)
            if key not in self.heldout and key not in self.train:
                if len(self.heldout) < self.cap and _unit(key) < self.fraction:
                    self.heldout.add(key)
                else:
                    self.train.add(key)
            result.append(key in self.heldout)
        return result

    def split(self, data: LabeledData) -> tuple[LabeledData, LabeledData]:
        """(train, held-out) rows of ``data`` by the recorded slice, assigning new texts."""
        held = self.assign(data.texts)
        train = data.subset(i for i, h in enumerate(held) if not h)
        heldout = data.subset(i for i, h in enumerate(held) if h)
        return train, heldout

    def members(self, data: LabeledData) -> LabeledData:
        """The rows of ``data`` already in the slice; assigns nothing (for labels an earlier
        version may have trained on)."""
        return data.subset(
            i for i, text in enumerate(data.texts) if text_key(text, self.seed) in self.heldout
        )

    def summary(self) -> dict[str, Any]:
        return {
            "file": self.path.name,
            "heldout_texts": len(self.heldout),
            "train_texts": len(self.train),
            "fraction": self.fraction,
            "cap": self.cap,
            "seed": self.seed,
            "created_at": self.created_at,
        }

    def save(self) -> None:
        """Write the record atomically (a crash leaves the old file or the new one)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        body = {
            "format": HOLDOUT_FORMAT,
            "seed": self.seed,
            "fraction_when_assigned": self.fraction,
            "cap": self.cap,
            "created_at": self.created_at,
            "updated_at": datetime.now(UTC).isoformat(),
            "heldout": sorted(self.heldout),
            "train": sorted(self.train),
        }
        handle, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".feedback-heldout-")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                json.dump(body, out)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
