"""The bench's outputs: rich tables on stdout, a JSON file and a PNG plot."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table


def _f(value: Any, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:,.{digits}f}"


def phase_line(phases: dict[str, dict[str, float]]) -> str:
    """``wait 10.7 (18 %), decode 0.2 (0 %), ...``: a scorer batch's phases in the paced run."""
    return ", ".join(
        f"{phase} {_f(v['ms_per_batch'])} ({v['share'] * 100:.0f} %)" for phase, v in phases.items()
    )


def _ceiling_table(results: dict[str, Any]) -> Table:
    rows = results["ceiling"]["rows"]
    sizes = sorted({r["batch_size"] for r in rows})
    table = Table(title="Ceiling: ONNX Runtime predict(), no Kafka (sequences/s)")
    table.add_column("task / data")
    table.add_column("precision")
    for size in sizes:
        table.add_column(f"bs {size}", justify="right")
    keys = sorted({(r["task"], r["dataset"], r["precision"]) for r in rows})
    for task, dataset, precision in keys:
        by_size = {
            r["batch_size"]: r["seqs_per_s"]
            for r in rows
            if (r["task"], r["dataset"], r["precision"]) == (task, dataset, precision)
        }
        table.add_row(f"{task} / {dataset}", precision, *(_f(by_size.get(size)) for size in sizes))
    return table


def _spread(values: dict[str, Any], digits: int = 1) -> str:
    return f"min-max {_f(values['min'], digits)}-{_f(values['max'], digits)}"


def _config(point: dict[str, Any]) -> str:
    target = point.get("latency_target_s") or 0
    if target:
        return f"adaptive: target {target:g}s, batch <= {point['batch_size']}"
    return f"batch {point['batch_size']}, wait {point['max_wait_s']}s"


def _main_table(results: dict[str, Any]) -> Table:
    p, c, n = results["pipeline"], results["comparison"], results["naive"]
    lat, ratios = p["latency"], c["ratios"]
    table = Table(title="Pipeline: Kafka → one worker → Kafka", show_header=True)
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_column("note")
    cfg = _config(p)
    rounds = p.get("rounds")
    if rounds:
        count = len(rounds["rounds"])
        for name, key, window in (
            ("messages/s (tickets.routed)", "messages_per_s", "messages_window_s"),
            ("news/s (news.scored)", "news_per_s", "news_window_s"),
        ):
            shortest = _f(rounds[window]["min"])
            note = f"{_spread(rounds[key])}, {count} rounds, windows >= {shortest}s; {cfg}"
            table.add_row(name, _f(rounds[key]["median"]), note)
        table.add_row(
            "ceiling messages/s",
            _f(c["ceiling_messages_per_s"]),
            f"{_spread(rounds['ceiling_messages_per_s'])}, 2 models per message, interleaved",
        )
        table.add_row(
            "ceiling news/s",
            _f(c["ceiling_news_per_s"]),
            f"{_spread(rounds['ceiling_news_per_s'])}, 1 model per item, interleaved",
        )
        if "serial_ceiling_messages_per_s" in rounds:
            for name, key in (("messages", "messages"), ("news", "news")):
                serial = rounds[f"serial_ceiling_{key}_per_s"]
                table.add_row(
                    f"serial ceiling {name}/s",
                    _f(serial["median"]),
                    f"{_spread(serial)}, one call at a time, ONNX Runtime's own threads",
                )
    else:
        table.add_row("messages/s (tickets.routed)", _f(p["messages"]["steady_per_s"]), cfg)
        table.add_row("news/s (news.scored)", _f(p["news"]["steady_per_s"]), cfg)
        table.add_row("ceiling messages/s", _f(c["ceiling_messages_per_s"]), "2 models/message")
        table.add_row("ceiling news/s", _f(c["ceiling_news_per_s"]), "1 model per item")
    table.add_row("naive messages/s", _f(c["naive_messages_per_s"]), n["recipe"][:48])
    table.add_row(
        "naive news/s", _f(c["naive_news_per_s"]), f"torch threads {n['torch_threads_used']}"
    )
    for name, value in ratios.items():
        spread = _spread(rounds[name], 3) if rounds and name in rounds else ""
        table.add_row(f"ratio {name.replace('_vs_', ' / ')}", _f(value, 3), spread)
    load = f"paced at {_f(lat['offered_per_s'])}/s, {int(lat['received'])}/{int(lat['sent'])} back"
    if "drain_before_latency_s" in p:
        table.add_row(
            "drain before the latency run s",
            _f(p["drain_before_latency_s"]),
            "until the worker committed all it consumes (monitors and sinks caught up)",
        )
    table.add_row("latency p50 ms", _f(lat["p50_ms"]), load)
    table.add_row("latency p95 ms", _f(lat["p95_ms"]), "produce → received from tickets.routed")
    table.add_row("latency p99 ms", _f(lat["p99_ms"]), "")
    if lat.get("phases"):
        table.add_row(
            "message scorer ms per batch",
            _f(sum(v["ms_per_batch"] for v in lat["phases"].values())),
            phase_line(lat["phases"]),
        )
    mem = p["memory"]
    table.add_row("worker peak RSS MiB", _f(mem["vmhwm_mib"]), "VmHWM, /proc/<pid>/status")
    scaling = p.get("scaling")
    if scaling:
        table.add_row(
            "2 workers messages/s",
            _f(scaling["two_workers_per_s"]),
            f"x{_f(scaling['speedup'], 2)} of one worker's median, same machine",
        )
    shadow = results.get("shadow")
    if shadow:
        vs = shadow["vs_headline"]
        for name, key in (("messages", "messages"), ("news", "news")):
            rel = vs[key]
            table.add_row(
                f"{name}/s, a version in shadow",
                _f(shadow[key]["steady_per_s"]),
                "one backlog; " + (f"x{_f(rel, 2)} of the median above" if rel else ""),
            )
        table.add_row(
            "latency p99 ms, in shadow",
            _f(shadow["latency"]["p99_ms"]),
            f"paced at {_f(shadow['latency']['offered_per_s'])}/s; every batch scored twice",
        )
    for target, met in c["targets"].items():
        table.add_row(f"target {target}", "met" if met else "MISSED", "")
    return table


def _sweep_table(results: dict[str, Any]) -> Table:
    table = Table(
        title="Sweep: the defaults, the adaptive close, other batch size x wait, variants"
    )
    names = (
        "variant",
        "batch",
        "wait s",
        "target s",
        "msgs/s",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "at /s",
        "peak MiB",
    )
    for name in names:
        table.add_column(name, justify="right")
    table.add_column("load (1 min) start → end", justify="right")
    for index, point in enumerate(results["sweep"]):
        lat = point["latency"]
        table.add_row(
            point.get("variant", "the defaults" if index == 0 else ""),
            str(point["batch_size"]),
            f"{point['max_wait_s']:g}",
            f"{point.get('latency_target_s') or 0:g}",
            _f(point["messages"]["steady_per_s"]),
            _f(lat["p50_ms"]),
            _f(lat["p95_ms"]),
            _f(lat["p99_ms"]),
            _f(lat["offered_per_s"]),
            _f(point["memory"]["vmhwm_mib"], 0),
            f"{point['load_average_start'][0]:.1f} → {point['load_average_end'][0]:.1f}",
        )
    return table


CPU_PARTS = {
    "worker_inference": "worker: inference threads",
    "worker_loop_and_clients": "worker: event loop, Faust, Kafka clients",
    "bench_clients": "bench: load generator and collector",
    "broker_and_rest": "broker and everything else",
    "idle": "idle",
}


def _cpu_table(cpu: dict[str, Any], cores: int) -> Table:
    table = Table(title=f"Where the {cores} cores went during the saturation floods (/proc)")
    table.add_column("part")
    for path in cpu:
        table.add_column(f"{path}: cores, median (min-max)", justify="right")
    for part, label in CPU_PARTS.items():
        table.add_row(
            label, *(f"{_f(cpu[p][part]['median'], 2)} {_spread(cpu[p][part], 2)}" for p in cpu)
        )
    return table


def _profile_table(profile: dict[str, Any]) -> Table:
    title = f"Profile (py-spy, {profile['duration_s']:.0f}s at {profile['rate_hz']} Hz)"
    table = Table(title=title)
    table.add_column("component (innermost match)")
    table.add_column("CPU s", justify="right")
    table.add_column("share", justify="right")
    for name, seconds in profile["components_cpu_s"].items():
        table.add_row(name, _f(seconds, 2), f"{profile['components_share'][name]:.0%}")
    busy = ", ".join(f"{t} {s:.0%}" for t, s in profile["thread_busy_share"].items())
    table.caption = f"thread busy (share of wall time): {busy}"
    return table


def print_report(results: dict[str, Any], console: Console) -> None:
    m = results["machine"]
    console.print(
        f"[bold]streamsense bench[/] ({results['mode']}) {results['started_at']} on "
        f"{m['cpu_model']}, {m['usable_cores']} cores, load {m['load_average_start']} → "
        f"{m['load_average_end']}; serving {results['models']['served_precision']} on "
        f"{results['models']['provider']}; took {results['duration_s']:.0f}s"
    )
    console.print(_ceiling_table(results))
    console.print(_main_table(results))
    console.print(f"like with like: {results['comparison']['basis']}")
    cpu = (results["pipeline"].get("rounds") or {}).get("cpu")
    if cpu:
        console.print(_cpu_table(cpu, m["logical_cores"]))
    console.print(_sweep_table(results))
    profile = results.get("profile") or {}
    if profile.get("components_cpu_s"):
        console.print(_profile_table(profile))


def _clean(value: Any) -> Any:
    """NaN becomes null: JSON has no NaN."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def write_json(results: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(_clean(results), indent=2) + "\n", encoding="utf-8")


def write_plot(results: dict[str, Any], path: Path) -> None:
    """Latency against throughput: the sweep, the headline latency run, ceiling and naive."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 5))
    sweep = results["sweep"]
    common = sweep[-1]["latency"]["offered_per_s"] if sweep else math.nan
    for point in sweep:
        x = point["messages"]["steady_per_s"]
        y = point["latency"]["p95_ms"]
        ax.scatter([x], [y], color="tab:blue")
        ax.annotate(f"bs {point['batch_size']}, {point['max_wait_s']:g}s", (x, y), fontsize=8)
    ax.scatter([], [], color="tab:blue", label=f"sweep: saturation msgs/s vs p95 at {common:.0f}/s")
    lat = results["pipeline"]["latency"]
    for q, marker in (("p50_ms", "v"), ("p95_ms", "o"), ("p99_ms", "^")):
        ax.scatter(
            [lat["offered_per_s"]],
            [lat[q]],
            marker=marker,
            color="tab:orange",
            label=f"latency run {q[:3]} (paced)",
        )
    comp = results["comparison"]
    ax.axvline(comp["ceiling_messages_per_s"], color="tab:green", ls="--", label="ceiling")
    ax.axvline(comp["naive_messages_per_s"], color="tab:red", ls=":", label="naive recipe")
    ax.axhline(100, color="grey", lw=0.8, label="100 ms")
    ax.set_xlabel("messages/s (customer messages: intent + sentiment)")
    ax.set_ylabel("produce → output latency (ms)")
    ax.set_yscale("log")
    ax.set_xlim(left=0)
    ax.set_title(f"streamsense bench {results['started_at']} ({results['mode']})")
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
