"""Where a worker's time goes: py-spy samples of its Python threads, grouped by component."""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

RATE_HZ = 50

# First match from the innermost frame outwards names the component a sample belongs to.
COMPONENTS = (
    ("onnxruntime", "ONNX Runtime session.run"),
    ("models/tokenizer.py", "tokenizer"),
    ("models/runtime.py", "predict glue (softmax, Prediction)"),
    ("retrain/store", "feedback store (SQLite)"),
    ("sqlite3", "feedback store (SQLite)"),
    ("pydantic", "records (pydantic decode/encode)"),
    ("streams/core/records.py", "records (pydantic decode/encode)"),
    ("prometheus_client", "metrics (prometheus_client)"),
    ("faust/tables", "Faust tables (changelog)"),
    ("aiokafka", "Kafka client (aiokafka)"),
    ("kafka/", "Kafka client (kafka-python: lag reporter)"),
    ("streams/core/routing", "routing, recommendations, monitors"),
    ("streams/core/ticketing", "routing, recommendations, monitors"),
    ("streams/core/recommend", "routing, recommendations, monitors"),
    ("streams/core/intent_monitor", "routing, recommendations, monitors"),
    ("streams/core/ticker_monitor", "routing, recommendations, monitors"),
    ("streams/core/batching", "batch controller"),
    ("streams/", "streams agents and cores (other)"),
    ("faust/", "Faust streams, agents, transport"),
    ("mode/", "Faust streams, agents, transport"),
    ("selector_events.py", "asyncio socket I/O (send/recv)"),
    ("selectors.py", "event-loop epoll (counted busy by py-spy)"),
    ("asyncio/", "asyncio event loop"),
    ("json/", "json"),
)


def py_spy() -> str | None:
    """The py-spy executable beside this Python, else on PATH."""
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.is_file() else shutil.which("py-spy")


def component(frames: list[str]) -> str:
    for frame in reversed(frames):
        for needle, name in COMPONENTS:
            if needle in frame:
                return name
    return "other"


def summarize(raw: str, duration_s: float, rate_hz: int = RATE_HZ) -> dict[str, Any]:
    """Per thread: share of wall time it was on CPU; per component: sampled CPU seconds."""
    threads: Counter[str] = Counter()
    components: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        thread = frames[0].split(": ", 1)[-1]
        threads[thread.rstrip("_0123456789") or thread] += count
        components[component(frames[1:])] += count
        leaves[frames[-1]] += count
    total = sum(components.values()) or 1
    possible = duration_s * rate_hz
    return {
        "duration_s": duration_s,
        "rate_hz": rate_hz,
        "samples": sum(components.values()),
        "thread_busy_share": {t: n / possible for t, n in threads.most_common()},
        "components_cpu_s": {c: n / rate_hz for c, n in components.most_common()},
        "components_share": {c: n / total for c, n in components.most_common()},
        "top_frames": [{"frame": f, "share": n / total} for f, n in leaves.most_common(12)],
    }


@dataclass
class Profiler:
    """A running ``py-spy record`` of one process."""

    proc: subprocess.Popen[bytes]
    output: Path
    duration_s: int

    @classmethod
    def attach(cls, pid: int, duration_s: int, workdir: Path) -> Profiler | None:
        exe = py_spy()
        if exe is None:
            logger.warning("py-spy not found: no profile")
            return None
        output = workdir / f"py-spy-{pid}.txt"
        proc = subprocess.Popen(
            [
                exe,
                "record",
                "--pid",
                str(pid),
                "--duration",
                str(duration_s),
                "--rate",
                str(RATE_HZ),
                "--format",
                "raw",
                "--threads",
                "--nonblocking",
                "--output",
                str(output),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        return cls(proc, output, duration_s)

    def finish(self) -> dict[str, Any]:
        try:
            _, err = self.proc.communicate(timeout=self.duration_s + 60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        if self.proc.returncode != 0 or not self.output.is_file():
            logger.warning("py-spy failed (%s): %s", self.proc.returncode, err.decode()[-500:])
            return {"error": err.decode(errors="replace")[-500:]}
        summary = summarize(self.output.read_text(encoding="utf-8"), float(self.duration_s))
        return {**summary, "raw_file": str(self.output)}
