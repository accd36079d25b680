"""LoRA adapters (peft) on the classifier's encoder, and their merge before the export.

With ``method="lora"`` the encoder's weights are frozen and low-rank adapters are trained
beside the chosen linear layers, together with the whole head. Before the model is saved
or exported the adapters are merged into the weights (W + alpha/rank * B A), so a LoRA
version is an ordinary checkpoint: the same ONNX graph, the same serving path, and the
next retrain can start from it with either method.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from torch import nn

from models.exceptions import ModelsError
from models.network import MeanPoolClassifier

logger = logging.getLogger(__name__)

METHODS = ("full", "lora")
# Every linear layer of a BERT block: attention query/key/value, the attention output and
# both feed-forward projections ("dense" matches the last three).
DEFAULT_TARGETS: tuple[str, ...] = ("query", "key", "value", "dense")


@dataclass(frozen=True)
class LoraSpec:
    """Where the adapters go and how large they are."""

    rank: int = 8
    alpha: int = 16
    dropout: float = 0.05
    target_modules: tuple[str, ...] = DEFAULT_TARGETS
    # adapters in the top ``layers`` encoder layers only (None: every layer); below the
    # lowest adapted layer nothing needs a gradient, so the backward pass stops there
    layers: int | None = None


def check_method(method: str) -> str:
    """``method`` when it is one of :data:`METHODS`; a clear error otherwise."""
    if method not in METHODS:
        raise ModelsError(
            f"unknown training method {method!r}; expected one of {', '.join(METHODS)}"
        )
    return method


def parameter_counts(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts of ``model``."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total


def attach_lora(model: MeanPoolClassifier, spec: LoraSpec) -> dict[str, Any]:
    """Wrap ``model.encoder`` with fresh LoRA adapters; freeze the rest of the encoder.

    The head stays trainable. Returns what the registry manifest records: method, rank,
    alpha, dropout, target modules and the trainable / total parameter counts.
    """
    from peft import LoraConfig, get_peft_model

    if spec.rank < 1 or spec.alpha < 1:
        raise ModelsError(f"LoRA rank and alpha must be >= 1, got {spec.rank} and {spec.alpha}")
    depth = int(model.encoder_config.num_hidden_layers)
    if spec.layers is not None and not 1 <= spec.layers <= depth:
        raise ModelsError(f"LoRA layers must lie in 1..{depth} (the encoder's depth)")
    adapted = list(range(depth - (spec.layers or depth), depth))
    config = LoraConfig(
        r=spec.rank,
        lora_alpha=spec.alpha,
        lora_dropout=spec.dropout,
        target_modules=list(spec.target_modules),
        bias="none",
        layers_to_transform=adapted if spec.layers is not None else None,
        layers_pattern="layer" if spec.layers is not None else None,
    )
    try:
        model.encoder = get_peft_model(model.encoder, config)
    except ValueError as exc:  # peft: a target module that the encoder does not have
        raise ModelsError(f"cannot attach LoRA adapters: {exc}") from exc
    for param in model.head.parameters():
        param.requires_grad = True
    trainable, total = parameter_counts(model)
    logger.info(
        "LoRA rank %s alpha %s on %s: %s of %s parameters trainable (%.2f%%)",
        spec.rank,
        spec.alpha,
        ",".join(spec.target_modules),
        trainable,
        total,
        100.0 * trainable / total,
    )
    return {
        "method": "lora",
        "rank": spec.rank,
        "alpha": spec.alpha,
        "dropout": spec.dropout,
        "target_modules": list(spec.target_modules),
        "layers": adapted,
        "trainable_parameters": trainable,
        "total_parameters": total,
    }


def merge_lora(model: MeanPoolClassifier) -> None:
    """Fold the adapters into the encoder's weights and drop the peft wrapper, in place."""
    from peft import PeftModel

    if not isinstance(model.encoder, PeftModel):
        raise ModelsError("the model carries no LoRA adapters to merge")
    model.encoder = model.encoder.merge_and_unload()
    for param in model.parameters():
        param.requires_grad = True
