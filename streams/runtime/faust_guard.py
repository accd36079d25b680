"""A guard against faust-streaming counting unread offsets as processed.

faust-streaming 0.15.3's consumer (``faust.transport.consumer.Consumer``) loses records in
two ways, both found by the kill test (one run lost 11 messages); docs/faust-gap.md has
the details and the upstream report:

* ``_drain_messages`` treats the offsets between the last one it read and the one it
  receives as a "gap" and ``_add_gap`` / ``_new_offset`` count them as acknowledged, so
  the next commit moves past records no agent saw. After a restart the consumer can
  receive a record past the committed one, and that is how the records were lost.
* ``_new_offset`` lets a commit start one record past the committed offset, so a record
  still in flight is committed when the ones after it are acknowledged first.

:func:`install` patches five methods of that class (four of them private), and only on
the release the unit tests (tests/unit/test_faust_guard.py) were written against:

* ``__init__`` gives the consumer a :class:`_ReadOffsets`, the guard's bookkeeping;
* ``_add_gap`` never counts a gap as processed: it seeks the partition back and pins the
  read offset until the skipped records are read again (scored again: a duplicate at
  worst, which outputs make recognisable by id). Offsets that a re-read from that explicit
  seek skips again do not exist (transaction markers, aborted or compacted records): those
  are counted as processed, with a warning, so a real gap costs one re-read, not a loop;
* ``_new_offset`` commits only a run of acknowledged offsets that starts at the committed
  offset (or, on a partition with no commit yet, at the first offset read);
* ``getmany`` (with ``_wait_next_records``, which hands it the fetched batch) seeks a
  partition back when faust drops fetched records without handing them over: it stops a
  batch when the flow stops and skips a partition paused meanwhile, yet the position has
  moved past those records. A partition that received nothing more never showed the gap
  and stalled for good (the chaos test's "workers had not caught up" after a restart).

Revoking a partition (faust's ``on_partitions_revoked`` pops it from the read offsets) or
seeking it to its committed offset (``perform_seek`` updates them) drops its rewind.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import logging
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any, Final

from aiokafka.errors import IllegalStateError, KafkaError

from streams.errors import ConfigurationError

logger = logging.getLogger(__name__)

#: The faust-streaming releases whose consumer tests/unit/test_faust_guard.py reproduces.
TESTED_FAUST_VERSIONS: Final = ("0.15.3",)

_INSTALLED: Final = "_streamsense_faust_guard"

REPOSITION_CAUSES: Final = ("gap", "unhanded", "stalled", "idle")
"""Why the guard moved a partition's position: a gap in what faust read (a rewind), fetched
records faust did not hand over (a refetch), a committed offset waiting for a record that
is nowhere in the worker, records waiting on the broker that the worker does not fetch
(both the position watch)."""


def _count_nothing(cause: str) -> None:
    """The reposition hook until :func:`install` is given one."""


_on_reposition: Callable[[str], None] = _count_nothing


class UnsupportedFaustVersionError(ConfigurationError):
    """The installed faust-streaming is not a release the faust guard was tested against."""

    def __init__(self, version: str) -> None:
        tested = ", ".join(TESTED_FAUST_VERSIONS)
        super().__init__(
            f"streams.runtime.faust_guard patches private methods of faust-streaming's consumer "
            f"and was tested against faust-streaming {tested} only, but {version} is installed: "
            f"install faust-streaming=={TESTED_FAUST_VERSIONS[-1]}, or run "
            f"tests/unit/test_faust_guard.py against {version} and add it to "
            f"TESTED_FAUST_VERSIONS once the patch is adapted (see docs/faust-gap.md)"
        )
        self.version = version


def check_version(version: str) -> None:
    """Raise :class:`UnsupportedFaustVersionError` unless ``version`` is a tested release."""
    if version not in TESTED_FAUST_VERSIONS:
        raise UnsupportedFaustVersionError(version)


class _TruthyZero(int):
    """Offset 0 that is true: faust looks for a gap only after a read offset that is true."""

    def __bool__(self) -> bool:
        return True


_ZERO: Final = _TruthyZero(0)


@dataclass
class _Rewind:
    """A partition sought back to ``start`` to re-read the records up to ``upto``."""

    start: int
    upto: int  # the record that showed the gap; it exists, so the re-read comes back to it
    armed: bool = False  # set once faust has recorded ``upto`` itself as read


class _ReadOffsets(MutableMapping[Any, int | None]):
    """faust's "last offset read" per partition, kept by the guard.

    ``Consumer._drain_messages`` reads it before it hands a record over, to find a gap,
    and writes the record's offset after. The guard changes what it holds:

    * after a seek to the committed offset C (``perform_seek``, the only ``update``) it
      holds C - 1, the last offset read, which is what faust's gap test assumes (faust
      stores C, so a record missing at C goes unnoticed); on a partition with no commit,
      read from the earliest offset, it holds -1: the log is expected to start at 0, and a
      log that starts later (retention) costs one re-read that proves it;
    * 0 reads as a true zero, since faust looks for a gap only after a true read offset;
    * while a rewind is pending, records fetched before the seek still reach the agents but
      leave the read offset just before the seek position, so the re-read is accepted.

    ``pending`` holds the rewinds not yet re-read, ``rereading`` the end of each re-read
    under way, and ``floor`` the lowest offset a partition without a commit must have
    acknowledged before it commits. ``rewinds`` and ``gaps_accepted`` count what the guard
    did (plain counters, no metric).
    """

    def __init__(self, *, expect_log_start: bool) -> None:
        self._offsets: dict[Any, int | None] = {}
        self._expect_log_start = expect_log_start
        self.pending: dict[Any, _Rewind] = {}
        self.rereading: dict[Any, int] = {}
        self.floor: dict[Any, int] = {}
        self.refused: dict[Any, tuple[int, int]] = {}
        self.committing: dict[Any, int] = {}  # the highest offset handed to a commit
        self.fetched: Mapping[Any, list[Any]] | None = None  # the batch getmany is handing
        self.rewinds = 0
        self.gaps_accepted = 0
        self.refetches = 0

    def __getitem__(self, tp: Any) -> int | None:
        offset = self._offsets.get(tp)
        return _ZERO if offset == 0 else offset

    def __setitem__(self, tp: Any, offset: int | None) -> None:
        if offset is None:  # faust's seek() to offset 0
            self.forget(tp)
            self._offsets[tp] = None
            return
        self.floor.setdefault(tp, offset)
        rewind = self.pending.get(tp)
        if rewind is not None:
            if not rewind.armed or offset > rewind.upto:
                # the record that showed the gap, or one fetched before the seek
                rewind.armed = True
                return
            del self.pending[tp]  # the first record of the re-read
            if offset < rewind.upto:
                self.rereading[tp] = rewind.upto
        elif tp in self.rereading and offset >= self.rereading[tp]:
            del self.rereading[tp]
        self._offsets[tp] = offset

    def __delitem__(self, tp: Any) -> None:
        self.forget(tp)
        self._offsets.pop(tp, None)

    def __contains__(self, tp: object) -> bool:
        return tp in self._offsets

    def __iter__(self) -> Iterator[Any]:
        return iter(self._offsets)

    def __len__(self) -> int:
        return len(self._offsets)

    def pop(self, tp: Any, *default: Any) -> Any:
        """Forget ``tp`` (faust's ``on_partitions_revoked`` pops each revoked partition)."""
        self.forget(tp)
        return self._offsets.pop(tp, *default)

    def update(self, *args: Any, **kwargs: Any) -> None:
        """Record a seek to the committed offsets (``perform_seek``): offset before each."""
        for tp, committed in dict(*args, **kwargs).items():
            self.forget(tp)
            if committed is not None:
                self._offsets[tp] = committed - 1
            else:
                self._offsets[tp] = -1 if self._expect_log_start else None

    def forget(self, tp: Any) -> None:
        """Drop the guard's state for ``tp``: it was revoked or sought elsewhere."""
        self.pending.pop(tp, None)
        self.rereading.pop(tp, None)
        self.floor.pop(tp, None)
        self.committing.pop(tp, None)

    def resync(self, tp: Any, position: int) -> None:
        """Record a seek of ``tp`` to ``position`` by the position watch: drop any rewind and
        hold the offset before it (the floor stays: records below may still be in flight)."""
        self.pending.pop(tp, None)
        self.rereading.pop(tp, None)
        self.refused.pop(tp, None)
        self._offsets[tp] = position - 1

    def begin_rewind(self, tp: Any, start: int, upto: int) -> None:
        """Hold the read offset before ``start`` until a record up to ``upto`` is re-read."""
        self.pending[tp] = _Rewind(start, upto)
        self.rereading.pop(tp, None)
        self.floor[tp] = min(self.floor.get(tp, start), start)
        self._offsets[tp] = start - 1
        self.rewinds += 1

    def in_reread(self, tp: Any, offset_to: int) -> bool:
        """Whether a gap ending at ``offset_to`` was seen in records fetched after a rewind."""
        rewind = self.pending.get(tp)
        if rewind is not None:
            return rewind.armed and offset_to <= rewind.upto
        upto = self.rereading.get(tp)
        return upto is not None and offset_to <= upto


def _read_offsets(consumer: Any) -> _ReadOffsets:
    read = consumer._read_offset
    if not isinstance(read, _ReadOffsets):
        raise TypeError(
            f"{type(consumer).__name__} was created before streams.runtime.faust_guard.install()"
        )
    return read


def _accept_gap(
    consumer: Any, read: _ReadOffsets, tp: Any, offset_from: int, offset_to: int
) -> None:
    """Count offsets ``offset_from``..``offset_to - 1``, absent on a re-read, as processed."""
    committed = consumer._committed_offset[tp]
    low = offset_from if committed is None else max(offset_from, committed)
    if low >= offset_to:
        return  # all of it is below the committed offset already
    gaps = consumer._gap[tp]
    gaps.addi(low, offset_to)
    gaps.merge_overlaps()
    read.gaps_accepted += 1
    logger.warning(
        "offsets %s..%s of %s[%s] are absent on a re-read from an explicit seek "
        "(transaction markers, aborted or compacted records); counting them as processed",
        low,
        offset_to - 1,
        tp.topic,
        tp.partition,
    )


def _refuse(read: _ReadOffsets, tp: Any, start: int, lowest: int) -> None:
    """Say (once per situation) that a partition's commit waits for a record not yet acked.

    Normal for a moment (a record in flight); the same line for long means the partition
    no longer commits, which is worth seeing in the log rather than only as consumer lag.
    """
    situation = (start, lowest)
    if read.refused.get(tp) != situation:
        read.refused[tp] = situation
        logger.info(
            "%s[%s]: not committing yet: offset %s is not acknowledged (lowest acknowledged %s)",
            tp.topic,
            tp.partition,
            start,
            lowest,
        )


async def _refetch_unhanded(
    consumer: Any, read: _ReadOffsets, fetched: Mapping[Any, list[Any]], handed: Mapping[Any, int]
) -> None:
    """Seek back each partition whose fetched records faust's ``getmany`` did not hand over.

    ``getmany`` stops handing a batch over when the flow stops, and skips the records of a
    partition paused meanwhile; the consumer's position has already moved past them, so
    nothing shows they were never read until a later record reveals the gap, and on a
    partition that receives nothing more that is never. The partition goes back to the
    first record not handed over or, if a seek moved the read offset lower meanwhile (a
    rewind, or faust's seek to the committed offsets whose broker side ran before this
    fetch), to the record after the read offset.
    """
    for tp, records in fetched.items():
        last = handed.get(tp)
        left = [record.offset for record in records if last is None or record.offset > last]
        if not left or not consumer.app.topics.acks_enabled_for(tp.topic):
            continue  # all handed over, or a changelog, which recovery positions itself
        offset = read.get(tp)
        start = left[0] if offset is None else min(left[0], offset + 1)
        if tp not in consumer.assignment():
            continue
        logger.warning(
            "faust fetched offsets %s..%s of %s[%s] but did not hand them to the agents "
            "(flow active %s, partition active %s); seeking back to %s to read them",
            left[0],
            left[-1],
            tp.topic,
            tp.partition,
            consumer.flow_active,
            tp in consumer._get_active_partitions(),
            start,
        )
        try:
            await consumer._seek(tp, start)
        except IllegalStateError:
            continue  # revoked meanwhile: its next owner starts from the committed offset
        read.refetches += 1
        _on_reposition("unhanded")


def install(
    *,
    version: str | None = None,
    consumer_class: type[Any] | None = None,
    on_reposition: Callable[[str], None] | None = None,
) -> None:
    """Patch faust's consumer (or ``consumer_class``, a subclass of it); refuse other releases.

    ``version`` is the faust-streaming release to check, by default the installed one.
    ``on_reposition`` is called with one of :data:`REPOSITION_CAUSES` each time the guard
    moves a partition (a metric). Installing twice on a class patches nothing again.
    """
    global _on_reposition
    check_version(importlib.metadata.version("faust-streaming") if version is None else version)
    if on_reposition is not None:
        _on_reposition = on_reposition
    from faust.transport.consumer import Consumer

    target = Consumer if consumer_class is None else consumer_class
    if not issubclass(target, Consumer):
        raise TypeError(f"{target.__name__} is not a subclass of faust's Consumer")
    if getattr(target, _INSTALLED, False):
        return
    original_init = target.__init__
    original_new_offset = target._new_offset
    original_wait_next_records = target._wait_next_records
    original_getmany = target.getmany

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        reset = self.app.conf.consumer_auto_offset_reset
        self._read_offset = _ReadOffsets(expect_log_start=reset == "earliest")

    async def _add_gap(self: Any, tp: Any, offset_from: int, offset_to: int) -> None:
        # offset_from..offset_to - 1 were not received; offset_to is the record just received
        read = _read_offsets(self)
        if read.in_reread(tp, offset_to):
            _accept_gap(self, read, tp, offset_from, offset_to)
            return
        if tp in read.pending:
            return  # a record fetched before the seek: its gap is being re-read
        # start one record early: a duplicate at worst if faust's read offset was already
        # the next record to read (its seek() stores that), and a record known to exist
        start = max(0, offset_from - 1)
        logger.warning(
            "faust skipped offsets %s..%s of %s[%s]; seeking back to %s to re-read them",
            offset_from,
            offset_to - 1,
            tp.topic,
            tp.partition,
            start,
        )
        await self._seek(tp, start)
        read.begin_rewind(tp, start, offset_to)
        _on_reposition("gap")

    def _new_offset(self: Any, tp: Any) -> int | None:
        # commit only a run that starts at the committed offset: faust lets a run start one
        # record later (and anywhere on a partition with no commit yet), which skips a
        # record still in flight
        acked = self._acked[tp]
        if acked:
            start = self._committed_offset[tp]
            if start is None:
                start = _read_offsets(self).floor.get(tp)
            if start is not None:
                lowest = min(acked)
                accepted = self._gap[tp]  # only gaps the guard accepted as real
                if accepted:
                    lowest = min(lowest, accepted.begin())
                if lowest > start:
                    _refuse(_read_offsets(self), tp, start, lowest)
                    return None
        result: int | None = original_new_offset(self, tp)
        if result is not None:  # faust drops these acks now, before the commit is confirmed
            committing = _read_offsets(self).committing
            committing[tp] = max(committing.get(tp, result), result)
        return result

    async def _wait_next_records(self: Any, timeout: float) -> Any:
        records, active_partitions = await original_wait_next_records(self, timeout)
        _read_offsets(self).fetched = records
        return records, active_partitions

    async def getmany(self: Any, timeout: float) -> AsyncIterator[Any]:
        read = _read_offsets(self)
        read.fetched = None
        handed: dict[Any, int] = {}
        async for tp, message in original_getmany(self, timeout):
            handed[tp] = message.offset
            yield tp, message
        fetched, read.fetched = read.fetched, None
        if fetched:
            await _refetch_unhanded(self, read, fetched, handed)

    target.__init__ = __init__  # type: ignore[method-assign]
    target._wait_next_records = _wait_next_records  # type: ignore[method-assign]
    target.getmany = getmany  # type: ignore[method-assign]
    target._add_gap = _add_gap  # type: ignore[method-assign]
    target._new_offset = _new_offset  # type: ignore[method-assign]
    setattr(target, _INSTALLED, True)


class PositionWatch:
    """The last line of defence against a partition whose commits stop for good.

    A partition's committed offset C names the next record the worker owes. That record is
    always somewhere: not fetched yet (the consumer's position is at or before C), in a
    batch being handed over, in flight in an agent (faust tracks it until it is acked), or
    acked and waiting for a commit. A commit that is not confirmed yet (the broker may be
    down for minutes) counts as done: faust forgets those acks before it sends the commit,
    so the watch starts from the highest offset handed to a commit instead.
    When it is none of these, no later ack can move the commit and the partition is stuck:
    records were fetched and then lost inside the worker in a way neither ``getmany`` nor
    the gap test sees. The chaos test found two such states after a restart: faust's seek
    to the committed offsets runs its broker side in the consumer thread, and a fetch that
    lands before its bookkeeping on the event loop is handed over and then cleared from
    the agents' buffers by the rebalance (position 233, read offset 138, committed 143);
    and a partition whose first records after the seek arrived with no read offset to
    compare with, so the jump past 97..124 was never seen as a gap (committed 97, 125..203
    acked, nothing in flight).

    Every ``interval_s`` the watch looks, for each partition being consumed, for a record at
    C that is neither in flight nor in a batch being handed over while the position is
    past it. Seen twice with the same C, a whole interval apart and with the flow active,
    the partition is sought back to C and read again from there (a duplicate at worst for
    the records after C that were processed). It tries ``tries`` times per committed
    offset; a partition still stuck after that is logged as an error once and left to the
    lag alert (a record that keeps vanishing would otherwise be re-read forever).

    The other blind spot is a partition that fetches nothing at all: its position does not
    pass C, so nothing above shows, yet records wait on the broker (a restarted worker that
    never went through its partition, as CI saw once, cause unknown). Every
    ``idle_checks`` looks the watch notes each partition's position and committed offset
    where nothing is in flight or acked; one unchanged a whole idle look later while the
    broker's end offset is past it is logged with everything faust knows of it (paused,
    buffered, active, read offset), resumed if faust left it paused or buffer-full, and
    sought to its owed record, which restarts its fetch.
    """

    def __init__(
        self,
        consumer: Callable[[], Any],
        interval_s: float = 5.0,
        tries: int = 3,
        idle_checks: int = 6,
        request_timeout_s: float = 5.0,
    ) -> None:
        self._consumer = consumer
        self.interval_s = interval_s
        self.tries = tries
        self.idle_checks = idle_checks
        self.request_timeout_s = request_timeout_s
        self._seen: dict[Any, int] = {}
        self._tried: dict[Any, tuple[int, int]] = {}  # tp -> (committed offset, tries)
        self._looks = 0
        self._still: dict[Any, tuple[int | None, int | None]] = {}  # tp -> (position, committed)

    async def run(self) -> None:
        """Check every ``interval_s`` until cancelled; a failed check is logged and retried."""
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.check()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the watch is a safety net: never the worker's end
                logger.warning("position watch: check failed: %r", exc)

    def _settled(self, consumer: Any, read: _ReadOffsets) -> bool:
        """No rebalance under way and no batch being handed over."""
        return bool(consumer.flow_active) and read.fetched is None

    async def check(self) -> list[Any]:
        """One look; returns the partitions sought back."""
        consumer = self._consumer()
        read = _read_offsets(consumer)
        if not self._settled(consumer, read):
            self._seen.clear()  # look again once the rebalance or the batch is over
            self._still.clear()
            return []
        in_flight = {(message.tp, message.offset) for message in list(consumer._unacked_messages)}
        moved = await self._check_owed(consumer, read, in_flight)
        self._looks += 1
        if self._looks % self.idle_checks == 0 and self._settled(consumer, read):
            moved += await self._check_idle(consumer, read, in_flight)
        return moved

    def _owed(self, consumer: Any, read: _ReadOffsets, tp: Any) -> int | None:
        """The offset of the next record ``tp`` owes: committed, floor, or being committed."""
        start: int | None = consumer._committed_offset.get(tp)
        if start is None:
            start = read.floor.get(tp)
        committing = read.committing.get(tp)  # a commit not confirmed yet (broker down?)
        if committing is not None and (start is None or committing > start):
            start = committing
        return start

    async def _position(self, consumer: Any, tp: Any) -> int | None:
        """The consumer's position on ``tp``; None while it has none (a reset that hangs).

        Raises ``IllegalStateError`` if ``tp`` was revoked meanwhile."""
        try:
            position: int | None = await asyncio.wait_for(
                consumer.position(tp), self.request_timeout_s
            )
        except TimeoutError:
            return None
        return position

    async def _check_owed(
        self, consumer: Any, read: _ReadOffsets, in_flight: set[tuple[Any, int]]
    ) -> list[Any]:
        active = consumer._get_active_partitions()
        owed: dict[Any, tuple[int, int]] = {}
        for tp in sorted(consumer.assignment()):
            if tp not in active or not consumer.app.topics.acks_enabled_for(tp.topic):
                continue  # paused, or a changelog, which recovery positions itself
            start = self._owed(consumer, read, tp)
            if start is None or (tp, start) in in_flight:
                continue
            if start in consumer._acked_index.get(tp, ()):
                continue  # processed, waiting for the next commit
            try:
                position = await self._position(consumer, tp)
            except IllegalStateError:
                continue  # revoked meanwhile
            if position is not None and position > start:
                owed[tp] = (start, position)
        if not self._settled(consumer, read):
            self._seen.clear()
            return []
        stuck = [tp for tp, (start, _) in owed.items() if self._seen.get(tp) == start]
        self._seen = {tp: start for tp, (start, _) in owed.items() if tp not in stuck}
        moved = []
        for tp in stuck:
            start, position = owed[tp]
            if await self._resync(consumer, read, tp, start, position):
                moved.append(tp)
        return moved

    def _may_try(self, tp: Any, start: int) -> bool:
        """Count a re-read of ``tp`` from ``start``; False (and one error) past ``tries``."""
        tried_at, tries = self._tried.get(tp, (start, 0))
        tries = tries + 1 if tried_at == start else 1
        self._tried[tp] = (start, tries)
        if tries == self.tries + 1:
            logger.error(
                "%s[%s]: still stuck at offset %s after %s re-reads; leaving it (the consumer "
                "lag alert will fire)",
                tp.topic,
                tp.partition,
                start,
                self.tries,
            )
        return tries <= self.tries

    async def _seek(self, consumer: Any, read: _ReadOffsets, tp: Any, start: int) -> bool:
        try:
            await consumer._seek(tp, start)
        except IllegalStateError:
            return False  # revoked meanwhile: its next owner starts from the committed offset
        read.resync(tp, start)
        return True

    async def _resync(
        self, consumer: Any, read: _ReadOffsets, tp: Any, start: int, position: int
    ) -> bool:
        if not self._may_try(tp, start):
            return False
        logger.warning(
            "%s[%s]: committed offset %s has not moved for %.0f s, its record is neither in "
            "flight nor in a batch, and the consumer's position is at %s (last read %s); "
            "seeking back to %s to read it again",
            tp.topic,
            tp.partition,
            start,
            self.interval_s,
            position,
            read.get(tp),
            start,
        )
        if not await self._seek(consumer, read, tp, start):
            return False
        _on_reposition("stalled")
        return True

    async def _check_idle(
        self, consumer: Any, read: _ReadOffsets, in_flight: set[tuple[Any, int]]
    ) -> list[Any]:
        """Wake the partitions that fetched nothing for a whole idle look with records waiting."""
        busy = {tp for tp, _ in in_flight}
        now: dict[Any, tuple[int | None, int | None]] = {}
        for tp in sorted(consumer.assignment()):
            if tp in busy or consumer._acked.get(tp):
                continue  # working (or waiting for its commit): not idle
            if not consumer.app.topics.acks_enabled_for(tp.topic):
                continue  # a changelog, which recovery positions itself
            try:
                position = await self._position(consumer, tp)
            except IllegalStateError:
                continue
            now[tp] = (position, self._owed(consumer, read, tp))
        still = [tp for tp, at in now.items() if self._still.get(tp) == at]
        self._still = now
        if not still or not self._settled(consumer, read):
            return []
        try:
            ends = await asyncio.wait_for(consumer.highwaters(*still), self.request_timeout_s)
        except (TimeoutError, KafkaError) as exc:  # the broker is away: nothing to compare
            logger.info("position watch: no end offsets for %s partitions: %r", len(still), exc)
            return []
        moved = []
        for tp in still:
            position, owed = now[tp]
            if position is not None and owed is not None and position > owed:
                continue  # fetched past its owed record: the owed check's case, or a full queue
            start = owed if owed is not None else position
            end = ends.get(tp)
            if start is None or end is None or end <= start:
                continue  # at the end of its log: at rest
            if await self._wake(consumer, read, tp, start, position, owed, end):
                moved.append(tp)
        return moved

    async def _wake(
        self,
        consumer: Any,
        read: _ReadOffsets,
        tp: Any,
        start: int,
        position: int | None,
        owed: int | None,
        end: int,
    ) -> bool:
        if not self._may_try(tp, start):
            return False
        paused = tp in consumer._paused_partitions
        buffered = tp in consumer._buffered_partitions
        logger.warning(
            "%s[%s]: %s records wait on the broker (end offset %s) but the worker fetched "
            "none for %.0f s: position %s, owed %s, last read %s, faust active %s, paused %s, "
            "buffer-full %s; %sseeking to %s to fetch them",
            tp.topic,
            tp.partition,
            end - start,
            end,
            self.interval_s * self.idle_checks,
            "none" if position is None else position,
            owed,
            read.get(tp),
            tp in consumer._get_active_partitions(),
            paused,
            buffered,
            "resuming it and " if paused or buffered else "",
            start,
        )
        if paused:
            consumer.resume_partitions({tp})
        if buffered:
            consumer.on_buffer_drop(tp)
        if not await self._seek(consumer, read, tp, start):
            return False
        self._still.pop(tp, None)
        _on_reposition("idle")
        return True
