"""A guard against faust-streaming treating unread offsets as processed.

faust's consumer marks the offsets between the last one it read and the next one it
receives as a "gap" and counts them as acknowledged, so its next commit moves past them.
On this pipeline's topics (not compacted, no transactions) offsets are contiguous, so a gap
means records were fetched but never reached an agent -- seen here right after a worker
restart -- and committing past them loses them (the kill test lost 11 messages so).

The guard never counts a gap as processed. It seeks the partition back to one record before
the gap and makes the consumer accept the re-read records: they are scored again (at worst
a duplicate, which outputs make recognisable by id) and committed only once acknowledged.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any

logger = logging.getLogger(__name__)


class _ReadOffsets(defaultdict[Any, int | None]):
    """faust's last-read offset per partition, pinned while a rewind is re-read.

    While ``pinned[tp]`` names the first record to re-read, records past it (fetched before
    the rewind) still reach the agents but leave the read offset just before the pin, so
    the re-read records are accepted; the re-read of the pinned record lifts the pin.
    """

    def __init__(self) -> None:
        super().__init__(lambda: None)
        self.pinned: dict[Any, int] = {}

    def __setitem__(self, tp: Any, offset: int | None) -> None:
        target = self.pinned.get(tp)
        if target is not None and offset is not None:
            if offset > target:
                super().__setitem__(tp, target - 1 if target > 0 else None)
                return
            del self.pinned[tp]
        super().__setitem__(tp, offset)


def install() -> None:
    """Replace faust's gap bookkeeping with a rewind that re-reads the skipped records."""
    from faust.transport.consumer import Consumer

    original_init = Consumer.__init__
    original_new_offset = Consumer._new_offset

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        self._read_offset = _ReadOffsets()

    async def _rewind_gap(self: Any, tp: Any, offset_from: int, offset_to: int) -> None:
        read = self._read_offset
        if not isinstance(read, _ReadOffsets) or tp in read.pinned:
            return  # a rewind of this partition is already being re-read
        # offset_from is one past faust's read offset; after a seek faust's read offset is
        # already the next record to read, so start one earlier (a duplicate at worst)
        start = max(0, offset_from - 1)
        logger.warning(
            "faust skipped offsets %s..%s of %s[%s]; re-reading them",
            start,
            offset_to - 1,
            tp.topic,
            tp.partition,
        )
        await self._seek(tp, start)
        read.pinned[tp] = start

    def _new_offset(self: Any, tp: Any) -> int | None:
        # commit only a run that starts at the committed offset: faust lets a run start one
        # record later, which skips that record when it is acknowledged late
        acked = self._acked[tp]
        committed = self._committed_offset[tp]
        if acked and committed is not None and min(acked) > committed:
            return None
        result: int | None = original_new_offset(self, tp)
        return result

    Consumer.__init__ = __init__  # type: ignore[method-assign]
    Consumer._add_gap = _rewind_gap  # type: ignore[method-assign]
    Consumer._new_offset = _new_offset  # type: ignore[method-assign]
