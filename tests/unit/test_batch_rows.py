"""Table rows in micro-batches: faust-streaming #497 shown on faust's own agent, and the
workaround (``streams.runtime.tables``) that writes each row to its record's partition.

Faust decides a table row's changelog partition from the *current event*. Inside a
``noack_take`` batch there is none: the first test shows it on faust's real agent and
table (it is expected to fail once upstream sets one, and then the workaround can go).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import faust
import pytest

from streams.errors import InvalidRecordError
from streams.runtime.tables import BatchRows, OneRow, ParsedRows, as_current


def _in_a_batch(check: Callable[[Any, list[Any]], Any]) -> list[Any]:
    """Run ``check(table, events)`` inside a real faust agent's ``noack_take`` batch of one
    record per partition 0-3; return what it returned."""
    app = faust.App("test-batch-rows", store="memory://", web_enabled=False)
    topic = app.topic("src", key_serializer="raw", value_serializer="raw")
    table = app.Table("rows", partitions=4)
    seen: list[Any] = []

    async def agent(stream: Any) -> None:
        async for events in stream.noack_take(4, within=0.05):
            seen.append(check(table, events))
            for event in events:
                await stream.ack(event)

    handle = app.agent(topic, name="rows-agent")(agent)

    async def main() -> None:
        async with handle.test_context() as running:
            for partition in range(4):
                await running.put(b"v", key=f"k{partition}".encode(), partition=partition)
            for _ in range(100):
                if seen:
                    break
                await asyncio.sleep(0.01)

    asyncio.run(main())
    return seen


def test_upstream_a_table_write_in_a_take_batch_has_no_partition() -> None:
    def write(table: Any, events: list[Any]) -> str:
        with pytest.raises(TypeError, match="outside of stream iteration"):
            table.partition_for_key("k0")
        return "refused"

    assert _in_a_batch(write) == ["refused"]


def test_each_row_goes_to_the_partition_of_the_record_that_wrote_it() -> None:
    def partitions(table: Any, events: list[Any]) -> list[tuple[int, int | None]]:
        out = []
        for event in events:
            with as_current(event):
                out.append((event.message.partition, table.partition_for_key("any key")))
        return out

    [pairs] = _in_a_batch(partitions)
    assert pairs == [(p, p) for p in range(4)]


class _Table(dict[str, Any]):
    """A dict that logs the partition of the current event at every write."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[tuple[str, int]] = []

    def __setitem__(self, key: str, value: Any) -> None:
        from faust.streams import current_event

        event = current_event()
        assert event is not None
        self.writes.append((key, event.message.partition))
        super().__setitem__(key, value)


class _Message:
    def __init__(self, partition: int) -> None:
        self.partition = partition


class _Event:
    def __init__(self, partition: int) -> None:
        self.message = _Message(partition)


def test_a_batch_sees_its_own_updates_and_writes_only_on_write() -> None:
    table = _Table()
    table.update({"a": {"n": 1}})
    rows = BatchRows(table, OneRow(lambda raw: int(raw["n"]), lambda n: {"n": n}), "counts")
    assert rows.get("a") == 1 and rows.get("b") is None
    rows.put("a", 2, _Event(3))
    rows.put("b", 7, _Event(1))
    rows.put("a", 3, _Event(2))  # the same key again: the last record's partition
    assert rows.get("a") == 3 and table.writes == []
    rows.write()
    assert table.writes == [("a", 2), ("b", 1)]
    assert dict(table) == {"a": {"n": 3}, "b": {"n": 7}}


def test_a_row_the_worker_wrote_is_not_parsed_again_but_a_recovered_one_is() -> None:
    parses: list[Any] = []

    def parse(raw: Any) -> int:
        parses.append(raw)
        return int(raw["n"])

    table = _Table()
    table.update({"a": {"n": 1}})
    parsed: ParsedRows[int] = ParsedRows()
    rows = BatchRows(table, OneRow(parse, lambda n: {"n": n}), "counts", parsed)
    assert rows.get("a") == 1 and len(parses) == 1
    rows.put("a", 5, _Event(0))
    rows.write()

    following = BatchRows(table, OneRow(parse, lambda n: {"n": n}), "counts", parsed)
    assert following.get("a") == 5 and len(parses) == 1  # the row it wrote: known

    dict.__setitem__(table, "a", {"n": 9})  # recovered from the changelog: a new object
    again = BatchRows(table, OneRow(parse, lambda n: {"n": n}), "counts", parsed)
    assert again.get("a") == 9 and len(parses) == 2

    dict.__setitem__(table, "b", {"n": "not a number"})
    broken = BatchRows(table, OneRow(parse, lambda n: {"n": n}), "counts", parsed)
    with pytest.raises(InvalidRecordError) as caught:
        broken.get("b")
    broken.drop_if_unreadable("b", _Event(1), caught.value)
    broken.write()
    assert "b" not in table and broken.get("b") is None


def test_parsed_rows_keep_the_most_recently_stored_keys() -> None:
    parsed: ParsedRows[int] = ParsedRows(limit=2)
    rows = [{"n": n} for n in range(3)]
    for n, row in enumerate(rows):
        parsed.store(f"k{n}", row, n)
    assert len(parsed) == 2
    assert parsed.lookup("k0", rows[0]) is None
    assert parsed.lookup("k2", rows[2]) == 2
    assert parsed.lookup("k2", {"n": 2}) is None  # an equal row, not the same one
