"""``streamsense worker --supervise``: run the worker as a child process and restart it when
it dies, quarantining a record that keeps killing it (see :mod:`streams.runtime.inflight`).

Kubernetes (or systemd) restarts a dead worker too, but cannot know which record killed
it; this parent can, because the worker leaves notes of its in-flight records behind. It
forwards SIGTERM and SIGINT to the worker and exits with the worker's status once asked to
stop; otherwise it restarts an abnormally exited worker with a backoff (1 s doubling to
30 s, reset after a minute of healthy running).
"""

from __future__ import annotations

import logging
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import FrameType

from streams.runtime.inflight import Quarantine, clear_in_flight, read_in_flight

logger = logging.getLogger(__name__)

HEALTHY_RUN_S = 60.0
"""A worker that ran this long before dying resets the restart backoff."""
MAX_BACKOFF_S = 30.0


def describe_exit(status: int) -> str:
    if status < 0:
        try:
            return f"killed by {signal.Signals(-status).name}"
        except ValueError:
            return f"killed by signal {-status}"
    return f"exit status {status}"


class Supervisor:
    """Restart ``command`` until asked to stop; keep the quarantine in ``state_dir``."""

    def __init__(
        self,
        command: Sequence[str],
        env: Mapping[str, str],
        state_dir: Path,
        poison_deaths: int,
        max_backoff_s: float = MAX_BACKOFF_S,
    ) -> None:
        self.max_backoff_s = max_backoff_s
        self.command = list(command)
        self.state_dir = state_dir
        self.in_flight_dir = state_dir / "in-flight"
        self.quarantine_file = state_dir / "quarantine.json"
        self.env = {
            **env,
            "STREAMSENSE_IN_FLIGHT_DIR": str(self.in_flight_dir),
            "STREAMSENSE_QUARANTINE_FILE": str(self.quarantine_file),
        }
        self.poison_deaths = poison_deaths
        self.child: subprocess.Popen[bytes] | None = None
        self.stopping = False
        self.restarts = 0

    def _forward(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True
        if self.child is not None and self.child.poll() is None:
            self.child.send_signal(signum)

    def run(self) -> int:
        """Supervise until the worker exits after a stop request (or cleanly); its status."""
        signal.signal(signal.SIGTERM, self._forward)
        signal.signal(signal.SIGINT, self._forward)
        backoff = min(1.0, self.max_backoff_s)
        while True:
            self.in_flight_dir.mkdir(parents=True, exist_ok=True)
            clear_in_flight(self.in_flight_dir)
            started = time.monotonic()
            self.child = subprocess.Popen(self.command, env=self.env)
            status = self.child.wait()
            if self.stopping or status == 0:
                return 128 - status if status < 0 else status
            ran = time.monotonic() - started
            self._after_death(status)
            backoff = min(1.0, self.max_backoff_s) if ran >= HEALTHY_RUN_S else backoff
            logger.warning(
                "worker %s after %.0f s; restarting in %.0f s",
                describe_exit(status),
                ran,
                backoff,
            )
            deadline = time.monotonic() + backoff
            while not self.stopping and time.monotonic() < deadline:
                time.sleep(0.2)
            if self.stopping:
                return 128 - status if status < 0 else status
            backoff = min(backoff * 2, self.max_backoff_s)
            self.restarts += 1

    def _after_death(self, status: int) -> None:
        in_flight = read_in_flight(self.in_flight_dir)
        if not in_flight:
            return
        quarantine = Quarantine.load(self.quarantine_file)
        newly = quarantine.record_death(in_flight, self.poison_deaths)
        quarantine.save(self.quarantine_file)
        records = sum(len(m) for m in in_flight)
        logger.warning(
            "worker %s with %d record(s) in flight; they are suspects now, scored alone",
            describe_exit(status),
            records,
        )
        for topic, partition, offset in newly:
            logger.error(
                "%s[%d]@%d was in flight alone at %d worker deaths: quarantined, the worker "
                "dead-letters it",
                topic,
                partition,
                offset,
                self.poison_deaths,
            )
