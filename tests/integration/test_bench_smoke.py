"""`streamsense bench --quick` runs end to end and writes its JSON (every section) and PNG.

A smoke test of the benchmark, not a benchmark: it asserts no times.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from models.registry import Registry

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _positive(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


def _run_module(module: str, args: list[str], timeout: float) -> str:
    """Run ``python -m module args``; its stdout, or a failure with both outputs' tails."""
    run = subprocess.run(
        [sys.executable, "-m", module, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert run.returncode == 0, f"{module} failed:\n{run.stdout[-3000:]}\n{run.stderr[-5000:]}"
    return run.stdout


@pytest.mark.timeout(900)
def test_quick_bench_writes_json_and_plot(trained_registry: Path, tmp_path: Path) -> None:
    out = tmp_path / "results"
    args = ["bench", "--quick", "--out", str(out), "--registry", str(trained_registry)]
    stdout = _run_module("streams.cli", args, timeout=840)
    assert "Ceiling" in stdout and "Sweep" in stdout, stdout[-3000:]

    (json_file,) = out.glob("bench-*.json")
    (png_file,) = out.glob("bench-*.png")
    assert png_file.read_bytes()[:8] == PNG_MAGIC
    results = json.loads(json_file.read_text(encoding="utf-8"))

    assert results["mode"] == "quick"
    machine = results["machine"]
    assert machine["cpu_model"] and machine["usable_cores"] >= 1
    assert results["models"]["provider"] in machine["onnxruntime_available_providers"]
    assert results["models"]["served_precision"] in ("fp32", "int8")

    rows = results["ceiling"]["rows"]
    assert {(r["task"], r["precision"]) for r in rows} == {
        (task, precision) for task in ("intent", "sentiment") for precision in ("fp32", "int8")
    }
    assert all(_positive(r["seqs_per_s"]) for r in rows)

    rates = results["naive"]["rates"]
    assert {"intent/banking77", "sentiment/banking77", "sentiment/twitter"} <= set(rates)
    assert all(_positive(v) for v in rates.values())

    shadow = results["shadow"]  # the headline point with each production version in shadow
    assert set(shadow["shadow_versions"]) == {"intent", "sentiment"}
    assert all(shadow["shadow_predictions"].get(t, 0) > 0 for t in ("intent", "sentiment"))
    assert all(_positive(shadow[path]["steady_per_s"]) for path in ("messages", "news"))
    registry = Registry(trained_registry)  # the scratch registry linked, never wrote, this one
    assert all(registry.shadow(t) is None for t in ("intent", "sentiment"))
    assert all(len(registry.versions(t)) == 1 for t in ("intent", "sentiment"))

    pipeline = results["pipeline"]
    assert _positive(pipeline["messages"]["steady_per_s"])
    assert _positive(pipeline["news"]["steady_per_s"])
    latency = pipeline["latency"]
    assert latency["received"] == latency["sent"] > 0
    assert all(_positive(latency[q]) for q in ("p50_ms", "p95_ms", "p99_ms"))
    assert latency["p50_ms"] <= latency["p95_ms"] <= latency["p99_ms"]
    assert _positive(results["memory"]["vmhwm_mib"])

    comparison = results["comparison"]
    for key in ("ceiling_messages_per_s", "ceiling_news_per_s", "naive_messages_per_s"):
        assert _positive(comparison[key])
    assert all(_positive(v) for v in comparison["ratios"].values())
    assert all(isinstance(met, bool) for met in comparison["targets"].values())

    rounds = pipeline["rounds"]
    assert len(rounds["rounds"]) == 1
    assert _positive(rounds["messages_vs_ceiling"]["median"])
    assert _positive(rounds["messages_vs_serial_ceiling"]["median"])
    assert results["models"]["inference_calls"] == machine["usable_cores"]
    # the CPU split saw the worker's named inference threads work, and adds up to the cores
    for path in ("messages", "news"):
        cores = {part: v["median"] for part, v in rounds["cpu"][path].items()}
        assert cores["worker_inference"] > 0 and cores["worker_loop_and_clients"] > 0
        assert all(v >= 0 for v in cores.values())
        assert sum(cores.values()) == pytest.approx(machine["logical_cores"], rel=0.25)
    assert pipeline["drain_before_latency_s"] >= 0
    scaling = pipeline["scaling"]
    assert _positive(scaling["two_workers_per_s"]) and _positive(scaling["speedup"])

    (point,) = results["sweep"]
    assert _positive(point["messages"]["steady_per_s"])
    assert _positive(point["latency"]["p95_ms"])
    assert results["profile"]["available"] and results["profile"]["components_cpu_s"]


def test_the_scheduling_bench_prints_every_way_for_both_paths(trained_registry: Path) -> None:
    args = ["--registry", str(trained_registry), "--texts", "8", "--rounds", "1", "--batch", "4"]
    stdout = _run_module("bench.schedule", args, timeout=300)
    lines = [line for line in stdout.splitlines() if "texts/s" in line]
    assert len(lines) == 7 and sum(line.startswith("news") for line in lines) == 3
    rates = [float(line.split("texts/s")[0].split()[-1]) for line in lines]
    assert all(rate > 0 for rate in rates), stdout


@pytest.mark.timeout(600)
def test_the_ab_bench_runs_both_arms_on_fresh_workers(trained_registry: Path) -> None:
    """One repeat end to end (the alternating order and the pairs won: tests/unit)."""
    # a backlog of several batches: outputs of one batch can arrive with one timestamp
    args = ["--registry", str(trained_registry), "--repeats", "1", "--messages", "300"]
    args += ["--rate", "15", "--latency-s", "2", "producer_linger_s=0"]
    stdout = _run_module("bench.ab", args, timeout=540)
    workers = [line for line in stdout.splitlines() if line.startswith("repeat ")]
    assert [line.split(":")[0] for line in workers] == ["repeat 0 A", "repeat 0 B"]
    assert all(float(line.split(": ")[1].split()[0]) > 0 for line in workers), stdout
    medians = [line for line in stdout.splitlines() if " median: " in line]
    assert [line[0] for line in medians] == ["A", "B"], stdout
