"""Records: strict decoding with reasons a dead-letter queue can carry, exact round trips."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import BaseModel

from streams.core.records import (
    EARLIEST_TIME,
    LATEST_TIME,
    MAX_CLASSES,
    Alert,
    CustomerMessage,
    DeadLetter,
    Feedback,
    ModelControl,
    NewsItem,
    RankedAction,
    Recommendation,
    RoutedTicket,
    ScoredMessage,
    ScoredNews,
    check_event_time,
    check_header_names,
    check_key,
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


def _scored_message(**fields: object) -> bytes:
    record: dict[str, object] = {
        "id": "m1",
        "customer_id": "c1",
        "channel": "chat",
        "model_version": "i1",
        "sentiment_model_version": "s1",
        "intent_probs": {"card_arrival": 0.9},
        "sentiment": "neutral",
        "sentiment_score": 0.0,
        "sent_at": "2024-05-06T07:08:09Z",
        "scored_at": "2024-05-06T07:08:10Z",
    }
    record.update(fields)
    return json.dumps(record).encode()


def test_a_scored_message_without_intent_probabilities_is_invalid() -> None:
    assert decode(ScoredMessage, _scored_message()).intent_probs == {"card_arrival": 0.9}
    error = _reason(ScoredMessage, _scored_message(intent_probs={}))
    assert error.reason == "validation_error" and "intent_probs: too_short" in error.detail
    too_many = {f"intent_{n}": 0.001 for n in range(MAX_CLASSES + 1)}
    assert "too_long" in _reason(ScoredMessage, _scored_message(intent_probs=too_many)).detail


@pytest.mark.parametrize("value", [1.5, -0.1, "NaN", "Infinity"])
def test_probabilities_are_finite_and_between_0_and_1(value: object) -> None:
    raw = _scored_message(intent_probs={"card_arrival": 0.5, "lost": value})
    if isinstance(value, str):  # JSON as Python writes it: NaN and Infinity are bare words
        raw = raw.replace(f'"{value}"'.encode(), value.encode())
    error = _reason(ScoredMessage, raw)
    assert error.reason == "validation_error" and "intent_probs.lost" in error.detail
    news = json.loads(encode(RECORDS[4]))
    news["probs"] = {}
    assert "probs: too_short" in _reason(ScoredNews, json.dumps(news).encode()).detail


def test_non_finite_numbers_are_refused_everywhere() -> None:
    ticket = encode(RECORDS[5]).replace(b'"sentiment_score":0.0', b'"sentiment_score":NaN')
    assert "sentiment_score: finite_number" in _reason(RoutedTicket, ticket).detail


@pytest.mark.parametrize(
    "when", ["0001-01-01T00:00:00Z", "1969-12-31T23:59:59Z", "2100-01-01T00:00:00Z", "9999-12-31"]
)
def test_times_outside_the_sane_range_are_invalid(when: str) -> None:
    news = json.loads(encode(RECORDS[4]))
    news["published_at"] = when
    error = _reason(ScoredNews, json.dumps(news).encode())
    assert error.reason == "validation_error"
    assert "published_at: time_out_of_range" in error.detail
    assert "time_out_of_range" in _reason(NewsItem, _news(published_at=when)).detail
    assert "time_out_of_range" in _reason(CustomerMessage, _message(sent_at=when)).detail


def test_the_edges_of_the_time_range() -> None:
    assert decode(NewsItem, _news(published_at="1970-01-01T00:00:00Z")).published_at == (
        EARLIEST_TIME
    )
    assert decode(NewsItem, _news(published_at="2099-12-31T23:59:59Z")).published_at < (LATEST_TIME)


@pytest.mark.parametrize(
    ("model", "raw", "where"),
    [
        (CustomerMessage, _message(text="a\u0000b"), "text"),
        (CustomerMessage, _message(text="broken \ud800 pair"), "text"),
        (CustomerMessage, _message(customer_id="\udc80"), "customer_id"),
        (NewsItem, _news(tickers=["OK", "N\u0000"]), "tickers.1"),
        (ScoredMessage, _scored_message(intent_probs={"card\ud83d": 0.5}), "intent_probs"),
    ],
)
def test_nul_and_lone_surrogates_are_unsafe_text(
    model: type[BaseModel], raw: bytes, where: str
) -> None:
    error = _reason(model, raw)
    assert error.reason == "unsafe_text"
    assert f": {where}: " in error.detail
    assert "\ud800" not in error.detail
    # a proper surrogate pair (an emoji) is fine
    assert decode(CustomerMessage, _message(text="card \ud83d\ude00")).text == "card \U0001f600"


def test_every_unsafe_character_is_found_however_the_json_was_written() -> None:
    """The scan runs only when the text holds an escape that could decode to NUL or a
    surrogate: random texts, escaped as json.dumps does, unescaped UTF-8, or with
    upper-case hex, are refused exactly when they hold such a character."""
    rng = random.Random(11)
    alphabet = ["a", " ", "é", "\\", "\u0000", "\ud800", "\udfff", "\U0001f600", "u0000"]
    for n in range(400):
        text = "x" + "".join(rng.choice(alphabet) for _ in range(rng.randrange(8)))
        record = json.loads(_message(text=text))
        for raw in (
            json.dumps(record),
            json.dumps(record).replace("\\ud", "\\uD"),
            json.dumps(record, ensure_ascii=False),
        ):
            try:
                encoded = raw.encode("utf-8")
            except UnicodeEncodeError:
                continue  # a lone surrogate cannot be written as UTF-8 at all
            decoded = json.loads(raw)["text"]  # two lone halves in a row decode as a pair
            if any(ch == "\x00" or 0xD800 <= ord(ch) <= 0xDFFF for ch in decoded):
                assert _reason(CustomerMessage, encoded).reason == "unsafe_text", (n, raw)
            else:
                assert decode(CustomerMessage, encoded).text == decoded, (n, raw)


@pytest.mark.parametrize(
    "names",
    [["trace", "\udcff\udcfeX"], [b"trace", b"\xff"], ["ok", 7]],
)
def test_header_names_must_be_utf8(names: list[object]) -> None:
    with pytest.raises(InvalidRecordError) as caught:
        check_header_names(names)
    assert caught.value.reason == "invalid_header"
    assert caught.value.detail.startswith("header 1: ")
    check_header_names(["trace", b"span", "nämé"])


def test_the_key_must_be_the_records_table_key() -> None:
    check_key(b"card_arrival", "card_arrival", "intent")
    for key in (None, b"", b"lost_card", b"\xff"):
        with pytest.raises(InvalidRecordError) as caught:
            check_key(key, "card_arrival", "intent")
        assert caught.value.reason == "invalid_key"
        assert caught.value.detail == "the key is not the record's intent"


def test_an_event_far_ahead_of_the_clock_is_refused() -> None:
    skew = timedelta(days=1)
    check_event_time(T + skew, T, skew)
    check_event_time(T - timedelta(days=3000), T, skew)
    with pytest.raises(InvalidRecordError) as caught:
        check_event_time(T + skew + timedelta(seconds=1), T, skew)
    assert caught.value.reason == "event_time_in_future"


def test_a_dead_letter_from_an_older_version_still_decodes() -> None:
    old = {k: v for k, v in json.loads(encode(RECORDS[8])).items() if "header_names" not in k}
    del old["headers_truncated"], old["key_size"]
    letter = decode(DeadLetter, json.dumps(old).encode())
    assert letter.header_names_b64 is None and not letter.headers_truncated
