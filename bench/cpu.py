"""Where the machine's CPU goes during a flood: the worker's inference threads, the rest of
the worker (event loop, Faust, Kafka clients), this bench process (load generator and
collector) and everything else (the broker, other processes), read from ``/proc``."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from models.pool import THREAD_NAME

TICK_HZ = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _cpu_s(stat: str) -> float:
    """utime + stime of one ``/proc/.../stat`` line, in seconds."""
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK_HZ


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="ascii", errors="replace")
    except OSError:  # the process or thread is gone
        return ""


def worker_threads(pid: int) -> tuple[float, float]:
    """CPU seconds of ``pid``'s inference threads and of all its other threads."""
    inference = other = 0.0
    for task in Path(f"/proc/{pid}/task").glob("*"):
        stat = _read(task / "stat")
        if not stat:
            continue
        seconds = _cpu_s(stat)
        if _read(task / "comm").strip() == THREAD_NAME:
            inference += seconds
        else:
            other += seconds
    return inference, other


def machine_busy() -> tuple[float, float]:
    """Busy and total CPU seconds of the whole machine since boot (all cores)."""
    values = [int(v) for v in _read(Path("/proc/stat")).splitlines()[0].split()[1:9]]
    idle = values[3] + values[4]  # idle + iowait
    return (sum(values) - idle) / TICK_HZ, sum(values) / TICK_HZ


def process_cpu(pid: int) -> float:
    stat = _read(Path(f"/proc/{pid}/stat"))
    return _cpu_s(stat) if stat else 0.0


@dataclass
class CpuSplit:
    """A snapshot taken at the start of a window; :meth:`finish` splits what followed."""

    worker_pid: int
    started: float
    inference: float
    worker_other: float
    bench: float
    busy: float
    total: float

    @classmethod
    def start(cls, worker_pid: int) -> CpuSplit:
        inference, other = worker_threads(worker_pid)
        busy, total = machine_busy()
        return cls(
            worker_pid,
            time.monotonic(),
            inference,
            other,
            process_cpu(os.getpid()),
            busy,
            total,
        )

    def finish(self, records: int) -> dict[str, Any]:
        """Cores used by each part over the window (1.0 = one core busy throughout) and
        CPU milliseconds per record."""
        wall = max(time.monotonic() - self.started, 1e-9)
        inference, other = worker_threads(self.worker_pid)
        busy, total = machine_busy()
        parts = {
            "worker_inference": inference - self.inference,
            "worker_loop_and_clients": other - self.worker_other,
            "bench_clients": process_cpu(os.getpid()) - self.bench,
        }
        parts["broker_and_rest"] = max(0.0, (busy - self.busy) - sum(parts.values()))
        parts["idle"] = max(0.0, (total - self.total) - (busy - self.busy))
        return {
            "wall_s": wall,
            "cores": {name: seconds / wall for name, seconds in parts.items()},
            "ms_per_record": {
                name: 1000 * seconds / max(records, 1)
                for name, seconds in parts.items()
                if name != "idle"
            },
        }
