"""Replication of the topics streamsense creates: safe defaults for the cluster's size."""

from __future__ import annotations

import pytest

from streams.edges.topics import Replication, choose_replication
from streams.errors import ConfigurationError


@pytest.mark.parametrize(
    ("brokers", "expected"),
    [
        (1, Replication(1, 1)),
        (2, Replication(2, 1)),
        (3, Replication(3, 2)),
        (9, Replication(3, 2)),
    ],
)
def test_defaults_follow_the_cluster(brokers: int, expected: Replication) -> None:
    assert choose_replication(0, 0, brokers) == expected


def test_explicit_settings_win_within_what_the_cluster_allows() -> None:
    assert choose_replication(5, 3, 6) == Replication(5, 3)
    assert choose_replication(3, 0, 3).topic_configs() == {"min.insync.replicas": "2"}


def test_a_factor_above_the_broker_count_is_refused_with_the_setting_named() -> None:
    with pytest.raises(ConfigurationError, match=r"STREAMSENSE_REPLICATION_FACTOR=3.*1 broker"):
        choose_replication(3, 0, 1)


def test_min_insync_above_the_factor_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="STREAMSENSE_MIN_INSYNC_REPLICAS=3"):
        choose_replication(2, 3, 3)
