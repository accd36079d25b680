"""A single-node Apache Kafka broker (KRaft, broker+controller) for local runs and tests.

The jars come from Maven Central through Maven into a cache outside the project; the
broker runs with the machine's Java on 127.0.0.1 and is stopped by its PID.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from streamsense.errors import StreamsenseError

logger = logging.getLogger(__name__)

_STAMP = ".complete"


class BrokerError(StreamsenseError):
    """The local broker could not be fetched, started or reached."""


def _require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BrokerError(
            f"'{name}' was not found on PATH. The local Kafka broker needs Java 17+ and Maven "
            "(Debian: apt-get install openjdk-17-jre-headless maven). Or use an existing "
            "cluster: export STREAMSENSE_KAFKA_BOOTSTRAP=host:9092"
        )
    return path


def fetch_jars(version: str, cache_dir: Path) -> Path:
    """Resolve Kafka ``version`` and its dependencies into ``cache_dir``; reuse them if there.

    Returns the directory that holds the jars.
    """
    home = cache_dir.expanduser() / f"kafka-{version}"
    libs = home / "libs"
    if (home / _STAMP).exists():
        return libs
    _require_tool("java")
    mvn = _require_tool("mvn")
    home.mkdir(parents=True, exist_ok=True)
    template = resources.files("deploy").joinpath("kafka/pom.xml").read_text(encoding="utf-8")
    (home / "pom.xml").write_text(template.replace("@KAFKA_VERSION@", version), encoding="utf-8")
    if libs.exists():
        shutil.rmtree(libs)
    logger.info("Resolving Apache Kafka %s with Maven into %s", version, libs)
    result = subprocess.run(
        [
            mvn,
            "-q",
            "-B",
            "-f",
            str(home / "pom.xml"),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={libs}",
            "-DincludeScope=runtime",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise BrokerError(
            f"Maven could not resolve org.apache.kafka:kafka_2.13:{version} "
            f"(exit {result.returncode}):\n{(result.stdout + result.stderr)[-2000:]}"
        )
    (home / _STAMP).write_text(version, encoding="utf-8")
    return libs


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child of ours counts as dead
        waited, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return waited == 0


def broker_answers(bootstrap: str, timeout_s: float = 5.0) -> bool:
    """True when the broker at ``bootstrap`` answers a metadata request."""
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    host, _, port = bootstrap.split(",")[0].rpartition(":")
    try:  # no client (and none of its connection-refused logging) before the port is open
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout_s).close()
    except (OSError, ValueError):
        return False

    try:
        admin = KafkaAdminClient(
            bootstrap_servers=bootstrap,
            request_timeout_ms=int(timeout_s * 1000),
            client_id="streamsense-probe",
        )
    except (KafkaError, OSError, ValueError):
        return False
    try:
        admin.describe_cluster()
        return True
    except (KafkaError, OSError):
        return False
    finally:
        admin.close()


@dataclass(frozen=True)
class BrokerInfo:
    """A running local broker."""

    pid: int
    bootstrap: str
    log_file: Path


class LocalBroker:
    """Start, stop and query the local broker whose state lives in ``state_dir``."""

    def __init__(self, state_dir: Path, libs: Path, port: int = 0, heap: str = "512m") -> None:
        self.home = state_dir / "broker"
        self.libs = libs
        self.port = port
        self.heap = heap
        self.data_dir = self.home / "data"
        self.log_file = self.home / "broker.log"
        self._state_file = self.home / "broker.json"

    def _read_state(self) -> dict[str, int]:
        if not self._state_file.exists():
            return {}
        data: dict[str, int] = json.loads(self._state_file.read_text(encoding="utf-8"))
        return data

    def status(self) -> BrokerInfo | None:
        """The running broker, or None when none runs from this state directory."""
        state = self._read_state()
        pid = state.get("pid")
        if not pid or not _pid_alive(pid):
            return None
        return BrokerInfo(pid, f"127.0.0.1:{state['port']}", self.log_file)

    def _choose_ports(self) -> tuple[int, int]:
        state = self._read_state()
        port = self.port or state.get("port", 0)
        if not port or (not self.port and not _port_free(port)):
            port = free_port()
        controller = state.get("controller_port", 0)
        if not controller or controller == port or not _port_free(controller):
            controller = free_port()
            while controller == port:
                controller = free_port()
        return port, controller

    def _write_config(self, port: int, controller: int) -> Path:
        config = self.home / "server.properties"
        lines = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{controller}",
            "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name": "PLAINTEXT",
            "log.dirs": str(self.data_dir),
            "num.partitions": "1",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "8",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "auto.create.topics.enable": "true",
            "log.retention.hours": "24",
        }
        config.write_text("".join(f"{k}={v}\n" for k, v in lines.items()), encoding="utf-8")
        return config

    def _java(self, main: str, *args: str) -> list[str]:
        return [
            _require_tool("java"),
            f"-Xmx{self.heap}",
            "-Xms128m",
            "-XX:+UseSerialGC",
            "-XX:TieredStopAtLevel=1",
            "-Djava.awt.headless=true",
            "-cp",
            f"{self.libs}/*",
            main,
            *args,
        ]

    def _format(self, config: Path) -> None:
        if (self.data_dir / "meta.properties").exists():
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        cluster_id = _kafka_uuid()
        result = subprocess.run(
            self._java("kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(config)),
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise BrokerError(
                f"Formatting the KRaft storage in {self.data_dir} failed:\n"
                f"{(result.stdout + result.stderr)[-2000:]}"
            )

    def start(self, timeout_s: float = 90.0) -> BrokerInfo:
        """Start the broker (or return the one already running) once it answers metadata."""
        running = self.status()
        if running is not None:
            return running
        self.home.mkdir(parents=True, exist_ok=True)
        port, controller = self._choose_ports()
        config = self._write_config(port, controller)
        self._format(config)
        bootstrap = f"127.0.0.1:{port}"
        with self.log_file.open("ab") as log:
            proc = subprocess.Popen(
                self._java("kafka.Kafka", str(config)),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self._state_file.write_text(
            json.dumps({"pid": proc.pid, "port": port, "controller_port": controller}),
            encoding="utf-8",
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise BrokerError(
                    f"The Kafka broker exited with code {proc.returncode} during start-up; "
                    f"see {self.log_file}"
                )
            if broker_answers(bootstrap, timeout_s=2.0):
                logger.info("Kafka broker %s answers (pid %s)", bootstrap, proc.pid)
                return BrokerInfo(proc.pid, bootstrap, self.log_file)
            time.sleep(0.5)
        self.stop()
        raise BrokerError(
            f"The Kafka broker did not answer on {bootstrap} within {timeout_s:.0f}s; "
            f"see {self.log_file}"
        )

    def stop(self, timeout_s: float = 30.0) -> bool:
        """Stop the broker by its PID; True when one was running."""
        state = self._read_state()
        pid = state.get("pid")
        if not pid or not _pid_alive(pid):
            return False
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and _pid_alive(pid):
            time.sleep(0.2)
        if _pid_alive(pid):
            logger.warning("Kafka broker pid %s ignored SIGTERM; killing it", pid)
            os.kill(pid, signal.SIGKILL)
        state.pop("pid", None)
        self._state_file.write_text(json.dumps(state), encoding="utf-8")
        return True


def _kafka_uuid() -> str:
    """A random Kafka cluster id: 16 random bytes, URL-safe base64 without padding.

    Like Kafka's own ``Uuid.randomUuid``, never one that starts with '-', which the storage
    tool's command line would read as an option.
    """
    while True:
        value = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode("ascii").rstrip("=")
        if not value.startswith("-"):
            return value
