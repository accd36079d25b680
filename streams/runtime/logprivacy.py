"""Logs never carry customer message text or customer ids, at any level.

streamsense's own code logs ids of topics, partitions, offsets and model versions, never a
record's content. Libraries do not hold to that at DEBUG: faust logs every sent key and
value (``faust.topics``, ``faust.transport.drivers.aiokafka``), agents' yielded values
(``faust.agents``) and recovered table keys; kafka-python and aiokafka log request
payloads. So whatever level is asked for, third-party loggers stay at INFO or above, and a
filter on every root handler drops a DEBUG record that does not come from our packages
(a library logger configured later by someone else cannot bring them back).
"""

from __future__ import annotations

import logging

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


def protect(root: logging.Logger | None = None) -> None:
    """Apply the policy to the logging tree (again after anyone reconfigures it)."""
    root = root or logging.getLogger()
    for name, floor in LIBRARY_FLOOR.items():
        library = logging.getLogger(name)
        library.setLevel(max(floor, library.getEffectiveLevel(), root.level))
    for handler in root.handlers:
        if not any(isinstance(f, LibraryDebugFilter) for f in handler.filters):
            handler.addFilter(LibraryDebugFilter())
