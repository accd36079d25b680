"""The naive recipe: PyTorch, one text per forward pass, as the usual tutorial serves.

The registry checkpoint is ``model.safetensors`` + ``config.json`` of
:class:`models.network.MeanPoolClassifier` (the MiniLM encoder under ``encoder.*``, mean
pooling, a linear ``head``), not a ``transformers`` ``*ForSequenceClassification``:
``transformers.pipeline("text-classification", model=<version dir>)`` would load the
encoder under the wrong names and a random head. So the naive baseline is the same torch
module rebuilt with ``MeanPoolClassifier.from_checkpoint`` and the version's tokenizer
(``AutoTokenizer``), called on one text at a time under ``torch.inference_mode()``, eval
mode, fp32, with torch's default thread count or one thread, whichever is faster here.
For reference the literal tutorial recipe, ``transformers.pipeline("text-classification")``
on the base all-MiniLM-L6-v2 (same encoder, an untrained head), is timed too.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from models.registry import Registry

logger = logging.getLogger(__name__)


def _rate(score: Callable[[str], Any], texts: Sequence[str]) -> float:
    started = time.perf_counter()
    for text in texts:
        score(text)
    return len(texts) / (time.perf_counter() - started)


def _scorer(directory: Path, max_length: int) -> Callable[[str], Any]:
    import torch
    from transformers import AutoTokenizer

    from models.network import MeanPoolClassifier

    model = MeanPoolClassifier.from_checkpoint(directory).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(directory))

    def score(text: str) -> Any:
        with torch.inference_mode():
            enc = tokenizer(text, return_tensors="pt", truncation=True, max_length=max_length)
            logits = model(enc["input_ids"], enc["attention_mask"])
            return torch.softmax(logits, dim=-1)[0].argmax().item()

    return score


def measure_naive(
    registry_root: Path, workloads: Sequence[tuple[str, str, Sequence[str]]], probe: int = 24
) -> dict[str, Any]:
    """Texts per second of the naive recipe per (task, data set), and how it was run."""
    import torch
    from transformers.utils import logging as hf_logging

    from models.network import base_model_dir

    hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    registry = Registry(registry_root)
    scorers: dict[str, Callable[[str], Any]] = {}
    for task, _, _ in workloads:
        if task not in scorers:
            version = registry.production(task)
            if version is None:
                raise KeyError(f"no production {task} model in {registry_root}")
            manifest = registry.verify(task, version)
            directory = registry.version_dir(task, version)
            scorers[task] = _scorer(directory, int(manifest["max_length"]))
    default_threads = torch.get_num_threads()
    task0, _, texts0 = workloads[0]
    probes: dict[str, float] = {}
    for threads in sorted({default_threads, 1}, reverse=True):
        torch.set_num_threads(threads)
        _rate(scorers[task0], texts0[:4])
        probes[str(threads)] = _rate(scorers[task0], texts0[:probe])
    best = max(probes, key=lambda t: probes[t])
    torch.set_num_threads(int(best))
    rates: dict[str, float] = {}
    for task, dataset, texts in workloads:
        rates[f"{task}/{dataset}"] = _rate(scorers[task], texts)
        logger.info("naive %s/%s: %.1f/s", task, dataset, rates[f"{task}/{dataset}"])
    from transformers import pipeline

    base = str(base_model_dir())
    tutorial = pipeline("text-classification", model=base, tokenizer=base, device=-1)
    tutorial(texts0[0])
    rates["tutorial_pipeline_base_model"] = _rate(tutorial, texts0[: max(probe, len(texts0) // 2)])
    torch.set_num_threads(default_threads)
    return {
        "recipe": "torch MeanPoolClassifier.from_checkpoint + AutoTokenizer, one text per "
        "forward, inference_mode, fp32",
        "torch_threads_default": default_threads,
        "torch_threads_used": int(best),
        "probe_texts_per_s_by_threads": probes,
        "texts_per_model": len(workloads[0][2]),
        "rates": rates,
    }
