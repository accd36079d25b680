"""How to schedule a batch's model calls: ONNX Runtime alone, no Kafka, no worker.

    python -m bench.schedule --registry registry [--data-dir ../shared/data] [--texts 192]
        [--rounds 3] [--batch 64]

Scores BANKING77 messages with both served models (intent and sentiment, as the message
scorer does) and Twitter headlines with sentiment, in batches, four ways: one call at a
time with ONNX Runtime's own thread count; one call at a time with one thread; the two
models at once on two threads; and the inference pool (:mod:`models.pool`: every model's
batch split over one call per core, one thread each). Prints the median rate and this
process's CPU milliseconds per text over interleaved rounds, and the load average.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench.pipeline import bench_texts
from models.pool import InferencePool, available_cores
from models.registry import Registry

TASKS = ("intent", "sentiment")


def _batches(texts: Sequence[str], size: int) -> list[Sequence[str]]:
    return [texts[i : i + size] for i in range(0, len(texts), size)]


def plans(
    registry: Registry, messages: Sequence[str], news: Sequence[str], batch: int
) -> dict[str, Callable[[], None]]:
    """Each way of scoring the texts, as a function that scores them all once."""
    auto = {t: registry.load(t, threads=0) for t in TASKS}
    one = {t: registry.load(t, threads=1) for t in TASKS}
    for model in [*auto.values(), *one.values()]:
        model.warmup()
    cores = available_cores()
    pool = InferencePool(cores)
    pair = ThreadPoolExecutor(2)

    def serial(models: dict[str, Any], texts: Sequence[str], tasks: Sequence[str]) -> None:
        for chunk in _batches(texts, batch):
            for task in tasks:
                models[task].predict(chunk)

    def models_at_once(texts: Sequence[str]) -> None:
        for chunk in _batches(texts, batch):
            for future in [pair.submit(one[t].predict, chunk) for t in TASKS]:
                future.result()

    def pooled(texts: Sequence[str], tasks: Sequence[str]) -> None:
        for chunk in _batches(texts, batch):
            pool.predict([one[t] for t in tasks], chunk)

    return {
        "messages, one call at a time, ONNX Runtime's threads": lambda: serial(
            auto, messages, TASKS
        ),
        "messages, one call at a time, 1 thread": lambda: serial(one, messages, TASKS),
        "messages, the two models at once, 1 thread each": lambda: models_at_once(messages),
        f"messages, the pool ({cores} calls, 1 thread each)": lambda: pooled(messages, TASKS),
        "news, one call at a time, ONNX Runtime's threads": lambda: serial(
            auto, news, ("sentiment",)
        ),
        "news, one call at a time, 1 thread": lambda: serial(one, news, ("sentiment",)),
        f"news, the pool ({cores} calls, 1 thread each)": lambda: pooled(news, ("sentiment",)),
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--registry", type=Path, default=Path("registry"))
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/data"))
    parser.add_argument("--texts", type=int, default=192)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args(argv)
    texts = bench_texts(args.data_dir)
    ways = plans(
        Registry(args.registry), texts.messages[: args.texts], texts.news[: args.texts], args.batch
    )
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in ways}
    load_start = os.getloadavg()
    for _ in range(args.rounds):  # interleaved: a burst of load hits one round of each
        for name, score in ways.items():
            cpu, wall = time.process_time(), time.perf_counter()
            score()
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            runs[name].append((args.texts / wall, 1000 * cpu / args.texts))
    for name, values in runs.items():
        rate = statistics.median(r for r, _ in values)
        cpu_ms = statistics.median(c for _, c in values)
        print(f"{name:55s} {rate:8.1f} texts/s  {cpu_ms:5.2f} ms CPU per text")
    print(f"load average {load_start[0]:.2f} -> {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
