"""Faust table rows as a micro-batch sees them, written back after the batch's outputs.

A Faust table writes a row's changelog record to the partition of the *current event*, a
context variable that Faust's stream iteration sets (``Collection.partition_for_key``). In
a batched agent (``noack_take``) the buffer is filled by a background task, so the agent's
own context holds no current event (a write fails with ``TypeError``) or a stale one (the
row lands in another partition's changelog and is recovered by the wrong worker after a
rebalance): faust-streaming issue #497. :class:`BatchRows` therefore writes each row with
the current event set to the record that produced it, so its changelog partition is the
partition of the record's key, as in a one-record-at-a-time agent.

This reads one private name of faust-streaming, ``faust.streams._current_event``; the
release is pinned (``streams.runtime.faust_guard`` refuses to start on another) and
``tests/unit/test_batch_rows.py`` shows the upstream behaviour this corrects.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Callable, Iterator
from typing import Any, Generic, Protocol, TypeVar

from faust.streams import _current_event

from streams.errors import InvalidRecordError
from streams.runtime.intake import INVALID_STATE, read_state

S = TypeVar("S")


@contextlib.contextmanager
def as_current(event: Any) -> Iterator[None]:
    """Run the block with ``event`` as Faust's current event (a table write's partition)."""
    token = _current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        _current_event.reset(token)


class ParsedRows(Generic[S]):
    """The parsed state of each row a worker last read or wrote, by key, so a batch parses
    a row only when the table holds one it has not seen (recovered from the changelog at
    start or after a rebalance).

    A hit needs the very row object: Faust's in-memory store keeps the value it was given
    and hands it back unchanged, so identity is proof that the state is the row's. Parsing
    an intent's window back from its row for every batch cost the worker 4 % of its CPU
    in ``make bench``. Holds at most ``limit`` keys, the least recently stored dropped
    first.
    """

    def __init__(self, limit: int = 4096) -> None:
        self.limit = limit
        self._entries: dict[str, tuple[Any, S]] = {}

    def lookup(self, key: str, raw: Any) -> S | None:
        """The state parsed from ``raw`` when it was stored for ``key``, else None."""
        entry = self._entries.get(key)
        if entry is None or entry[0] is not raw:
            return None
        return entry[1]

    def store(self, key: str, raw: Any, state: S) -> None:
        """Remember that ``raw`` (the row now in the table for ``key``) parses to ``state``."""
        self._entries.pop(key, None)
        self._entries[key] = (raw, state)
        if len(self._entries) > self.limit:
            del self._entries[next(iter(self._entries))]

    def drop(self, key: str) -> None:
        """Forget ``key`` (its row was deleted)."""
        self._entries.pop(key, None)

    def __len__(self) -> int:
        return len(self._entries)


class RowCodec(Protocol[S]):
    """How a state is stored in a table: a row under its key, and maybe rows beside it."""

    def read(self, key: str, row: Any, fetch: Callable[[str], Any]) -> S:
        """The state of ``key`` from its row (never empty); ``fetch`` reads another row."""
        ...

    def write(
        self, key: str, stored: Any, before: S | None, after: S
    ) -> tuple[Any, dict[str, Any], list[str]]:
        """What storing ``after`` writes, given the row ``stored`` under ``key`` (None for
        none) and the state ``before`` read from it: (the key's row, rows beside it to
        write, keys beside it to delete)."""
        ...


class OneRow(Generic[S]):
    """A state stored as one row under its key."""

    def __init__(self, parse: Callable[[Any], S], dump: Callable[[S], dict[str, Any]]) -> None:
        self.parse = parse
        self.dump = dump

    def read(self, key: str, row: Any, fetch: Callable[[str], Any]) -> S:
        return self.parse(row)

    def write(
        self, key: str, stored: Any, before: S | None, after: S
    ) -> tuple[Any, dict[str, Any], list[str]]:
        return self.dump(after), {}, []


class BatchRows(Generic[S]):
    """The rows of one table that a batch reads and updates, written back in one go.

    A key's first read comes from the table; after that the batch sees its own update, so
    records with the same key are processed in order exactly as one at a time. Nothing is
    written to the table before :meth:`write`, which the agent calls only once the batch's
    outputs are confirmed; a state is turned into its rows (``codec.write``) only then,
    once per key and batch however many of the batch's records updated it.
    """

    def __init__(
        self,
        table: Any,
        codec: RowCodec[S],
        name: str,
        parsed: ParsedRows[S] | None = None,
    ) -> None:
        self.table = table
        self.codec = codec
        self.name = name
        self.parsed = parsed
        self._seen: dict[str, S | None] = {}
        self._stored: dict[str, tuple[Any, S | None]] = {}
        self._rows: dict[str, tuple[Any, S]] = {}
        self._dropped: dict[str, Any] = {}

    def get(self, key: str) -> S | None:
        """The key's state: the batch's own update, else the table row (None for no row).

        Raises ``InvalidRecordError`` (``invalid_state``) for a row that cannot be read.
        """
        if key in self._seen:
            return self._seen[key]
        raw = self.table.get(key)  # I/O: not the record's fault if it fails
        if self.parsed is not None and raw is not None:
            known = self.parsed.lookup(key, raw)
            if known is not None:
                self._stored[key] = (raw, known)
                return known
        state = read_state(lambda row: self.codec.read(key, row, self.table.get), raw, self.name)
        if self.parsed is not None and state is not None:
            self.parsed.store(key, raw, state)
        self._stored[key] = (raw, state)
        return state

    def put(self, key: str, state: S, event: Any) -> None:
        """Record ``event``'s new state for ``key`` (written by :meth:`write`)."""
        self._seen[key] = state
        self._rows[key] = (event, state)
        self._dropped.pop(key, None)

    def drop_if_unreadable(self, key: str | None, event: Any, error: InvalidRecordError) -> None:
        """After ``error`` on ``event``: a row that cannot be read is dropped, so the key's
        next record starts afresh (rows beside it, if its codec keeps any, are left)."""
        if error.reason != INVALID_STATE or key is None:
            return
        self._seen[key] = None
        self._stored[key] = (None, None)
        self._rows.pop(key, None)
        self._dropped[key] = event

    def __len__(self) -> int:
        return len(self._rows) + len(self._dropped)

    def write(self) -> None:
        """Write every updated row (and delete every dropped one) to the table, each to the
        changelog partition of the record that produced it: for each key, the rows beside
        it, then its own row, then the deletes of rows beside it, so a changelog cut
        anywhere holds every row its key's last complete row names."""
        for key, event in self._dropped.items():
            if self.parsed is not None:
                self.parsed.drop(key)
            with as_current(event):
                if key in self.table:
                    del self.table[key]
        for key, (event, state) in self._rows.items():
            stored, before = self._stored.get(key, (None, None))
            row, beside, gone = self.codec.write(key, stored, before, state)
            with as_current(event):
                for other, value in beside.items():
                    self.table[other] = value
                self.table[key] = row
                for other in gone:
                    if other in self.table:
                        del self.table[other]
            if self.parsed is not None:
                self.parsed.store(key, row, state)
        self._rows.clear()
        self._dropped.clear()
