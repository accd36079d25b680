"""A guard against faust-streaming treating unread offsets as processed.

faust's consumer marks the offsets between the last one it read and the next one it
receives as a "gap" and counts them as acknowledged, so its next commit moves past them.
On this pipeline's topics (not compacted, no transactions) offsets are contiguous, so a gap
means records were fetched but never reached an agent, typically around a rebalance or a
restart; committing past them would lose them. The guard exits the worker at once instead,
committing nothing more: the next start re-reads from the last committed offset
(crash-only; a supervisor -- Kubernetes, compose, ``streamsense run`` -- restarts it).
"""

from __future__ import annotations

import logging
import os
from typing import Any

logger = logging.getLogger(__name__)

SKIPPED_OFFSETS_EXIT = 75


def install() -> None:
    """Replace faust's gap bookkeeping with a crash-only exit."""
    from faust.transport.consumer import Consumer

    async def _refuse_gap(self: Any, tp: Any, offset_from: int, offset_to: int) -> None:
        logger.critical(
            "faust skipped offsets %s..%s of %s[%s]; exiting without committing so that "
            "a restart re-reads them",
            offset_from,
            offset_to - 1,
            tp.topic,
            tp.partition,
        )
        logging.shutdown()
        os._exit(SKIPPED_OFFSETS_EXIT)

    Consumer._add_gap = _refuse_gap  # type: ignore[method-assign]
