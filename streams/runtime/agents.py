"""The Faust agents: thin wiring from topics to the pure cores and back to topics.

Scorers take micro-batches with ``noack_take`` and acknowledge each batch only after
every output (and dead letter) of it is confirmed by the broker. Monitors and the router
take one record at a time and keep their state in Faust tables keyed like their input; they
write that state only after the outputs it would suppress (alerts) are confirmed.

Every consumed record's key, headers and value are untrusted bytes. Each agent splits its
work into pure steps over the record (decode, validate, read the table row, compute,
encode), run through :func:`streams.runtime.intake.attempt` so that any exception there
becomes a dead letter with its reason, and I/O (sends, confirms, table writes, store
writes), whose failures exit the worker (crash-only): a restart re-reads from the last
committed offset.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from pydantic import BaseModel

from models.prediction import Prediction
from models.runtime import Classifier
from streams.core.intent_monitor import IntentEvent, IntentParams, IntentState, update_intent
from streams.core.intent_monitor import is_late as intent_is_late
from streams.core.recommend import ActionCatalog
from streams.core.records import (
    Alert,
    CustomerMessage,
    NewsItem,
    RoutedTicket,
    ScoredMessage,
    ScoredNews,
    check_key,
    encode,
)
from streams.core.routing import CustomerHistory, RoutingTable
from streams.core.scoring import DEFAULT_MAX_TICKERS, news_text, score_message, score_news_item
from streams.core.ticker_monitor import (
    NewsEvent,
    TickerParams,
    TickerState,
    ticker_of,
    update_ticker,
)
from streams.core.ticker_monitor import is_late as ticker_is_late
from streams.core.tickers import CompanyDictionary
from streams.core.ticketing import route_and_recommend
from streams.errors import InvalidRecordError
from streams.runtime.delivery import Outbox, send_dead_letter
from streams.runtime.faults import CRASH_AFTER_STATE_WRITE, Faults, changelog_flush
from streams.runtime.intake import (
    attempt,
    drop_unreadable_row,
    read_record,
    read_state,
    reject,
)
from streams.runtime.metrics import Metrics

logger = logging.getLogger(__name__)

T = TypeVar("T", bound=BaseModel)
FATAL_EXIT = 70


class ModelSlot:
    """The classifier serving one task. A swap is one reference assignment between batches."""

    def __init__(self, classifier: Classifier) -> None:
        self.classifier = classifier
        self.swaps = 0

    def swap(self, classifier: Classifier) -> Classifier:
        """Serve ``classifier`` from the next batch on; return the one it replaces."""
        old, self.classifier = self.classifier, classifier
        self.swaps += 1
        return old


@dataclass
class Topics:
    """The Faust topic objects the agents use."""

    news_raw: Any
    messages_raw: Any
    news_scored: Any
    messages_scored: Any
    tickets_routed: Any
    recommendations: Any
    alerts: Any
    news_dlq: Any
    messages_dlq: Any
    news_scored_dlq: Any
    messages_scored_dlq: Any
    tickets_routed_dlq: Any
    feedback: Any
    feedback_dlq: Any
    predictions: Any
    """news.scored and tickets.routed together, for the prediction sink."""


@dataclass
class Collaborators:
    """Everything the agents need besides Faust itself."""

    topics: Topics
    sentiment: ModelSlot
    intent: ModelSlot
    executor: Executor
    dictionary: CompanyDictionary
    routing: RoutingTable
    actions: ActionCatalog
    ticker_params: TickerParams
    intent_params: IntentParams
    max_record_bytes: int
    batch_size: int
    batch_max_wait_s: float
    metrics: Metrics
    store_executor: Executor
    max_tickers: int = DEFAULT_MAX_TICKERS
    faults: Faults = field(default_factory=Faults)
    """Test-only fault points (none armed in production)."""


def _now() -> datetime:
    return datetime.now(UTC)


async def _decode_batch(
    events: Sequence[Any], model: type[T], outbox: Outbox, dlq: Any, max_bytes: int
) -> list[tuple[Any, T]]:
    """The valid records of a batch; every invalid one is queued as a dead letter."""
    valid: list[tuple[Any, T]] = []
    for event in events:
        try:
            valid.append((event, read_record(event.message, model, max_bytes)))
        except InvalidRecordError as exc:
            await send_dead_letter(outbox, dlq, event.message, exc)
    return valid


async def _predict(c: Collaborators, classifier: Classifier, texts: list[str]) -> list[Prediction]:
    loop = asyncio.get_running_loop()
    started = time.perf_counter()
    preds = await loop.run_in_executor(c.executor, classifier.predict, texts)
    c.metrics.inference_seconds.labels(classifier.task).observe(time.perf_counter() - started)
    for pred in preds:
        c.metrics.predictions.labels(classifier.task, pred.label).inc()
        c.metrics.confidence.labels(classifier.task).observe(pred.confidence)
    return preds


def _latency(c: Collaborators, topic: str, event_time: datetime) -> None:
    """Observe the time from an output's event time to now (it was just confirmed)."""
    c.metrics.end_to_end_seconds.labels(topic).observe(
        max(0.0, (_now() - event_time).total_seconds())
    )


async def _score(
    c: Collaborators,
    classifiers: Sequence[Classifier],
    pairs: list[tuple[Any, T]],
    text_of: Callable[[T], str],
    outbox: Outbox,
    dlq: Any,
) -> tuple[list[tuple[Any, T]], list[list[Prediction]]]:
    """Score a batch with every classifier (one call each).

    If a batch call fails, the batch is scored item by item and an item that still fails
    becomes a dead letter; the others go on. Returns the kept pairs and, per classifier,
    their predictions in order.
    """
    texts = [text_of(r) for _, r in pairs]
    try:
        return pairs, [await _predict(c, model, texts) for model in classifiers]
    except Exception:
        logger.exception("batch inference failed; retrying item by item")
    kept: list[tuple[Any, T]] = []
    columns: list[list[Prediction]] = [[] for _ in classifiers]
    for (event, record), text in zip(pairs, texts, strict=True):
        try:
            row = [(await _predict(c, model, [text]))[0] for model in classifiers]
        except Exception as exc:
            versions = ",".join(m.version for m in classifiers)
            error = InvalidRecordError("inference_error", f"{versions}: {type(exc).__name__}")
            await send_dead_letter(outbox, dlq, event.message, error)
            continue
        kept.append((event, record))
        for column, pred in zip(columns, row, strict=True):
            column.append(pred)
    return kept, columns


def fatal(agent: str, exc: BaseException) -> None:
    """Stop the process at once, committing nothing more: a restart re-reads from the last
    committed offset, so nothing is lost (crash-only, as the kill tests prove)."""
    logger.critical("agent %s failed (%s); exiting so that a restart redelivers", agent, exc)
    logging.shutdown()
    os._exit(FATAL_EXIT)


Agent = Callable[[Any], Awaitable[None]]


def batched(
    name: str, c: Collaborators, handle: Callable[[Sequence[Any]], Awaitable[None]]
) -> Agent:
    """An agent that hands micro-batches to ``handle`` and acks each batch after it."""

    async def agent(stream: Any) -> None:
        async for events in stream.noack_take(c.batch_size, within=c.batch_max_wait_s):
            c.metrics.batch_size.labels(name).observe(len(events))
            for event in events:
                c.metrics.records_in.labels(event.message.topic).inc()
            try:
                await handle(events)
            except Exception as exc:
                fatal(name, exc)
            for event in events:
                await stream.ack(event)

    agent.__name__ = agent.__qualname__ = name.replace("-", "_")
    return agent


def single(name: str, c: Collaborators, handle: Callable[[Any], Awaitable[None]]) -> Agent:
    """An agent that hands records one at a time to ``handle`` and acks each after it."""

    async def agent(stream: Any) -> None:
        noack = stream.noack()
        async for event in noack.events():
            c.metrics.records_in.labels(event.message.topic).inc()
            try:
                await handle(event)
            except Exception as exc:
                fatal(name, exc)
            await noack.ack(event)

    agent.__name__ = agent.__qualname__ = name.replace("-", "_")
    return agent


def make_news_scorer(c: Collaborators) -> Agent:
    """news.raw → news.scored (one record per item and ticker, key ticker)."""
    t = c.topics

    async def handle(events: Sequence[Any]) -> None:
        outbox = Outbox(c.metrics)
        pairs = await _decode_batch(events, NewsItem, outbox, t.news_dlq, c.max_record_bytes)
        if pairs:
            classifier = c.sentiment.classifier
            pairs, (preds,) = await _score(c, [classifier], pairs, news_text, outbox, t.news_dlq)
            now = _now()
            scored: list[ScoredNews] = []
            for (event, item), pred in zip(pairs, preds, strict=True):
                try:
                    record = attempt(
                        "score",
                        score_news_item,
                        item,
                        pred,
                        model_version=classifier.version,
                        dictionary=c.dictionary,
                        now=now,
                        max_tickers=c.max_tickers,
                    )
                    value = attempt("encode", encode, record)
                except InvalidRecordError as exc:
                    await send_dead_letter(outbox, t.news_dlq, event.message, exc)
                    continue
                for ticker in record.tickers or [""]:
                    await outbox.send(t.news_scored, ticker.encode() or None, value)
                scored.append(record)
            await outbox.confirm()
            for record in scored:
                _latency(c, t.news_scored.get_topic_name(), record.published_at)
        await outbox.confirm()

    return batched("news-scorer", c, handle)


def make_message_scorer(c: Collaborators) -> Agent:
    """messages.raw → messages.scored (intent and sentiment, key customer id)."""
    t = c.topics

    def text_of(msg: CustomerMessage) -> str:
        return msg.text

    async def handle(events: Sequence[Any]) -> None:
        outbox = Outbox(c.metrics)
        pairs = await _decode_batch(
            events, CustomerMessage, outbox, t.messages_dlq, c.max_record_bytes
        )
        if pairs:
            intent_model, sentiment_model = c.intent.classifier, c.sentiment.classifier
            pairs, (intents, sentiments) = await _score(
                c, [intent_model, sentiment_model], pairs, text_of, outbox, t.messages_dlq
            )
            now = _now()
            for (event, msg), intent, sentiment in zip(pairs, intents, sentiments, strict=True):
                try:
                    record = attempt(
                        "score",
                        score_message,
                        msg,
                        intent,
                        sentiment,
                        intent_version=intent_model.version,
                        sentiment_version=sentiment_model.version,
                        now=now,
                    )
                    value = attempt("encode", encode, record)
                except InvalidRecordError as exc:
                    await send_dead_letter(outbox, t.messages_dlq, event.message, exc)
                    continue
                await outbox.send(t.messages_scored, record.customer_id.encode(), value)
        await outbox.confirm()

    return batched("message-scorer", c, handle)


def make_router(c: Collaborators, history: Any) -> Agent:
    """messages.scored (key customer) → tickets.routed (key intent) and recommendations.

    The customer's history is written only after the ticket and recommendation are
    confirmed (a redelivered message is recognised by its id and not counted twice).
    """
    t = c.topics

    async def handle(event: Any) -> None:
        outbox = Outbox(c.metrics)
        message = event.message
        customer: str | None = None
        try:
            scored = read_record(message, ScoredMessage, c.max_record_bytes)
            attempt("key", check_key, message.key, scored.customer_id, "customer id")
            customer = scored.customer_id
            raw = history.get(customer)  # I/O: not the record's fault if it fails
            past = read_state(CustomerHistory.from_dict, raw, "customer-history")
            outcome = attempt(
                "route",
                route_and_recommend,
                scored,
                past or CustomerHistory(),
                c.routing,
                c.actions,
                now=_now(),
            )
            ticket = attempt("encode", encode, outcome.ticket)
            recommendation = attempt("encode", encode, outcome.recommendation)
        except InvalidRecordError as exc:
            await reject(outbox, t.messages_scored_dlq, message, exc)
            drop_unreadable_row(history, customer, exc)
            return
        await outbox.send(t.tickets_routed, outcome.ticket.intent.encode(), ticket)
        await outbox.send(t.recommendations, customer.encode(), recommendation)
        await outbox.confirm()
        history[customer] = outcome.history.to_dict()
        _latency(c, t.tickets_routed.get_topic_name(), scored.sent_at)

    return single("router", c, handle)


async def _alert_then_store(
    c: Collaborators,
    outbox: Outbox,
    states: Any,
    key: str,
    alerts: Sequence[Alert],
    values: Sequence[bytes],
    row: dict[str, Any],
) -> None:
    """Send a monitor's alerts, wait for the broker, and only then write the state that
    would suppress them on a redelivery (a crash in between costs a duplicate alert)."""
    for value in values:
        await outbox.send(c.topics.alerts, key.encode(), value)
    await outbox.confirm()
    for alert in alerts:
        c.metrics.alerts.labels(alert.kind).inc()
    states[key] = row
    if alerts and c.faults.point:
        await c.faults.crash(CRASH_AFTER_STATE_WRITE, changelog_flush(states))


def make_ticker_monitor(c: Collaborators, states: Any) -> Agent:
    """news.scored (key ticker) → alerts on sharp sentiment drops and negative bursts.

    The alerts a record raises are confirmed before the ticker's new state (which holds the
    record's id and the cooldown that would suppress them on a redelivery) is written.
    """
    t = c.topics

    async def handle(event: Any) -> None:
        outbox = Outbox(c.metrics)
        message = event.message
        ticker: str | None = None
        try:
            scored = read_record(message, ScoredNews, c.max_record_bytes)
            ticker = attempt("key", ticker_of, message.key, scored)
            if ticker is None:
                return  # about no ticker: nothing to monitor
            raw = states.get(ticker)  # I/O: not the record's fault if it fails
            state = read_state(TickerState.from_dict, raw, "ticker-state")
            news = attempt("event", NewsEvent.from_scored, scored, ticker)
            if ticker_is_late(state, news, c.ticker_params):
                c.metrics.late_items.labels("ticker-monitor").inc()
            new_state, alerts = attempt(
                "update_ticker", update_ticker, state, news, c.ticker_params, now=_now()
            )
            values = [attempt("encode", encode, alert) for alert in alerts]
            row = new_state.to_dict()
        except InvalidRecordError as exc:
            await reject(outbox, t.news_scored_dlq, message, exc)
            drop_unreadable_row(states, ticker, exc)
            return
        await _alert_then_store(c, outbox, states, ticker, alerts, values, row)

    return single("ticker-monitor", c, handle)


def make_intent_monitor(c: Collaborators, states: Any) -> Agent:
    """tickets.routed (key intent) → complaint-spike alerts.

    A spike alert is confirmed before the intent's new state (which holds the message id
    and the cooldown that would suppress the alert on a redelivery) is written.
    """
    t = c.topics

    async def handle(event: Any) -> None:
        outbox = Outbox(c.metrics)
        message = event.message
        intent: str | None = None
        try:
            ticket = read_record(message, RoutedTicket, c.max_record_bytes)
            attempt("key", check_key, message.key, ticket.intent, "intent")
            intent = ticket.intent
            raw = states.get(intent)  # I/O: not the record's fault if it fails
            state = read_state(IntentState.from_dict, raw, "intent-state")
            routed = attempt("event", IntentEvent.from_ticket, ticket)
            if intent_is_late(state, routed, c.intent_params):
                c.metrics.late_items.labels("intent-monitor").inc()
            new_state, alerts = attempt(
                "update_intent", update_intent, state, routed, c.intent_params, now=_now()
            )
            values = [attempt("encode", encode, alert) for alert in alerts]
            row = new_state.to_dict()
        except InvalidRecordError as exc:
            await reject(outbox, t.tickets_routed_dlq, message, exc)
            drop_unreadable_row(states, intent, exc)
            return
        await _alert_then_store(c, outbox, states, intent, alerts, values, row)

    return single("intent-monitor", c, handle)
