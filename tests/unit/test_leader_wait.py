"""Waiting for new topics' leaders: a broker that does not know a new topic yet is asked
again until the deadline (a cluster's brokers learn of a topic one after another)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from kafka.errors import UnknownTopicOrPartitionError

from streams.edges.topics import _wait_for_leaders


class _Admin:
    """An admin client whose offsets request fails ``unknown`` times, then answers."""

    def __init__(self, unknown: int) -> None:
        self.unknown = unknown
        self.asked = 0

    def wait_for_topics(self, topics: list[str], timeout_ms: int) -> None:
        pass

    def list_partition_offsets(self, partitions: dict[Any, Any], timeout_ms: int) -> dict:
        self.asked += 1
        if self.asked <= self.unknown:
            raise UnknownTopicOrPartitionError("not yet")
        return {}


def test_a_topic_unknown_to_its_leader_for_a_moment_is_asked_for_again() -> None:
    admin = _Admin(unknown=2)
    _wait_for_leaders(admin, {"t": {"num_partitions": 2}}, time.monotonic() + 5)  # type: ignore[arg-type]
    assert admin.asked == 3


def test_a_topic_still_unknown_at_the_deadline_is_reported() -> None:
    admin = _Admin(unknown=1_000)
    with pytest.raises(UnknownTopicOrPartitionError):
        _wait_for_leaders(admin, {"t": {"num_partitions": 1}}, time.monotonic() + 0.3)  # type: ignore[arg-type]
    assert 1 < admin.asked < 10
