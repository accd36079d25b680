"""Real Kafka → worker → Kafka: saturation throughput, paced latency, memory, per sweep point."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.cluster import BenchError
from bench.kafka_io import Collector, message_record, news_record, produce_all, produce_paced
from bench.machine import load_average
from bench.profile import Profiler
from bench.rounds import CeilingModels, RoundPlan, saturation_rounds, scaling_row
from bench.stats import latency_ms, output_rate, phase_split
from bench.worker import Worker, drain, private_settings
from models.data import TWITTER_FILE, load_banking77, load_twitter
from models.pool import InferencePool
from models.registry import Registry
from streams.edges.security import kafka_python_config
from streams.settings import Settings

logger = logging.getLogger(__name__)

STARTUP_S = 180.0
"""Longest wait for a worker's first outputs (model loading, group join)."""


@dataclass(frozen=True)
class Texts:
    """The real texts the inputs carry."""

    messages: Sequence[str]
    """BANKING77 customer messages."""
    news: Sequence[str]
    """Twitter financial news headlines."""


def bench_texts(data_dir: Path) -> Texts:
    """BANKING77 and Twitter texts, shuffled with a fixed seed (the files are sorted)."""
    messages = list(load_banking77(data_dir).texts)
    news = list(load_twitter(data_dir / TWITTER_FILE).texts)
    random.Random(0).shuffle(messages)
    random.Random(0).shuffle(news)
    return Texts(messages=messages, news=news)


@dataclass(frozen=True)
class PointPlan:
    """What to measure at one (batch size, max wait) point."""

    batch_size: int
    max_wait_s: float
    latency_target_s: float
    """0: fixed batch size and wait; else the adaptive close (batch_size is its largest)."""
    messages: int
    news: int
    latency_rate: float
    """Paced rate of the latency run; 0: half of this point's own message throughput."""
    latency_s: float
    load_fraction: float
    profile_messages: int
    rounds: int = 0
    """Interleaved ceiling / messages / news saturation rounds (0: one backlog each)."""
    window_s: float = 10.0
    """Shortest saturation window of a round at the ceiling's speed (seconds)."""
    scaling_messages: int = 0
    """Messages flooded through two workers for the scaling row (0: no scaling row)."""


def _saturate(
    worker: Worker, collector: Collector, topic_in: str, topic_out: str, records: list[Any]
) -> dict[str, float]:
    ids = [item_id for item_id, _, _ in records]
    produce_all(
        worker.settings.kafka_bootstrap,
        kafka_python_config(worker.settings),
        topic_in,
        [(k, v) for _, k, v in records],
    )
    timeout = STARTUP_S + len(ids) / 2
    got = collector.wait_for(topic_out, ids, timeout, worker.check)
    if len(got) < 2:
        raise BenchError(f"only {len(got)} of {len(ids)} outputs on {topic_out} in {timeout:.0f}s")
    return output_rate(list(got.values()), len(ids))


def run_point(
    base: Settings,
    bootstrap: str,
    registry: Path,
    workdir: Path,
    texts: Texts,
    plan: PointPlan,
    overrides: dict[str, str] | None = None,
    source: Path | None = None,
) -> dict[str, Any]:
    """Start one worker with the plan's batching (and any other ``overrides`` of its
    settings; ``source``: the code of another checkout), measure, stop it; return the
    results."""
    batching = {
        "batch_size": str(plan.batch_size),
        "batch_max_wait_s": str(plan.max_wait_s),
        "latency_target_s": str(plan.latency_target_s),
    }
    # an override of the plan's own batching (bench.ab's arm B) wins
    settings = private_settings(
        base, bootstrap, registry, workdir, **{**batching, **(overrides or {})}
    )
    tag = f"bs{plan.batch_size}-w{plan.max_wait_s:g}-t{plan.latency_target_s:g}"
    rng = random.Random(7)
    msgs = texts.messages
    preload = [
        (f"sat-{i}", *message_record(f"sat-{i}", msgs[i % len(msgs)], rng))
        for i in range(plan.messages)
    ]
    # pre-load the backlog, then start the worker: it runs saturated from its first batch
    security = kafka_python_config(settings)
    produce_all(bootstrap, security, settings.topic_messages_raw, [(k, v) for _, k, v in preload])
    collector = Collector(
        bootstrap, security, [settings.topic_tickets_routed, settings.topic_news_scored]
    )
    started = time.monotonic()
    worker = Worker.start(settings, workdir, source)
    result: dict[str, Any] = {
        "batch_size": plan.batch_size,
        "max_wait_s": plan.max_wait_s,
        "latency_target_s": plan.latency_target_s,
        "overrides": dict(overrides or {}),
        "load_average_start": load_average(),
    }
    try:
        ids = [item_id for item_id, _, _ in preload]
        got = collector.wait_for(
            settings.topic_tickets_routed, ids, STARTUP_S + len(ids) / 2, worker.check
        )
        if len(got) < 2:
            raise BenchError(f"{tag}: only {len(got)} of {len(ids)} tickets arrived")
        first = min(got.values())
        result["startup_to_first_output_s"] = first - started
        result["messages"] = output_rate(list(got.values()), len(ids))
        logger.info("%s: messages %.1f/s", tag, result["messages"]["steady_per_s"])
        if plan.rounds:
            result["rounds"] = _rounds(worker, collector, registry, texts, plan)
            result["messages"] = {
                **result["messages"],
                "steady_per_s": result["rounds"]["messages_per_s"]["median"],
                "first_backlog_per_s": result["messages"]["steady_per_s"],
            }
            result["news"] = {"steady_per_s": result["rounds"]["news_per_s"]["median"]}
        elif plan.news:
            news = [
                (f"news-{i}", *news_record(f"news-{i}", texts.news[i % len(texts.news)]))
                for i in range(plan.news)
            ]
            result["news"] = _saturate(
                worker, collector, settings.topic_news_raw, settings.topic_news_scored, news
            )
            logger.info("%s: news %.1f/s", tag, result["news"]["steady_per_s"])
        # downstream agents (monitors, sinks) still working through the floods would
        # compete with the paced run: start it with every consumed topic committed
        result["drain_before_latency_s"] = drain(worker)
        rate = plan.latency_rate or result["messages"]["steady_per_s"] * plan.load_fraction
        # the scorer's phases over the paced run: one message first, so that the idle time
        # since the drain ends with its batch and not in the paced run's first "wait"
        primer = produce_paced(
            bootstrap, security, settings.topic_messages_raw, msgs[:1], 1.0, 1.0, "primer"
        )
        collector.wait_for(settings.topic_tickets_routed, list(primer), 60, worker.check)
        phases_before = worker.phase_totals()
        sent = produce_paced(
            bootstrap,
            security,
            settings.topic_messages_raw,
            msgs[3000:] or msgs,
            rate,
            plan.latency_s,
            "lat",
        )
        received = collector.wait_for(
            settings.topic_tickets_routed, list(sent), 60 + len(sent) / 2, worker.check
        )
        result["latency"] = {
            "offered_per_s": rate,
            **latency_ms(sent, received),
            "phases": phase_split(phases_before, worker.phase_totals()),
        }
        logger.info("%s: latency p99 %.0f ms at %.1f/s", tag, result["latency"]["p99_ms"], rate)
        if plan.profile_messages:
            result["profile"] = _profile(worker, collector, texts, plan, result, workdir)
        result["memory"] = worker.memory_mib()
        if plan.scaling_messages:
            result["scaling"] = scaling_row(
                worker,
                lambda: Worker.start(settings, workdir / "second"),
                collector,
                msgs,
                float(result["messages"]["steady_per_s"]),
                plan.scaling_messages,
            )
            logger.info("%s: two workers %.1f/s", tag, result["scaling"]["two_workers_per_s"])
        result["load_average_end"] = load_average()
        worker.check()
    finally:
        worker.stop()
        collector.close()
    return result


def _rounds(
    worker: Worker, collector: Collector, registry: Path, texts: Texts, plan: PointPlan
) -> dict[str, Any]:
    """Interleaved ceiling and saturation rounds against the running worker."""
    reg = Registry(registry)
    s = worker.settings
    tasks = ("intent", "sentiment")
    models = CeilingModels(
        pool=InferencePool(s.parallel_calls()),
        parallel={
            task: reg.load(task, threads=s.session_threads(), row_loop=s.int8_row_loop)
            for task in tasks
        },
        serial={task: reg.load(task, threads=0, row_loop=False) for task in tasks},
    )
    for classifier in [*models.parallel.values(), *models.serial.values()]:
        classifier.warmup()
    return saturation_rounds(
        worker,
        collector,
        models,
        texts.messages,
        texts.news,
        RoundPlan(plan.rounds, plan.window_s, plan.batch_size),
    )


def _profile(
    worker: Worker,
    collector: Collector,
    texts: Texts,
    plan: PointPlan,
    result: dict[str, Any],
    workdir: Path,
) -> dict[str, Any]:
    """Score a further backlog of messages with py-spy sampling the worker."""
    settings = worker.settings
    rng = random.Random(17)
    records = [
        (f"prof-{i}", *message_record(f"prof-{i}", texts.messages[i % len(texts.messages)], rng))
        for i in range(plan.profile_messages)
    ]
    expected_s = plan.profile_messages / max(result["messages"]["steady_per_s"], 1.0)
    profiler = Profiler.attach(worker.pid, max(2, round(expected_s * 0.9)), workdir)
    if profiler is None:
        return {"available": False}
    profiled = _saturate(
        worker, collector, settings.topic_messages_raw, settings.topic_tickets_routed, records
    )
    summary = profiler.finish()
    return {"available": True, "messages": profiled, **summary}
