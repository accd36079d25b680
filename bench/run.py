"""One bench run: ceiling, naive recipe, pipeline and sweep, in that order, on one machine."""

from __future__ import annotations

import logging
import shutil
import sqlite3
import tempfile
import time
from contextlib import closing
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.ceiling import measure_ceiling
from bench.cluster import kafka_cluster
from bench.config import BenchConfig
from bench.machine import describe, load_average
from bench.naive import measure_naive
from bench.pipeline import PointPlan, Texts, bench_texts, run_point
from bench.registry_setup import prepare_registry, shadow_registry
from bench.summary import compare
from models.registry import Registry
from models.runtime import INT8_FILE
from streams.settings import Settings

logger = logging.getLogger(__name__)


def _models(registry_root: Path, threads: int, calls: int) -> dict[str, Any]:
    registry = Registry(registry_root)
    served = registry.load("intent", threads=threads)
    tasks = {}
    for task in ("intent", "sentiment"):
        version = registry.production(task) or ""
        tasks[task] = {
            "version": version,
            "max_length": int(registry.verify(task, version)["max_length"]),
        }
    return {
        "registry": str(registry_root),
        "served_precision": "int8" if served.model_file == INT8_FILE else "fp32",
        "served_file": served.model_file,
        "provider": served.provider,
        "inference_threads": threads,
        "inference_calls": calls,
        "tasks": tasks,
    }


def run_bench(
    config: BenchConfig, settings: Settings, registry_root: Path, out: Path, *, profile: bool
) -> tuple[dict[str, Any], Path]:
    """Measure everything; write JSON and PNG into ``out``; return results and JSON path."""
    started = time.monotonic()
    now = datetime.now(UTC)
    stamp = now.strftime("%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        "schema": 1,
        "mode": config.mode,
        "started_at": now.isoformat(timespec="seconds"),
        "config": asdict(config),
        "machine": describe(),
    }
    with tempfile.TemporaryDirectory(prefix="streamsense-bench-") as scratch_dir:
        scratch = Path(scratch_dir)
        registry = prepare_registry(
            registry_root, settings.data_dir, quick=config.mode == "quick", scratch=scratch / "reg"
        )
        results["models"] = _models(registry, settings.session_threads(), settings.parallel_calls())
        texts = bench_texts(settings.data_dir)
        sweep_sizes = {size for size, _, _ in config.sweep}
        n = config.ceiling_texts
        workloads = [
            ("intent", "banking77", texts.messages[:n]),
            ("sentiment", "twitter", texts.news[:n]),
            ("sentiment", "banking77", texts.messages[:n]),
        ]
        logger.info("ceiling: %d texts per point, %d rounds", n, config.ceiling_repeats)
        results["ceiling"] = {
            "threads": settings.inference_threads,
            "rows": measure_ceiling(
                registry,
                workloads,
                sorted(set(config.ceiling_batch_sizes) | sweep_sizes),
                settings.inference_threads,
                config.ceiling_repeats,
            ),
        }
        logger.info("naive recipe: %d texts per model", config.naive_texts)
        results["naive"] = measure_naive(
            registry, [(t, d, x[: config.naive_texts]) for t, d, x in workloads]
        )
        with kafka_cluster(settings) as (bootstrap, how):
            results["machine"]["kafka"] = how
            results["sweep"] = _pipeline(
                config, settings, bootstrap, registry, scratch, texts, profile=profile
            )
            if config.shadow_messages:
                results["shadow"] = _shadow_point(
                    config, settings, bootstrap, registry, scratch, texts, results["sweep"][0]
                )
        headline = results["sweep"][0]
        results["profile"] = headline.pop("profile", {"available": False})
        raw = results["profile"].pop("raw_file", None)
        if raw:
            target = out / f"bench-{stamp}-py-spy.txt"
            shutil.copyfile(raw, target)
            results["profile"]["raw_file"] = str(target)
    results["pipeline"] = headline
    results["memory"] = headline["memory"]
    results["comparison"] = compare(results)
    results["machine"]["load_average_end"] = load_average()
    results["duration_s"] = time.monotonic() - started
    json_path = out / f"bench-{stamp}.json"
    results["files"] = {"json": str(json_path), "plot": str(out / f"bench-{stamp}.png")}
    return results, json_path


def _pipeline(
    config: BenchConfig,
    settings: Settings,
    bootstrap: str,
    registry: Path,
    scratch: Path,
    texts: Texts,
    *,
    profile: bool,
) -> list[dict[str, Any]]:
    """The headline point (rounds, latency at half its load, profile, scaling), then the
    sweep."""
    (batch, wait, target), *rest = config.sweep
    headline = run_point(
        settings,
        bootstrap,
        registry,
        scratch / "point-0",
        texts,
        PointPlan(
            batch_size=batch,
            max_wait_s=wait,
            latency_target_s=target,
            messages=config.saturation_messages,
            news=config.saturation_news,
            latency_rate=0.0,
            latency_s=config.latency_s,
            load_fraction=config.load_fraction,
            profile_messages=config.profile_messages if profile else 0,
            rounds=config.rounds,
            window_s=config.window_s,
            scaling_messages=config.scaling_messages,
        ),
    )
    common = float(headline["latency"]["offered_per_s"])
    points = [headline]
    for index, (batch, wait, target) in enumerate(rest, start=1):
        points.append(
            run_point(
                settings,
                bootstrap,
                registry,
                scratch / f"point-{index}",
                texts,
                _follow_up(config, batch, wait, target, config.sweep_messages, 0, common),
            )
        )
    for index, (label, overrides) in enumerate(config.variants, start=len(points)):
        point = run_point(
            settings,
            bootstrap,
            registry,
            scratch / f"point-{index}",
            texts,
            _headline_again(config, headline, config.sweep_messages, 0),
            dict(overrides),
        )
        points.append({**point, "variant": label})
    return points


def _follow_up(
    config: BenchConfig,
    batch: int,
    wait: float,
    target: float,
    messages: int,
    news: int,
    rate: float,
) -> PointPlan:
    """A point measured after the headline: one backlog each, latency at the headline's
    pace, no rounds and no profile."""
    return PointPlan(
        batch_size=batch,
        max_wait_s=wait,
        latency_target_s=target,
        messages=messages,
        news=news,
        latency_rate=rate,
        latency_s=config.sweep_latency_s or config.latency_s,
        load_fraction=config.load_fraction,
        profile_messages=0,
    )


def _headline_again(
    config: BenchConfig, headline: dict[str, Any], messages: int, news: int
) -> PointPlan:
    """The headline point's batching measured again (one backlog each, latency at its pace)."""
    return _follow_up(
        config,
        int(headline["batch_size"]),
        float(headline["max_wait_s"]),
        float(headline["latency_target_s"]),
        messages,
        news,
        float(headline["latency"]["offered_per_s"]),
    )


def _shadow_point(
    config: BenchConfig,
    settings: Settings,
    bootstrap: str,
    registry: Path,
    scratch: Path,
    texts: Texts,
    headline: dict[str, Any],
) -> dict[str, Any]:
    """The headline point again with a copy of each production version in shadow: both
    paths score every batch twice (production served, the shadow compared)."""
    shadows = shadow_registry(registry, scratch / "shadow-registry")
    point = run_point(
        settings,
        bootstrap,
        scratch / "shadow-registry",
        scratch / "shadow",
        texts,
        _headline_again(config, headline, config.shadow_messages, config.shadow_messages // 4),
    )
    point["shadow_versions"] = shadows
    # what the worker stored of its shadow predictions: proof that it scored in shadow
    with closing(sqlite3.connect(scratch / "shadow" / "feedback.db")) as db:
        rows = db.execute("SELECT task, COUNT(*) FROM shadow_predictions GROUP BY task")
        point["shadow_predictions"] = {str(task): int(count) for task, count in rows}

    def ratio(key: str) -> float | None:
        base = float(headline.get(key, {}).get("steady_per_s") or 0)
        return float(point[key]["steady_per_s"]) / base if base and key in point else None

    point["vs_headline"] = {
        "messages": ratio("messages"),
        "news": ratio("news"),
        "p99_ms": (point["latency"]["p99_ms"], headline["latency"]["p99_ms"]),
    }
    logger.info(
        "shadow: messages %.1f/s, news %.1f/s, p99 %.0f ms",
        point["messages"]["steady_per_s"],
        point["news"]["steady_per_s"],
        point["latency"]["p99_ms"],
    )
    return point
