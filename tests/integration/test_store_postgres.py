"""The feedback store against a real PostgreSQL server (started for the session).

The behaviour every back end shares (``StoreContract``), then what only a server brings:
writers in other processes, connections dropped mid-run, a server that is down or refuses.
No test may log a password or a feedback text.
"""

from __future__ import annotations

import logging
import multiprocessing
import socket
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import psycopg
import pytest

from retrain.exceptions import StoreError
from retrain.store import FeedbackRow, FeedbackStore, Judged, PredictionRow
from tests.unit.test_retrain_store import Scalar, StoreContract, run_at_once

if TYPE_CHECKING:
    from tests.postgres_helpers import PostgresServer

pytest_plugins = ["tests.postgres_helpers"]  # postgres_server, postgres_db
pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _no_password_or_text_is_logged(
    caplog: pytest.LogCaptureFixture, postgres_server: PostgresServer
) -> Iterator[None]:
    caplog.set_level(logging.DEBUG)  # ours and psycopg's, at every level
    yield
    for secret in (postgres_server.app_password, postgres_server.admin_password, "text of "):
        assert secret not in caplog.text


def _label(item: str, label: str = "x", text: str | None = None) -> FeedbackRow:
    return FeedbackRow(item, "sentiment", label, "ann", T0, text or f"text of {item}")


def _prediction(item: str, label: str = "x") -> PredictionRow:
    return PredictionRow(item, "sentiment", "v0001-20261128T100000", label, 0.9, T0)


def _unused_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _assert_one_clear_line(exc: StoreError, server: PostgresServer, database: str) -> str:
    message = str(exc)
    assert "\n" not in message
    assert f"{server.host}:{server.port}/{database}" in message
    assert server.app_password not in message
    return message


class TestPostgresStore(StoreContract):
    @pytest.fixture
    def store_url(self, postgres_server: PostgresServer, postgres_db: str) -> str:
        return postgres_server.url(postgres_db)

    @pytest.fixture
    def scalar(self, postgres_server: PostgresServer, postgres_db: str) -> Scalar:
        def read(query: str) -> Any:
            with postgres_server.admin(postgres_db) as conn:
                row = conn.execute(query).fetchone()
            assert row is not None
            return row[0]

        return read


def _write_labels(url: str, worker: int, n: int) -> None:
    """One worker process: its own labels, and the shared ones (redeliveries)."""
    with FeedbackStore.open(url) as store:
        for i in range(n):
            store.add_feedback(_label(f"p{worker}-{i}"))
            store.add_feedback(_label(f"shared-{i}"))


def test_two_processes_writing_at_once_store_each_label_once(
    postgres_server: PostgresServer, postgres_db: str
) -> None:
    url = postgres_server.url(postgres_db)
    FeedbackStore.open(url).close()
    spawn = multiprocessing.get_context("spawn")
    workers = [spawn.Process(target=_write_labels, args=(url, w, 200)) for w in (0, 1)]
    for w in workers:
        w.start()
    seen: list[str] = []
    with FeedbackStore.open(url) as reader:  # the retrain job's walk, while they write
        since = 0
        while True:
            finished = not any(w.is_alive() for w in workers)
            until = reader.max_id("sentiment")
            seen.extend(r.item_id for r in reader.training_rows("sentiment", since, until))
            since = until
            if finished:
                break
    for w in workers:
        w.join(timeout=60)
        assert w.exitcode == 0
    expected = [f"p{w}-{i}" for w in (0, 1) for i in range(200)] + [
        f"shared-{i}" for i in range(200)
    ]
    assert sorted(seen) == sorted(expected)


def test_a_dropped_connection_is_reopened_and_the_call_succeeds(
    postgres_server: PostgresServer, postgres_db: str, caplog: pytest.LogCaptureFixture
) -> None:
    name = f"store-{uuid.uuid4().hex[:8]}"
    with FeedbackStore.open(postgres_server.url(postgres_db, application_name=name)) as store:
        store.record_predictions([_prediction("tw-1"), _prediction("tw-2", "y")])
        assert postgres_server.terminate(name) == 1
        assert store.add_feedback(_label("tw-1")) == Judged("x", "v0001-20261128T100000", True)
        assert postgres_server.terminate(name) == 1
        assert store.add_feedback(_label("tw-2")) == Judged("y", "v0001-20261128T100000", False)
        assert postgres_server.terminate(name) == 1
        store.record_predictions([_prediction("tw-3")])
        assert postgres_server.terminate(name) == 1
        assert store.online_accuracy("sentiment") == 0.5
        assert store.count_new("sentiment", 0) == 2
    assert "connection lost during 'add feedback'" in caplog.text
    assert "reconnected" in caplog.text


def test_a_server_restart_mid_run_is_survived(
    postgres_server: PostgresServer, postgres_db: str
) -> None:
    with FeedbackStore.open(postgres_server.url(postgres_db)) as store:
        store.add_feedback(_label("tw-1"))
        postgres_server.restart()
        store.add_feedback(_label("tw-2"))
        postgres_server.restart()
        assert [r.item_id for r in store.training_rows("sentiment")] == ["tw-1", "tw-2"]


def test_a_connection_that_cannot_come_back_is_one_clear_error_then_recovers(
    postgres_server: PostgresServer, postgres_db: str
) -> None:
    name = f"store-{uuid.uuid4().hex[:8]}"
    with FeedbackStore.open(postgres_server.url(postgres_db, application_name=name)) as store:
        store.add_feedback(_label("tw-1"))
        with postgres_server.admin() as admin:
            admin.execute(f'ALTER DATABASE "{postgres_db}" WITH ALLOW_CONNECTIONS false')
            postgres_server.terminate(name)
            with pytest.raises(StoreError) as caught:
                store.add_feedback(_label("tw-2"))
            admin.execute(f'ALTER DATABASE "{postgres_db}" WITH ALLOW_CONNECTIONS true')
        message = _assert_one_clear_line(caught.value, postgres_server, postgres_db)
        assert "lost the connection to the feedback store during 'add feedback'" in message
        assert "could not reconnect" in message
        assert "is not currently accepting connections" in message
        # the server is back: the next call reconnects; the failed label was not stored
        store.add_feedback(_label("tw-3"))
        assert [r.item_id for r in store.training_rows("sentiment")] == ["tw-1", "tw-3"]


def test_an_unreachable_server_is_one_clear_error(postgres_server: PostgresServer) -> None:
    server = postgres_server
    port = _unused_port()
    url = f"postgresql://{server.app_user}:{server.app_password}@127.0.0.1:{port}/feedback"
    with pytest.raises(StoreError) as caught:
        FeedbackStore.open(url)
    message = str(caught.value)
    assert "\n" not in message and server.app_password not in message
    where = f"postgresql://{server.app_user}@127.0.0.1:{port}/feedback"
    assert message.startswith(f"cannot connect to the feedback store {where}: ")
    assert "Connection refused" in message
    assert "check that the PostgreSQL server is running" in message


@pytest.mark.parametrize(
    ("password", "database", "reason"),
    [
        ("wrong-password-1234", None, 'password authentication failed for user "streamsense_app"'),
        (None, "no_such_db", 'database "no_such_db" does not exist'),
    ],
)
def test_a_refusing_server_is_one_clear_error(
    postgres_server: PostgresServer,
    postgres_db: str,
    password: str | None,
    database: str | None,
    reason: str,
) -> None:
    database = database or postgres_db
    with pytest.raises(StoreError) as caught:
        FeedbackStore.open(postgres_server.url(database, password=password))
    message = _assert_one_clear_line(caught.value, postgres_server, database)
    assert reason in message
    assert (password or postgres_server.app_password) not in message


def test_stores_opening_a_new_database_at_once_create_the_schema_once(
    postgres_server: PostgresServer, postgres_db: str
) -> None:
    url = postgres_server.url(postgres_db)
    opened: list[FeedbackStore] = []
    try:
        run_at_once(*[lambda: opened.append(FeedbackStore.open(url))] * 6)
    finally:
        for store in opened:
            store.close()
    assert len(opened) == 6


def test_a_label_the_server_cannot_hold_is_a_store_error_and_the_store_goes_on(
    postgres_server: PostgresServer, postgres_db: str
) -> None:
    with FeedbackStore.open(postgres_server.url(postgres_db)) as store:
        with pytest.raises(StoreError, match=r"failed to add feedback: .*NUL") as caught:
            store.add_feedback(_label("tw-1", text="text of tw-1 with a \x00 byte"))
        assert "text of" not in str(caught.value)
        store.add_feedback(_label("tw-2"))
        assert store.count_new("sentiment", 0) == 1


def test_a_label_whose_commit_reply_was_lost_is_stored_once_and_counted(
    postgres_server: PostgresServer, postgres_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server committed, the connection died before saying so; the retry finds the row."""
    with FeedbackStore.open(postgres_server.url(postgres_db)) as store:
        store.record_predictions([_prediction("tw-1")])
        conn = store._conn  # the one place a test reaches inside: to lose a commit's reply
        committed = type(conn).commit

        def commit_then_drop(self: psycopg.Connection[Any]) -> None:
            committed(self)
            self.pgconn.finish()
            raise psycopg.OperationalError("server closed the connection unexpectedly")

        monkeypatch.setattr(conn, "commit", commit_then_drop.__get__(conn))
        assert store.add_feedback(_label("tw-1")) == Judged("x", "v0001-20261128T100000", True)
        assert store._conn is not conn  # reconnected
        assert store.add_feedback(_label("tw-1")) is None  # a real redelivery stays uncounted
        assert store.count_new("sentiment", 0) == 1
