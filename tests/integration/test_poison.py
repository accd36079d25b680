"""Poison records: hostile keys, headers and values on every consumed topic become dead
letters (or bounded outputs) while the good records around them flow, and the worker never
exits or restarts. Real broker, one real worker process."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaProducer

from models.data import load_banking77, load_twitter
from streams.core.records import ScoredMessage, ScoredNews, encode
from streams.edges.replay import customer_messages, news_items
from streams.edges.topics import changelog_topic
from tests.kafka_helpers import produce
from tests.pipeline_helpers import (
    Pipeline,
    RawHeaderName,
    TopicReader,
    metric_value,
    produce_with_headers,
)
from tests.record_factories import routed_ticket

pytestmark = pytest.mark.integration

TWITTER = Path("twitter_financial_news") / "sent_train.csv"
BAD_NAME = b"\xff\xfeorigin"
AT = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def pipeline(
    kafka_bootstrap: str, trained_registry: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Pipeline]:
    workdir = tmp_path_factory.mktemp("poison")
    unique = "poison-" + uuid.uuid4().hex[:8]
    pipe = Pipeline.create(kafka_bootstrap, unique, trained_registry, workdir)
    pipe.start_worker()
    yield pipe
    pipe.stop_all()


def _letters(
    pipe: Pipeline, topic: str, count: int, context: object = None
) -> list[dict[str, Any]]:
    """Wait for ``count`` dead letters of ``topic``; fail with the workers' logs if they
    do not come (``context``: what else the test saw, for the failure message)."""
    reader = TopicReader(pipe.bootstrap, pipe.settings.dlq_topic(topic))
    try:
        letters = reader.wait_for(lambda recs: len(recs) >= count, 120, pipe.assert_never_restarted)
    finally:
        reader.close()
    assert len(letters) >= count, (
        f"{len(letters)} of {count} dead letter(s) on {topic}'s DLQ after 120 s; "
        f"seen meanwhile: {context}\n{pipe.logs()}"
    )
    return letters


def _by_key(letters: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {base64.b64decode(letter["key"]).decode(): letter for letter in letters}


def _messages(pipe: Pipeline, start: int, count: int, prefix: str) -> list[Any]:
    data = load_banking77(pipe.settings.data_dir).subset(range(start, start + count))
    return list(customer_messages(data, prefix=prefix))


def test_a_header_name_that_is_not_utf8_is_a_dead_letter_on_every_input(
    pipeline: Pipeline,
) -> None:
    s = pipeline.settings
    bad = [(RawHeaderName(BAD_NAME), b"crm"), ("trace", b"t-1")]
    messages = _messages(pipeline, 0, 12, "hdr")
    hostile, good = messages[0], messages[1:]
    records = [(m.key, m.value, []) for m in good[:5]]
    records.append((b"hostile-message", hostile.value, bad))
    records.append((b"\xff\xfe not utf-8 key", good[5].value, []))  # keys are never read
    records += [(m.key, m.value, []) for m in good[6:]]
    produce_with_headers(pipeline.bootstrap, s.topic_messages_raw, records)

    twitter = load_twitter(s.data_dir / TWITTER).subset(range(0, 4))
    news = list(news_items(twitter, prefix="hdr"))
    produce_with_headers(
        pipeline.bootstrap,
        s.topic_news_raw,
        [(b"hostile-news", news[0].value, bad), *[(n.key, n.value, []) for n in news[1:]]],
    )
    feedback = [
        json.dumps(
            {"item_id": f"hdr-{n}", "task": "sentiment", "label": "positive", "annotator": "qa"}
            | {"at": AT.isoformat()}
        ).encode()
        for n in range(4)
    ]
    produce_with_headers(
        pipeline.bootstrap,
        s.topic_feedback,
        [(b"hostile-feedback", feedback[0], bad), *[(b"fb", v, []) for v in feedback[1:]]],
    )

    routed = TopicReader(pipeline.bootstrap, s.topic_tickets_routed)
    scored = TopicReader(pipeline.bootstrap, s.topic_news_scored)
    try:
        counts = routed.wait_for_ids(
            [m.item_id for m in good], 240, pipeline.assert_never_restarted
        )
        news_counts = scored.wait_for_ids(
            [n.item_id for n in news[1:]], 120, pipeline.assert_never_restarted
        )
    finally:
        routed.close()
        scored.close()
    assert set(counts) >= {m.item_id for m in good}
    assert hostile.item_id not in counts
    assert set(news_counts) >= {n.item_id for n in news[1:]}

    for topic, key, value in [
        (s.topic_messages_raw, "hostile-message", hostile.value),
        (s.topic_news_raw, "hostile-news", news[0].value),
        (s.topic_feedback, "hostile-feedback", feedback[0]),
    ]:
        letter = _by_key(_letters(pipeline, topic, 1))[key]
        assert letter["reason"] == "invalid_header", letter
        assert base64.b64decode(letter["value_b64"]) == value
        assert [base64.b64decode(n) for n in letter["header_names_b64"]] == [BAD_NAME, b"trace"]
        assert letter["headers"][1] == ["trace", base64.b64encode(b"t-1").decode()]
    deadline = time.monotonic() + 60
    while _metric(pipeline, "streamsense_feedback_received_total", task="sentiment") < 3:
        assert time.monotonic() < deadline, "the good feedback was never stored"
        pipeline.assert_never_restarted()
        time.sleep(0.5)
    pipeline.assert_never_restarted()


def _metric(pipe: Pipeline, name: str, **labels: str) -> float:
    return metric_value(pipe.metrics_ports[0], name, **labels) or 0.0


def _scored_message(i: str, customer: str, probs: dict[str, float]) -> bytes:
    return encode(
        ScoredMessage(
            id=i,
            customer_id=customer,
            channel="chat",
            model_version="script",
            sentiment_model_version="script",
            intent_probs=probs or {"placeholder": 1.0},
            sentiment="neutral",
            sentiment_score=0.0,
            sent_at=AT,
            scored_at=AT,
        )
    ).replace(b'{"placeholder":1.0}', b"{}")


def _scored_news(i: str, ticker: str, at: datetime, published: str | None = None) -> bytes:
    value = json.loads(
        encode(
            ScoredNews(
                id=i,
                model_version="script",
                label="negative",
                probs={"negative": 0.95, "neutral": 0.05, "positive": 0.0},
                score=-0.95,
                tickers=[ticker],
                headline=f"{ticker} warning {i}",
                published_at=at,
                scored_at=at,
            )
        )
    )
    if published is not None:
        value["published_at"] = published
    return json.dumps(value).encode()


def _ticket(i: str, intent: str) -> bytes:
    return encode(routed_ticket(i, AT, intent=intent))


def test_hostile_internal_records_are_dead_letters_and_the_rest_flows(
    pipeline: Pipeline,
) -> None:
    s = pipeline.settings
    good = {"card_arrival": 0.9, "card_linking": 0.05}
    produce(
        pipeline.bootstrap,
        s.topic_messages_scored,
        [
            (b"c-ok-0", _scored_message("ok-0", "c-ok-0", good)),
            (b"c-empty", _scored_message("empty-probs", "c-empty", {})),
            (b"c-ok-1", _scored_message("ok-1", "c-ok-1", good)),
            (b"someone-else", _scored_message("wrong-key", "c-ok-2", good)),
            (b"c-ok-2", _scored_message("ok-2", "c-ok-2", good)),
        ],
    )
    burst = [_scored_news(f"burst-{n}", "PSN", AT + timedelta(seconds=30 * n)) for n in range(6)]
    produce(
        pipeline.bootstrap,
        s.topic_news_scored,
        [
            (b"PSN", burst[0]),
            (b"PSN", _scored_news("year-1", "PSN", AT, "0001-01-01T00:00:00Z")),
            (b"PSN", burst[1]),
            (b"PSN", _scored_news("year-9999", "PSN", AT, "9999-12-31T23:59:59Z")),
            (b"PSN", _scored_news("next-year", "PSN", datetime.now(UTC) + timedelta(days=365))),
            *[(b"PSN", b) for b in burst[2:]],
        ],
    )
    produce(
        pipeline.bootstrap,
        s.topic_tickets_routed,
        [
            (b"card_arrival", _ticket("t-ok", "card_arrival")),
            (b"not-the-intent", _ticket("t-wrong-key", "card_arrival")),
            (
                b"card_arrival",
                _ticket("t-nan", "card_arrival").replace(b'"confidence":0.9', b'"confidence":NaN'),
            ),
        ],
    )

    routed = TopicReader(pipeline.bootstrap, s.topic_tickets_routed)
    alerts = TopicReader(pipeline.bootstrap, s.topic_alerts)
    try:
        counts = routed.wait_for_ids(["ok-0", "ok-1", "ok-2"], 120, pipeline.assert_never_restarted)
        found = alerts.wait_for(
            lambda recs: any(r["subject"] == "PSN" for r in recs),
            120,
            pipeline.assert_never_restarted,
        )
    finally:
        routed.close()
        alerts.close()
    assert {"ok-0", "ok-1", "ok-2"} <= set(counts)
    assert "empty-probs" not in counts and "wrong-key" not in counts
    [alert] = [a for a in found if a["subject"] == "PSN"]
    assert set(alert["evidence_ids"]) <= {f"burst-{n}" for n in range(6)}

    expected = {
        s.topic_messages_scored: {
            "c-empty": ("validation_error", "intent_probs: too_short"),
            "someone-else": ("invalid_key", "customer id"),
        },
        s.topic_news_scored: {},  # all keyed PSN: matched by offset order below
        s.topic_tickets_routed: {
            "not-the-intent": ("invalid_key", "intent"),
        },
    }
    for topic in (s.topic_messages_scored, s.topic_tickets_routed):
        letters = _by_key(_letters(pipeline, topic, len(expected[topic])))
        for key, (reason, detail) in expected[topic].items():
            assert letters[key]["reason"] == reason and detail in letters[key]["detail"]
    nan = [
        letter
        for letter in _letters(pipeline, s.topic_tickets_routed, 2)
        if letter["reason"] == "validation_error"
    ]
    assert nan and "confidence: finite_number" in nan[0]["detail"]
    news_letters = sorted(_letters(pipeline, s.topic_news_scored, 3), key=lambda r: r["offset"])
    assert [r["reason"] for r in news_letters] == [
        "validation_error",
        "validation_error",
        "event_time_in_future",
    ]
    assert all("published_at: time_out_of_range" in r["detail"] for r in news_letters[:2])
    pipeline.assert_never_restarted()


def test_a_headline_with_5000_cashtags_fans_out_to_a_bounded_number_of_records(
    pipeline: Pipeline,
) -> None:
    s = pipeline.settings
    tags = [
        f"{a}{b}{c}"
        for a in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
        for b in "ABCDEFGHIJ"
        for c in "ABCDEFGHIJKLMNOPQRST"
    ]
    headline = " ".join(f"${t}" for t in tags[:5000])
    flood = {
        "id": "cashtag-flood",
        "published_at": AT.isoformat(),
        "source": "wire",
        "headline": headline,
    }
    twitter = load_twitter(s.data_dir / TWITTER).subset(range(10, 14))
    news = list(news_items(twitter, prefix="flood"))
    produce(
        pipeline.bootstrap,
        s.topic_news_raw,
        [(b"flood", json.dumps(flood).encode()), *[(n.key, n.value) for n in news]],
    )
    scored = TopicReader(pipeline.bootstrap, s.topic_news_scored)
    try:
        counts = scored.wait_for_ids(
            ["cashtag-flood", *[n.item_id for n in news]], 180, pipeline.assert_never_restarted
        )
        # give any further fan-out records time to arrive
        scored.wait_for(lambda recs: False, 5)
    finally:
        scored.close()
    limit = s.max_tickers_per_item
    flood_records = [r for r in scored.records if r["id"] == "cashtag-flood"]
    assert len(flood_records) == limit, Counter(r["id"] for r in scored.records)
    assert flood_records[0]["tickers"] == tags[:limit]
    assert {r["tickers_truncated"] for r in flood_records} == {5000 - limit}
    assert {n.item_id for n in news} <= set(counts)
    pipeline.assert_never_restarted()


def test_a_table_row_an_older_version_wrote_is_a_dead_letter_then_dropped(
    kafka_bootstrap: str, trained_registry: Path, tmp_path: Path, unique: str
) -> None:
    from kafka.partitioner.default import murmur2

    pipe = Pipeline.create(kafka_bootstrap, unique, trained_registry, tmp_path)
    s = pipe.settings
    # the ticker's row as an older version might have left it in the table's changelog,
    # in the changelog partition of the news.scored partition the ticker's records use
    changelog = changelog_topic(s, "ticker-state")  # created with the pipeline's topics
    partition = (murmur2(b"OLDV") & 0x7FFFFFFF) % s.topic_partitions
    producer = KafkaProducer(bootstrap_servers=pipe.bootstrap, acks="all")
    old_row = {"subject": "OLDV", "items": "written by version 0", "cooldown_until": 0}
    producer.send(changelog, key=b'"OLDV"', value=json.dumps(old_row).encode(), partition=partition)
    producer.flush(timeout=30)
    producer.close()

    burst = [_scored_news(f"old-{n}", "OLDV", AT + timedelta(seconds=30 * n)) for n in range(6)]
    alerts = TopicReader(pipe.bootstrap, s.topic_alerts)
    try:
        pipe.start_worker()
        produce(pipe.bootstrap, s.topic_news_scored, [(b"OLDV", b) for b in burst])
        found = alerts.wait_for(
            lambda recs: any(r["subject"] == "OLDV" for r in recs), 180, pipe.assert_never_restarted
        )
        [letter] = _letters(pipe, s.topic_news_scored, 1, context=found)
        pipe.assert_never_restarted()
    finally:
        pipe.stop_all()
        alerts.close()
    assert letter["reason"] == "invalid_state" and "ticker-state" in letter["detail"]
    assert json.loads(base64.b64decode(letter["value_b64"]))["id"] == "old-0"
    # the row was dropped: the next five items started afresh and raised the burst alert
    [alert] = [a for a in found if a["subject"] == "OLDV"]
    assert sorted(alert["evidence_ids"]) == [f"old-{n}" for n in range(1, 6)]
