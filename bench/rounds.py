"""Saturation rounds: the ceiling and the pipeline measured in turn, several times.

Each round scores the ceiling's texts with ONNX Runtime in this process (the worker idle),
then floods the running worker with customer messages and then with news, each backlog
sized to keep the worker busy for at least ``window_s`` even at the ceiling's speed. The
pipeline / ceiling ratio is taken per round, so a burst of load from other processes
lowers both sides of one ratio rather than one side of all; the table shows the median and
the spread (min to max) over the rounds.
"""

from __future__ import annotations

import logging
import math
import random
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from kafka import KafkaAdminClient

from bench.ceiling import pool_rate, scoring_rate
from bench.cluster import BenchError
from bench.cpu import CpuSplit
from bench.kafka_io import Collector, message_record, news_record, produce_all
from bench.machine import load_average
from bench.stats import combined_rate, output_rate
from bench.worker import Worker, drain
from streams.edges.security import kafka_python_config

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CeilingModels:
    """The serving models as the ceiling scores them, in this process."""

    pool: Any
    """The worker's scheduling: :class:`models.pool.InferencePool` with its call count."""
    parallel: dict[str, Any]
    """Classifiers opened as the worker opens them (its intra-op threads)."""
    serial: dict[str, Any]
    """Classifiers with ONNX Runtime's own thread count, scored one call at a time and one
    call per int8 text: the ceiling as the bench measured it before the inference pool and
    the row loop (2026-12-06)."""


@dataclass(frozen=True)
class RoundPlan:
    """How many rounds, how long each saturation window lasts at least."""

    repeats: int
    window_s: float
    batch_size: int
    min_records: int = 50


def spread(values: Sequence[float]) -> dict[str, Any]:
    """Median, min and max of ``values`` (NaN when empty), with the values themselves."""
    clean = [v for v in values if not math.isnan(v)]
    if not clean:
        return {"median": math.nan, "min": math.nan, "max": math.nan, "runs": list(values)}
    return {
        "median": statistics.median(clean),
        "min": min(clean),
        "max": max(clean),
        "runs": list(values),
    }


def _flood(
    worker: Worker,
    collector: Collector,
    topic_in: str,
    topic_out: str,
    records: list[tuple[str, bytes, bytes]],
) -> dict[str, Any]:
    """Produce ``records`` as fast as the client goes; the worker's output rate, and where
    the machine's CPU went meanwhile (:mod:`bench.cpu`)."""
    settings = worker.settings
    cpu = CpuSplit.start(worker.pid)
    produce_all(
        settings.kafka_bootstrap,
        kafka_python_config(settings),
        topic_in,
        [(k, v) for _, k, v in records],
    )
    ids = [item_id for item_id, _, _ in records]
    timeout = 120 + len(ids) / 2
    got = collector.wait_for(topic_out, ids, timeout, worker.check)
    if len(got) < 2:
        raise BenchError(f"only {len(got)} of {len(ids)} outputs on {topic_out} in {timeout:.0f}s")
    return {**output_rate(list(got.values()), len(ids)), "cpu": cpu.finish(len(ids))}


def saturation_rounds(
    worker: Worker,
    collector: Collector,
    models: CeilingModels,
    messages: Sequence[str],
    news: Sequence[str],
    plan: RoundPlan,
) -> dict[str, Any]:
    """``plan.repeats`` rounds of ceiling, messages and news; per-round rates and ratios."""
    s = worker.settings
    ceiling_texts = list(messages[:96]), list(news[:96])
    rows: list[dict[str, Any]] = []
    rng = random.Random(23)
    for r in range(plan.repeats):
        # the ceiling is measured with the worker idle: its downstream agents done too
        drained = drain(worker)
        load_start = load_average()
        both = [models.parallel["intent"], models.parallel["sentiment"]]
        ceiling_messages = pool_rate(models.pool, both, ceiling_texts[0], plan.batch_size)
        ceiling_news = pool_rate(
            models.pool, [models.parallel["sentiment"]], ceiling_texts[1], plan.batch_size
        )
        serial_messages = combined_rate(
            scoring_rate(models.serial["intent"], ceiling_texts[0], plan.batch_size),
            scoring_rate(models.serial["sentiment"], ceiling_texts[0], plan.batch_size),
        )
        serial_news = scoring_rate(models.serial["sentiment"], ceiling_texts[1], plan.batch_size)
        n_msgs = max(plan.min_records, math.ceil(ceiling_messages * plan.window_s))
        n_news = max(plan.min_records, math.ceil(ceiling_news * plan.window_s))
        msgs = _flood(
            worker,
            collector,
            s.topic_messages_raw,
            s.topic_tickets_routed,
            [
                (f"r{r}m{i}", *message_record(f"r{r}m{i}", messages[i % len(messages)], rng))
                for i in range(n_msgs)
            ],
        )
        items = _flood(
            worker,
            collector,
            s.topic_news_raw,
            s.topic_news_scored,
            [(f"r{r}n{i}", *news_record(f"r{r}n{i}", news[i % len(news)])) for i in range(n_news)],
        )
        row: dict[str, Any] = {
            "round": r,
            "drain_before_s": drained,
            "ceiling_messages_per_s": ceiling_messages,
            "ceiling_news_per_s": ceiling_news,
            "serial_ceiling_messages_per_s": serial_messages,
            "serial_ceiling_news_per_s": serial_news,
            "messages": msgs,
            "news": items,
            "messages_vs_ceiling": msgs["steady_per_s"] / ceiling_messages,
            "news_vs_ceiling": items["steady_per_s"] / ceiling_news,
            "load_average": [load_start, load_average()],
        }
        rows.append(row)
        logger.info(
            "round %d: messages %.1f/s over %.1fs (ceiling %.1f, x%.2f), news %.1f/s over "
            "%.1fs (ceiling %.1f, x%.2f), load %s",
            r,
            msgs["steady_per_s"],
            msgs["duration_s"],
            ceiling_messages,
            row["messages_vs_ceiling"],
            items["steady_per_s"],
            items["duration_s"],
            ceiling_news,
            row["news_vs_ceiling"],
            row["load_average"][1][0],
        )
    return {
        "window_s": plan.window_s,
        "rounds": rows,
        "messages_per_s": spread([r["messages"]["steady_per_s"] for r in rows]),
        "news_per_s": spread([r["news"]["steady_per_s"] for r in rows]),
        "ceiling_messages_per_s": spread([r["ceiling_messages_per_s"] for r in rows]),
        "ceiling_news_per_s": spread([r["ceiling_news_per_s"] for r in rows]),
        "serial_ceiling_messages_per_s": spread([r["serial_ceiling_messages_per_s"] for r in rows]),
        "serial_ceiling_news_per_s": spread([r["serial_ceiling_news_per_s"] for r in rows]),
        "messages_vs_serial_ceiling": spread(
            [r["messages"]["steady_per_s"] / r["serial_ceiling_messages_per_s"] for r in rows]
        ),
        "news_vs_serial_ceiling": spread(
            [r["news"]["steady_per_s"] / r["serial_ceiling_news_per_s"] for r in rows]
        ),
        "messages_vs_ceiling": spread([r["messages_vs_ceiling"] for r in rows]),
        "news_vs_ceiling": spread([r["news_vs_ceiling"] for r in rows]),
        "cpu": {
            path: {
                part: spread([r[path]["cpu"]["cores"][part] for r in rows])
                for part in rows[0][path]["cpu"]["cores"]
            }
            for path in ("messages", "news")
        }
        if rows
        else {},
        "messages_window_s": spread([r["messages"]["duration_s"] for r in rows]),
        "news_window_s": spread([r["news"]["duration_s"] for r in rows]),
    }


def _members(bootstrap: str, security: dict[str, Any], group: str) -> int:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, **security)
    try:
        description = admin.describe_groups([group])[group]
        return len(description["members"]) if description["group_state"] == "Stable" else 0
    finally:
        admin.close()


def scaling_row(
    first: Worker,
    start_second: Callable[[], Worker],
    collector: Collector,
    messages: Sequence[str],
    one_worker_per_s: float,
    records: int,
) -> dict[str, Any]:
    """Messages/s with a second worker in the same consumer group, beside one worker's."""
    s = first.settings
    security = kafka_python_config(s)
    second = start_second()
    try:
        deadline = time.monotonic() + 240
        while _members(s.kafka_bootstrap, security, s.app_id) < 2:
            if time.monotonic() > deadline:
                raise BenchError("the second worker did not join the consumer group in 240 s")
            first.check()
            second.check()
            time.sleep(1)
        rng = random.Random(29)
        # a short flood first: both workers warm and assigned before the measured one
        _flood(
            first,
            collector,
            s.topic_messages_raw,
            s.topic_tickets_routed,
            [(f"sw{i}", *message_record(f"sw{i}", messages[i], rng)) for i in range(64)],
        )
        rate = _flood(
            first,
            collector,
            s.topic_messages_raw,
            s.topic_tickets_routed,
            [
                (f"s2m{i}", *message_record(f"s2m{i}", messages[i % len(messages)], rng))
                for i in range(records)
            ],
        )
        second.check()
    finally:
        second.stop()
    return {
        "one_worker_per_s": one_worker_per_s,
        "two_workers_per_s": rate["steady_per_s"],
        "speedup": rate["steady_per_s"] / one_worker_per_s if one_worker_per_s else math.nan,
        "window_s": rate["duration_s"],
        "load_average_end": load_average(),
    }
