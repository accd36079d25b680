"""Running real worker processes against the test broker, and reading what they produce."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import CoordinatorNotAvailableError

from deploy.broker import free_port
from streams.edges.topics import ensure_topics
from streams.runtime.agents import FATAL_EXIT
from streams.settings import Settings

RESTARTED_EXITS = (FATAL_EXIT,)
"""Exit codes of a worker that stopped on purpose without committing (see
streams.runtime.agents.fatal and streams.runtime.faust_guard): a supervisor restarts it."""

TOPIC_FIELDS = Settings.topic_fields()


@dataclass
class Pipeline:
    """A private set of topics, a consumer group and the settings workers get for them."""

    bootstrap: str
    settings: Settings
    env: dict[str, str]
    workdir: Path
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    metrics_ports: list[int] = field(default_factory=list)
    restarts: int = 0
    started: list[int] = field(default_factory=list)
    """PIDs of every worker process started, in order (restarts included)."""

    @classmethod
    def create(
        cls, bootstrap: str, unique: str, registry: Path, workdir: Path, **extra: str
    ) -> Pipeline:
        values = {
            "kafka_bootstrap": bootstrap,
            "app_id": f"ss-{unique}",
            "registry_dir": str(registry),
            "state_dir": str(workdir / "state"),
            "feedback_db_url": f"sqlite:///{(workdir / 'feedback.db').resolve()}",
            "topic_partitions": "4",
            "batch_size": "16",
            "batch_max_wait_s": "0.05",
            "inference_threads": "1",
            "log_level": "INFO",
            **{
                name: f"{name.removeprefix('topic_').replace('_', '.')}.{unique}"
                for name in TOPIC_FIELDS
            },
            **extra,
        }
        env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMSENSE_")}
        env.update({f"STREAMSENSE_{k.upper()}": v for k, v in values.items()})
        env["PYTHONUNBUFFERED"] = "1"
        settings = Settings.model_validate(values)
        ensure_topics(settings, bootstrap)
        return cls(bootstrap, settings, env, workdir)

    def start_worker(
        self, env: Mapping[str, str] | None = None, args: Iterable[str] = ()
    ) -> subprocess.Popen[bytes]:
        """Start one more worker process (its output goes to worker-N.log); ``env`` adds to
        the pipeline's environment for this process only (a restart does not inherit it);
        ``args`` go to ``streamsense worker`` (``--supervise``)."""
        log = (self.workdir / f"worker-{len(self.metrics_ports)}.log").open("wb")
        port = free_port()
        self.metrics_ports.append(port)
        proc = subprocess.Popen(
            [sys.executable, "-m", "streams.cli", "worker", *args],
            env={**self.env, **(env or {}), "STREAMSENSE_METRICS_PORT": str(port)},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.workers.append(proc)
        self.started.append(proc.pid)
        return proc

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-4000:]}"
            for p in sorted(self.workdir.glob("worker-*.log"))
        )

    def assert_workers_alive(self) -> None:
        """Fail on a worker that died; restart one that exited on purpose (crash-only exits,
        which a supervisor such as Kubernetes restarts in production)."""
        for proc in list(self.workers):
            if proc.poll() is None:
                continue
            assert proc.returncode in RESTARTED_EXITS, (
                f"worker {proc.pid} exited {proc.returncode}\n{self.logs()}"
            )
            self.workers.remove(proc)
            self.restarts += 1
            self.start_worker()

    def assert_never_restarted(self) -> None:
        """Fail unless every worker ever started is still running as the same process: none
        exited (crash-only exits included), none was restarted."""
        for proc in self.workers:
            assert proc.poll() is None, (
                f"worker {proc.pid} exited {proc.returncode}; it must survive\n{self.logs()}"
            )
        assert self.restarts == 0 and [p.pid for p in self.workers] == self.started, (
            f"workers were restarted: started {self.started}, running "
            f"{[p.pid for p in self.workers]}\n{self.logs()}"
        )

    def wait_for_exit(self, proc: subprocess.Popen[bytes], timeout_s: float) -> int:
        """Wait for ``proc`` to exit on its own; return its status and forget it."""
        try:
            status = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"worker {proc.pid} still runs after {timeout_s} s\n{self.logs()}"
            ) from None
        self.workers.remove(proc)
        return status

    def wait_committed(
        self, topic: str, timeout_s: float, check: Callable[[], None] | None = None
    ) -> bool:
        """Wait until the workers' consumer group has committed every record of ``topic``
        (each one processed and acknowledged); return whether it did in time."""
        admin = KafkaAdminClient(bootstrap_servers=self.bootstrap)
        consumer = KafkaConsumer(bootstrap_servers=self.bootstrap)
        try:
            partitions = [
                TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))
            ]
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                ends = consumer.end_offsets(partitions)
                group = self.settings.app_id
                try:
                    committed = admin.list_group_offsets({group: partitions})[group]
                except CoordinatorNotAvailableError:  # no worker has joined the group yet
                    committed = {}
                done = {tp: max(committed[tp].offset, 0) if tp in committed else 0 for tp in ends}
                if all(done[tp] >= ends[tp] for tp in partitions):
                    return True
                if check is not None:
                    check()
                time.sleep(0.5)
            behind = {
                tp.partition: (done[tp], ends[tp]) for tp in partitions if done[tp] < ends[tp]
            }
            print(f"{topic}: partitions behind after {timeout_s:.0f} s (committed, end): {behind}")
            return False
        finally:
            consumer.close()
            admin.close()

    def stop_all(self) -> None:
        for proc in self.workers:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.workers:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def kill_hard(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL a worker: no shutdown code runs, nothing more is committed."""
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


class TopicReader:
    """Reads a topic from the beginning (all partitions) and keeps every record."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.consumer = KafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            consumer_timeout_ms=500,
        )
        self.records: list[dict[str, Any]] = []
        self.keys: list[bytes | None] = []
        self.partitions: list[int] = []

    def poll(self) -> list[dict[str, Any]]:
        for message in self.consumer:
            self.records.append(json.loads(message.value))
            self.keys.append(message.key)
            self.partitions.append(message.partition)
        return self.records

    def wait_for(
        self,
        done: Callable[[list[dict[str, Any]]], bool],
        timeout_s: float,
        check: Callable[[], None] | None = None,
    ) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout_s
        seen, progress = len(self.records), time.monotonic()
        while time.monotonic() < deadline:
            if done(self.poll()):
                return self.records
            if check is not None:
                check()
            if len(self.records) > seen:
                seen, progress = len(self.records), time.monotonic()
            elif time.monotonic() - progress > self.STILL_S:
                self._restart_fetch_if_behind()
                progress = time.monotonic()
        self._restart_fetch_if_behind()  # prints where the reader stands, for the failure
        return self.records

    STILL_S = 10.0

    def _restart_fetch_if_behind(self) -> None:
        """Seek each partition the reader is behind on to its own position.

        kafka-python 3.0's consumer has been seen to stop fetching a partition that still
        has records (dpkp/kafka-python#3106, #3131); a seek restarts its fetch. Printed, so a
        failing test shows whether its reader, not the worker, was behind."""
        assigned = list(self.consumer.assignment())
        if not assigned:
            return
        ends = self.consumer.end_offsets(assigned)
        for tp in assigned:
            position = self.consumer.position(tp)
            if position < ends[tp]:
                print(f"TopicReader: {tp.topic}[{tp.partition}] at {position} of {ends[tp]}")
                self.consumer.seek(tp, position)

    def wait_for_ids(
        self,
        ids: Iterable[str],
        timeout_s: float,
        check: Callable[[], None] | None = None,
        key: str = "id",
    ) -> Counter[str]:
        wanted = set(ids)
        self.wait_for(lambda recs: wanted <= {r[key] for r in recs}, timeout_s, check)
        return Counter(r[key] for r in self.records)

    def close(self) -> None:
        self.consumer.close()


class RawHeaderName(str):
    """A header name whose wire bytes are ``raw``, not UTF-8 if need be: kafka-python writes a
    name with ``name.encode("utf-8")``, and a producer in another language can send any bytes."""

    raw: bytes = b""

    def __new__(cls, raw: bytes) -> RawHeaderName:
        name = super().__new__(cls, raw.decode("utf-8", "replace"))
        name.raw = raw
        return name

    def encode(self, encoding: str = "utf-8", errors: str = "strict") -> bytes:
        return self.raw


def produce_with_headers(
    bootstrap: str,
    topic: str,
    records: Iterable[tuple[bytes | None, bytes, list[tuple[str, bytes]]]],
) -> int:
    """Send ``(key, value, headers)`` records with a real producer and wait for every
    acknowledgement; return how many."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    count = 0
    try:
        for key, value, headers in records:
            producer.send(topic, key=key, value=value, headers=headers)
            count += 1
        producer.flush(timeout=30)
    finally:
        producer.close()
    return count


def metric_value(port: int, name: str, **labels: str) -> float | None:
    """The sum of the samples named ``name`` whose labels include ``labels``, as the worker
    on ``port`` exports them now; None when it exports no such sample."""
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read()
    values = [
        sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    ]
    return sum(values) if values else None
