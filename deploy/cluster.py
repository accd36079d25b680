"""A local multi-node Apache Kafka cluster (KRaft): every node is broker and controller.

For the chaos suite and for trying replication settings on one machine: each node is a
:class:`~deploy.broker.LocalBroker` with its own state directory and ports (below the
kernel's ephemeral range), all formatted with one cluster id and listed as voters. The
internal topics get a replication factor of the cluster's size and ``min.insync.replicas``
one less, and so do topics created without settings of their own.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from deploy.broker import BrokerError, BrokerInfo, ClusterNode, LocalBroker, _kafka_uuid
from deploy.ports import free_fixed_port


class LocalCluster:
    """Start, stop and kill the nodes of a local KRaft cluster whose state is in ``state_dir``."""

    def __init__(self, state_dir: Path, libs: Path, size: int = 3, heap: str = "384m") -> None:
        if size < 1:
            raise BrokerError(f"a cluster needs at least one node, not {size}")
        taken: set[int] = set()

        def port() -> int:
            chosen = free_fixed_port()
            while chosen in taken:
                chosen = free_fixed_port()
            taken.add(chosen)
            return chosen

        addresses = [(node_id, port(), port()) for node_id in range(1, size + 1)]
        voters = ",".join(f"{n}@127.0.0.1:{controller}" for n, _, controller in addresses)
        cluster_id = _kafka_uuid()
        self.nodes = {
            node_id: LocalBroker(
                state_dir,
                libs,
                heap=heap,
                node=ClusterNode(node_id, size, listener, controller, voters, cluster_id),
            )
            for node_id, listener, controller in addresses
        }

    @property
    def bootstrap(self) -> str:
        """Every node's listener, for clients."""
        return ",".join(f"127.0.0.1:{broker.port}" for broker in self.nodes.values())

    def start(self, timeout_s: float = 120.0) -> dict[int, BrokerInfo]:
        """Start every node that is not running, together (no node answers before a quorum
        of controllers runs), and wait until each answers metadata."""
        launched = {
            node_id: broker.launch()
            for node_id, broker in self.nodes.items()
            if broker.status() is None
        }
        deadline = time.monotonic() + timeout_s
        try:
            for node_id, (proc, state) in launched.items():
                left = max(1.0, deadline - time.monotonic())
                self.nodes[node_id].wait_ready(proc, state, left)
        except BrokerError:
            self.stop()
            raise
        return self.running()

    def start_node(self, node_id: int, timeout_s: float = 90.0) -> BrokerInfo:
        """Start one node again (after :meth:`kill` or :meth:`stop_node`)."""
        return self.nodes[node_id].start(timeout_s)

    def running(self) -> dict[int, BrokerInfo]:
        """The nodes that run now."""
        return {
            node_id: info
            for node_id, broker in self.nodes.items()
            if (info := broker.status()) is not None
        }

    def kill(self, node_id: int) -> None:
        """SIGKILL one node: no controlled shutdown, no leadership handed over."""
        info = self.nodes[node_id].status()
        if info is None:
            return
        os.kill(info.pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and self.nodes[node_id].status() is not None:
            time.sleep(0.1)

    def stop_node(self, node_id: int) -> bool:
        """Stop one node with SIGTERM (a controlled shutdown)."""
        return self.nodes[node_id].stop()

    def stop(self, timeout_s: float = 20.0) -> None:
        """Stop every node: SIGTERM to all at once, SIGKILL to any still up after
        ``timeout_s`` (a node whose peers are gone can wait long for a controlled shutdown)."""
        pids = [info.pid for info in self.running().values()]
        for pid in pids:
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and self.running():
            time.sleep(0.2)
        for node_id in self.running():
            self.kill(node_id)
