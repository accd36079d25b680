"""Records: strict decoding with reasons a dead-letter queue can carry, exact round trips."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import BaseModel

from streams.core.records import (
    Alert,
    CustomerMessage,
    DeadLetter,
    Feedback,
    ModelControl,
    NewsItem,
    RankedAction,
    Recommendation,
    RoutedTicket,
    ScoredNews,
    decode,
    encode,
    parse_toml,
)
from streams.errors import ConfigFileError, InvalidRecordError

T = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
SECRET = "my card 4111 1111 1111 1111 was stolen"

RECORDS: list[BaseModel] = [
    NewsItem(
        id="n1",
        published_at=T,
        source="wire",
        headline="Nokia beats",
        body="Q3 text",
        tickers=["NOKIA"],
    ),
    CustomerMessage(id="m1", sent_at=T, customer_id="c1", channel="chat", text="Hello"),
    Feedback(item_id="m1", task="intent", label="card_arrival", annotator="ann", at=T),
    ModelControl(task="sentiment", version="v3", action="promote", at=T),
    ScoredNews(
        id="n1",
        model_version="v3",
        label="positive",
        probs={"positive": 0.9, "negative": 0.1},
        score=0.8,
        tickers=["NOKIA"],
        headline="Nokia beats",
        published_at=T,
        scored_at=T,
    ),
    RoutedTicket(
        id="m1",
        customer_id="c1",
        model_version="i2",
        sentiment_model_version="s3",
        intent="card_arrival",
        confidence=0.8,
        intent_probs={"card_arrival": 0.8},
        queue="cards",
        priority=4,
        sentiment="neutral",
        sentiment_score=0.0,
        low_confidence=False,
        repeat_contacts=1,
        reasons=[],
        sent_at=T,
        scored_at=T,
    ),
    Recommendation(
        id="m1",
        customer_id="c1",
        model_version="i2",
        actions=[RankedAction(action_id="track_card_delivery", title="Track", score=0.8)],
        sent_at=T,
    ),
    Alert(
        alert_id="abc",
        kind="negative_burst",
        subject="NOKIA",
        window_start=T,
        window_end=T + timedelta(minutes=10),
        value=6,
        baseline=0.4,
        evidence_ids=["n1"],
        evidence=["Nokia warns"],
        model_version="v3",
        raised_at=T,
    ),
    DeadLetter(
        source_topic="messages.raw",
        partition=2,
        offset=41,
        key="YzE=",
        value_b64="e30=",
        headers=[("trace", "eA==")],
        reason="invalid_json",
        detail="not JSON",
        failed_at=T,
    ),
]


def _news(**fields: object) -> bytes:
    record: dict[str, object] = {
        "id": "n1",
        "published_at": "2024-05-06T07:08:09Z",
        "source": "wire",
        "headline": "Nokia beats",
    }
    record.update(fields)
    return json.dumps(record).encode()


def _message(**fields: object) -> bytes:
    record: dict[str, object] = {
        "id": "m1",
        "sent_at": "2024-05-06T07:08:09+00:00",
        "customer_id": "c1",
        "channel": "chat",
        "text": SECRET,
    }
    record.update(fields)
    return json.dumps(record).encode()


def _reason(model: type[BaseModel], raw: bytes | None, **kwargs: int) -> InvalidRecordError:
    with pytest.raises(InvalidRecordError) as caught:
        decode(model, raw, **kwargs)
    return caught.value


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: type(r).__name__)
def test_every_record_round_trips(record: BaseModel) -> None:
    assert decode(type(record), encode(record)) == record


def test_encoding_is_compact_utf8_json() -> None:
    raw = encode(NewsItem(id="n1", published_at=T, source="w", headline="Wärtsilä"))
    assert b": " not in raw and b", " not in raw
    assert json.loads(raw.decode("utf-8"))["headline"] == "Wärtsilä"


def test_a_minimal_news_item_decodes_with_defaults() -> None:
    item = decode(NewsItem, _news())
    assert (item.schema_version, item.body, item.tickers) == (1, None, None)
    assert item.published_at == T


def test_naive_times_are_utc_and_offsets_are_normalised() -> None:
    naive = decode(NewsItem, _news(published_at="2024-05-06T07:08:09"))
    helsinki = decode(NewsItem, _news(published_at="2024-05-06T10:08:09+03:00"))
    assert naive.published_at == helsinki.published_at == T
    assert helsinki.published_at.tzinfo == UTC
    built = CustomerMessage(
        id="m",
        sent_at=datetime(2024, 5, 6, 10, 8, 9, tzinfo=timezone(timedelta(hours=3))),
        customer_id="c",
        channel="chat",
        text="hi",
    )
    assert built.sent_at == T and built.sent_at.tzinfo == UTC


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (None, "empty_value"),
        (b"", "empty_value"),
        (b'{"id": "\xff"}', "invalid_utf8"),
        (b"{not json", "invalid_json"),
        (b'["a", "list"]', "not_an_object"),
        (b'"a string"', "not_an_object"),
        (b"[" * 100_000 + b"]" * 100_000, "invalid_json"),
        (b'{"id": ' + b"9" * 5000 + b"}", "invalid_json"),
    ],
)
def test_undecodable_values_have_a_reason(raw: bytes | None, reason: str) -> None:
    assert _reason(NewsItem, raw).reason == reason


def test_size_is_checked_before_decoding() -> None:
    error = _reason(NewsItem, b"\xff" * 101, max_bytes=100)
    assert error.reason == "too_large"
    assert "101" in error.detail and "100" in error.detail
    assert decode(NewsItem, _news(), max_bytes=len(_news())).id == "n1"


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_blank_text_is_empty_text(text: str) -> None:
    assert _reason(CustomerMessage, _message(text=text)).reason == "empty_text"
    assert _reason(NewsItem, _news(headline=text)).reason == "empty_text"


def test_unknown_fields_are_rejected_and_named() -> None:
    error = _reason(NewsItem, _news(sentiment="positive"))
    assert error.reason == "validation_error"
    assert "sentiment" in error.detail and "extra_forbidden" in error.detail


def test_outputs_accept_fields_added_by_a_newer_producer() -> None:
    alert = RECORDS[7]
    raw = json.loads(encode(alert))
    raw["severity"] = "high"
    assert decode(Alert, json.dumps(raw).encode()) == alert


@pytest.mark.parametrize(
    ("fields", "location"),
    [
        ({"id": ""}, "id"),
        ({"id": "x" * 201}, "id"),
        ({"id": 17}, "id"),
        ({"published_at": "yesterday"}, "published_at"),
        ({"tickers": "NOKIA"}, "tickers"),
        ({"schema_version": 2}, "schema_version"),
    ],
)
def test_invalid_fields_are_named(fields: dict[str, object], location: str) -> None:
    error = _reason(NewsItem, _news(**fields))
    assert error.reason == "validation_error"
    assert error.detail.startswith("NewsItem: ")
    assert f"{location}: " in error.detail


def test_errors_never_echo_customer_text() -> None:
    raw = _message(sent_at=SECRET, customer_id=SECRET, channel=[SECRET], surprise=SECRET)
    error = _reason(CustomerMessage, raw)
    assert "sent_at" in error.detail and "customer_id" not in error.detail
    assert "channel" in error.detail and "surprise" in error.detail
    for leaked in ("4111", "stolen"):
        assert leaked not in str(error)


def test_feedback_task_must_be_known() -> None:
    raw = encode(RECORDS[2]).replace(b'"intent"', b'"topic"')
    error = _reason(Feedback, raw)
    assert "task: literal_error" in error.detail


def test_scores_and_priorities_are_range_checked() -> None:
    scored = json.loads(encode(RECORDS[4]))
    scored["score"] = 1.5
    assert "score" in _reason(ScoredNews, json.dumps(scored).encode()).detail
    ticket = json.loads(encode(RECORDS[5]))
    ticket["priority"] = 0
    assert "priority" in _reason(RoutedTicket, json.dumps(ticket).encode()).detail


def test_config_errors_name_the_source_and_key() -> None:
    with pytest.raises(ConfigFileError) as caught:
        parse_toml("x = [", NewsItem, source="deploy/config/x.toml")
    assert "deploy/config/x.toml" in str(caught.value) and "not valid TOML" in str(caught.value)
    with pytest.raises(ConfigFileError) as caught:
        parse_toml('id = "n"\nsource = "s"\nheadline = "h"', NewsItem, source="f.toml")
    assert caught.value.key == "published_at"
