"""Rates and percentiles from timestamps."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100), linear interpolation; NaN when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def output_rate(times: Sequence[float], expected: int) -> dict[str, float]:
    """Throughput from output arrival times: first to last, and steady (10th-90th output)."""
    ordered = sorted(times)
    n = len(ordered)
    span = ordered[-1] - ordered[0] if n > 1 else 0.0
    first_to_last = (n - 1) / span if span > 0 else math.nan
    lo, hi = int(n * 0.1), max(int(n * 0.9) - 1, 0)
    steady_span = ordered[hi] - ordered[lo] if hi > lo else 0.0
    steady = (hi - lo) / steady_span if steady_span > 0 else first_to_last
    return {
        "count": float(n),
        "expected": float(expected),
        "duration_s": span,
        "first_to_last_per_s": first_to_last,
        "steady_per_s": steady,
    }


def latency_ms(sent: Mapping[str, float], received: Mapping[str, float]) -> dict[str, float]:
    """p50/p95/p99/max of receive - send (ms) over the ids that arrived; and how many did."""
    values = [(received[i] - t) * 1000 for i, t in sent.items() if i in received]
    return {
        "sent": float(len(sent)),
        "received": float(len(values)),
        "p50_ms": percentile(values, 50),
        "p95_ms": percentile(values, 95),
        "p99_ms": percentile(values, 99),
        "max_ms": max(values) if values else math.nan,
    }


def combined_rate(*rates: float) -> float:
    """Items per second when each item passes every stage in turn: 1 / sum(1 / rate)."""
    if any(r <= 0 or math.isnan(r) for r in rates):
        return math.nan
    return 1.0 / sum(1.0 / r for r in rates)


PhaseTotals = Mapping[str, tuple[float, float]]
"""Per phase of the message scorer's batches: (batches, seconds) observed so far."""


def phase_split(before: PhaseTotals, after: PhaseTotals) -> dict[str, dict[str, float]]:
    """What the message scorer's batches spent in each phase between two scrapes of the
    worker's ``streamsense_batch_phase_seconds``: milliseconds per batch and share of the
    agent's time, per phase (batches: counted by the last phase, ``ack``); empty when the
    worker exports no phases (a revision older than the metric)."""
    if not after:
        return {}
    spent = {phase: after[phase][1] - before.get(phase, (0.0, 0.0))[1] for phase in after}
    batches = after.get("ack", (0.0, 0.0))[0] - before.get("ack", (0.0, 0.0))[0]
    total = sum(spent.values())
    return {
        phase: {
            "ms_per_batch": seconds * 1000 / batches if batches else math.nan,
            "share": seconds / total if total > 0 else math.nan,
        }
        for phase, seconds in spent.items()
    }
