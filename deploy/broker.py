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
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from deploy.ports import _port_free, free_fixed_port
from deploy.ports import free_port as free_port  # re-exported: tests and bench import it here
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


def broker_answers(
    bootstrap: str, timeout_s: float = 5.0, client_config: Mapping[str, Any] | None = None
) -> bool:
    """True when the broker at ``bootstrap`` answers a metadata request.

    ``client_config``: extra kafka-python settings, such as the TLS and SASL ones of a
    secured cluster (``streams.edges.security.kafka_python_config``).
    """
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
            **(client_config or {}),
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
    sasl_ssl_bootstrap: str = ""
    """The SASL_SSL listener (SCRAM-SHA-512, SCRAM-SHA-256, PLAIN), if the broker has one."""
    ssl_bootstrap: str = ""
    """The SSL listener that requires a client certificate, if the broker has one."""


@dataclass(frozen=True)
class SecureListeners:
    """Secured listeners a local broker opens beside its PLAINTEXT one (to test clients).

    ``SASL_SSL`` authenticates ``users`` with SCRAM-SHA-512, SCRAM-SHA-256 or PLAIN; ``SSL``
    requires a client certificate signed by a CA in the trust store (mutual TLS). Both
    present the certificate in ``keystore``. The SCRAM credentials are written when the
    storage is formatted, so they exist from the broker's first start.
    """

    keystore: Path
    """PKCS12: the broker's private key and certificate chain."""
    truststore: Path
    """PKCS12: the CA certificates that client certificates must chain to."""
    store_password: str
    users: Mapping[str, str] = field(default_factory=dict)
    """User name to password."""

    def server_properties(self, sasl_ssl_port: int, ssl_port: int) -> dict[str, str]:
        """The broker settings of both listeners (joined to the PLAINTEXT ones)."""
        scram = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
        plain_users = " ".join(f'user_{name}="{pw}"' for name, pw in self.users.items())
        return {
            "listeners": f"SASL_SSL://127.0.0.1:{sasl_ssl_port},SSL://127.0.0.1:{ssl_port}",
            "listener.security.protocol.map": "SASL_SSL:SASL_SSL,SSL:SSL",
            "ssl.keystore.type": "PKCS12",
            "ssl.keystore.location": str(self.keystore),
            "ssl.keystore.password": self.store_password,
            "ssl.truststore.type": "PKCS12",
            "ssl.truststore.location": str(self.truststore),
            "ssl.truststore.password": self.store_password,
            "listener.name.ssl.ssl.client.auth": "required",
            "listener.name.sasl_ssl.ssl.client.auth": "none",
            "sasl.enabled.mechanisms": "SCRAM-SHA-512,SCRAM-SHA-256,PLAIN",
            "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config": scram,
            "listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config": scram,
            "listener.name.sasl_ssl.plain.sasl.jaas.config": (
                f"org.apache.kafka.common.security.plain.PlainLoginModule required {plain_users};"
            ),
        }

    def format_args(self) -> list[str]:
        """``kafka-storage format`` arguments that create every user's SCRAM credentials."""
        return [
            arg
            for name, password in self.users.items()
            for mechanism in ("SCRAM-SHA-512", "SCRAM-SHA-256")
            for arg in ("--add-scram", f"{mechanism}=[name={name},password={password}]")
        ]

    def redact(self, text: str) -> str:
        """``text`` without the passwords in it."""
        for secret in (self.store_password, *self.users.values()):
            text = text.replace(secret, "***")
        return text


@dataclass(frozen=True)
class ClusterNode:
    """One node of a local multi-node KRaft cluster (see ``deploy.cluster.LocalCluster``)."""

    node_id: int
    size: int
    """How many nodes the cluster has: the internal topics' replication factor."""
    port: int
    controller_port: int
    voters: str
    """``controller.quorum.voters``: every node's ``id@host:controller_port``."""
    cluster_id: str

    @property
    def name(self) -> str:
        return f"broker-{self.node_id}"


class LocalBroker:
    """Start, stop and query the local broker whose state lives in ``state_dir``.

    With ``secure``, the broker also opens the SASL_SSL and SSL listeners it describes, on
    ports below the kernel's ephemeral range.
    """

    def __init__(
        self,
        state_dir: Path,
        libs: Path,
        port: int = 0,
        heap: str = "512m",
        secure: SecureListeners | None = None,
        node: ClusterNode | None = None,
    ) -> None:
        self.home = state_dir / (node.name if node is not None else "broker")
        self.libs = libs
        self.port = node.port if node is not None else port
        self.heap = heap
        self.secure = secure
        self.node = node
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
        return self._info(pid, state)

    def _info(self, pid: int, state: Mapping[str, int]) -> BrokerInfo:
        def address(key: str) -> str:
            return f"127.0.0.1:{state[key]}" if state.get(key) else ""

        return BrokerInfo(
            pid,
            address("port"),
            self.log_file,
            sasl_ssl_bootstrap=address("sasl_ssl_port"),
            ssl_bootstrap=address("ssl_port"),
        )

    def _choose_ports(self) -> dict[str, int]:
        state = self._read_state()
        port = self.port or state.get("port", 0)
        # below the ephemeral range: a client retrying while the broker is down can
        # otherwise connect to itself on the broker's port and keep it from binding again
        if not port or (not self.port and not _port_free(port)):
            port = free_fixed_port()
        if self.node is not None:  # a cluster's voters name every node's ports up front
            controller = self.node.controller_port
        else:
            controller = state.get("controller_port", 0)
            if not controller or controller == port or not _port_free(controller):
                controller = free_fixed_port()
                while controller == port:
                    controller = free_fixed_port()
        ports = {"port": port, "controller_port": controller}
        if self.secure is not None:
            for key in ("sasl_ssl_port", "ssl_port"):
                chosen = state.get(key, 0)
                while not chosen or chosen in ports.values() or not _port_free(chosen):
                    chosen = free_fixed_port()
                ports[key] = chosen
        return ports

    def _write_config(
        self, port: int, controller: int, sasl_ssl_port: int = 0, ssl_port: int = 0
    ) -> Path:
        config = self.home / "server.properties"
        node = self.node
        replicas = str(node.size) if node is not None else "1"
        min_isr = str(max(1, node.size - 1)) if node is not None else "1"
        lines = {
            "process.roles": "broker,controller",
            "node.id": str(node.node_id) if node is not None else "1",
            "controller.quorum.voters": (
                node.voters if node is not None else f"1@127.0.0.1:{controller}"
            ),
            "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name": "PLAINTEXT",
            "log.dirs": str(self.data_dir),
            "num.partitions": "1",
            "offsets.topic.replication.factor": replicas,
            "offsets.topic.num.partitions": "8",
            "transaction.state.log.replication.factor": replicas,
            "transaction.state.log.min.isr": min_isr,
            "share.coordinator.state.topic.replication.factor": replicas,
            "share.coordinator.state.topic.min.isr": min_isr,
            "default.replication.factor": replicas,
            "min.insync.replicas": min_isr,
            "group.initial.rebalance.delay.ms": "0",
            "auto.create.topics.enable": "true",
            "log.retention.hours": "24",
        }
        if self.secure is not None:
            secured = self.secure.server_properties(sasl_ssl_port, ssl_port)
            for key in ("listeners", "listener.security.protocol.map"):
                lines[key] = f"{lines[key]},{secured.pop(key)}"
            lines["advertised.listeners"] = ",".join(
                entry
                for entry in lines["listeners"].split(",")
                if not entry.startswith("CONTROLLER:")
            )
            lines.update(secured)
            config.touch(mode=0o600)  # it holds the store and PLAIN passwords
            config.chmod(0o600)
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
        cluster_id = self.node.cluster_id if self.node is not None else _kafka_uuid()
        scram = self.secure.format_args() if self.secure is not None else []
        result = subprocess.run(
            self._java(
                "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(config), *scram
            ),
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            output = (result.stdout + result.stderr)[-2000:]
            raise BrokerError(
                f"Formatting the KRaft storage in {self.data_dir} failed:\n"
                f"{self.secure.redact(output) if self.secure is not None else output}"
            )

    def start(self, timeout_s: float = 90.0) -> BrokerInfo:
        """Start the broker (or return the one already running) once it answers metadata."""
        running = self.status()
        if running is not None:
            return running
        proc, state = self.launch()
        return self.wait_ready(proc, state, timeout_s)

    def launch(self) -> tuple[subprocess.Popen[bytes], dict[str, int]]:
        """Start the broker's process and return at once (a cluster's nodes start together:
        none answers before a quorum of controllers runs)."""
        self.home.mkdir(parents=True, exist_ok=True)
        ports = self._choose_ports()
        config = self._write_config(
            ports["port"],
            ports["controller_port"],
            ports.get("sasl_ssl_port", 0),
            ports.get("ssl_port", 0),
        )
        self._format(config)
        with self.log_file.open("ab") as log:
            proc = subprocess.Popen(
                self._java("kafka.Kafka", str(config)),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        state = {"pid": proc.pid, **ports}
        self._state_file.write_text(json.dumps(state), encoding="utf-8")
        return proc, state

    def wait_ready(
        self, proc: subprocess.Popen[bytes], state: Mapping[str, int], timeout_s: float = 90.0
    ) -> BrokerInfo:
        """Wait until the launched broker answers metadata; stop it and raise if it does not."""
        bootstrap = f"127.0.0.1:{state['port']}"
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise BrokerError(
                    f"The Kafka broker exited with code {proc.returncode} during start-up; "
                    f"see {self.log_file}"
                )
            if broker_answers(bootstrap, timeout_s=2.0):
                logger.info("Kafka broker %s answers (pid %s)", bootstrap, proc.pid)
                return self._info(proc.pid, state)
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
