"""A real PostgreSQL server for the test session, from Debian's ``postgresql`` package.

``initdb`` in a temporary folder, a free port on 127.0.0.1 (password logins only) and a
private socket folder; run as the ``postgres`` system user when the tests run as root
(PostgreSQL refuses root); stopped and removed at the end of the session. Each test gets a
fresh database owned by an unprivileged role, as in production.

Load it with ``pytest_plugins = ["tests.postgres_helpers"]``. If the server binaries are
missing or the server cannot start, the tests that need it fail with the reason; they never
skip (``bash deploy/install-postgres.sh`` installs the package).
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg.rows import TupleRow

BIN_ROOT = Path("/usr/lib/postgresql")
_START_TIMEOUT_S = 60


class PostgresUnavailable(Exception):
    """The test server cannot be had: binaries missing, initdb or startup failed."""


def find_bin_dir(root: Path | None = None) -> Path:
    """The newest ``<root>/<version>/bin`` (root: BIN_ROOT) that holds initdb and pg_ctl."""
    root = root or BIN_ROOT
    found = [
        bin_dir
        for bin_dir in root.glob("*/bin")
        if (bin_dir / "initdb").is_file() and (bin_dir / "pg_ctl").is_file()
    ]
    if not found:
        raise PostgresUnavailable(
            f"no PostgreSQL server binaries (initdb, pg_ctl) under {root}/<version>/bin: "
            "run `bash deploy/install-postgres.sh` (Debian's postgresql package)"
        )
    return max(found, key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else -1)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (now)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _server_user() -> str | None:
    """The user to run the server as: None for ourselves, ``postgres`` when we are root."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        raise PostgresUnavailable(
            "the tests run as root, PostgreSQL refuses to, and there is no 'postgres' user to "
            "run it as: run `bash deploy/install-postgres.sh` (the package creates the user)"
        ) from None
    if shutil.which("runuser") is None:
        raise PostgresUnavailable("the tests run as root and `runuser` is missing (util-linux)")
    return "postgres"


@dataclass
class PostgresServer:
    """A running throwaway server; ``url`` names a database on it.

    The passwords are random per session, so that tests can look for them in the logs.
    """

    bin_dir: Path
    root: Path
    port: int
    run_as: str | None
    host: str = "127.0.0.1"
    admin_user: str = "streamsense_admin"
    admin_password: str = field(default_factory=lambda: f"admin-{uuid.uuid4().hex}")
    app_user: str = "streamsense_app"
    app_password: str = field(default_factory=lambda: f"pw-{uuid.uuid4().hex}")

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def log_file(self) -> Path:
        return self.root / "server.log"

    @classmethod
    def start(cls) -> PostgresServer:
        bin_dir = find_bin_dir()
        run_as = _server_user()
        # not pytest's tmp_path: its parents are private to root, and the server user must
        # reach the data folder
        root = Path(tempfile.mkdtemp(prefix="streamsense-pg-"))
        server = cls(bin_dir, root, free_port(), run_as)
        try:
            server._init()
            server._pg_ctl("start", "-l", str(server.log_file), "-o", server._options())
            server._create_app_role()
        except BaseException:
            server.stop()
            raise
        return server

    def _init(self) -> None:
        (self.root / "run").mkdir()
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.admin_password + "\n")
        if self.run_as is not None:
            shutil.chown(self.root, self.run_as)
            for path in self.root.iterdir():
                shutil.chown(path, self.run_as)
        self._run(
            self.bin_dir / "initdb",
            f"--pgdata={self.data_dir}",
            f"--username={self.admin_user}",
            f"--pwfile={pwfile}",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "--encoding=UTF8",
            "--no-locale",
            "--no-sync",
        )
        pwfile.unlink()

    def _options(self) -> str:
        # durability off: a test server, thrown away at the end
        settings = {
            "listen_addresses": self.host,
            "unix_socket_directories": str(self.root / "run"),
            "max_connections": "40",
            "shared_buffers": "32MB",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
        }
        return " ".join(f"-c {name}={value}" for name, value in settings.items()) + (
            f" -p {self.port}"
        )

    def _run(self, *command: str | Path) -> None:
        args = [str(c) for c in command]
        if self.run_as is not None:
            args = ["runuser", "-u", self.run_as, "--", *args]
        try:
            subprocess.run(
                args, check=True, capture_output=True, text=True, timeout=_START_TIMEOUT_S
            )
        except subprocess.CalledProcessError as exc:
            raise PostgresUnavailable(
                f"{Path(args[-len(command)]).name} failed (exit {exc.returncode}): "
                f"{(exc.stderr or exc.stdout).strip()[-2000:]}{self._log_tail()}"
            ) from exc
        except subprocess.TimeoutExpired as exc:
            raise PostgresUnavailable(
                f"{' '.join(args)} did not finish in {_START_TIMEOUT_S} s{self._log_tail()}"
            ) from exc

    def _pg_ctl(self, action: str, *args: str) -> None:
        self._run(
            self.bin_dir / "pg_ctl",
            action,
            "-D",
            str(self.data_dir),
            "-w",
            "-t",
            str(_START_TIMEOUT_S),
            *args,
        )

    def _log_tail(self) -> str:
        try:
            lines = self.log_file.read_text(errors="replace").splitlines()[-20:]
        except OSError:
            return ""
        return "\nserver log:\n" + "\n".join(lines)

    def _create_app_role(self) -> None:
        with self.admin() as conn:
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                    sql.Identifier(self.app_user), sql.Literal(self.app_password)
                )
            )

    def admin(self, database: str = "postgres") -> psycopg.Connection[TupleRow]:
        """A superuser connection in autocommit mode (close it, or use it in ``with``)."""
        return psycopg.connect(
            host=self.host,
            port=self.port,
            user=self.admin_user,
            password=self.admin_password,
            dbname=database,
            autocommit=True,
        )

    def url(self, database: str, *, password: str | None = None, **params: str) -> str:
        """``postgresql://`` URL of ``database`` as the app role (``params``: the query)."""
        secret = self.app_password if password is None else password
        query = "?" + "&".join(f"{k}={v}" for k, v in params.items()) if params else ""
        return f"postgresql://{self.app_user}:{secret}@{self.host}:{self.port}/{database}{query}"

    def create_database(self) -> str:
        """A fresh, empty database owned by the app role; its name."""
        name = f"feedback_{uuid.uuid4().hex[:12]}"
        with self.admin() as conn:
            conn.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(name), sql.Identifier(self.app_user)
                )
            )
        return name

    def terminate(self, application_name: str) -> int:
        """Kill the server processes of the connections named so; how many there were."""
        with self.admin() as conn:
            rows = conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = %s",
                (application_name,),
            ).fetchall()
        return sum(1 for (ok,) in rows if ok)

    def restart(self) -> None:
        """Restart the server (fast shutdown: every connection is dropped)."""
        self._pg_ctl("restart", "-m", "fast", "-l", str(self.log_file), "-o", self._options())

    def stop(self) -> None:
        """Stop the server, if it runs, and remove its folder."""
        if (self.data_dir / "postmaster.pid").exists():
            try:
                self._pg_ctl("stop", "-m", "fast")
            except PostgresUnavailable:
                self._pg_ctl("stop", "-m", "immediate")
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A real PostgreSQL server for this session; the tests that use it fail if it cannot start."""
    try:
        server = PostgresServer.start()
    except PostgresUnavailable as exc:
        reason = str(exc)
    else:
        reason = ""
    if reason:  # outside the except: the reason once, not twice
        pytest.fail(f"the test PostgreSQL server could not start: {reason}", pytrace=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_db(postgres_server: PostgresServer) -> str:
    """The name of a fresh, empty database for this test."""
    return postgres_server.create_database()
