"""Opening the feedback store's database: SQLite by path, PostgreSQL by URL (psycopg 3).

Every failure is one :class:`~retrain.exceptions.StoreError` line that names the store as
``postgresql://user@host:port/database`` (never the password) and what to check.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from retrain.exceptions import StoreError

logger = logging.getLogger(__name__)

# PostgreSQL: seconds to wait for a server that does not answer (libpq waits forever, psycopg
# 130 s); a connect_timeout in the URL wins.
CONNECT_TIMEOUT_S = 10
WHAT_TO_DO = (
    "check that the PostgreSQL server is running and reachable from here, and that the "
    "feedback store URL (STREAMSENSE_FEEDBACK_DB_URL) names the right host, port, database, "
    "user and password"
)


@dataclass(frozen=True)
class Opened:
    """An open DB-API connection and what the store needs to use and reopen it."""

    connection: Any
    dialect: str
    where: str
    reconnect: Callable[[], Any] | None = None
    secret: str = ""


def reason(exc: BaseException, secret: str = "") -> str:
    """The first line of a driver error, without ``secret`` (libpq never echoes it; belt)."""
    text = str(exc).strip().splitlines()
    line = " ".join(text[0].split()) if text else type(exc).__name__
    return line.replace(secret, "***") if len(secret) >= 4 else line  # "a": no mangling


def driver_errors(dialect: str) -> tuple[type[Exception], ...]:
    if dialect != "postgresql":
        return (sqlite3.Error,)
    import psycopg

    return (psycopg.Error,)


def postgres_where(params: dict[str, Any]) -> str:
    """``postgresql://user@host:port/database`` from parsed connection parameters."""
    user = str(params.get("user") or "")
    host = str(params.get("host") or params.get("hostaddr") or "localhost")
    port = str(params.get("port") or "5432")
    database = str(params.get("dbname") or user or "postgres")
    return f"postgresql://{user + '@' if user else ''}{host}:{port}/{database}"


SQLITE_BUSY_S = 30.0


def _wal(conn: sqlite3.Connection) -> None:
    """Switch to WAL, waiting while another process does it: SQLite answers "database is
    locked" at once to a second switch under way, without its busy timeout (two workers
    starting on a new store at once met it)."""
    deadline = time.monotonic() + SQLITE_BUSY_S
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def open_sqlite(url: str) -> Opened:
    raw = url.removeprefix("sqlite:///")
    try:
        if raw and raw != ":memory:":
            Path(raw).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(raw or ":memory:", check_same_thread=False, timeout=30)
        _wal(conn)
        conn.execute("PRAGMA synchronous=NORMAL")
    except (OSError, sqlite3.Error) as exc:
        raise StoreError(f"cannot open the feedback store {raw!r}: {exc}") from exc
    logger.info("feedback store: SQLite %s", raw)
    return Opened(conn, "sqlite", raw)


def open_postgresql(url: str) -> Opened:
    try:
        import psycopg
        from psycopg.conninfo import conninfo_to_dict
    except ImportError as exc:
        raise StoreError(
            "the feedback store URL names PostgreSQL but the 'psycopg' package is not "
            "installed: pip install 'psycopg[binary]', or use a sqlite:/// URL"
        ) from exc
    try:
        params: dict[str, Any] | None = conninfo_to_dict(url)
    except psycopg.Error:  # its message may quote the password: neither shown nor chained
        params = None
    if params is None:
        raise StoreError(
            "the feedback store URL is not a valid PostgreSQL URL: write it as "
            "postgresql://user:password@host:port/database, with special characters in the "
            "password percent-encoded"
        )
    where = postgres_where(params)
    secret = str(params.get("password") or "")
    timeout = params.get("connect_timeout") or CONNECT_TIMEOUT_S

    def connect() -> Any:
        try:
            return psycopg.connect(url, connect_timeout=timeout)
        except psycopg.Error as exc:
            raise StoreError(
                f"cannot connect to the feedback store {where}: {reason(exc, secret)}; {WHAT_TO_DO}"
            ) from None  # the driver's error says no more than the line above

    conn = connect()
    logger.info("feedback store: PostgreSQL %s", where)
    return Opened(conn, "postgresql", where, reconnect=connect, secret=secret)
