"""Fault injection for the crash tests: named points where a worker exits on purpose.

TEST ONLY. Off by default (``STREAMSENSE_FAULT_INJECTION`` empty); when off, a point costs
one truth test of a string. The integration tests arm a point in one worker process to
prove what a crash exactly there loses (``tests/integration/test_alert_crash.py``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from collections.abc import Awaitable, Callable
from typing import Any, Literal

logger = logging.getLogger(__name__)

FaultPoint = Literal["", "crash_after_state_write", "segfault_on_marker"]

CRASH_AFTER_STATE_WRITE: FaultPoint = "crash_after_state_write"
"""A monitor has written the table state of a record that raised an alert: make that write
durable (flush the producer, as faust's own schedule may at any moment) and exit at once,
before anything else happens. The alert must already be on the alerts topic."""

SEGFAULT_ON_MARKER: FaultPoint = "segfault_on_marker"
"""A text that contains :data:`SEGFAULT_MARKER` kills the worker with SIGSEGV inside its
model call, every time it is scored: what a native crash on a hostile input looks like (the
supervisor's quarantine must end the loop)."""

SEGFAULT_MARKER = "STREAMSENSE-TEST-SEGFAULT"

FAULT_EXIT = 86
"""Exit status of a worker stopped by an injected fault."""


class Faults:
    """The fault point armed in this process (none by default); each fires at most once."""

    def __init__(self, point: FaultPoint = "") -> None:
        self.point: FaultPoint = point

    async def crash(self, point: FaultPoint, flush: Callable[[], Awaitable[None]]) -> None:
        """Exit the process with ``FAULT_EXIT`` if ``point`` is armed, after ``flush()``."""
        if point != self.point:
            return
        self.point = ""
        logger.critical("fault injection: %s; flushing and exiting", point)
        await flush()
        logging.shutdown()
        os._exit(FAULT_EXIT)


def segfault_if_marked(faults: Faults, texts: list[str]) -> None:
    """Die by SIGSEGV if :data:`SEGFAULT_ON_MARKER` is armed and a text carries the marker."""
    if faults.point == SEGFAULT_ON_MARKER and any(SEGFAULT_MARKER in t for t in texts):
        logging.shutdown()
        os.kill(os.getpid(), signal.SIGSEGV)


def changelog_flush(table: Any) -> Callable[[], Awaitable[None]]:
    """A flush that makes ``table``'s changelog writes durable (for the fault points).

    faust writes a table's changelog through a buffer whose ``flush()`` gives up after
    0.1 s (``faust/transport/producer.py``, ``ProducerBuffer.flush_atmost``), so on a busy
    machine it can return with the last write still buffered: wait until the buffer is
    empty, give the last record time to reach the Kafka client, then flush the client.
    """
    producer = table.app.producer

    async def flush() -> None:
        deadline = time.monotonic() + 30.0
        while producer.buffer.size and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.5)
        await producer.flush()

    return flush
