"""Seeded fine-tuning of the mean-pooling classifier, with TensorBoard and PNG curves."""

from __future__ import annotations

import contextlib
import logging
import math
import random
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from torch import nn

from models.data import SPLIT_SEED, LabeledData, stratified_sample
from models.metrics import classification_report
from models.network import MeanPoolClassifier
from models.tokenizer import TextEncoder

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one fine-tuning run."""

    epochs: int = 4
    max_length: int = 64
    batch_size: int = 32
    lr: float = 5e-5
    head_lr: float = 2e-3
    weight_decay: float = 0.01
    warmup_ratio: float = 0.06
    dropout: float = 0.1
    seed: int = 13
    limit: int | None = None
    eval_limit: int | None = None
    eval_batch_size: int = 128
    # CPU threads for torch and the ONNX checks; 0 = library default (all cores). One
    # thread is far more robust on a machine shared with other busy processes.
    threads: int = 0
    # "full" trains every weight; "lora" trains low-rank adapters (models/lora.py) and the
    # head, then merges the adapters before the export. ``lr`` is the adapters' rate then.
    method: str = "full"
    lora_rank: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    lora_targets: tuple[str, ...] = ("query", "key", "value", "dense")
    lora_layers: int | None = None  # top encoder layers with adapters; None = all

    def replaced(self, **overrides: Any) -> TrainConfig:
        """This config with the given fields replaced (None = keep)."""
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})

    def limited(self, train: LabeledData, heldout: LabeledData) -> tuple[LabeledData, LabeledData]:
        """``train`` and ``heldout`` cut to ``limit`` / ``eval_limit`` rows (quick runs)."""
        if self.limit is not None:
            train = stratified_sample(train, self.limit, seed=self.seed)
        if self.eval_limit is not None:  # a fixed sample of the held-out, whatever the seed
            heldout = stratified_sample(heldout, self.eval_limit, seed=SPLIT_SEED)
        return train, heldout

    def as_dict(self) -> dict[str, Any]:
        values = asdict(self)
        if self.method != "lora":  # the adapter fields mean nothing to a full fine-tune
            values = {k: v for k, v in values.items() if not k.startswith("lora_")}
        return values


@dataclass(frozen=True)
class DistillSpec:
    """How a student learns from a teacher's logits (Hinton et al. 2015).

    The loss is ``alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * CE(gold)``, the
    softmaxes taken at temperature ``T``; rows without a gold label (unlabelled transfer
    texts) contribute the first term only.
    """

    alpha: float = 0.5
    temperature: float = 2.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"distillation alpha must lie in [0, 1], got {self.alpha}")
        if self.temperature <= 0.0:
            raise ValueError(f"distillation temperature must be positive, got {self.temperature}")


@dataclass(frozen=True)
class SoftTargets:
    """A teacher's logits for every training text, plus unlabelled texts it also scored."""

    logits: npt.NDArray[np.float32]  # rows: the training texts, then ``transfer_texts``
    spec: DistillSpec
    transfer_texts: tuple[str, ...] = ()


UNLABELLED = -100  # cross_entropy's ignore_index: a transfer text has no gold label


def distillation_loss(
    logits: torch.Tensor, teacher_logits: torch.Tensor, target: torch.Tensor, spec: DistillSpec
) -> torch.Tensor:
    """The student's loss on one batch (see :class:`DistillSpec`)."""
    t = spec.temperature
    soft = nn.functional.kl_div(
        nn.functional.log_softmax(logits / t, dim=-1),
        nn.functional.log_softmax(teacher_logits / t, dim=-1),
        reduction="batchmean",
        log_target=True,
    ) * (t * t)
    labelled = int((target != UNLABELLED).sum().item())
    if labelled == 0 or spec.alpha == 1.0:
        return spec.alpha * soft
    hard = nn.functional.cross_entropy(logits, target, ignore_index=UNLABELLED, reduction="sum")
    return spec.alpha * soft + (1.0 - spec.alpha) * hard / labelled


@dataclass
class EpochRecord:
    """What one epoch measured."""

    epoch: int
    step: int
    train_loss: float
    heldout_loss: float
    heldout_accuracy: float
    heldout_macro_f1: float
    # the epoch's training steps alone (no evaluation): wall time, and CPU time of this
    # process, which a machine shared with other busy processes does not inflate
    seconds: float = 0.0
    cpu_seconds: float = 0.0


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch so two runs with the same seed train the same way."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def length_bucketed_batches(
    lengths: Sequence[int], batch_size: int, rng: random.Random
) -> list[list[int]]:
    """Shuffled batches of indices whose texts have similar lengths (less padding)."""
    order = list(range(len(lengths)))
    rng.shuffle(order)
    chunk = batch_size * 50
    batches: list[list[int]] = []
    for start in range(0, len(order), chunk):
        block = sorted(order[start : start + chunk], key=lambda i: lengths[i])
        batches.extend(block[i : i + batch_size] for i in range(0, len(block), batch_size))
    rng.shuffle(batches)
    return batches


def predict_logits(
    model: MeanPoolClassifier, encoder: TextEncoder, texts: Sequence[str], batch_size: int = 128
) -> npt.NDArray[np.float32]:
    """Logits of the torch model in eval mode, in the order of ``texts``."""
    model.eval()
    lengths = [len(t) for t in texts]
    order = sorted(range(len(texts)), key=lambda i: lengths[i])
    out = np.zeros((len(texts), len(model.labels)), dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            ids, mask = encoder.encode([texts[i] for i in idx])
            logits = model(torch.from_numpy(ids), torch.from_numpy(mask))
            out[idx] = logits.float().numpy()
    return out


def evaluate(
    model: MeanPoolClassifier, encoder: TextEncoder, data: LabeledData, batch_size: int
) -> tuple[float, dict[str, Any], npt.NDArray[np.float32]]:
    """Held-out cross-entropy, the classification report and the logits."""
    logits = predict_logits(model, encoder, data.texts, batch_size)
    target = np.asarray(data.label_ids(), dtype=np.int64)
    loss = float(
        nn.functional.cross_entropy(torch.from_numpy(logits), torch.from_numpy(target)).item()
    )
    report = classification_report(target, logits.argmax(axis=1), data.label_names)
    return loss, report, logits


def _optimizer(
    model: MeanPoolClassifier, config: TrainConfig, total_steps: int
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    for name, param in model.encoder.named_parameters():
        if not param.requires_grad:  # frozen under LoRA
            continue
        (no_decay if name.endswith("bias") or "LayerNorm" in name else decay).append(param)
    groups = [
        {"params": decay, "lr": config.lr, "weight_decay": config.weight_decay},
        {"params": no_decay, "lr": config.lr, "weight_decay": 0.0},
        {"params": list(model.head.parameters()), "lr": config.head_lr, "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(groups)
    warmup = max(1, int(total_steps * config.warmup_ratio))

    def schedule(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)


def fine_tune(
    model: MeanPoolClassifier,
    encoder: TextEncoder,
    train: LabeledData,
    heldout: LabeledData,
    config: TrainConfig,
    *,
    log_dir: Path | None = None,
    show_progress: bool = True,
    soft: SoftTargets | None = None,
) -> tuple[list[EpochRecord], npt.NDArray[np.float32]]:
    """Train ``model`` in place; evaluate on ``heldout`` after every epoch.

    Returns the per-epoch records and the held-out logits of the final model. With
    ``soft`` the model learns from a teacher's logits too (:func:`distillation_loss`),
    and from the unlabelled transfer texts the teacher scored.

    Curves go to TensorBoard under ``log_dir`` when given. The held-out split is only
    observed, never used to pick an epoch: the last epoch's weights are the result.
    """
    with torch_threads(config.threads):
        return _fine_tune(model, encoder, train, heldout, config, log_dir, show_progress, soft)


@contextlib.contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Run torch with ``threads`` intra-op threads (0: leave as is), then restore."""
    previous = torch.get_num_threads()
    if threads > 0:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _fine_tune(
    model: MeanPoolClassifier,
    encoder: TextEncoder,
    train: LabeledData,
    heldout: LabeledData,
    config: TrainConfig,
    log_dir: Path | None,
    show_progress: bool,
    soft: SoftTargets | None,
) -> tuple[list[EpochRecord], npt.NDArray[np.float32]]:
    seed_everything(config.seed)
    rng = random.Random(config.seed)
    texts = list(train.texts)
    targets = train.label_ids()
    teacher: tuple[torch.Tensor, DistillSpec] | None = None  # the logits per text, the loss
    if soft is not None:
        texts += soft.transfer_texts
        targets += [UNLABELLED] * len(soft.transfer_texts)
        if soft.logits.shape != (len(texts), len(model.labels)):
            raise ValueError(
                f"teacher logits have shape {soft.logits.shape}, expected "
                f"({len(texts)}, {len(model.labels)})"
            )
        logits = torch.from_numpy(np.ascontiguousarray(soft.logits, dtype=np.float32))
        teacher = (logits, soft.spec)
    lengths = encoder.lengths(texts)
    steps_per_epoch = math.ceil(len(texts) / config.batch_size)
    total = steps_per_epoch * config.epochs
    optimizer, scheduler = _optimizer(model, config, total)
    writer = _summary_writer(log_dir)
    history: list[EpochRecord] = []
    final_logits = np.zeros((0, len(model.labels)), dtype=np.float32)
    step = 0
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]:.4f}"),
        TimeRemainingColumn(),
    )
    try:
        with Progress(*columns, disable=not show_progress, transient=False) as progress:
            bar = progress.add_task("fine-tuning", total=total, loss=float("nan"))
            for epoch in range(1, config.epochs + 1):
                model.train()
                running = 0.0
                wall_start, cpu_start = time.monotonic(), time.process_time()
                batches = length_bucketed_batches(lengths, config.batch_size, rng)
                for batch in batches:
                    ids, mask = encoder.encode([texts[i] for i in batch])
                    target = torch.tensor([targets[i] for i in batch], dtype=torch.long)
                    logits = model(torch.from_numpy(ids), torch.from_numpy(mask))
                    if teacher is None:
                        loss = nn.functional.cross_entropy(logits, target)
                    else:
                        loss = distillation_loss(logits, teacher[0][batch], target, teacher[1])
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()  # type: ignore[no-untyped-call]
                    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                    optimizer.step()
                    scheduler.step()
                    step += 1
                    running += float(loss.item())
                    if writer is not None:
                        writer.add_scalar("train/loss", float(loss.item()), step)
                        writer.add_scalar("train/lr", scheduler.get_last_lr()[0], step)
                    progress.update(bar, advance=1, loss=float(loss.item()))
                seconds = time.monotonic() - wall_start
                cpu_seconds = time.process_time() - cpu_start
                heldout_loss, report, final_logits = evaluate(
                    model, encoder, heldout, config.eval_batch_size
                )
                record = EpochRecord(
                    epoch=epoch,
                    step=step,
                    train_loss=running / max(1, len(batches)),
                    heldout_loss=heldout_loss,
                    heldout_accuracy=report["accuracy"],
                    heldout_macro_f1=report["macro_f1"],
                    seconds=round(seconds, 2),
                    cpu_seconds=round(cpu_seconds, 2),
                )
                history.append(record)
                if writer is not None:
                    writer.add_scalar("epoch/train_loss", record.train_loss, step)
                    writer.add_scalar("heldout/loss", heldout_loss, step)
                    writer.add_scalar("heldout/accuracy", record.heldout_accuracy, step)
                    writer.add_scalar("heldout/macro_f1", record.heldout_macro_f1, step)
                logger.info(
                    "epoch %s/%s: train loss %.4f, held-out loss %.4f, accuracy %.4f, macro-F1 %.4f",  # noqa: E501
                    epoch,
                    config.epochs,
                    record.train_loss,
                    heldout_loss,
                    record.heldout_accuracy,
                    record.heldout_macro_f1,
                )
    finally:
        if writer is not None:
            writer.close()
    model.eval()
    return history, final_logits


def _summary_writer(log_dir: Path | None) -> Any:
    if log_dir is None:
        return None
    from torch.utils.tensorboard import SummaryWriter

    log_dir.mkdir(parents=True, exist_ok=True)
    return SummaryWriter(log_dir=str(log_dir))


def plot_curves(history: Sequence[EpochRecord], path: Path, title: str) -> None:
    """Loss and held-out accuracy / macro-F1 per epoch, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [r.epoch for r in history]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot(epochs, [r.train_loss for r in history], marker="o", label="train loss")
    left.plot(epochs, [r.heldout_loss for r in history], marker="o", label="held-out loss")
    left.set_xlabel("epoch")
    left.set_ylabel("cross-entropy")
    left.legend()
    right.plot(epochs, [r.heldout_accuracy for r in history], marker="o", label="accuracy")
    right.plot(epochs, [r.heldout_macro_f1 for r in history], marker="o", label="macro-F1")
    right.set_xlabel("epoch")
    right.set_ylim(0.0, 1.0)
    right.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(fig)
