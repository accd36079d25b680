"""The intent monitor's work per routed message, as its agent does it, no Kafka.

    python -m bench.monitors [--windows 200 1000 3000] [--batches 60] [--rounds 5]

Twenty intents (a skewed mix, as the intent model predicts them), each window pre-filled
to W items; then batches of 64 routed messages: a key's state is taken from the parsed
states the agent keeps (:class:`streams.runtime.tables.ParsedRows`) or parsed from its row,
updated per message, and turned into its row and JSON once per batch, as
``BatchRows.write`` and Faust's JSON codec do. Prints the median microseconds per message
over the rounds for each window size. Before 2026-12-06 (a95a268) the same work cost 156,
567 and 1,744 µs per message at 200, 1,000 and 3,000 items (README, Benchmarks).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from streams.core.intent_monitor import IntentEvent, IntentParams, IntentState, update_intent
from streams.runtime.tables import ParsedRows

INTENTS = [f"intent{i}" for i in range(20)]
WEIGHTS = [1 / (i + 1) for i in range(20)]
BATCH = 64


def _filled(window: int, params: IntentParams, now: datetime) -> dict[str, dict[str, Any]]:
    rows = {}
    start = now - timedelta(seconds=200)
    for intent in INTENTS:
        state: IntentState | None = None
        for k in range(window):
            at = start + timedelta(milliseconds=10 * k)
            event = IntentEvent(intent, f"pre-{intent}-{k:06d}", at, "v1")
            state, _ = update_intent(state, event, params, now=now)
        assert state is not None
        rows[intent] = state.to_dict()
    return rows


def per_message_us(window: int, batches: int, seed: int = 1) -> float:
    """Microseconds of monitor work per routed message at ``window`` items per intent."""
    rng = random.Random(seed)
    params = IntentParams()
    now = datetime(2026, 12, 6, 12, tzinfo=UTC)
    table = _filled(window, params, now)
    parsed: ParsedRows[IntentState] = ParsedRows()
    n = 0
    started = time.perf_counter()
    for b in range(batches):
        seen: dict[str, IntentState] = {}
        for m in range(BATCH):
            intent = rng.choices(INTENTS, WEIGHTS)[0]
            state = seen.get(intent)
            if state is None:
                raw = table[intent]
                state = parsed.lookup(intent, raw) or IntentState.from_dict(raw)
            at = now + timedelta(milliseconds=n)
            n += 1
            event = IntentEvent(intent, f"m-{b}-{m}", at, "v1")
            seen[intent], _ = update_intent(state, event, params, now=now + timedelta(seconds=1))
        for intent, state in seen.items():
            row = state.to_dict()
            json.dumps(row)
            table[intent] = row
            parsed.store(intent, row, state)
    return (time.perf_counter() - started) / (batches * BATCH) * 1e6


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--windows", type=int, nargs="+", default=[200, 1000, 3000])
    parser.add_argument("--batches", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    for window in args.windows:
        times = [per_message_us(window, args.batches) for _ in range(args.rounds)]
        print(f"window {window} items: {statistics.median(times):.0f} us per message")


if __name__ == "__main__":
    main()
