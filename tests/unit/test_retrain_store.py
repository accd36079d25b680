"""The feedback store on a temporary SQLite file: upserts, joins, provenance, retention."""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from retrain.exceptions import StoreError
from retrain.store import FeedbackRow, FeedbackStore, Judged, PredictionRow

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> FeedbackStore:
    return FeedbackStore.open(f"sqlite:///{tmp_path}/nested/dir/feedback.db")


def _prediction(item: str, label: str, version: str = "v0001-20261128T100000") -> PredictionRow:
    return PredictionRow(item, "sentiment", version, label, 0.9, T0)


def _feedback(item: str, label: str, **kw: object) -> FeedbackRow:
    fields: dict[str, object] = {"annotator": "ann", "at": T0, "text": f"text of {item}"}
    fields.update(kw)
    return FeedbackRow(item_id=item, task="sentiment", label=label, **fields)  # type: ignore[arg-type]


def test_open_creates_the_file_with_wal(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "feedback.db"
    FeedbackStore.open(f"sqlite:///{path}").close()
    assert path.is_file()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_redelivered_predictions_upsert_one_row(store: FeedbackStore, tmp_path: Path) -> None:
    store.record_predictions([_prediction("tw-1", "neutral")])
    store.record_predictions([_prediction("tw-1", "neutral")])
    store.record_predictions([_prediction("tw-1", "positive", "v0002-20261128T110000")])
    judged = store.add_feedback(_feedback("tw-1", "positive"))
    assert judged == Judged("positive", "v0002-20261128T110000", correct=True)
    with sqlite3.connect(tmp_path / "nested/dir/feedback.db") as conn:
        assert conn.execute("SELECT COUNT(*) FROM predictions").fetchone()[0] == 1


def test_feedback_is_joined_to_the_served_prediction(store: FeedbackStore) -> None:
    store.record_predictions([_prediction("tw-1", "neutral"), _prediction("tw-2", "negative")])
    assert store.add_feedback(_feedback("tw-1", "positive")) == Judged(
        "neutral", "v0001-20261128T100000", correct=False
    )
    assert store.add_feedback(_feedback("tw-2", "negative")) == Judged(
        "negative", "v0001-20261128T100000", correct=True
    )
    assert store.add_feedback(_feedback("tw-unknown", "negative")) is None


def test_prediction_carried_by_the_record_wins(store: FeedbackStore) -> None:
    store.record_predictions([_prediction("tw-1", "neutral")])
    judged = store.add_feedback(
        _feedback("tw-1", "positive", model_version="v0009-x", predicted_label="positive")
    )
    assert judged == Judged("positive", "v0009-x", correct=True)


def test_feedback_before_its_prediction_is_judged_when_it_arrives(store: FeedbackStore) -> None:
    assert store.add_feedback(_feedback("tw-1", "positive")) is None
    assert store.online_accuracy("sentiment") is None
    store.record_predictions([_prediction("tw-1", "positive")])
    assert store.online_accuracy("sentiment") == 1.0


def test_same_label_delivered_twice_is_stored_once(store: FeedbackStore) -> None:
    store.record_predictions([_prediction("tw-1", "neutral")])
    assert store.add_feedback(_feedback("tw-1", "neutral")) is not None
    assert store.add_feedback(_feedback("tw-1", "neutral")) is None  # redelivery: not counted
    assert store.count_new("sentiment", 0) == 1
    # another annotator, or the same one later, is a new label
    store.add_feedback(_feedback("tw-1", "neutral", annotator="other"))
    store.add_feedback(_feedback("tw-1", "positive", at=T0 + timedelta(minutes=5)))
    assert store.count_new("sentiment", 0) == 3


def test_online_accuracy_over_the_most_recent_judged_labels(store: FeedbackStore) -> None:
    store.record_predictions([_prediction(f"tw-{i}", "neutral") for i in range(10)])
    for i in range(10):  # the first 6 wrong, the last 4 right
        store.add_feedback(_feedback(f"tw-{i}", "neutral" if i >= 6 else "negative"))
    assert store.online_accuracy("sentiment") == pytest.approx(0.4)
    assert store.online_accuracy("sentiment", last_n=4) == 1.0
    assert store.online_accuracy("intent") is None


def test_training_rows_hold_only_texts_in_the_id_range(store: FeedbackStore) -> None:
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


def test_purge_blanks_old_texts_but_keeps_labels(store: FeedbackStore) -> None:
    store.record_predictions([_prediction("tw-1", "neutral")])
    store.add_feedback(_feedback("tw-1", "neutral"))
    later = datetime.now(UTC) + timedelta(days=31)
    assert store.purge_texts(timedelta(days=60), now=later) == 0
    assert store.purge_texts(timedelta(days=30), now=later) == 1
    assert store.training_rows("sentiment") == []
    assert store.online_accuracy("sentiment") == 1.0  # the label and its verdict stay


def test_retrain_marks_per_version_and_attempts(store: FeedbackStore) -> None:
    assert store.trained_through("sentiment", "v1") == 0
    store.mark_trained("sentiment", "v2", 40)
    store.mark_trained("sentiment", "v2", 55)
    store.mark_attempt("sentiment", 70)
    assert store.trained_through("sentiment", "v2") == 55
    assert store.trained_through("sentiment", "v1") == 0
    assert store.last_attempt("sentiment") == 70
    assert store.last_attempt("intent") == 0


def test_concurrent_writers_lose_nothing(store: FeedbackStore) -> None:
    def write(worker: int) -> None:
        for i in range(50):
            store.add_feedback(_feedback(f"w{worker}-{i}", "neutral"))

    threads = [threading.Thread(target=write, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.count_new("sentiment", 0) == 200


def test_store_survives_reopening(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/feedback.db"
    with FeedbackStore.open(url) as first:
        first.add_feedback(_feedback("tw-1", "neutral"))
    with FeedbackStore.open(url) as second:
        assert second.count_new("sentiment", 0) == 1


def test_postgres_without_psycopg_says_what_to_install() -> None:
    with pytest.raises(StoreError, match="psycopg"):
        FeedbackStore.open("postgresql://user@localhost/streamsense")


def test_unknown_url_scheme_is_refused() -> None:
    with pytest.raises(StoreError, match="'mysql'"):
        FeedbackStore.open("mysql://localhost/db")
