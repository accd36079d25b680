"""Train → evaluate → export → agreement check → register (→ promote), and ``ensure_models``."""

from __future__ import annotations

import logging
import platform
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from models.data import (
    TASKS,
    LabeledData,
    load_task_data,
    split_record,
    task_split,
)
from models.exceptions import AgreementError, RegistryError
from models.export import (
    LOGIT_TOLERANCE,
    MIN_INT8_AGREEMENT,
    check_agreement,
    export_onnx,
    onnx_logits,
    quantize_int8,
)
from models.lora import LoraSpec, attach_lora, check_method, merge_lora, parameter_counts
from models.metrics import classification_report
from models.network import MeanPoolClassifier, base_model_dir, write_checkpoint
from models.registry import Registry
from models.runtime import FP32_FILE, INT8_FILE
from models.teacher import Teacher, teacher_report
from models.tokenizer import TextEncoder
from models.training import (
    DistillSpec,
    SoftTargets,
    TrainConfig,
    fine_tune,
    plot_curves,
    predict_logits,
    seed_everything,
    torch_threads,
)

logger = logging.getLogger(__name__)

BASE_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
# Full-training defaults, measured on 2 CPU cores (see the README for the numbers).
DEFAULT_CONFIGS: dict[str, TrainConfig] = {
    "sentiment": TrainConfig(epochs=4, max_length=96, batch_size=32, lr=6e-5, head_lr=2e-3),
    "intent": TrainConfig(epochs=4, max_length=48, batch_size=32, lr=1e-4, head_lr=3e-3),
}


@dataclass(frozen=True)
class TrainOutcome:
    """What a training run registered and measured."""

    task: str
    version: str
    promoted: bool
    metrics: dict[str, Any]
    agreement: dict[str, Any]
    wall_seconds: float
    distillation: dict[str, Any] | None = None


# Small and quick (about 90 s for both, one thread, on a busy 2-core machine), yet trained
# well past chance: sentiment ~0.73 accuracy, intent ~0.77 on their held-out samples. Used
# by the test fixtures and `bench --quick`. One thread: two torch threads slow down
# several-fold when another process holds a core.
QUICK_CONFIGS = {
    "sentiment": TrainConfig(
        epochs=2,
        max_length=64,
        batch_size=16,
        lr=1e-4,
        head_lr=5e-3,
        limit=400,
        eval_limit=200,
        threads=1,
    ),
    "intent": TrainConfig(
        epochs=2,
        max_length=32,
        batch_size=16,
        lr=2e-4,
        head_lr=1e-2,
        limit=616,
        eval_limit=231,
        threads=1,
    ),
}
QUICK_MIN_INT8_AGREEMENT = 0.9
"""Briefly trained models have many near-ties that int8 rounding flips (measured 0.97-0.98
on ~200 held-out texts); the production bar of 0.97 is meant for fully trained models."""


def default_config(task: str, **overrides: Any) -> TrainConfig:
    """The task's full-training config with the given fields replaced (None = keep)."""
    return DEFAULT_CONFIGS.get(task, TrainConfig()).replaced(**overrides)


def library_versions() -> dict[str, str]:
    import numpy
    import onnx
    import onnxruntime
    import tokenizers
    import torch
    import transformers

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "tokenizers": tokenizers.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
        "numpy": numpy.__version__,
    }


def train_and_register(
    task: str,
    registry_root: Path,
    data_dir: Path,
    config: TrainConfig | None = None,
    *,
    data_file: Path | None = None,
    init_from: str | None = None,
    promote: bool | None = None,
    show_progress: bool = True,
    logit_tolerance: float = LOGIT_TOLERANCE,
    min_int8_agreement: float = MIN_INT8_AGREEMENT,
    teacher: Teacher | None = None,
    distill: DistillSpec | None = None,
    transfer_texts: Sequence[str] = (),
    heldout_data: LabeledData | None = None,
) -> TrainOutcome:
    """Fine-tune a task's classifier and register it as a new version.

    With ``teacher`` the model is distilled: it learns from the teacher's logits on the
    training texts and on ``transfer_texts`` (unlabelled) as well as from the gold labels
    (``distill``, default :class:`DistillSpec`); the manifest records the teacher and its
    figures on the same held-out split.

    ``heldout_data`` (the retrain job's fixed held-out split) replaces the 20 % split of
    the data: then every row of the data is trained on, and the per-epoch figures and the
    export checks use the given rows.

    ``init_from`` names a registry version to start from (its checkpoint and labels) —
    the version becomes the parent — instead of the pretrained encoder. ``promote``:
    True promotes, False never, None promotes only when the task has no production
    version yet. Raises :class:`AgreementError` (and registers nothing) when the exported
    models disagree with the torch model.
    """
    started = time.monotonic()
    config = config or default_config(task)
    registry = Registry(registry_root)
    if heldout_data is None:
        train_all, heldout = task_split(task, data_dir, data_file)
        split = split_record()
    else:  # every row is trained on; the caller's held-out is judged
        train_all, heldout = load_task_data(task, data_dir, data_file), heldout_data
        split = {"heldout": "given", "heldout_source": heldout_data.source}
    train, heldout = config.limited(train_all, heldout)
    seed_everything(config.seed)  # before the head is initialised
    logger.info(
        "training %s on %s rows (held out %s) from %s", task, len(train), len(heldout), train.source
    )
    if init_from is not None:
        parent_dir = registry.version_dir(task, init_from)
        registry.verify(task, init_from)
        model = MeanPoolClassifier.from_checkpoint(parent_dir, dropout=config.dropout)
        if model.labels != train.label_names:
            raise RegistryError(f"{task}/{init_from} has labels that differ from the data's")
        tokenizer_source = parent_dir
    else:
        tokenizer_source = base_model_dir()
        model = MeanPoolClassifier.from_pretrained_encoder(
            tokenizer_source, train.label_names, dropout=config.dropout
        )
    encoder = TextEncoder(tokenizer_source / "tokenizer.json", config.max_length)
    adaptation = _adapt(model, config)
    soft, distillation = _soft_targets(teacher, distill, train, heldout, transfer_texts)
    run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    log_dir = registry.task_dir(task) / "runs" / run_id
    history, torch_logits = fine_tune(
        model,
        encoder,
        train,
        heldout,
        config,
        log_dir=log_dir,
        show_progress=show_progress,
        soft=soft,
    )
    if adaptation["method"] == "lora":
        torch_logits, merge_diff = _merge(model, encoder, heldout, config, torch_logits)
        adaptation["merge_max_abs_logit_diff"] = merge_diff
        if merge_diff > logit_tolerance:
            raise AgreementError(
                f"merging the LoRA adapters changed the held-out logits by {merge_diff:.2e} "
                f"(tolerance {logit_tolerance:.0e}); nothing registered"
            )
    report = classification_report(
        heldout.label_ids(), torch_logits.argmax(axis=1), heldout.label_names
    )
    with registry.staging(task) as staging:
        write_checkpoint(
            staging, model, encoder, tokenizer_source, report, {"max_length": config.max_length}
        )
        plot_curves(history, staging / "curves.png", f"{task} ({len(train)} training rows)")
        with torch_threads(config.threads):
            export_onnx(model, encoder, staging / FP32_FILE)
        quantize_int8(staging / FP32_FILE, staging / INT8_FILE)
        int8_logits = onnx_logits(staging / INT8_FILE, encoder, heldout.texts, config.threads)
        agreement = check_agreement(
            torch_logits,
            onnx_logits(staging / FP32_FILE, encoder, heldout.texts, config.threads),
            int8_logits,
            logit_tolerance=logit_tolerance,
            min_int8_agreement=min_int8_agreement,
        )
        int8_report = classification_report(
            heldout.label_ids(), int8_logits.argmax(axis=1), heldout.label_names
        )
        metrics = _metric_summary(report, int8_report)
        version = registry.commit(
            task,
            staging,
            {
                "parent": init_from,
                "base_model": BASE_MODEL,
                "labels": train.label_names,
                "max_length": config.max_length,
                "architecture": "MiniLM-L6 encoder, masked mean pooling, linear head",
                "training": {
                    "method": adaptation["method"],
                    "adaptation": adaptation,
                    "distillation": distillation,
                    "config": config.as_dict(),
                    "train_data": _data_summary(train, train_all),
                    "heldout_data": heldout.summary(),
                    "split": split,
                    "history": [asdict(r) for r in history],
                    "tensorboard_run": str(Path("runs") / run_id),
                    "wall_seconds": round(time.monotonic() - started, 1),
                },
                "metrics": metrics,
                "agreement": agreement.as_dict(),
                "serving": {"cpu": INT8_FILE, "cuda": FP32_FILE},
                "libraries": library_versions(),
            },
        )
    should_promote = promote if promote is not None else registry.production(task) is None
    if should_promote:
        registry.promote(
            task, version, reason="first trained version" if promote is None else "train --promote"
        )
    return TrainOutcome(
        task=task,
        version=version,
        promoted=should_promote,
        metrics=metrics,
        agreement=agreement.as_dict(),
        wall_seconds=round(time.monotonic() - started, 1),
        distillation=distillation,
    )


def _soft_targets(
    teacher: Teacher | None,
    distill: DistillSpec | None,
    train: LabeledData,
    heldout: LabeledData,
    transfer_texts: Sequence[str],
) -> tuple[SoftTargets | None, dict[str, Any] | None]:
    """The teacher's logits for the student, and what the manifest records of them."""
    if teacher is None:
        if transfer_texts:
            raise ValueError("unlabelled transfer texts need a teacher to label them")
        return None, None
    spec = distill or DistillSpec()
    known = set(train.texts) | set(heldout.texts)
    transfer = tuple(dict.fromkeys(t for t in transfer_texts if t not in known))
    teacher_heldout = teacher_report(teacher, heldout)
    # scored (and cached) apart, so a second student with other transfer texts re-scores
    # only those
    logits = np.concatenate([teacher.logits(train.texts), teacher.logits(transfer)])
    gold = np.asarray(train.label_ids())
    agreement = float((logits[: len(train)].argmax(axis=1) == gold).mean()) if len(gold) else 0.0
    logger.info(
        "distilling from %s: held-out accuracy %.4f, macro-F1 %.4f; %s labelled + %s transfer rows",
        teacher.directory,
        teacher_heldout["accuracy"],
        teacher_heldout["macro_f1"],
        len(train),
        len(transfer),
    )
    record = {
        "teacher": teacher.summary(),
        "teacher_heldout": teacher_heldout,
        "alpha": spec.alpha,
        "temperature": spec.temperature,
        "labelled_rows": len(train),
        "transfer_rows": len(transfer),
        "teacher_train_agreement": round(agreement, 4),
    }
    return SoftTargets(logits=logits, spec=spec, transfer_texts=transfer), record


def _adapt(model: MeanPoolClassifier, config: TrainConfig) -> dict[str, Any]:
    """Attach LoRA adapters when the config asks for them; what the manifest records."""
    if check_method(config.method) == "lora":
        spec = LoraSpec(
            rank=config.lora_rank,
            alpha=config.lora_alpha,
            dropout=config.lora_dropout,
            target_modules=tuple(config.lora_targets),
            layers=config.lora_layers,
        )
        return attach_lora(model, spec)
    trainable, total = parameter_counts(model)
    return {"method": "full", "trainable_parameters": trainable, "total_parameters": total}


def _merge(
    model: MeanPoolClassifier,
    encoder: TextEncoder,
    heldout: LabeledData,
    config: TrainConfig,
    adapter_logits: npt.NDArray[np.float32],
) -> tuple[npt.NDArray[np.float32], float]:
    """Merge the adapters; the merged model's held-out logits and how far they moved."""
    merge_lora(model)
    with torch_threads(config.threads):
        merged = predict_logits(model, encoder, heldout.texts, config.eval_batch_size)
    diff = float(np.abs(merged - adapter_logits).max()) if len(merged) else 0.0
    logger.info("LoRA adapters merged: held-out logits moved by at most %.2e", diff)
    return merged, diff


def _data_summary(train: LabeledData, full: LabeledData) -> dict[str, Any]:
    summary = train.summary()
    summary["rows_available"] = len(full)
    return summary


def _metric_summary(report: dict[str, Any], int8_report: dict[str, Any]) -> dict[str, Any]:
    return {
        "heldout": report,
        "heldout_int8": {
            "accuracy": int8_report["accuracy"],
            "macro_f1": int8_report["macro_f1"],
        },
    }


def ensure_models(
    registry_root: Path,
    data_dir: Path,
    tasks: Iterable[str] = TASKS,
    *,
    configs: dict[str, TrainConfig] | None = None,
    show_progress: bool = True,
    min_int8_agreement: float = MIN_INT8_AGREEMENT,
) -> dict[str, str]:
    """Train and promote every task that has no production version; return task → version.

    Tasks that already have one are left alone (and their production version verified).
    """
    registry = Registry(registry_root)
    result: dict[str, str] = {}
    for task in tasks:
        current = registry.production(task)
        if current is not None:
            registry.verify(task, current)
            result[task] = current
            continue
        logger.info("task %s has no production model: training one", task)
        config = (configs or {}).get(task) or default_config(task)
        outcome = train_and_register(
            task,
            registry_root,
            data_dir,
            config,
            promote=True,
            show_progress=show_progress,
            min_int8_agreement=min_int8_agreement,
        )
        result[task] = outcome.version
    return result
