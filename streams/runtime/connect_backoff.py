"""A backoff for aiokafka's reconnects to a broker that does not answer.

aiokafka 0.14 has no reconnect backoff: a failed connection forces a metadata update, the
update tries the same dead broker, and the fetcher, the producer's sender and the group
coordinator each start over after at most ``retry_backoff_ms`` (100 ms). With the broker
down, a worker made about 70 connection attempts a second and used half a core doing
nothing (measured: 6.9 CPU-seconds in a 15 s outage, ``tests/chaos``). Kafka's own Java
client backs off per node (``reconnect.backoff.ms`` doubling to ``reconnect.backoff.max.ms``);
this gives aiokafka's client the same: after a failed connection to a node, the next
attempt to that node waits 0.1 s, doubling to 2 s, and the first success resets it. A
broker that comes back is found again within the current backoff (at most 2 s).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from aiokafka.client import AIOKafkaClient

BACKOFF_START_S = 0.1
BACKOFF_MAX_S = 2.0

_MARK = "_streamsense_backoff"


class NodeBackoff:
    """Per-node reconnect delays: ``(ready_at, last_delay)`` by connection id."""

    def __init__(self) -> None:
        self.nodes: dict[Any, tuple[float, float]] = {}

    def wait_s(self, conn_id: Any, now: float) -> float:
        ready_at, _ = self.nodes.get(conn_id, (0.0, 0.0))
        return max(0.0, ready_at - now)

    def failed(self, conn_id: Any, now: float) -> float:
        _, last = self.nodes.get(conn_id, (0.0, 0.0))
        delay = min(max(last * 2, BACKOFF_START_S), BACKOFF_MAX_S)
        self.nodes[conn_id] = (now + delay, delay)
        return delay

    def succeeded(self, conn_id: Any) -> None:
        self.nodes.pop(conn_id, None)


_on_failure: list[Callable[[], None]] = []


def install(on_failure: Callable[[], None] | None = None) -> None:
    """Wrap ``AIOKafkaClient._get_conn`` with the per-node backoff (idempotent);
    ``on_failure`` is called on every failed connection (a metric)."""
    _on_failure[:] = [on_failure] if on_failure is not None else []
    original = AIOKafkaClient._get_conn
    if getattr(original, _MARK, False):
        return

    async def _get_conn(self: Any, node_id: Any, **kwargs: Any) -> Any:
        backoff: NodeBackoff = self.__dict__.setdefault(_MARK, NodeBackoff())
        conn_id = (node_id, kwargs.get("group"))
        loop = asyncio.get_running_loop()
        wait = backoff.wait_s(conn_id, loop.time())
        if wait:
            await asyncio.sleep(wait)
        conn = await original(self, node_id, **kwargs)
        if conn is None:
            backoff.failed(conn_id, loop.time())
            for callback in _on_failure:
                callback()
        else:
            backoff.succeeded(conn_id)
        return conn

    setattr(_get_conn, _MARK, True)
    AIOKafkaClient._get_conn = _get_conn
