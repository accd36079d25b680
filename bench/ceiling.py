"""The ceiling: the serving models scored by ONNX Runtime directly, no Kafka, no worker."""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from models.registry import Registry

logger = logging.getLogger(__name__)


def scoring_rate(classifier: Any, texts: Sequence[str], batch_size: int) -> float:
    """Sequences per second of ``classifier.predict`` over ``texts`` in batches."""
    started = time.perf_counter()
    for start in range(0, len(texts), batch_size):
        classifier.predict(texts[start : start + batch_size])
    return len(texts) / (time.perf_counter() - started)


def pool_rate(pool: Any, models: Sequence[Any], texts: Sequence[str], batch_size: int) -> float:
    """Texts per second through every one of ``models`` (each text scored by all of them)
    as the worker schedules a batch: :meth:`models.pool.InferencePool.predict`."""
    started = time.perf_counter()
    for start in range(0, len(texts), batch_size):
        pool.predict(models, texts[start : start + batch_size])
    return len(texts) / (time.perf_counter() - started)


def measure_ceiling(
    registry_root: Path,
    workloads: Sequence[tuple[str, str, Sequence[str]]],
    batch_sizes: Sequence[int],
    threads: int,
    repeats: int,
) -> list[dict[str, Any]]:
    """One row per (task, data set, precision, batch size): median sequences per second.

    ``workloads`` are (task, data set name, texts). Every point is measured ``repeats``
    times, the rounds interleaved, so a burst of load from other processes hits one round
    of many points rather than every round of one point; the median is reported.
    """
    registry = Registry(registry_root)
    classifiers: dict[tuple[str, str], Any] = {}
    for precision in ("fp32", "int8"):
        for task, _, texts in workloads:
            if (task, precision) not in classifiers:
                classifier = registry.load(task, precision=precision, threads=threads)
                classifier.warmup()
                scoring_rate(classifier, texts[:32], max(batch_sizes))
                classifiers[task, precision] = classifier
    runs: dict[tuple[str, str, str, int], list[float]] = {}
    for _ in range(repeats):
        for (task, precision), classifier in classifiers.items():
            for wtask, dataset, texts in workloads:
                if wtask != task:
                    continue
                for batch_size in batch_sizes:
                    rate = scoring_rate(classifier, texts, batch_size)
                    runs.setdefault((task, dataset, precision, batch_size), []).append(rate)
    rows = []
    for (task, dataset, precision, batch_size), rates in runs.items():
        classifier = classifiers[task, precision]
        rows.append(
            {
                "task": task,
                "dataset": dataset,
                "precision": precision,
                "model_file": classifier.model_file,
                "provider": classifier.provider,
                "batch_size": batch_size,
                "texts": len(workloads[0][2]),
                "seqs_per_s": statistics.median(rates),
                "runs": rates,
            }
        )
        logger.info(
            "ceiling %s/%s %s bs=%d: median %.1f/s of %s",
            task,
            dataset,
            precision,
            batch_size,
            statistics.median(rates),
            ", ".join(f"{r:.0f}" for r in rates),
        )
    return rows


def lookup(
    rows: Sequence[dict[str, Any]], task: str, dataset: str, precision: str, batch_size: int
) -> float:
    """The measured rate of one point (KeyError when it was not measured)."""
    for row in rows:
        if (row["task"], row["dataset"], row["precision"], row["batch_size"]) == (
            task,
            dataset,
            precision,
            batch_size,
        ):
            return float(row["seqs_per_s"])
    raise KeyError((task, dataset, precision, batch_size))
