"""The feedback store on a temporary SQLite file: upserts, joins, provenance, retention.

:class:`StoreContract` holds the behaviour every back end must show; ``TestSqliteStore``
runs it here, ``tests/integration/test_store_postgres.py`` against a real PostgreSQL.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from retrain.exceptions import StoreError
from retrain.store import FeedbackRow, FeedbackStore, Judged, PredictionRow, ShadowPair, ShadowRow

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)

Scalar = Callable[[str], Any]  # the first column of the first row of a query, read directly


def _prediction(item: str, label: str, version: str = "v0001-20261128T100000") -> PredictionRow:
    return PredictionRow(item, "sentiment", version, label, 0.9, T0)


def _feedback(item: str, label: str, **kw: object) -> FeedbackRow:
    fields: dict[str, object] = {"annotator": "ann", "at": T0, "text": f"text of {item}"}
    fields.update(kw)
    return FeedbackRow(item_id=item, task="sentiment", label=label, **fields)  # type: ignore[arg-type]


def run_at_once(*targets: Callable[[], object]) -> None:
    """Run ``targets`` at once, each in its own thread; re-raise the first failure."""
    errors: list[BaseException] = []
    start = threading.Barrier(len(targets))

    def run(target: Callable[[], object]) -> None:
        try:
            start.wait()
            target()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(t,)) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


class StoreContract:
    """What every back end of the feedback store does.

    A subclass provides the ``store_url`` fixture (a fresh, empty store) and ``scalar``.
    """

    @pytest.fixture
    def store(self, store_url: str) -> Iterator[FeedbackStore]:
        with FeedbackStore.open(store_url) as store:
            yield store

    def test_shadow_predictions_are_judged_on_the_items_newest_label(
        self, store: FeedbackStore, scalar: Scalar
    ) -> None:
        def shadow(item: str, label: str, served: str, at: datetime = T0) -> ShadowRow:
            return ShadowRow(item, "sentiment", "v0002-c", label, "v0001-p", served, at)

        store.record_shadow(
            [shadow("tw-1", "positive", "neutral"), shadow("tw-2", "neutral", "neutral")]
        )
        store.record_shadow([shadow("tw-1", "positive", "neutral")])  # a redelivered batch
        store.record_shadow([shadow("old", "neutral", "neutral", T0 - timedelta(days=2))])
        assert scalar("SELECT COUNT(*) FROM shadow_predictions") == 3
        assert store.shadow_pairs("sentiment", "v0002-c") == []  # nothing labelled yet
        store.record_predictions([_prediction(i, "neutral") for i in ("tw-1", "tw-2", "unscored")])
        store.add_feedback(_feedback("tw-1", "neutral"))
        # a correction: production (neutral) wrong, the shadow (positive) right
        correction = store.add_feedback(_feedback("tw-1", "positive", annotator="lead"))
        assert correction is not None and correction.shadow == ((False, True),)
        store.add_feedback(_feedback("tw-2", "negative"))
        store.add_feedback(_feedback("old", "neutral"))
        assert store.shadow_pairs("sentiment", "v0002-c", T0 - timedelta(hours=1)) == [
            ShadowPair("tw-1", "positive", "neutral", "positive"),
            ShadowPair("tw-2", "negative", "neutral", "neutral"),
        ]
        assert len(store.shadow_pairs("sentiment", "v0002-c")) == 3  # since the beginning
        assert store.shadow_pairs("sentiment", "v0003-other") == []
        unscored = store.add_feedback(_feedback("unscored", "positive"))  # served, no shadow
        assert unscored is not None and unscored.shadow == ()

    def test_redelivered_predictions_upsert_one_row(
        self, store: FeedbackStore, scalar: Scalar
    ) -> None:
        store.record_predictions([_prediction("tw-1", "neutral")])
        store.record_predictions([_prediction("tw-1", "neutral")])
        store.record_predictions([_prediction("tw-1", "positive", "v0002-20261128T110000")])
        judged = store.add_feedback(_feedback("tw-1", "positive"))
        assert judged == Judged("positive", "v0002-20261128T110000", correct=True)
        assert scalar("SELECT COUNT(*) FROM predictions") == 1

    def test_feedback_is_joined_to_the_served_prediction(
        self, store: FeedbackStore, scalar: Scalar
    ) -> None:
        store.record_predictions([_prediction("tw-1", "neutral"), _prediction("tw-2", "negative")])
        assert store.add_feedback(_feedback("tw-1", "positive")) == Judged(
            "neutral", "v0001-20261128T100000", correct=False
        )
        assert store.add_feedback(_feedback("tw-2", "negative")) == Judged(
            "negative", "v0001-20261128T100000", correct=True
        )
        assert store.add_feedback(_feedback("tw-unknown", "negative")) is None
        assert scalar("SELECT provenance FROM feedback WHERE item_id = 'tw-1'") == "prediction"

    def test_prediction_carried_by_the_record_wins(
        self, store: FeedbackStore, scalar: Scalar
    ) -> None:
        store.record_predictions([_prediction("tw-1", "neutral")])
        judged = store.add_feedback(
            _feedback("tw-1", "positive", model_version="v0009-x", predicted_label="positive")
        )
        assert judged == Judged("positive", "v0009-x", correct=True)
        assert scalar("SELECT provenance FROM feedback") == "record"

    def test_feedback_before_its_prediction_is_judged_when_it_arrives(
        self, store: FeedbackStore
    ) -> None:
        assert store.add_feedback(_feedback("tw-1", "positive")) is None
        assert store.online_accuracy("sentiment") is None
        store.record_predictions([_prediction("tw-1", "positive")])
        assert store.online_accuracy("sentiment") == 1.0

    def test_same_label_delivered_twice_is_stored_once(self, store: FeedbackStore) -> None:
        store.record_predictions([_prediction("tw-1", "neutral")])
        assert store.add_feedback(_feedback("tw-1", "neutral")) is not None
        assert store.add_feedback(_feedback("tw-1", "neutral")) is None  # redelivery: not counted
        assert store.count_new("sentiment", 0) == 1
        # another annotator, or the same one later, is a new label
        store.add_feedback(_feedback("tw-1", "neutral", annotator="other"))
        store.add_feedback(_feedback("tw-1", "positive", at=T0 + timedelta(minutes=5)))
        assert store.count_new("sentiment", 0) == 3

    def test_online_accuracy_over_the_most_recent_judged_labels(self, store: FeedbackStore) -> None:
        store.record_predictions([_prediction(f"tw-{i}", "neutral") for i in range(10)])
        for i in range(10):  # the first 6 wrong, the last 4 right
            store.add_feedback(_feedback(f"tw-{i}", "neutral" if i >= 6 else "negative"))
        assert store.online_accuracy("sentiment") == pytest.approx(0.4)
        assert store.online_accuracy("sentiment", last_n=4) == 1.0
        assert store.online_accuracy("intent") is None

    def test_training_rows_hold_only_texts_in_the_id_range(self, store: FeedbackStore) -> None:
        store.add_feedback(_feedback("tw-1", "neutral"))
        store.add_feedback(_feedback("tw-2", "negative", text=None))  # online accuracy only
        store.add_feedback(_feedback("tw-3", "positive", text="   "))
        store.add_feedback(_feedback("tw-4", "positive"))
        last = store.max_id("sentiment")
        store.add_feedback(_feedback("tw-5", "negative"))
        rows = store.training_rows("sentiment", since_id=0, until_id=last)
        assert [(r.item_id, r.label, r.text) for r in rows] == [
            ("tw-1", "neutral", "text of tw-1"),
            ("tw-4", "positive", "text of tw-4"),
        ]
        assert store.count_new("sentiment", since_id=rows[0].id) == 2
        assert [r.item_id for r in store.training_rows("sentiment", limit=1)] == ["tw-5"]
        assert store.max_id("intent") == 0

    def test_purge_blanks_old_texts_but_keeps_labels(self, store: FeedbackStore) -> None:
        store.record_predictions([_prediction("tw-1", "neutral")])
        store.add_feedback(_feedback("tw-1", "neutral"))
        later = datetime.now(UTC) + timedelta(days=31)
        assert store.purge_texts(timedelta(days=60), now=later) == 0
        assert store.purge_texts(timedelta(days=30), now=later) == 1
        assert store.training_rows("sentiment") == []
        assert store.online_accuracy("sentiment") == 1.0  # the label and its verdict stay

    def test_retrain_marks_per_version_and_attempts(self, store: FeedbackStore) -> None:
        assert store.trained_through("sentiment", "v1") == 0
        store.mark_trained("sentiment", "v2", 40)
        store.mark_trained("sentiment", "v2", 55)
        store.mark_attempt("sentiment", 70)
        store.mark_attempt("sentiment", 75)
        assert store.trained_through("sentiment", "v2") == 55
        assert store.trained_through("sentiment", "v1") == 0
        assert store.last_attempt("sentiment") == 75
        assert store.last_attempt("intent") == 0

    def test_threads_sharing_one_store_lose_nothing(self, store: FeedbackStore) -> None:
        def writer(worker: int) -> Callable[[], None]:
            def write() -> None:
                for i in range(50):
                    store.add_feedback(_feedback(f"w{worker}-{i}", "x"))

            return write

        run_at_once(*(writer(w) for w in range(4)))
        assert store.count_new("sentiment", 0) == 200

    def test_two_stores_writing_at_once_store_each_label_once(
        self, store_url: str, scalar: Scalar
    ) -> None:
        """Two workers, each with its own store; the shared labels are redeliveries."""
        FeedbackStore.open(store_url).close()  # the schema, before the race
        judged: list[list[Judged | None]] = [[], []]

        def writer(worker: int) -> Callable[[], None]:
            def write() -> None:
                with FeedbackStore.open(store_url) as own:
                    own.record_predictions([_prediction(f"shared-{i}", "x") for i in range(60)])
                    for i in range(60):
                        judged[worker].append(own.add_feedback(_feedback(f"shared-{i}", "x")))
                        own.add_feedback(_feedback(f"w{worker}-{i}", "x"))

            return write

        run_at_once(writer(0), writer(1))
        assert scalar("SELECT COUNT(*) FROM feedback") == 60 + 2 * 60
        assert scalar("SELECT COUNT(DISTINCT id) FROM feedback") == 180
        # each shared label was counted by exactly one of the two writers
        assert sum(j is not None for js in judged for j in js) == 60

    def test_a_reader_walking_ids_while_two_stores_write_sees_each_row_once(
        self, store_url: str
    ) -> None:
        """What the retrain job does (max_id, then training_rows up to it) under load."""
        FeedbackStore.open(store_url).close()
        done = threading.Event()
        seen: list[str] = []

        def writer(worker: int) -> Callable[[], None]:
            def write() -> None:
                with FeedbackStore.open(store_url) as own:
                    for i in range(150):
                        own.add_feedback(_feedback(f"w{worker}-{i}", "x"))

            return write

        def read() -> None:
            with FeedbackStore.open(store_url) as reader:
                since = 0
                while True:
                    last_round = done.is_set()
                    until = reader.max_id("sentiment")
                    seen.extend(r.item_id for r in reader.training_rows("sentiment", since, until))
                    since = until
                    if last_round:
                        return

        def writers() -> None:
            try:
                run_at_once(writer(0), writer(1))
            finally:
                done.set()

        run_at_once(writers, read)
        assert sorted(seen) == sorted(f"w{w}-{i}" for w in (0, 1) for i in range(150))

    def test_a_label_and_its_prediction_arriving_at_once_are_joined(
        self, store_url: str, scalar: Scalar
    ) -> None:
        FeedbackStore.open(store_url).close()
        items = [f"tw-{i}" for i in range(200)]

        def predict() -> None:
            with FeedbackStore.open(store_url) as own:
                for start in range(0, len(items), 5):
                    own.record_predictions([_prediction(i, "x") for i in items[start : start + 5]])

        def label() -> None:
            with FeedbackStore.open(store_url) as own:
                for item in items:
                    own.add_feedback(_feedback(item, "x"))

        run_at_once(predict, label)
        assert scalar("SELECT COUNT(*) FROM feedback WHERE correct = 1") == len(items)

    def test_store_survives_reopening(self, store_url: str) -> None:
        with FeedbackStore.open(store_url) as first:
            first.add_feedback(_feedback("tw-1", "neutral"))
        with FeedbackStore.open(store_url) as second:
            assert second.count_new("sentiment", 0) == 1

    def test_a_closed_store_says_so(self, store_url: str) -> None:
        store = FeedbackStore.open(store_url)
        store.close()
        with pytest.raises(StoreError, match="is closed: cannot add feedback"):
            store.add_feedback(_feedback("tw-1", "neutral"))


class TestSqliteStore(StoreContract):
    @pytest.fixture
    def db_path(self, tmp_path: Path) -> Path:
        return tmp_path / "nested" / "dir" / "feedback.db"

    @pytest.fixture
    def store_url(self, db_path: Path) -> str:
        return f"sqlite:///{db_path}"

    @pytest.fixture
    def scalar(self, db_path: Path) -> Scalar:
        def read(query: str) -> Any:
            with closing(sqlite3.connect(db_path)) as conn:
                return conn.execute(query).fetchone()[0]

        return read


def test_open_creates_the_file_with_wal(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "feedback.db"
    FeedbackStore.open(f"sqlite:///{path}").close()
    assert path.is_file()
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_postgres_without_psycopg_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # import psycopg: ImportError
    with pytest.raises(StoreError, match="'psycopg' package is not installed"):
        FeedbackStore.open("postgresql://user@localhost/streamsense")


def test_malformed_postgres_url_is_refused_without_showing_the_password() -> None:
    with pytest.raises(StoreError, match="not a valid PostgreSQL URL") as caught:
        FeedbackStore.open("postgresql://app:top secret@db.internal/feedback")
    assert "secret" not in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__context__ is None


def test_unknown_url_scheme_is_refused() -> None:
    with pytest.raises(StoreError, match="'mysql'"):
        FeedbackStore.open("mysql://localhost/db")


def test_processes_opening_a_new_sqlite_store_at_once_all_open_it(tmp_path: Path) -> None:
    """Two workers starting on a new store at once: one failed with "database is locked"
    (SQLite refuses a second switch to WAL under way without waiting)."""
    code = (
        "import sys, time\n"
        "from retrain.store import FeedbackStore\n"
        "time.sleep(max(0.0, float(sys.argv[2]) - time.time()))\n"
        "FeedbackStore.open('sqlite:///' + sys.argv[1]).close()\n"
    )
    for round_ in range(5):  # 12 at once failed in 9 of 15 rounds before the fix
        path = tmp_path / f"round-{round_}" / "feedback.db"
        start = str(time.time() + 1.5)  # past every interpreter's start-up
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", code, str(path), start],
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(12)
        ]
        failures = [p.communicate(timeout=60)[1] for p in procs if p.wait(timeout=60) != 0]
        assert failures == [], failures[0]
