"""Versioned JSON records on the topics, and their strict decoding from raw bytes.

Inputs reject unknown fields; outputs accept them (a newer producer may add some).
Validation errors name field locations and error types, never the input values:
customer text is personal data.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
)
from pydantic_core import PydanticCustomError

from streams.errors import ConfigFileError, InvalidRecordError

SCHEMA_VERSION = 1
DEFAULT_MAX_BYTES = 1_000_000
_MAX_DETAIL_ERRORS = 10

EARLIEST_TIME = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_TIME = datetime(2100, 1, 1, tzinfo=UTC)
"""Every time in a record lies in [EARLIEST_TIME, LATEST_TIME): a record dated 0001-01-01
or 9999-12-31 is invalid, not a date the monitors' window arithmetic overflows on."""
DEFAULT_MAX_FUTURE_SKEW = timedelta(days=1)
"""How far past the wall clock an event time may lie before a monitor refuses it."""

_UNSAFE_CHARS = re.compile("[\x00\ud800-\udfff]")
"""NUL (refused by PostgreSQL text) and lone surrogates (not encodable as UTF-8), both of
which JSON can carry as ``\\u`` escapes."""
_UNSAFE_ESCAPES = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")
"""The only way either reaches a decoded string: strict JSON refuses a raw control
character in a string and the UTF-8 decoder a surrogate's bytes. Matches more than needed
(a legitimate surrogate pair, an escaped backslash before ``u0000``): the full scan then
decides."""


def _to_utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        value = value.replace(tzinfo=UTC)
    else:
        value = value.astimezone(UTC)
    if not EARLIEST_TIME <= value < LATEST_TIME:
        raise PydanticCustomError(
            "time_out_of_range",
            "time outside [{earliest}, {latest})",
            {"earliest": EARLIEST_TIME.isoformat(), "latest": LATEST_TIME.isoformat()},
        )
    return value


def _non_blank(value: str) -> str:
    if not value.strip():
        raise PydanticCustomError("empty_text", "text is empty or whitespace only")
    return value


UtcDatetime = Annotated[datetime, AfterValidator(_to_utc)]
"""A datetime normalised to UTC; a naive value is taken to be UTC already."""
RecordId = Annotated[str, StringConstraints(min_length=1, max_length=200)]
NonBlankText = Annotated[str, AfterValidator(_non_blank)]
SchemaVersion = Annotated[int, Field(ge=1, le=SCHEMA_VERSION)]
Task = Literal["sentiment", "intent"]
MAX_CLASSES = 200
Probability = Annotated[float, Field(ge=0.0, le=1.0)]
Probabilities = Annotated[dict[str, Probability], Field(min_length=1, max_length=MAX_CLASSES)]
"""Class probabilities: at least one class and at most ``MAX_CLASSES``, each in [0, 1]."""


class _Input(BaseModel):
    """Base of records produced outside streamsense: strict about their shape."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class _Output(BaseModel):
    """Base of records streamsense produces: tolerant of fields added later."""

    model_config = ConfigDict(
        extra="ignore", frozen=True, protected_namespaces=(), allow_inf_nan=False
    )


class NewsItem(_Input):
    """A financial news item on ``news.raw``."""

    schema_version: SchemaVersion = SCHEMA_VERSION
    id: RecordId
    published_at: UtcDatetime
    source: str
    headline: NonBlankText
    body: str | None = None
    tickers: list[str] | None = None


class CustomerMessage(_Input):
    """A customer message on ``messages.raw``."""

    schema_version: SchemaVersion = SCHEMA_VERSION
    id: RecordId
    sent_at: UtcDatetime
    customer_id: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    channel: str
    text: NonBlankText


class Feedback(_Input):
    """A human label for a scored item on ``feedback``."""

    model_config = ConfigDict(protected_namespaces=())

    schema_version: SchemaVersion = SCHEMA_VERSION
    item_id: RecordId
    task: Task
    label: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    annotator: str
    at: UtcDatetime
    text: str | None = None
    model_version: str | None = None
    predicted_label: str | None = None


class ModelControl(_Input):
    """A promotion or rollback announced on ``models.control``."""

    schema_version: SchemaVersion = SCHEMA_VERSION
    task: Task
    version: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    action: Literal["promote", "rollback"]
    at: UtcDatetime


class ScoredNews(_Output):
    """A news item with its sentiment, on ``news.scored`` (keyed by ticker)."""

    schema_version: int = SCHEMA_VERSION
    id: str
    model_version: str
    label: str
    probs: Probabilities
    score: Annotated[float, Field(ge=-1.0, le=1.0)]
    """P(positive) - P(negative)."""
    tickers: list[str]
    tickers_truncated: Annotated[int, Field(ge=0)] = 0
    """Tickers the item named beyond the per-item bound, left out of ``tickers``."""
    headline: str
    published_at: UtcDatetime
    scored_at: UtcDatetime


class ScoredMessage(_Output):
    """A customer message with its intent and sentiment, on ``messages.scored`` (internal).

    Carries no message text: only ids, scores and the versions that produced them.
    """

    schema_version: int = SCHEMA_VERSION
    id: str
    customer_id: str
    channel: str
    model_version: str
    """Version of the intent model."""
    sentiment_model_version: str
    intent_probs: Probabilities
    """The most probable intents (top 5) and their probabilities."""
    sentiment: str
    sentiment_score: float
    sent_at: UtcDatetime
    scored_at: UtcDatetime


class RoutedTicket(_Output):
    """A customer message with its intent, queue and priority, on ``tickets.routed``."""

    schema_version: int = SCHEMA_VERSION
    id: str
    customer_id: str
    model_version: str
    """Version of the intent model."""
    sentiment_model_version: str
    intent: str
    confidence: Probability
    intent_probs: Annotated[dict[str, Probability], Field(max_length=MAX_CLASSES)] = Field(
        default_factory=dict
    )
    """The most probable intents (a few), for the recommender."""
    queue: str
    priority: Annotated[int, Field(ge=1, le=5)]
    """1 is the most urgent."""
    sentiment: str
    sentiment_score: float
    low_confidence: bool
    repeat_contacts: int = 1
    """Contacts of this customer about this intent within the repeat window, this one included."""
    reasons: list[str]
    sent_at: UtcDatetime
    scored_at: UtcDatetime


class RankedAction(_Output):
    """One suggested next-best action and its score."""

    action_id: str
    title: str
    score: float


class Recommendation(_Output):
    """Ranked next-best actions for a customer message, on ``recommendations``."""

    schema_version: int = SCHEMA_VERSION
    id: str
    """The customer message id."""
    customer_id: str
    model_version: str
    actions: list[RankedAction]
    sent_at: UtcDatetime


AlertKind = Literal["sentiment_drop", "negative_burst", "complaint_spike"]


class Alert(_Output):
    """A monitor's alert on ``alerts``; ``alert_id`` is the same for the same window."""

    schema_version: int = SCHEMA_VERSION
    alert_id: str
    kind: AlertKind
    subject: str
    """The ticker or the intent."""
    window_start: UtcDatetime
    window_end: UtcDatetime
    value: float
    baseline: float
    evidence_ids: list[str]
    evidence: list[str]
    """News headlines; always empty for customer messages."""
    model_version: str
    raised_at: UtcDatetime


class DeadLetter(_Output):
    """A record that could not be processed, with its original bytes, on ``<topic>.dlq``."""

    schema_version: int = SCHEMA_VERSION
    source_topic: str
    partition: int
    offset: int
    key: str | None
    """The original key, base64."""
    value_b64: str
    """The original value, base64; cut to its first bytes when ``value_truncated``."""
    value_size: int = 0
    """Size of the original value in bytes."""
    value_sha256: str = ""
    """SHA-256 of the whole original value, so a truncated copy can still be matched."""
    value_truncated: bool = False
    headers: list[tuple[str, str | None]]
    """Header names (bytes that are not UTF-8 shown as ``\\xNN``) and base64 values."""
    header_names_b64: list[str] | None = None
    """Every header name as base64, in order; only when one of them is not UTF-8."""
    headers_truncated: bool = False
    """Only the first headers (up to a size budget) are kept."""
    key_size: int = 0
    """Size of the original key in bytes; ``key`` keeps at most its first bytes."""
    reason: str
    detail: str
    """Names fields and error types; never the record's text."""
    failed_at: UtcDatetime


T = TypeVar("T", bound=BaseModel)


def describe_validation_error(exc: ValidationError, *, limit: int = _MAX_DETAIL_ERRORS) -> str:
    """Summarise a validation error by field location and error type, without input values."""
    parts = []
    for error in exc.errors(include_input=False, include_url=False)[:limit]:
        location = ".".join(str(p) for p in error["loc"]) or "<record>"
        parts.append(f"{location}: {error['type']}")
    more = exc.error_count() - limit
    if more > 0:
        parts.append(f"... and {more} more")
    return "; ".join(parts)


def decode(model_cls: type[T], raw: bytes | None, *, max_bytes: int = DEFAULT_MAX_BYTES) -> T:
    """Decode and validate one record from a Kafka value, or raise ``InvalidRecordError``.

    Reasons: ``empty_value``, ``too_large``, ``invalid_utf8``, ``invalid_json``,
    ``not_an_object``, ``unsafe_text`` (a NUL or a lone surrogate in a string),
    ``empty_text``, ``validation_error``.
    """
    name = model_cls.__name__
    if not raw:
        raise InvalidRecordError("empty_value", f"{name}: the record has no value")
    if len(raw) > max_bytes:
        raise InvalidRecordError(
            "too_large", f"{name}: {len(raw)} bytes is over the limit of {max_bytes} bytes"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidRecordError(
            "invalid_utf8", f"{name}: not UTF-8 (bad byte at position {exc.start})"
        ) from None
    try:
        obj: Any = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidRecordError(
            "invalid_json", f"{name}: not JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
        ) from None
    except (ValueError, RecursionError) as exc:  # a huge integer literal, absurd nesting
        raise InvalidRecordError(
            "invalid_json", f"{name}: JSON that cannot be read ({type(exc).__name__})"
        ) from None
    if not isinstance(obj, dict):
        raise InvalidRecordError(
            "not_an_object", f"{name}: JSON {type(obj).__name__} where an object was expected"
        )
    # the scan walks every key and value: run it only when the text has an escape that
    # could decode to an unsafe character (2 % of the worker's CPU in make bench)
    unsafe = _unsafe_string(obj) if _UNSAFE_ESCAPES.search(text) else None
    if unsafe is not None:
        raise InvalidRecordError(
            "unsafe_text", f"{name}: {unsafe or '<record>'}: a NUL or lone surrogate character"
        )
    try:
        return model_cls.model_validate(obj)
    except ValidationError as exc:
        types = {error["type"] for error in exc.errors(include_input=False)}
        reason = "empty_text" if types == {"empty_text"} else "validation_error"
        raise InvalidRecordError(reason, f"{name}: {describe_validation_error(exc)}") from None


def _unsafe_string(obj: object) -> str | None:
    """Location of the first string (key or value) with an unsafe character, or None."""
    stack: list[tuple[str, object]] = [("", obj)]
    while stack:
        where, item = stack.pop()
        if isinstance(item, str):
            if _UNSAFE_CHARS.search(item):
                return where
        elif isinstance(item, dict):
            for key, value in item.items():
                at = f"{where}.{key}" if where else str(key)
                if _UNSAFE_CHARS.search(key):
                    return where or "<key>"
                stack.append((at, value))
        elif isinstance(item, list):
            stack.extend((f"{where}.{n}", value) for n, value in enumerate(item))
    return None


def check_header_names(names: Iterable[object]) -> None:
    """Raise ``InvalidRecordError`` (``invalid_header``) unless every header name is UTF-8.

    A name arrives as ``str`` (a non-UTF-8 byte as a lone surrogate, see
    ``streams.runtime.record_guard``) or as ``bytes``.
    """
    for n, name in enumerate(names):
        try:
            if isinstance(name, bytes):
                name.decode("utf-8")
            elif isinstance(name, str):
                name.encode("utf-8")
            else:
                raise TypeError(type(name).__name__)
        except (UnicodeError, TypeError):
            raise InvalidRecordError(
                "invalid_header", f"header {n}: the name is not UTF-8 text"
            ) from None


def check_key(key: bytes | None, expected: str, what: str) -> None:
    """Raise ``InvalidRecordError`` (``invalid_key``) unless the Kafka key is ``expected``.

    Tables are partitioned like their input topic, so a record whose key is not the table
    key it updates would write that key's state into another partition.
    """
    if key != expected.encode("utf-8"):
        raise InvalidRecordError("invalid_key", f"the key is not the record's {what}")


def check_event_time(at: datetime, now: datetime, max_skew: timedelta) -> None:
    """Raise ``InvalidRecordError`` (``event_time_in_future``) when ``at`` is more than
    ``max_skew`` past ``now``: such a time would move a monitor's watermark ahead of every
    real event and silence it."""
    if at - now > max_skew:
        raise InvalidRecordError(
            "event_time_in_future",
            f"event time {(at - now).total_seconds():.0f} s ahead of the clock "
            f"(at most {max_skew.total_seconds():.0f} s allowed)",
        )


def encode(record: BaseModel) -> bytes:
    """Serialise a record to compact UTF-8 JSON, as ``decode`` reads it back."""
    return record.model_dump_json().encode("utf-8")


def config_problem(key: str, problem: str) -> PydanticCustomError:
    """An error for a model validator of a config file that names the key at fault."""
    return PydanticCustomError("config", "{key}: {problem}", {"key": key, "problem": problem})


def load_toml(path: str | Path, model_cls: type[T]) -> T:
    """Read an operator-edited TOML file into a validated model, or raise ``ConfigFileError``."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigFileError(str(path), "", "file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigFileError(str(path), "", f"cannot read the file ({exc})") from None
    return parse_toml(text, model_cls, source=str(path))


def parse_toml(text: str, model_cls: type[T], *, source: str = "<string>") -> T:
    """Parse TOML text into a validated model; ``ConfigFileError`` names ``source`` and the key."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigFileError(source, "", f"not valid TOML ({exc})") from None
    try:
        return model_cls.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        ctx = first.get("ctx") or {}
        key = ".".join([*(str(p) for p in first["loc"]), *([ctx["key"]] if "key" in ctx else [])])
        problem = str(ctx.get("problem", first["msg"]))
        if exc.error_count() > 1:
            problem += f" (and {exc.error_count() - 1} more: {describe_validation_error(exc)})"
        raise ConfigFileError(source, key, problem) from None
