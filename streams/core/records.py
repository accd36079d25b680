"""Versioned JSON records on the topics, and their strict decoding from raw bytes.

Inputs reject unknown fields; outputs accept them (a newer producer may add some).
Validation errors name field locations and error types, never the input values:
customer text is personal data.
"""

from __future__ import annotations

import json
import tomllib
from datetime import UTC, datetime
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


def _to_utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


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


class _Input(BaseModel):
    """Base of records produced outside streamsense: strict about their shape."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class _Output(BaseModel):
    """Base of records streamsense produces: tolerant of fields added later."""

    model_config = ConfigDict(extra="ignore", frozen=True, protected_namespaces=())


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
    probs: dict[str, float]
    score: Annotated[float, Field(ge=-1.0, le=1.0)]
    """P(positive) - P(negative)."""
    tickers: list[str]
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
    intent_probs: dict[str, float]
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
    confidence: float
    intent_probs: dict[str, float] = Field(default_factory=dict)
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
    headers: list[tuple[str, str]]
    """Header names and base64 values."""
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
    ``not_an_object``, ``empty_text``, ``validation_error``.
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
    try:
        return model_cls.model_validate(obj)
    except ValidationError as exc:
        types = {error["type"] for error in exc.errors(include_input=False)}
        reason = "empty_text" if types == {"empty_text"} else "validation_error"
        raise InvalidRecordError(reason, f"{name}: {describe_validation_error(exc)}") from None


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
