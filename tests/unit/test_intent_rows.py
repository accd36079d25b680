"""The intent monitor's rows (``IntentRows``): a head row and one row per chunk of the
window, so a batch rewrites the chunks it changed; and a crash at any point of a batch's
writes, then the redelivery of the batch, counts every message once."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from streams.core.intent_monitor import (
    IntentEvent,
    IntentParams,
    IntentState,
    WindowChunk,
    update_intent,
)
from streams.errors import InvalidRecordError
from streams.runtime.monitor_agents import IntentRows, check_intent, chunk_key
from streams.runtime.tables import BatchRows, ParsedRows

PARAMS = IntentParams()
T0 = datetime(2026, 12, 6, 9, tzinfo=UTC)
NOW = datetime(2030, 1, 1, tzinfo=UTC)
INTENT = "card_not_working"


class _Event:
    """A record as ``BatchRows.write`` sees it: something to set as Faust's current event."""


class _Table(dict[str, Any]):
    """A table that keeps every write and delete in order, values as JSON (like the
    changelog)."""

    def __init__(self, rows: dict[str, Any] | None = None) -> None:
        super().__init__(rows or {})
        self.log: list[tuple[str, str, Any]] = []

    def __setitem__(self, key: str, value: Any) -> None:
        value = json.loads(json.dumps(value))
        self.log.append(("set", key, value))
        super().__setitem__(key, value)

    def __delitem__(self, key: str) -> None:
        self.log.append(("del", key, None))
        super().__delitem__(key)


def _messages(start: datetime, count: int, step_s: float, prefix: str) -> list[IntentEvent]:
    return [
        IntentEvent(INTENT, f"{prefix}-{n}", start + timedelta(seconds=step_s * n), "i1")
        for n in range(count)
    ]


def _pairs(prefix: str, start_s: float, count: int) -> list[tuple[str, float]]:
    """(id, time) of ``_messages(T0 + start_s, count, 1.0, prefix)``."""
    return [
        (f"{prefix}-{n}", (T0 + timedelta(seconds=start_s + n)).timestamp()) for n in range(count)
    ]


def _batch(
    table: _Table, events: Iterable[IntentEvent], parsed: ParsedRows[IntentState] | None = None
) -> IntentState:
    """One intent-monitor batch over ``table``: read, update per message, write."""
    rows = BatchRows(table, IntentRows(), "intent-state", parsed)
    for event in events:
        state, _ = update_intent(rows.get(event.intent), event, PARAMS, now=NOW)
        rows.put(event.intent, state, _Event())
    rows.write()
    state = rows.get(INTENT)
    assert state is not None
    return state


def _read(table: dict[str, Any]) -> IntentState:
    return IntentRows().read(INTENT, table[INTENT], table.get)


def test_a_batch_writes_the_chunks_it_changed_then_the_head() -> None:
    table = _Table()
    parsed: ParsedRows[IntentState] = ParsedRows()
    before = _batch(table, _messages(T0, 300, 1.0, "old"), parsed)  # 5 minutes, 1 a second
    assert len(before.chunks) == 30
    assert set(table) == {INTENT, *(chunk_key(INTENT, c.index) for c in before.chunks[:-1])}

    table.log.clear()
    after = _batch(table, _messages(T0 + timedelta(seconds=300), 3, 1.0, "new"), parsed)
    # the new messages open a chunk: the one before is sealed, a row of its own; the window
    # slid by 3 s, but the oldest chunk keeps its row until all of it has left
    assert [(op, key) for op, key, _ in table.log] == [
        ("set", chunk_key(INTENT, before.chunks[-1].index)),
        ("set", INTENT),
    ]
    assert table[INTENT]["open"]["ids"] == ["new-0", "new-1", "new-2"]
    assert after.window(PARAMS) == [*before.window(PARAMS)[3:], *_pairs("new", 300, 3)]
    assert _read(table) == after

    table.log.clear()
    more = _batch(table, _messages(T0 + timedelta(seconds=303), 2, 1.0, "more"), parsed)
    assert [(op, key) for op, key, _ in table.log] == [("set", INTENT)]  # the head alone
    assert _read(table) == more and more.count(PARAMS) == 300

    table.log.clear()
    later = _batch(table, _messages(T0 + timedelta(seconds=318), 2, 1.0, "later"), parsed)
    gone_before = {c.index for c in more.chunks} - {c.index for c in later.chunks}
    gone = gone_before
    head = table.log.index(("set", INTENT, table[INTENT]))
    assert gone and [(op, key) for op, key, _ in table.log[head + 1 :]] == [
        ("del", chunk_key(INTENT, i)) for i in sorted(gone)
    ]
    assert all(op == "set" for op, _, _ in table.log[:head])
    assert _read(table) == later and all(chunk_key(INTENT, i) not in table for i in gone)


def test_a_row_of_the_whole_window_is_rewritten_as_head_and_chunks() -> None:
    """A changelog written before the window was split holds it whole under the intent:
    the next batch reads it and writes it back as a head and its chunks."""
    state: IntentState | None = None
    for event in _messages(T0, 120, 2.0, "old"):
        state, _ = update_intent(state, event, PARAMS, now=NOW)
    assert state is not None and len(state.chunks) > 1
    whole = {k: v for k, v in state.head_row().items() if k not in ("chunks", "chunk_s", "open")}
    window = state.window(PARAMS)
    ids, times = tuple(i for i, _ in window), tuple(t for _, t in window)
    whole.update(WindowChunk(0, ids, times).to_row(), bucket_count=3)
    table = _Table({INTENT: whole})

    after = _batch(table, _messages(T0 + timedelta(seconds=240), 1, 1.0, "new"))
    assert after.window(PARAMS) == [*window, *_pairs("new", 240, 1)]
    assert IntentState.is_head_row(table[INTENT]) and _read(table) == after
    assert {key for op, key, _ in table.log} == {
        INTENT,
        *(chunk_key(INTENT, chunk.index) for chunk in after.chunks[:-1]),
    }


def test_a_crash_at_any_point_of_a_batch_write_then_its_redelivery_counts_each_message_once() -> (
    None
):
    """A batch whose messages close a bucket (the EWMA takes the bucket's count) is cut
    after each of its writes in turn, as a crash leaves a changelog partition; the rows are
    read back by a fresh worker (nothing cached), the batch is redelivered, and one more
    batch closes the next bucket. Every cut ends in the state of the run without a crash."""
    history = _messages(T0, 400, 0.75, "old")  # 5 minutes, several closed buckets
    batch = [
        *_messages(T0 + timedelta(seconds=299), 20, 0.05, "a"),  # the open bucket
        *_messages(T0 + timedelta(seconds=301), 20, 0.5, "b"),  # the next: closes it
    ]
    closing = _messages(T0 + timedelta(seconds=420), 3, 1.0, "c")

    start = _Table()
    _batch(start, history)
    reference = _Table(copy.deepcopy(dict(start)))
    _batch(reference, batch)
    writes = list(reference.log)
    assert ("set", INTENT) in [w[:2] for w in writes] and "del" in [w[0] for w in writes]
    expected = _batch(reference, closing)

    for cut in range(len(writes)):
        table = _Table(copy.deepcopy(dict(start)))
        for op, key, value in writes[:cut]:
            if op == "set":
                dict.__setitem__(table, key, value)
            else:
                dict.__delitem__(table, key)
        _batch(table, batch)  # redelivered: the batch was not acked
        final = _batch(table, closing)
        assert final.window(PARAMS) == expected.window(PARAMS), cut
        assert (final.bucket, final.buckets_seen, final.watermark) == (
            expected.bucket,
            expected.buckets_seen,
            expected.watermark,
        ), cut
        assert final.ewma == pytest.approx(expected.ewma, rel=1e-12), cut


def test_an_intent_that_could_be_taken_for_a_chunk_key_is_refused() -> None:
    check_intent("card_not_working")
    with pytest.raises(InvalidRecordError) as refused:
        check_intent(chunk_key("card_not_working", 178_000_000))
    assert refused.value.reason == "invalid_key"
