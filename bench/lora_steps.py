"""CPU seconds of training steps: full fine-tuning against LoRA at several depths.

    python -m bench.lora_steps [--data-dir ../shared/data] [--steps 12] [--repeats 2]

Trains the pretrained MiniLM classifier for ``steps`` batches of 16 Twitter texts (max
length 64, one torch thread) per configuration and prints this process's CPU seconds and
the ratio to full fine-tuning. CPU time, not wall time, so another busy process on the
machine does not inflate it. What `--lora-layers` buys (README, *Full vs LoRA*).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from models.data import SENTIMENT_LABELS, TWITTER_FILE, load_twitter
from models.lora import LoraSpec, attach_lora
from models.network import MeanPoolClassifier, base_model_dir
from models.tokenizer import TextEncoder

CONFIGS: dict[str, LoraSpec | None] = {
    "full": None,
    "lora, every layer": LoraSpec(),
    "lora, every layer, no adapter dropout": LoraSpec(dropout=0.0),
    "lora, top 3 layers": LoraSpec(layers=3),
    "lora, top 2 layers": LoraSpec(layers=2),
}
BATCH = 16


def step_seconds(texts: Sequence[str], spec: LoraSpec | None, steps: int) -> float:
    """CPU seconds of ``steps`` training steps of a fresh model under ``spec``."""
    torch.manual_seed(0)
    model = MeanPoolClassifier.from_pretrained_encoder(base_model_dir(), list(SENTIMENT_LABELS))
    if spec is not None:
        attach_lora(model, spec)
    encoder = TextEncoder(base_model_dir() / "tokenizer.json", 64)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-4)
    model.train()
    started = time.process_time()
    for i in range(steps):
        ids, mask = encoder.encode(texts[i * BATCH : (i + 1) * BATCH])
        logits = model(torch.from_numpy(ids), torch.from_numpy(mask))
        loss = torch.nn.functional.cross_entropy(logits, torch.zeros(len(ids), dtype=torch.long))
        optimizer.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()
    return time.process_time() - started


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.lora_steps", description=__doc__)
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/data"))
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    texts = load_twitter(args.data_dir / TWITTER_FILE).texts[: BATCH * args.steps]
    for repeat in range(1, args.repeats + 1):
        full = None
        for name, spec in CONFIGS.items():
            seconds = step_seconds(texts, spec, args.steps)
            full = full or seconds
            print(f"repeat {repeat}: {name:<40} {seconds:6.2f} CPU-s  {seconds / full:.2f} x full")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
