"""The streaming monitor end to end: real broker, real worker processes, real models."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from models.data import load_banking77, load_twitter
from models.registry import Registry
from streams.core.records import ScoredMessage, ScoredNews, encode
from streams.core.routing import RoutingTable
from streams.edges.replay import customer_messages, news_items
from tests.kafka_helpers import produce
from tests.pipeline_helpers import Pipeline, TopicReader
from tests.record_factories import routed_ticket

pytestmark = pytest.mark.integration

TWITTER = Path("twitter_financial_news") / "sent_train.csv"


@pytest.fixture(scope="module")
def pipeline(
    kafka_bootstrap: str, trained_registry: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Pipeline]:
    """One worker over a private topic set, shared by the tests that do not kill it."""
    workdir = tmp_path_factory.mktemp("pipeline")
    pipe = Pipeline.create(
        kafka_bootstrap, "shared-" + workdir.name[-6:], trained_registry, workdir
    )
    pipe.start_worker()
    yield pipe
    pipe.stop_all()


def _news(pipe: Pipeline, start: int, count: int) -> list[tuple[bytes, bytes, str]]:
    data = load_twitter(pipe.settings.data_dir / TWITTER).subset(range(start, start + count))
    return [(i.key, i.value, i.item_id) for i in news_items(data, prefix=f"tw{start}")]


def _messages(
    pipe: Pipeline, start: int, count: int, prefix: str
) -> list[tuple[bytes, bytes, str]]:
    data = load_banking77(pipe.settings.data_dir).subset(range(start, start + count))
    return [(i.key, i.value, i.item_id) for i in customer_messages(data, prefix=prefix)]


def test_every_valid_input_yields_its_outputs(pipeline: Pipeline, trained_registry: Path) -> None:
    s = pipeline.settings
    news = _news(pipeline, 0, 120)
    messages = _messages(pipeline, 0, 120, "valid")
    produce(pipeline.bootstrap, s.topic_news_raw, [(k, v) for k, v, _ in news])
    produce(pipeline.bootstrap, s.topic_messages_raw, [(k, v) for k, v, _ in messages])

    scored = TopicReader(pipeline.bootstrap, s.topic_news_scored)
    routed = TopicReader(pipeline.bootstrap, s.topic_tickets_routed)
    recs = TopicReader(pipeline.bootstrap, s.topic_recommendations)
    news_ids = {i for _, _, i in news}
    message_ids = {i for _, _, i in messages}
    scored.wait_for_ids(news_ids, 240, pipeline.assert_workers_alive)
    routed.wait_for_ids(message_ids, 120, pipeline.assert_workers_alive)
    recs.wait_for_ids(message_ids, 60, pipeline.assert_workers_alive)

    registry = Registry(trained_registry)
    assert news_ids <= {r["id"] for r in scored.records}
    assert message_ids <= {r["id"] for r in routed.records}
    assert message_ids <= {r["id"] for r in recs.records}
    assert {r["model_version"] for r in scored.records} == {registry.production("sentiment")}
    assert {r["model_version"] for r in routed.records} == {registry.production("intent")}
    # tickers come from the tweets' cashtags, and each scored record is keyed by its ticker
    first = next(r for r in scored.records if r["id"] == "tw0-0")
    assert first["tickers"] == ["BYND"]
    assert all(
        (key or b"").decode() in (r["tickers"] or [""])
        for key, r in zip(scored.keys, scored.records, strict=True)
    )
    for record in routed.records:
        assert 1 <= record["priority"] <= 5
        assert "text" not in record
    assert all(1 <= len(r["actions"]) <= 3 for r in recs.records)


def _changelog(bootstrap: str, topic: str, settle_s: float = 5.0) -> list[tuple[int, str]]:
    """(partition, key) of every record on a table's changelog so far."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        out: list[tuple[int, str]] = []
        deadline = time.monotonic() + settle_s
        while time.monotonic() < deadline:
            for tp, records in consumer.poll(timeout_ms=500).items():
                out.extend((tp.partition, json.loads(r.key)) for r in records)
        return out
    finally:
        consumer.close()


def test_the_scorer_routes_messages_keyed_by_customer_and_repartitions_the_rest(
    pipeline: Pipeline,
) -> None:
    from kafka.partitioner.default import murmur2

    from streams.edges.topics import changelog_topic

    s = pipeline.settings
    messages = _messages(pipeline, 400, 40, "contract")
    # the first 30 keyed by their customer (the contract), 5 with no key, 5 with another key
    keyed = [(k, v) for k, v, _ in messages[:30]]
    unkeyed: list[tuple[bytes | None, bytes]] = [(None, v) for _, v, _ in messages[30:35]]
    unkeyed += [(b"some-other-key", v) for _, v, _ in messages[35:]]
    produce(pipeline.bootstrap, s.topic_messages_raw, [*keyed, *unkeyed])
    ids = {i for _, _, i in messages}
    routed = TopicReader(pipeline.bootstrap, s.topic_tickets_routed)
    scored = TopicReader(pipeline.bootstrap, s.topic_messages_scored)
    try:
        routed.wait_for_ids(ids, 180, pipeline.assert_workers_alive)
        repartitioned = {i for _, _, i in messages[30:]}
        scored.wait_for_ids(repartitioned, 60, pipeline.assert_workers_alive)
        scored.wait_for(lambda recs: False, 3)  # anything more would show now
    finally:
        routed.close()
        scored.close()
    assert ids <= {r["id"] for r in routed.records}
    # only the messages not keyed by their customer took the messages.scored hop, keyed now
    on_scored = {r["id"] for r in scored.records if r["id"].startswith("contract")}
    assert on_scored == repartitioned
    assert all(
        key == r["customer_id"].encode()
        for key, r in zip(scored.keys, scored.records, strict=True)
        if r["id"] in repartitioned
    )
    # every customer's history row is in the changelog partition of the customer's key
    # (the partition a rebalance hands over with it), written from scorer batches and router
    customers = {json.loads(v)["customer_id"] for _, v, _ in messages}
    rows = [
        (p, c)
        for p, c in _changelog(pipeline.bootstrap, changelog_topic(s, "customer-history"))
        if c in customers
    ]
    assert {c for _, c in rows} == customers
    for partition, customer in rows:
        assert partition == (murmur2(customer.encode()) & 0x7FFFFFFF) % s.topic_partitions


BAD_NEWS: dict[str, tuple[bytes, str]] = {
    "bad-utf8": (b'{"id": "x\xff\xfe"}', "invalid_utf8"),
    "not-json": (b"this is not json", "invalid_json"),
    "json-array": (b'["id", "headline"]', "not_an_object"),
    "missing-fields": (b'{"id": "n1", "source": "wire"}', "validation_error"),
    "wrong-types": (
        json.dumps(
            {"id": "n2", "published_at": "yesterday", "source": 5, "headline": ["a"]}
        ).encode(),
        "validation_error",
    ),
    "empty-headline": (
        json.dumps(
            {"id": "n3", "published_at": "2026-11-28T10:00:00Z", "source": "w", "headline": "  "}
        ).encode(),
        "empty_text",
    ),
    "unknown-field": (
        json.dumps(
            {
                "id": "n4",
                "published_at": "2026-11-28T10:00:00Z",
                "source": "w",
                "headline": "Fine headline",
                "sentiment_hint": "up",
            }
        ).encode(),
        "validation_error",
    ),
    "too-large": (
        json.dumps(
            {
                "id": "n5",
                "published_at": "2026-11-28T10:00:00Z",
                "source": "w",
                "headline": "x" * 1_100_000,
            }
        ).encode(),
        "too_large",
    ),
}


def test_bad_inputs_land_in_the_dlq_and_the_worker_goes_on(pipeline: Pipeline) -> None:
    s = pipeline.settings
    produce(
        pipeline.bootstrap, s.topic_news_raw, [(k.encode(), v) for k, (v, _) in BAD_NEWS.items()]
    )
    bad_message = json.dumps(
        {
            "id": "m1",
            "sent_at": "2026-11-28T10:00:00Z",
            "customer_id": "c1",
            "channel": "chat",
            "text": "",
        }
    ).encode()
    produce(pipeline.bootstrap, s.topic_messages_raw, [(b"c1", bad_message)])
    # a valid record behind the bad ones is still scored
    good = _news(pipeline, 500, 3)
    produce(pipeline.bootstrap, s.topic_news_raw, [(k, v) for k, v, _ in good])

    dlq = TopicReader(pipeline.bootstrap, s.dlq_topic(s.topic_news_raw))
    letters = dlq.wait_for(
        lambda recs: {base64.b64decode(r["key"]).decode() for r in recs} >= set(BAD_NEWS),
        120,
        pipeline.assert_workers_alive,
    )
    by_key = {base64.b64decode(r["key"]).decode(): r for r in letters}
    for key, (value, reason) in BAD_NEWS.items():
        letter = by_key[key]
        assert letter["reason"] == reason, (key, letter["detail"])
        assert letter["value_size"] == len(value)
        assert letter["value_sha256"] == hashlib.sha256(value).hexdigest()
        original = base64.b64decode(letter["value_b64"])
        if key == "too-large":  # kept in part, matched by its hash
            assert letter["value_truncated"] and value.startswith(original)
        else:  # the original bytes, intact
            assert original == value and not letter["value_truncated"]
        assert letter["source_topic"] == s.topic_news_raw
        assert letter["offset"] >= 0
    assert "sentiment_hint" in by_key["unknown-field"]["detail"]

    message_dlq = TopicReader(pipeline.bootstrap, s.dlq_topic(s.topic_messages_raw))
    [letter] = message_dlq.wait_for(lambda recs: len(recs) >= 1, 60)
    assert letter["reason"] == "empty_text"

    scored = TopicReader(pipeline.bootstrap, s.topic_news_scored)
    scored.wait_for_ids({i for _, _, i in good}, 60, pipeline.assert_workers_alive)
    pipeline.assert_workers_alive()


def _scored_news(item_id: str, ticker: str, score: float, at: datetime) -> bytes:
    probs = {"negative": max(0.0, -score), "positive": max(0.0, score)}
    probs["neutral"] = 1.0 - probs["negative"] - probs["positive"]
    return encode(
        ScoredNews(
            id=item_id,
            model_version="script",
            label="negative" if score < 0 else "neutral",
            probs=probs,
            score=score,
            tickers=[ticker],
            headline=f"headline {item_id}",
            published_at=at,
            scored_at=at,
        )
    )


def test_a_sentiment_shock_raises_one_alert_and_steady_news_none(pipeline: Pipeline) -> None:
    s = pipeline.settings
    start = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
    records: list[tuple[bytes, bytes]] = []
    for i in range(72):  # six hours of mixed news on two tickers, one item every 5 minutes
        at = start + timedelta(minutes=5 * i)
        mixed = (0.3, -0.2, 0.1, 0.0, 0.25, -0.1)[i % 6]
        records.append((b"STDY", _scored_news(f"steady-{i}", "STDY", mixed, at)))
        records.append((b"SHCK", _scored_news(f"calm-{i}", "SHCK", mixed, at)))
    shock_at = start + timedelta(hours=6, minutes=5)
    for i in range(15):  # then a burst of very negative items on one ticker
        at = shock_at + timedelta(seconds=40 * i)
        records.append((b"SHCK", _scored_news(f"shock-{i}", "SHCK", -0.95, at)))
    produce(pipeline.bootstrap, s.topic_news_scored, records)

    alerts = TopicReader(pipeline.bootstrap, s.topic_alerts)
    alerts.wait_for(
        lambda recs: any(r["subject"] == "SHCK" for r in recs), 90, pipeline.assert_workers_alive
    )
    time.sleep(5)  # anything else the monitor would raise has arrived by now
    ticker_alerts = [r for r in alerts.poll() if r["subject"] in ("SHCK", "STDY")]
    assert len(ticker_alerts) == 1, ticker_alerts
    [alert] = ticker_alerts
    assert alert["subject"] == "SHCK"
    assert alert["kind"] in ("sentiment_drop", "negative_burst")
    assert alert["value"] < alert["baseline"]
    # the evidence is this ticker's items in the alert window, the shock among them
    evidence = alert["evidence_ids"]
    assert any(e.startswith("shock-") for e in evidence)
    assert all(e.startswith(("shock-", "calm-")) for e in evidence)
    assert alert["alert_id"] and len(alert["evidence"]) == len(evidence)


def test_a_surge_of_one_intent_raises_a_complaint_spike(pipeline: Pipeline) -> None:
    s = pipeline.settings
    start = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)

    def ticket(i: str, intent: str, at: datetime) -> bytes:
        return encode(routed_ticket(i, at, intent=intent))

    records = [
        (b"card_not_working", ticket(f"base-{m}", "card_not_working", start + timedelta(minutes=m)))
        for m in range(30)
    ]
    outage = start + timedelta(minutes=31)
    records += [
        (
            b"card_not_working",
            ticket(f"outage-{i}", "card_not_working", outage + timedelta(seconds=4 * i)),
        )
        for i in range(30)
    ]
    produce(pipeline.bootstrap, s.topic_tickets_routed, records)
    alerts = TopicReader(pipeline.bootstrap, s.topic_alerts)
    found = alerts.wait_for(
        lambda recs: any(r["kind"] == "complaint_spike" for r in recs),
        90,
        pipeline.assert_workers_alive,
    )
    spikes = [r for r in found if r["kind"] == "complaint_spike"]
    assert [r["subject"] for r in spikes] == ["card_not_working"]
    assert spikes[0]["value"] >= 10
    assert all(e.startswith("outage-") or e.startswith("base-") for e in spikes[0]["evidence_ids"])


def test_routing_follows_the_table_with_escalation_and_triage(pipeline: Pipeline) -> None:
    s = pipeline.settings
    table = RoutingTable.load(s.config_dir / "routing.toml")
    at = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)

    def scored(
        i: str, customer: str, probs: dict[str, float], minutes: int, score: float = 0.0
    ) -> tuple[bytes, bytes]:
        record = ScoredMessage(
            id=i,
            customer_id=customer,
            channel="chat",
            model_version="script",
            sentiment_model_version="script",
            intent_probs=probs,
            sentiment="negative" if score < -0.5 else "neutral",
            sentiment_score=score,
            sent_at=at + timedelta(minutes=minutes),
            scored_at=at,
        )
        return customer.encode(), encode(record)

    records = [
        scored("lost", "c-lost", {"lost_or_stolen_card": 0.93, "card_arrival": 0.02}, 0),
        scored("unsure", "c-unsure", {"card_arrival": 0.2, "card_linking": 0.18}, 0),
        scored("angry", "c-angry", {"card_arrival": 0.9}, 0, score=-0.9),
        *[scored(f"repeat-{n}", "c-repeat", {"card_arrival": 0.9}, n * 10) for n in range(3)],
    ]
    produce(pipeline.bootstrap, s.topic_messages_scored, records)
    routed = TopicReader(pipeline.bootstrap, s.topic_tickets_routed)
    counts = routed.wait_for_ids(
        ["lost", "unsure", "angry", "repeat-0", "repeat-1", "repeat-2"],
        90,
        pipeline.assert_workers_alive,
    )
    assert set(counts) >= {"lost", "unsure"}
    by_id = {r["id"]: r for r in routed.records}

    lost = by_id["lost"]
    assert lost["queue"] == table.intents["lost_or_stolen_card"].queue
    assert lost["priority"] == table.urgent_priority
    assert "urgent_intent" in lost["reasons"]

    unsure = by_id["unsure"]
    assert unsure["queue"] == table.triage_queue
    assert unsure["low_confidence"] is True

    base = table.intents["card_arrival"].priority
    assert by_id["angry"]["priority"] == max(1, base - 1)
    assert "negative_sentiment" in by_id["angry"]["reasons"]

    assert by_id["repeat-0"]["priority"] == base
    assert by_id["repeat-2"]["priority"] == max(1, base - 1)
    assert "repeat_contact" in by_id["repeat-2"]["reasons"]
    assert by_id["repeat-2"]["repeat_contacts"] == 3


def test_two_workers_share_partitions_and_one_takes_over(
    kafka_bootstrap: str, trained_registry: Path, tmp_path: Path, unique: str
) -> None:
    from kafka import KafkaAdminClient

    pipe = Pipeline.create(kafka_bootstrap, unique, trained_registry, tmp_path)
    s = pipe.settings
    first, second = pipe.start_worker(), pipe.start_worker()
    warmup = _messages(pipe, 3000, 40, "warm")
    produce(pipe.bootstrap, s.topic_messages_raw, [(k, v) for k, v, _ in warmup])
    routed = TopicReader(pipe.bootstrap, s.topic_tickets_routed)
    routed.wait_for_ids({i for _, _, i in warmup}, 240, pipe.assert_workers_alive)

    admin = KafkaAdminClient(bootstrap_servers=pipe.bootstrap)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            group = admin.describe_groups([s.app_id])[s.app_id]
            if len(group["members"]) == 2 and group["group_state"] == "Stable":
                break
            time.sleep(1)
        assert len(group["members"]) == 2, group
    finally:
        admin.close()

    load = _messages(pipe, 4000, 600, "load")
    producer = threading.Thread(
        target=lambda: [
            produce(pipe.bootstrap, s.topic_messages_raw, [(k, v) for k, v, _ in load[n : n + 20]])
            or time.sleep(0.5)
            for n in range(0, len(load), 20)
        ]
    )
    producer.start()
    try:
        routed.wait_for(lambda recs: len(recs) >= 40 + 100, 120, pipe.assert_workers_alive)
        first.terminate()  # stopped under load: its partitions move to the other worker
        first.wait(timeout=60)
        pipe.workers.remove(first)
        producer.join(timeout=120)
        counts = routed.wait_for_ids({i for _, _, i in load}, 300, pipe.assert_workers_alive)
    finally:
        pipe.stop_all()
    missing = {i for _, _, i in load} - set(counts)
    assert not missing, f"{len(missing)} ids lost, e.g. {sorted(missing)[:5]}"
    assert second.returncode is not None  # stopped cleanly by stop_all


def _scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
    }


def test_online_accuracy_moves_when_feedback_contradicts_predictions(pipeline: Pipeline) -> None:
    s = pipeline.settings
    news = _news(pipeline, 700, 40)
    produce(pipeline.bootstrap, s.topic_news_raw, [(k, v) for k, v, _ in news])
    scored = TopicReader(pipeline.bootstrap, s.topic_news_scored)
    scored.wait_for_ids({i for _, _, i in news}, 120, pipeline.assert_workers_alive)
    predicted = {r["id"]: r["label"] for r in scored.records}
    other = {"negative": "positive", "neutral": "negative", "positive": "neutral"}
    accuracy = ("streamsense_online_accuracy", (("task", "sentiment"),))
    judged = ("streamsense_online_judged_total", (("task", "sentiment"),))

    def send_feedback(ids: list[str], agree: bool) -> None:
        now = datetime.now(UTC).isoformat()
        produce(
            pipeline.bootstrap,
            s.topic_feedback,
            [
                (
                    i.encode(),
                    json.dumps(
                        {
                            "item_id": i,
                            "task": "sentiment",
                            "annotator": "qa",
                            "at": now,
                            "label": predicted[i] if agree else other[predicted[i]],
                        }
                    ).encode(),
                )
                for i in ids
            ],
        )

    def wait_judged(count: float) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            samples = _scrape(pipeline.metrics_ports[0])
            if samples.get(judged, 0) >= count:
                return samples
            pipeline.assert_workers_alive()
            time.sleep(1)
        raise AssertionError(f"feedback never judged: {samples.get(judged)}")

    ids = [i for _, _, i in news]
    before = _scrape(pipeline.metrics_ports[0]).get(judged, 0)
    send_feedback(ids[:20], agree=True)
    agreeing = wait_judged(before + 20)[accuracy]
    send_feedback(ids[20:], agree=False)
    contradicted = wait_judged(before + 40)[accuracy]
    assert agreeing > contradicted
    assert contradicted <= agreeing - 0.25  # 20 wrong among the last 40 judged at least
