"""The log policy: libraries' DEBUG lines never pass; their repeated warnings are limited."""

from __future__ import annotations

import logging

from streams.runtime.logpolicy import LibraryDebugFilter, RepeatFilter, protect


def _record(name: str, level: int, msg: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, args, None)


def test_library_debug_records_are_dropped_and_ours_kept() -> None:
    keep = LibraryDebugFilter().filter
    assert not keep(_record("faust.topics", logging.DEBUG, "send: k=%r v=%r", b"cust-1", b"{}"))
    assert not keep(_record("aiokafka.conn", logging.DEBUG, "request %r", b"payload"))
    assert keep(_record("streams.compose", logging.DEBUG, "worker composed"))
    assert keep(_record("faust.worker", logging.INFO, "Ready"))


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_retry_storm_becomes_one_line_a_window_with_the_count() -> None:
    clock = Clock()
    limit = RepeatFilter(window_s=60, clock=clock)
    passed = []
    for n in range(10_000):  # an outage: the same warning for every retry
        clock.now = n * 0.005
        record = _record("aiokafka.cluster", logging.WARNING, "Unable connect to %r", "node 1")
        if limit.filter(record):
            passed.append(record.getMessage())
    assert len(passed) == 1
    clock.now = 61.0
    record = _record("aiokafka.cluster", logging.WARNING, "Unable connect to %r", "node 1")
    assert limit.filter(record)
    assert "9999 repeat(s)" in record.getMessage()
    assert "node 1" in record.getMessage()


def test_other_messages_and_our_own_lines_are_not_held_back() -> None:
    limit = RepeatFilter(window_s=60, clock=Clock())
    assert limit.filter(_record("kafka.conn", logging.WARNING, "connection refused"))
    assert limit.filter(_record("kafka.conn", logging.WARNING, "another problem"))
    for _ in range(3):
        assert limit.filter(_record("streams.runtime.agents", logging.WARNING, "dead-lettering"))


def test_protect_installs_both_filters_once_and_keeps_libraries_at_info() -> None:
    root = logging.Logger("test-root", logging.DEBUG)  # noqa: LOG001 - a private tree, not the global one
    handler = logging.StreamHandler()
    root.addHandler(handler)
    protect(root)
    protect(root)
    kinds = [type(f) for f in handler.filters]
    assert kinds.count(LibraryDebugFilter) == 1 and kinds.count(RepeatFilter) == 1
    assert logging.getLogger("faust").getEffectiveLevel() >= logging.INFO
    assert logging.getLogger("kafka").getEffectiveLevel() >= logging.WARNING
