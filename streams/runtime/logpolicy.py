"""The log policy: no customer data at any level, and no storms from retrying libraries.

Privacy. Logs never carry customer message text or customer ids, at any level.

streamsense's own code logs ids of topics, partitions, offsets and model versions, never a
record's content. Libraries do not hold to that at DEBUG: faust logs every sent key and
value (``faust.topics``, ``faust.transport.drivers.aiokafka``), agents' yielded values
(``faust.agents``) and recovered table keys; kafka-python and aiokafka log request
payloads. So whatever level is asked for, third-party loggers stay at INFO or above, and a
filter on every root handler drops a DEBUG record that does not come from our packages
(a library logger configured later by someone else cannot bring them back).

Storms. While the broker is unreachable, faust, aiokafka and kafka-python log the same
warning for every retry: an outage of 23 s once wrote 194,233 lines. A second filter lets
the first record of each (logger, message template) through, holds back its repeats for
``REPEAT_WINDOW_S``, and then lets one through again with the count it held back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

OUR_PACKAGES = ("streamsense", "streams", "models", "retrain", "deploy", "bench")
"""Logger-name roots of the project: the only ones allowed below INFO."""

LIBRARY_FLOOR = {
    "faust": logging.INFO,
    "mode": logging.INFO,
    "aiokafka": logging.WARNING,
    "kafka": logging.WARNING,
}
"""Least level of the libraries that log record keys or values at DEBUG."""


def is_ours(name: str) -> bool:
    """True for a logger of the project (``streams.runtime.agents``, ``models``, ...)."""
    return name.split(".", 1)[0] in OUR_PACKAGES


class LibraryDebugFilter(logging.Filter):
    """Drops DEBUG records of loggers outside the project's packages."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.INFO or is_ours(record.name)


REPEAT_WINDOW_S = 60.0
"""How long a library's repeated message is held back after it was let through."""


class RepeatFilter(logging.Filter):
    """Lets a library's repeated message through once per window, with the count held back.

    Only records of loggers outside the project's packages are limited: ours are few and
    each one says something new.
    """

    def __init__(
        self, window_s: float = REPEAT_WINDOW_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__()
        self.window_s = window_s
        self.clock = clock
        self._seen: dict[tuple[str, str], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if is_ours(record.name):
            return True
        key = (record.name, str(record.msg))
        now = self.clock()
        last = self._seen.get(key)
        if last is not None and now - last[0] < self.window_s:
            self._seen[key] = (last[0], last[1] + 1)
            return False
        held = last[1] if last is not None else 0
        self._seen[key] = (now, 0)
        if len(self._seen) > 10_000:  # templates are few; ids in messages are not
            self._seen.clear()
        if held:
            record.msg = (
                f"{record.msg} [{held} repeat(s) in the last {self.window_s:.0f} s not shown]"
            )
        return True


def protect(root: logging.Logger | None = None) -> None:
    """Apply the policy to the logging tree (again after anyone reconfigures it)."""
    root = root or logging.getLogger()
    for name, floor in LIBRARY_FLOOR.items():
        library = logging.getLogger(name)
        library.setLevel(max(floor, library.getEffectiveLevel(), root.level))
    for handler in root.handlers:
        if not any(isinstance(f, LibraryDebugFilter) for f in handler.filters):
            handler.addFilter(LibraryDebugFilter())
        if not any(isinstance(f, RepeatFilter) for f in handler.filters):
            handler.addFilter(RepeatFilter())
