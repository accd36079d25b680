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


@pytest.mark.timeout(900)
def test_quick_bench_writes_json_and_plot(trained_registry: Path, tmp_path: Path) -> None:
    out = tmp_path / "results"
    command = [sys.executable, "-m", "streams.cli", "bench", "--quick", "--out", str(out)]
    run = subprocess.run(
        [*command, "--registry", str(trained_registry)],
        capture_output=True,
        text=True,
        timeout=840,
        check=False,
    )
    assert run.returncode == 0, f"bench failed:\n{run.stdout[-3000:]}\n{run.stderr[-5000:]}"
    assert "Ceiling" in run.stdout and "Sweep" in run.stdout, run.stdout[-3000:]

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
    scaling = pipeline["scaling"]
    assert _positive(scaling["two_workers_per_s"]) and _positive(scaling["speedup"])

    (point,) = results["sweep"]
    assert _positive(point["messages"]["steady_per_s"])
    assert _positive(point["latency"]["p95_ms"])
    assert results["profile"]["available"] and results["profile"]["components_cpu_s"]
