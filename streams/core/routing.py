"""Route a scored customer message to a queue with a priority, from an operator's table."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from streams.core.records import config_problem, load_toml, parse_toml

Priority = Annotated[int, Field(ge=1, le=5)]
"""1 is the most urgent, 5 the least."""
MOST_URGENT = 1

REASON_URGENT = "urgent_intent"
REASON_NEGATIVE = "negative_sentiment"
REASON_REPEAT = "repeat_contact"
REASON_LOW_CONFIDENCE = "low_confidence"
REASON_UNKNOWN_INTENT = "unknown_intent"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class IntentRoute(_Strict):
    """Where one intent goes and how urgent it is before adjustments."""

    queue: str
    priority: Priority


class SentimentRule(_Strict):
    """Strongly negative messages are one step more urgent."""

    negative_labels: tuple[str, ...] = ("negative",)
    strongly_negative_score: Annotated[float, Field(ge=-1.0, le=1.0)] = -0.6


class RepeatContactRule(_Strict):
    """The same customer and intent ``min_contacts`` times in the window: one step more urgent."""

    window_minutes: Annotated[int, Field(ge=1)] = 1440
    min_contacts: Annotated[int, Field(ge=2)] = 3
    history_max_len: Annotated[int, Field(ge=1, le=1000)] = 20

    @property
    def window(self) -> timedelta:
        """The repeat window as a duration."""
        return timedelta(minutes=self.window_minutes)


class RoutingTable(_Strict):
    """Queues, priorities and adjustment rules, as the operator wrote them in routing.toml."""

    default_queue: str
    default_priority: Priority
    triage_queue: str
    low_confidence_threshold: Annotated[float, Field(ge=0.0, le=1.0)]
    urgent_priority: Priority = MOST_URGENT
    urgent_intents: frozenset[str] = frozenset()
    sentiment: SentimentRule = SentimentRule()
    repeat_contact: RepeatContactRule = RepeatContactRule()
    queues: dict[str, str]
    intents: dict[str, IntentRoute]

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        for key in ("default_queue", "triage_queue"):
            if getattr(self, key) not in self.queues:
                raise config_problem(key, "names a queue that is not in [queues]")
        for intent, route in self.intents.items():
            if route.queue not in self.queues:
                raise config_problem(f"intents.{intent}.queue", "names a queue not in [queues]")
        for intent in sorted(self.urgent_intents):
            if intent not in self.intents:
                raise config_problem("urgent_intents", f"{intent!r} is not in [intents]")
        return self

    @classmethod
    def load(cls, path: str | Path) -> RoutingTable:
        """Read and check a routing table; ``ConfigFileError`` names the file and key."""
        return load_toml(path, cls)

    @classmethod
    def parse(cls, text: str, *, source: str = "<string>") -> RoutingTable:
        """Like ``load``, from TOML text."""
        return parse_toml(text, cls, source=source)

    def intents_of(self, queue: str) -> list[str]:
        """The intents routed to ``queue``, in file order."""
        return [intent for intent, route in self.intents.items() if route.queue == queue]


@dataclass(frozen=True)
class Contact:
    """One past contact of a customer: intent, event time (epoch seconds), message id."""

    intent: str
    at: float
    message_id: str | None = None


@dataclass(frozen=True)
class CustomerHistory:
    """A customer's recent contacts, oldest first; kept in a table keyed by customer id."""

    contacts: tuple[Contact, ...] = ()

    def count(
        self, intent: str, at: datetime, window: timedelta, *, exclude_id: str | None = None
    ) -> int:
        """Past contacts about ``intent`` no older than ``window`` before ``at``."""
        since = _epoch(at) - window.total_seconds()
        return sum(
            1
            for c in self.contacts
            if c.intent == intent
            and c.at >= since
            and (exclude_id is None or c.message_id != exclude_id)
        )

    def updated(
        self,
        intent: str,
        at: datetime,
        max_len: int,
        window: timedelta,
        message_id: str | None = None,
    ) -> CustomerHistory:
        """A new history with this contact added, older ones dropped; a repeated id is a no-op."""
        if message_id is not None and any(c.message_id == message_id for c in self.contacts):
            return self
        contacts = [*self.contacts, Contact(intent, _epoch(at), message_id)]
        newest = max(c.at for c in contacts)
        since = newest - window.total_seconds()
        kept = sorted((c for c in contacts if c.at >= since), key=lambda c: c.at)
        return CustomerHistory(tuple(kept[-max_len:]))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"contacts": [[c.intent, c.at, c.message_id] for c in self.contacts]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CustomerHistory:
        """Inverse of ``to_dict``."""
        return cls(
            tuple(
                Contact(str(intent), float(at), None if mid is None else str(mid))
                for intent, at, mid in data.get("contacts", [])
            )
        )


@dataclass(frozen=True)
class RoutingDecision:
    """Where a message goes, how urgent it is, and why."""

    intent: str
    confidence: float
    queue: str
    priority: int
    low_confidence: bool
    reasons: tuple[str, ...]
    repeat_contacts: int
    """Contacts about this intent in the repeat window, this one included."""


def _epoch(at: datetime) -> float:
    """Seconds since the epoch; a naive datetime is taken to be UTC."""
    return (at if at.tzinfo is not None else at.replace(tzinfo=UTC)).timestamp()


def top_intents(intent_probs: Mapping[str, float], n: int = 5) -> dict[str, float]:
    """The ``n`` most probable intents, most probable first (ties by name)."""
    ranked = sorted(intent_probs.items(), key=lambda kv: (-kv[1], kv[0]))
    return dict(ranked[:n])


def route(
    intent_probs: Mapping[str, float],
    sentiment_label: str,
    sentiment_score: float,
    history: CustomerHistory,
    table: RoutingTable,
    *,
    at: datetime,
    message_id: str | None = None,
) -> RoutingDecision:
    """Decide queue and priority for one message.

    ``history`` holds the customer's earlier contacts (this message may already be in it
    after a redelivery: give ``message_id`` and it is not counted twice).
    Priority starts at the intent's base priority; urgent intents take
    ``urgent_priority``; strongly negative sentiment and repeat contacts each make it
    one step more urgent. Below the confidence threshold the queue is the triage queue.
    """
    if not intent_probs:
        raise ValueError("route() needs at least one intent probability")
    intent, confidence = next(iter(top_intents(intent_probs, 1).items()))
    reasons: list[str] = []
    known = table.intents.get(intent)
    if known is None:
        queue, priority = table.default_queue, table.default_priority
        reasons.append(REASON_UNKNOWN_INTENT)
    else:
        queue, priority = known.queue, known.priority
    if intent in table.urgent_intents:
        priority = min(priority, table.urgent_priority)
        reasons.append(REASON_URGENT)
    rule = table.sentiment
    if sentiment_label in rule.negative_labels and sentiment_score <= rule.strongly_negative_score:
        priority -= 1
        reasons.append(REASON_NEGATIVE)
    repeat = table.repeat_contact
    contacts = 1 + history.count(intent, at, repeat.window, exclude_id=message_id)
    if contacts >= repeat.min_contacts:
        priority -= 1
        reasons.append(REASON_REPEAT)
    low_confidence = confidence < table.low_confidence_threshold
    if low_confidence:
        queue = table.triage_queue
        reasons.append(REASON_LOW_CONFIDENCE)
    return RoutingDecision(
        intent=intent,
        confidence=confidence,
        queue=queue,
        priority=max(MOST_URGENT, priority),
        low_confidence=low_confidence,
        reasons=tuple(reasons),
        repeat_contacts=contacts,
    )
