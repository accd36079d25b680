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

:func:`install` patches three methods of that class (two of them private), and only on
the release the unit tests (tests/unit/test_faust_guard.py) were written against:

* ``__init__`` gives the consumer a :class:`_ReadOffsets`, the guard's bookkeeping;
* ``_add_gap`` never counts a gap as processed: it seeks the partition back and pins the
  read offset until the skipped records are read again (scored again: a duplicate at
  worst, which outputs make recognisable by id). Offsets that a re-read from that explicit
  seek skips again do not exist (transaction markers, aborted or compacted records): those
  are counted as processed, with a warning, so a real gap costs one re-read, not a loop;
* ``_new_offset`` commits only a run of acknowledged offsets that starts at the committed
  offset (or, on a partition with no commit yet, at the first offset read).

Revoking a partition (faust's ``on_partitions_revoked`` pops it from the read offsets) or
seeking it to its committed offset (``perform_seek`` updates them) drops its rewind.
"""

from __future__ import annotations

import importlib.metadata
import logging
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass
from typing import Any, Final

from streams.errors import ConfigurationError

logger = logging.getLogger(__name__)

#: The faust-streaming releases whose consumer tests/unit/test_faust_guard.py reproduces.
TESTED_FAUST_VERSIONS: Final = ("0.15.3",)

_INSTALLED: Final = "_streamsense_faust_guard"


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
        self.rewinds = 0
        self.gaps_accepted = 0

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


def install(*, version: str | None = None, consumer_class: type[Any] | None = None) -> None:
    """Patch faust's consumer (or ``consumer_class``, a subclass of it); refuse other releases.

    ``version`` is the faust-streaming release to check, by default the installed one.
    Installing twice on a class is a no-op.
    """
    check_version(importlib.metadata.version("faust-streaming") if version is None else version)
    from faust.transport.consumer import Consumer

    target = Consumer if consumer_class is None else consumer_class
    if not issubclass(target, Consumer):
        raise TypeError(f"{target.__name__} is not a subclass of faust's Consumer")
    if getattr(target, _INSTALLED, False):
        return
    original_init = target.__init__
    original_new_offset = target._new_offset

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
        return result

    target.__init__ = __init__  # type: ignore[method-assign]
    target._add_gap = _add_gap  # type: ignore[method-assign]
    target._new_offset = _new_offset  # type: ignore[method-assign]
    setattr(target, _INSTALLED, True)
