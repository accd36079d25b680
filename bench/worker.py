"""One real worker process (``python -m streams.cli worker``) over a private topic set."""

from __future__ import annotations

import signal
import subprocess
import sys
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from bench.cluster import BenchError
from bench.kafka_io import wait_drained
from deploy.broker import free_port
from streams.edges.security import SECURITY_FIELDS, kafka_python_config
from streams.edges.topics import ensure_topics
from streams.runtime.metrics import phase_totals
from streams.settings import Settings

TOPIC_FIELDS = Settings.topic_fields()


def private_settings(
    base: Settings, bootstrap: str, registry: Path, workdir: Path, **extra: str
) -> Settings:
    """Settings for a fresh topic set and consumer group, state kept under ``workdir``."""
    unique = uuid.uuid4().hex[:10]
    values: dict[str, str] = {
        "kafka_bootstrap": bootstrap,
        "app_id": f"bench-{unique}",
        "registry_dir": str(registry.resolve()),
        "state_dir": str(workdir / "state"),
        "feedback_db_url": f"sqlite:///{(workdir / 'feedback.db').resolve()}",
        "topic_partitions": str(base.topic_partitions),
        "inference_threads": str(base.inference_threads),
        "inference_calls": str(base.inference_calls),
        "data_dir": str(base.data_dir),
        "log_level": "WARNING",
        **{
            name: f"{name.removeprefix('topic_').replace('_', '.')}.bench-{unique}"
            for name in TOPIC_FIELDS
        },
        **extra,
    }
    # the cluster's TLS/SASL settings as they are (the worker inherits them from the environment)
    settings = Settings.model_validate({**base.model_dump(include=set(SECURITY_FIELDS)), **values})
    ensure_topics(settings, bootstrap)  # returns once every new partition has a leader
    return settings


def _env_args(settings: Settings, metrics_port: int) -> list[str]:
    """``NAME=value`` arguments for ``env``: the child inherits our environment plus these."""
    fields = {
        "kafka_bootstrap",
        "app_id",
        "registry_dir",
        "state_dir",
        "feedback_db_url",
        "topic_partitions",
        "inference_threads",
        "inference_calls",
        "producer_linger_s",
        "data_dir",
        "log_level",
        "batch_size",
        "batch_max_wait_s",
        "latency_target_s",
        "route_in_scorer",
        *TOPIC_FIELDS,
    }
    # and whatever else the caller set (bench.ab's arms); TLS/SASL come from the environment
    fields |= settings.model_fields_set - set(SECURITY_FIELDS)
    dumped = settings.model_dump()
    args = [f"STREAMSENSE_{name.upper()}={dumped[name]}" for name in sorted(fields)]
    return [*args, f"STREAMSENSE_METRICS_PORT={metrics_port}", "PYTHONUNBUFFERED=1"]


@dataclass
class Worker:
    """A started worker process and where its output goes."""

    settings: Settings
    proc: subprocess.Popen[bytes]
    log: Path
    metrics_port: int

    @classmethod
    def start(cls, settings: Settings, workdir: Path, source: Path | None = None) -> Worker:
        """Start a worker with ``settings``; ``source``: run the code of that checkout (a
        git worktree of another revision) instead of this one."""
        workdir.mkdir(parents=True, exist_ok=True)
        log = workdir / f"worker-{settings.app_id}.log"
        port = free_port()
        with log.open("wb") as handle:
            # `env` adds our settings to the inherited environment and execs Python (same pid)
            proc = subprocess.Popen(
                [
                    "env",
                    *_env_args(settings, port),
                    sys.executable,
                    "-m",
                    "streams.cli",
                    "worker",
                ],
                stdout=handle,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=source,  # `python -m` puts the working directory first on the path
            )
        return cls(settings, proc, log, port)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def check(self) -> None:
        """Raise when the worker has exited."""
        if self.proc.poll() is not None:
            tail = self.log.read_text(errors="replace")[-3000:]
            raise BenchError(f"worker {self.pid} exited {self.proc.returncode}; log:\n{tail}")

    def phase_totals(self, agent: str = "message-scorer") -> dict[str, tuple[float, float]]:
        """(batches, seconds) per phase of ``agent``'s batches so far, from the worker's
        ``/metrics`` (``streamsense_batch_phase_seconds``); empty when it cannot be read."""
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=10
            ) as resp:
                text = resp.read().decode()
        except OSError:
            return {}
        return phase_totals(text_string_to_metric_families(text), agent)

    def memory_mib(self) -> dict[str, float]:
        """Peak (VmHWM) and current (VmRSS) resident memory, MiB, from /proc."""
        out: dict[str, float] = {}
        status = Path(f"/proc/{self.pid}/status").read_text(encoding="ascii", errors="replace")
        for line in status.splitlines():
            name, _, rest = line.partition(":")
            if name in ("VmHWM", "VmRSS"):
                out[name] = int(rest.split()[0]) / 1024  # kB
        return {"vmhwm_mib": out.get("VmHWM", 0.0), "vmrss_mib": out.get("VmRSS", 0.0)}

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 60 s."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def drain(worker: Worker, timeout_s: float = 300.0) -> float:
    """Wait until the worker has committed everything it consumes (its downstream agents
    too: monitors and sinks catch up after a flood); return the seconds waited."""
    s = worker.settings
    return wait_drained(
        s.kafka_bootstrap,
        kafka_python_config(s),
        s.app_id,
        s.consumed_topics(),
        timeout_s,
        worker.check,
    )
