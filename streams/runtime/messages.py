"""The customer-message path: the message scorer, which routes inside its batch, and the
router, which routes what reaches ``messages.scored``.

Input contract: ``messages.raw`` is keyed by customer id. The customer's history (repeat
contacts) is a table row in the partition of that key, so a scorer batch can route its
messages itself: one Kafka hop and two records per message fewer than a separate router.
A message keyed otherwise (no key, another key) is repartitioned: the scorer writes it to
``messages.scored`` keyed by its customer id, and the router routes it from there. With
``STREAMSENSE_ROUTE_IN_SCORER=false`` every scored message takes that path (for whoever
wants the ``messages.scored`` stream itself).

Either way a customer's history row is written only after the ticket and recommendation
it counts are confirmed (a redelivered message is recognised by its id and not counted
twice).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from streams.core.records import CustomerMessage, RoutedTicket, ScoredMessage, check_key, encode
from streams.core.routing import CustomerHistory
from streams.core.scoring import score_message
from streams.core.ticketing import route_and_recommend
from streams.errors import InvalidRecordError
from streams.runtime.agents import (
    Agent,
    Collaborators,
    Turn,
    batched,
    decode_batch,
    observe_latency,
    score_batch,
    utcnow,
)
from streams.runtime.delivery import Outbox, send_dead_letter
from streams.runtime.intake import attempt, read_record
from streams.runtime.metrics import BatchClock
from streams.runtime.served import confirmed_and_stored, ticket_prediction
from streams.runtime.tables import BatchRows, OneRow

HISTORY = "customer-history"


def history_rows(table: Any) -> BatchRows[CustomerHistory]:
    """The customer-history rows one batch reads and updates (a history is a few
    contacts: parsed afresh for each batch)."""
    return BatchRows(table, OneRow(CustomerHistory.from_dict, CustomerHistory.to_dict), HISTORY)


async def route(
    c: Collaborators,
    outbox: Outbox,
    rows: BatchRows[CustomerHistory],
    event: Any,
    scored: ScoredMessage,
    dlq: Any,
) -> RoutedTicket | None:
    """Queue the ticket and recommendation of ``scored`` and stage the customer's new
    history; return the ticket. A record that cannot be routed is queued as a dead letter
    on ``dlq`` (None)."""
    t = c.topics
    customer = scored.customer_id
    try:
        past = rows.get(customer)
        outcome = attempt(
            "route",
            route_and_recommend,
            scored,
            past or CustomerHistory(),
            c.routing,
            c.actions,
            now=utcnow(),
        )
        ticket = attempt("encode", encode, outcome.ticket)
        recommendation = attempt("encode", encode, outcome.recommendation)
    except InvalidRecordError as exc:
        await send_dead_letter(outbox, dlq, event.message, exc)
        rows.drop_if_unreadable(customer, event, exc)
        return None
    await outbox.send(t.tickets_routed, outcome.ticket.intent.encode(), ticket)
    await outbox.send(t.recommendations, customer.encode(), recommendation)
    rows.put(customer, outcome.history, event)
    return outcome.ticket


async def confirm_routed(
    c: Collaborators,
    outbox: Outbox,
    rows: BatchRows[CustomerHistory],
    routed: Sequence[RoutedTicket],
) -> None:
    """Wait for the broker to have every output of the batch and for the store to have the
    served intents, then write the histories."""
    served = [ticket_prediction(ticket) for ticket in routed]
    await confirmed_and_stored(outbox.confirm(), c.record_predictions, c.store_executor, served)
    rows.write()
    for ticket in routed:
        observe_latency(c, c.topics.tickets_routed.get_topic_name(), ticket.sent_at)


def _text_of(msg: CustomerMessage) -> str:
    return msg.text


def make_message_scorer(c: Collaborators, history: Any) -> Agent:
    """messages.raw (key customer id) → tickets.routed (key intent) and recommendations;
    a message not keyed by its customer id → messages.scored (key customer id)."""
    t = c.topics

    async def handle(events: Sequence[Any], clock: BatchClock, turn: Turn) -> None:
        outbox = Outbox(c.metrics, c.send_now)
        rows = history_rows(history)
        routed: list[RoutedTicket] = []
        pairs = await decode_batch(
            events, CustomerMessage, outbox, t.messages_dlq, c.max_record_bytes
        )
        clock.lap("decode")
        if pairs:
            intent_model, sentiment_model = c.intent.classifier, c.sentiment.classifier
            pairs, (intents, sentiments) = await score_batch(
                c, [intent_model, sentiment_model], pairs, _text_of, outbox, t.messages_dlq
            )
            clock.lap("inference")
            await turn()  # the batch before this one has confirmed, written and acked
            now = utcnow()
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
                    customer = record.customer_id.encode()
                    if c.route_in_scorer and event.message.key == customer:
                        ticket = await route(c, outbox, rows, event, record, t.messages_dlq)
                        if ticket is not None:
                            routed.append(ticket)
                        continue
                    value = attempt("encode", encode, record)
                except InvalidRecordError as exc:
                    await send_dead_letter(outbox, t.messages_dlq, event.message, exc)
                    continue
                await outbox.send(t.messages_scored, customer, value)
            clock.lap("emit")
        await confirm_routed(c, outbox, rows, routed)
        clock.lap("confirm")

    return batched("message-scorer", c, handle, scorer=True)


def make_router(c: Collaborators, history: Any) -> Agent:
    """messages.scored (key customer id) → tickets.routed (key intent) and recommendations."""
    t = c.topics

    async def handle(events: Sequence[Any]) -> None:
        outbox = Outbox(c.metrics, c.send_now)
        rows = history_rows(history)
        routed: list[RoutedTicket] = []
        for event in events:
            message = event.message
            try:
                scored = read_record(message, ScoredMessage, c.max_record_bytes)
                attempt("key", check_key, message.key, scored.customer_id, "customer id")
            except InvalidRecordError as exc:
                await send_dead_letter(outbox, t.messages_scored_dlq, message, exc)
                continue
            ticket = await route(c, outbox, rows, event, scored, t.messages_scored_dlq)
            if ticket is not None:
                routed.append(ticket)
        await confirm_routed(c, outbox, rows, routed)

    return batched("router", c, handle)
