"""Two settings of the worker head to head: fresh workers, in alternating order.

    python -m bench.ab --registry registry [--repeats 4] [--rate 120] [--messages 2000]
        [--latency-s 20] [--a-source DIR] [SETTING=VALUE ...]

Arm A is the worker's defaults, arm B the defaults with the given settings (``Settings``
field names, e.g. ``producer_linger_s=0``). With ``--a-source``, arm A's workers run the
code of another checkout instead (``git worktree add DIR <revision>``): two revisions head to
head, at their own defaults plus any settings given (arm B's only). Each repeat starts one
fresh worker per arm, A then B in even repeats and B then A in odd ones, so neither arm
always runs on the warmer machine: a backlog of customer messages (its saturation rate),
then a run paced at ``--rate`` (p50 and p99 produce → output, the same pace for both arms).
Prints a line per worker, then per arm the medians and the pairs it won, and the load
average.

``make bench`` measures each setting once, on one backlog of 600 messages; a default is
decided here, where the spread between repeats of one arm shows what a difference is worth.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.cluster import kafka_cluster
from bench.machine import load_average
from bench.pipeline import PointPlan, bench_texts, run_point
from bench.registry_setup import prepare_registry
from bench.report import phase_line
from streams.settings import Settings

MEASURES = ("rate", "p50_ms", "p99_ms")
HIGHER_IS_BETTER = {"rate": True, "p50_ms": False, "p99_ms": False}


def _overrides(pairs: Sequence[str]) -> dict[str, str]:
    fields = Settings.model_fields
    overrides = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or name not in fields:
            raise SystemExit(f"{pair!r}: expected SETTING=VALUE with a Settings field name")
        overrides[name] = value
    return overrides


def order(repeat: int) -> tuple[str, str]:
    """The arms' order in one repeat: A first in even repeats, B first in odd ones."""
    return ("A", "B") if repeat % 2 == 0 else ("B", "A")


def summary(rows: Sequence[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per arm and measure: the median, and the pairs (repeats) in which the arm did better."""
    out: dict[str, dict[str, float]] = {}
    repeats = sorted({row["repeat"] for row in rows})
    by = {(row["repeat"], row["arm"]): row for row in rows}
    for arm, other in (("A", "B"), ("B", "A")):
        mine = [row for row in rows if row["arm"] == arm]
        result: dict[str, float] = {}
        for measure in MEASURES:
            result[measure] = statistics.median(row[measure] for row in mine)
            sign = 1 if HIGHER_IS_BETTER[measure] else -1
            result[f"{measure}_won"] = sum(
                sign * (by[(r, arm)][measure] - by[(r, other)][measure]) > 0
                for r in repeats
                if (r, arm) in by and (r, other) in by
            )
        out[arm] = result
    return out


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--registry", type=Path, required=True, help="read only")
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--rate", type=float, default=120.0, help="paced messages/s")
    parser.add_argument("--messages", type=int, default=2000, help="backlog per worker")
    parser.add_argument("--latency-s", type=float, default=20.0, help="paced run length")
    parser.add_argument(
        "--a-source", type=Path, help="arm A runs the code of this checkout (a git worktree)"
    )
    parser.add_argument("settings", nargs="*", metavar="SETTING=VALUE", help="arm B")
    args = parser.parse_args(argv)
    if not args.settings and args.a_source is None:
        parser.error("give arm B's SETTING=VALUE, or --a-source for arm A's code, or both")
    if args.a_source is not None and not (args.a_source / "streams" / "cli").is_dir():
        parser.error(f"--a-source {args.a_source}: no streams/cli there (not a checkout)")
    overrides = _overrides(args.settings)
    settings = Settings()
    plan = PointPlan(
        batch_size=settings.batch_size,
        max_wait_s=settings.batch_max_wait_s,
        latency_target_s=settings.latency_target_s,
        messages=args.messages,
        news=0,
        latency_rate=args.rate,
        latency_s=args.latency_s,
        load_fraction=0.5,
        profile_messages=0,
    )
    arms = {"A": {}, "B": overrides}
    a_label = f"the code in {args.a_source}" if args.a_source else "the defaults"
    b_label = " ".join(args.settings) or "this checkout's code"
    print(f"A: {a_label}; B: {b_label}; load at start {load_average()}")
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="streamsense-ab-") as scratch_dir:
        scratch = Path(scratch_dir)
        registry = prepare_registry(
            args.registry, settings.data_dir, quick=True, scratch=scratch / "reg"
        )
        texts = bench_texts(settings.data_dir)
        with kafka_cluster(settings) as (bootstrap, _):
            for repeat in range(args.repeats):
                for arm in order(repeat):
                    workdir = scratch / f"{repeat}-{arm}"
                    source = args.a_source if arm == "A" else None
                    point = run_point(
                        settings, bootstrap, registry, workdir, texts, plan, arms[arm], source
                    )
                    row = {
                        "repeat": repeat,
                        "arm": arm,
                        "rate": float(point["messages"]["steady_per_s"]),
                        "p50_ms": float(point["latency"]["p50_ms"]),
                        "p99_ms": float(point["latency"]["p99_ms"]),
                    }
                    rows.append(row)
                    print(
                        f"repeat {repeat} {arm}: {row['rate']:.1f} messages/s, p50 "
                        f"{row['p50_ms']:.0f} ms, p99 {row['p99_ms']:.0f} ms at "
                        f"{args.rate:g}/s, load {load_average()[0]:.2f}",
                        flush=True,
                    )
                    phases = point["latency"].get("phases")
                    if phases:
                        print(f"  message scorer per batch: {phase_line(phases)}")
    for arm, result in summary(rows).items():
        print(
            f"{arm} median: {result['rate']:.1f} messages/s (better in "
            f"{result['rate_won']:.0f} of {args.repeats} pairs), p50 {result['p50_ms']:.0f} ms "
            f"({result['p50_ms_won']:.0f}), p99 {result['p99_ms']:.0f} ms "
            f"({result['p99_ms_won']:.0f})"
        )
    print(f"load at end {load_average()}")


if __name__ == "__main__":
    main()
