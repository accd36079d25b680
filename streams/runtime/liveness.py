"""Liveness of a worker's event loop: a heartbeat stamped on the loop, judged off it.

``/metrics`` is answered by a thread, so it keeps answering while the asyncio loop is stuck
(a blocking call in a coroutine, a deadlock, a Faust app whose tasks died): a probe on it
never restarts such a worker. Here a task that runs *on* the loop stamps a
:class:`Heartbeat` every second, and the HTTP thread judges the age of the last stamp
(:func:`judge`, pure): ``/healthz`` answers 200 while it is fresh and 503 with the reason
once it is ``max_age_s`` old. The same server answers every other path with the Prometheus
metrics, as ``prometheus_client.start_http_server`` does.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from prometheus_client import CollectorRegistry, make_wsgi_app

logger = logging.getLogger(__name__)

HEALTH_PATH = "/healthz"
BEAT_INTERVAL_S = 1.0


@dataclass(frozen=True)
class Verdict:
    """Whether the event loop counts as alive, the heartbeat's age and why, in a few words."""

    healthy: bool
    age_s: float
    reason: str


def judge(last_beat: float | None, started: float, now: float, max_age_s: float) -> Verdict:
    """Judge a heartbeat: fresh while younger than ``max_age_s``.

    ``last_beat`` is the monotonic time of the last stamp (None before the first one, when
    the age counts from ``started``: the loop has not got as far as running its tasks).
    """
    if last_beat is None:
        waited = max(0.0, now - started)
        return Verdict(
            False, waited, f"starting: no event-loop heartbeat yet ({waited:.1f} s since start)"
        )
    age = max(0.0, now - last_beat)
    if age < max_age_s:
        return Verdict(True, age, f"ok: event-loop heartbeat {age:.1f} s old")
    return Verdict(
        False,
        age,
        f"stalled: event-loop heartbeat {age:.1f} s old (limit {max_age_s:g} s, "
        "STREAMSENSE_LIVENESS_MAX_AGE_S)",
    )


class Heartbeat:
    """The last time the event loop ran :meth:`run`'s loop; read from any thread."""

    def __init__(
        self,
        max_age_s: float,
        *,
        interval_s: float = BEAT_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_age_s = max_age_s
        self.interval_s = interval_s
        self._clock = clock
        self._started = clock()
        self._last: float | None = None  # one float assignment: atomic for the readers

    def beat(self) -> None:
        """Stamp the heartbeat now."""
        self._last = self._clock()

    def verdict(self) -> Verdict:
        """The heartbeat judged now."""
        return judge(self._last, self._started, self._clock(), self.max_age_s)

    def age_s(self) -> float:
        """Seconds since the last stamp (since creation before the first one)."""
        return self.verdict().age_s

    async def run(self) -> None:
        """Stamp every ``interval_s`` from inside the event loop until cancelled."""
        logger.info(
            "event-loop heartbeat every %ss; %s fails after %ss without one",
            self.interval_s,
            HEALTH_PATH,
            self.max_age_s,
        )
        while True:
            self.beat()
            await asyncio.sleep(self.interval_s)


def health_app(metrics_app: WSGIApplication, heartbeat: Heartbeat) -> WSGIApplication:
    """A WSGI app: ``/healthz`` judges ``heartbeat``, every other path is ``metrics_app``."""

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != HEALTH_PATH:
            return metrics_app(environ, start_response)
        verdict = heartbeat.verdict()
        body = f"{verdict.reason}\n".encode()
        start_response(
            "200 OK" if verdict.healthy else "503 Service Unavailable",
            [
                ("Content-Type", "text/plain; charset=utf-8"),
                ("Content-Length", str(len(body))),
                ("Cache-Control", "no-store"),
            ],
        )
        return [body]

    return app


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Server6(_Server):
    address_family = socket.AF_INET6


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Log nothing: a line per probe and scrape would drown the worker's log."""


def serve(host: str, port: int, registry: CollectorRegistry, heartbeat: Heartbeat) -> WSGIServer:
    """Serve ``/metrics`` (any path) and ``/healthz`` from a daemon thread; raises OSError
    when the address cannot be bound. ``server_port`` is the bound port (for port 0)."""
    app = health_app(make_wsgi_app(registry), heartbeat)
    server_class = _Server6 if ":" in host else _Server
    server = make_server(host, port, app, server_class, _QuietHandler)
    threading.Thread(target=server.serve_forever, name="metrics-http", daemon=True).start()
    return server
