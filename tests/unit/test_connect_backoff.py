"""The reconnect backoff a worker uses towards a broker that does not answer."""

from __future__ import annotations

from aiokafka.client import AIOKafkaClient

from streams.runtime import connect_backoff
from streams.runtime.connect_backoff import BACKOFF_MAX_S, NodeBackoff


def test_failures_double_the_wait_up_to_the_cap_and_a_success_resets_it() -> None:
    backoff = NodeBackoff()
    node = (1, None)
    delays = [backoff.failed(node, now=100.0) for _ in range(8)]
    assert delays[:4] == [0.1, 0.2, 0.4, 0.8]
    assert max(delays) == BACKOFF_MAX_S
    assert backoff.wait_s(node, now=100.5) == BACKOFF_MAX_S - 0.5
    assert backoff.wait_s((2, None), now=100.5) == 0.0  # other nodes are not held back
    backoff.succeeded(node)
    assert backoff.wait_s(node, now=100.5) == 0.0
    assert backoff.failed(node, now=200.0) == 0.1


def test_install_wraps_the_client_once() -> None:
    connect_backoff.install()
    wrapped = AIOKafkaClient._get_conn
    connect_backoff.install()
    assert AIOKafkaClient._get_conn is wrapped
    assert getattr(wrapped, "_streamsense_backoff", False)
