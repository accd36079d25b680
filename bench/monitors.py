"""The monitors' work per record, as their agents do it, no Kafka.

    python -m bench.monitors [--windows 200 1000 3000] [--ticker-windows 100 300 1000]
                             [--batches 60] [--rounds 5]

Twenty intents (a skewed mix, as the intent model predicts them), each window pre-filled
to W items over its five minutes; then batches of 64 routed messages, a few milliseconds
apart: each batch reads its states through :class:`streams.runtime.tables.BatchRows` (from
the parsed states the agent keeps, or from the rows), updates them per message, and writes
its rows back, each turned into JSON as Faust's codec does. Prints, per window size, the
median microseconds and the bytes of rows written per message over the rounds.

Before 2026-12-06 (a95a268) the same work cost 156, 567 and 1,744 µs per message at 200,
1,000 and 3,000 items; with the window in one row (d722347) 28, 63 and 156 µs and 0.8, 4.5
and 13 KB per message (README, Benchmarks).

The ticker monitor likewise: five tickers (a skewed mix), each window pre-filled to W items
over its fifteen minutes, then batches of 64 scored items; each ticker's row is one JSON
row per batch that touched it.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from streams.core.intent_monitor import IntentEvent, IntentParams, IntentState, update_intent
from streams.core.ticker_monitor import NewsEvent, TickerParams, TickerState, update_ticker
from streams.runtime.monitor_agents import IntentRows
from streams.runtime.tables import BatchRows, OneRow, ParsedRows

INTENTS = [f"intent{i}" for i in range(20)]
WEIGHTS = [1 / (i + 1) for i in range(20)]
TICKERS = ["ACME", "NOKIA", "UPM", "KNEBV", "FORTUM"]
HEADLINE = "Acme shares rise after a strong quarter and upbeat guidance from its management"
BATCH = 64


class _Event:
    """What ``BatchRows.write`` needs of a record: something to set as Faust's current event."""


class _JsonTable(dict[str, Any]):
    """A table that counts the JSON bytes of every row written to it."""

    written = 0

    def __setitem__(self, key: str, value: Any) -> None:
        self.written += len(json.dumps(value))
        super().__setitem__(key, value)


def _filled(window: int, params: IntentParams, now: datetime) -> _JsonTable:
    table = _JsonTable()
    step = params.window.total_seconds() / window
    codec = IntentRows()
    for intent in INTENTS:
        state: IntentState | None = None
        for k in range(window):
            at = now - params.window + timedelta(seconds=step * (k + 0.5))
            event = IntentEvent(intent, f"pre-{intent}-{k:06d}", at, "v1")
            state, _ = update_intent(state, event, params, now=now)
        assert state is not None
        row, beside, _ = codec.write(intent, None, None, state)
        table.update(beside)
        table[intent] = row
    table.written = 0
    return table


def _timed(
    table: _JsonTable,
    codec: Any,
    name: str,
    batches: int,
    record: Callable[[int, int, int], tuple[str, Any]],
    update: Callable[[Any, Any], tuple[Any, list[Any]]],
) -> tuple[float, float]:
    """(microseconds, bytes of rows written) per record over ``batches`` batches of
    ``BATCH``: ``record(batch, position, n)`` gives a record's key and event, ``update``
    the monitor's step."""
    parsed: ParsedRows[Any] = ParsedRows()
    event = _Event()
    n = 0
    started = time.perf_counter()
    for b in range(batches):
        rows = BatchRows(table, codec, name, parsed)
        for m in range(BATCH):
            key, item = record(b, m, n)
            n += 1
            state, _ = update(rows.get(key), item)
            rows.put(key, state, event)
        rows.write()
    elapsed = time.perf_counter() - started
    return elapsed / n * 1e6, table.written / n


def per_message(window: int, batches: int, seed: int = 1) -> tuple[float, float]:
    """(microseconds, bytes of rows written) per routed message at ``window`` items per
    intent."""
    rng = random.Random(seed)
    params = IntentParams()
    now = datetime(2026, 12, 6, 12, tzinfo=UTC)

    def record(b: int, m: int, n: int) -> tuple[str, IntentEvent]:
        intent = rng.choices(INTENTS, WEIGHTS)[0]
        at = now + timedelta(milliseconds=4 * n)
        return intent, IntentEvent(intent, f"m-{b}-{m}", at, "v1")

    def update(state: IntentState | None, routed: IntentEvent) -> tuple[IntentState, list[Any]]:
        return update_intent(state, routed, params, now=now + timedelta(seconds=60))

    table = _filled(window, params, now)
    return _timed(table, IntentRows(), "intent-state", batches, record, update)


def ticker_per_item(window: int, batches: int, seed: int = 1) -> tuple[float, float]:
    """(microseconds, bytes of rows written) per scored item at ``window`` items per
    ticker."""
    rng = random.Random(seed)
    params = TickerParams()
    now = datetime(2026, 12, 6, 12, tzinfo=UTC)
    table = _JsonTable()
    step = params.retention.total_seconds() / window
    for ticker in TICKERS:
        state: TickerState | None = None
        for k in range(window):
            at = now - params.retention + timedelta(seconds=step * (k + 0.5))
            news = NewsEvent(ticker, f"pre-{k}", HEADLINE, rng.uniform(-1, 1), at, "s1")
            state, _ = update_ticker(state, news, params, now=now)
        assert state is not None
        table[ticker] = state.to_dict()
    table.written = 0
    weights = [1 / (i + 1) for i in range(len(TICKERS))]

    def record(b: int, m: int, n: int) -> tuple[str, NewsEvent]:
        ticker = rng.choices(TICKERS, weights)[0]
        at = now + timedelta(milliseconds=20 * n)
        return ticker, NewsEvent(ticker, f"n-{b}-{m}", HEADLINE, rng.uniform(-1, 1), at, "s1")

    def update(state: TickerState | None, news: NewsEvent) -> tuple[TickerState, list[Any]]:
        return update_ticker(state, news, params, now=now + timedelta(seconds=60))

    codec = OneRow(TickerState.from_dict, TickerState.to_dict)
    return _timed(table, codec, "ticker-state", batches, record, update)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--windows", type=int, nargs="+", default=[200, 1000, 3000])
    parser.add_argument("--ticker-windows", type=int, nargs="*", default=[100, 300, 1000])
    parser.add_argument("--batches", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    measures = [("window", "message", per_message, w) for w in args.windows]
    measures += [("ticker window", "item", ticker_per_item, w) for w in args.ticker_windows]
    for label, unit, measure, window in measures:
        runs = [measure(window, args.batches) for _ in range(args.rounds)]
        micros = statistics.median(us for us, _ in runs)
        written = statistics.median(size for _, size in runs)
        print(
            f"{label} {window} items: {micros:.0f} us per {unit},"
            f" {written / 1000:.1f} KB of rows per {unit}"
        )


if __name__ == "__main__":
    main()
