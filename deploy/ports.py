"""TCP ports for local brokers: free ones, and ones outside the kernel's ephemeral range."""

from __future__ import annotations

import random
import socket
from pathlib import Path

from streamsense.errors import StreamsenseError


class PortError(StreamsenseError):
    """No suitable free TCP port was found."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default


def free_fixed_port(host: str = "127.0.0.1") -> int:
    """A free TCP port below the kernel's ephemeral range.

    A port from :func:`free_port` lies inside that range, where any outgoing connection may
    take it before the broker binds it; one below the range is only taken by a listener.
    """
    low, high = _ephemeral_range()
    lower, upper = (10000, low - 1) if low > 11000 else (high + 1, 65535)
    for _ in range(200 if lower < upper else 0):
        port = random.randint(lower, upper)
        if _port_free(port, host):
            return port
    raise PortError(
        f"no free TCP port on {host} outside the ephemeral range {low}-{high} "
        "(/proc/sys/net/ipv4/ip_local_port_range)"
    )


def _port_free(port: int, host: str = "127.0.0.1") -> bool:
    """True when a listener could bind ``port`` now.

    With SO_REUSEADDR, as the broker's own listener binds: the connections of a broker that
    just stopped linger in TIME_WAIT on its port, which a plain bind counts as taken (a
    restarted broker then moved to another port and its clients never found it again).
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True
