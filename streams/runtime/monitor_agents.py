"""The monitors: scored news (key ticker) and routed tickets (key intent) → alerts.

Each takes micro-batches, runs the records through its pure state machine in order (a key
seen twice in a batch sees its own update), sends the batch's alerts and dead letters, waits
for the broker once, and only then writes the batch's table rows, whose record ids and
cooldowns would suppress those alerts on a redelivery (a crash in between costs duplicate
alerts with the same ``alert_id``, never a lost one).

A ticker's state is one row. An intent's is a head row and a row per chunk of its window
(:class:`IntentRows`), so a batch rewrites the chunks it changed, not the whole window.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from streams.core.intent_monitor import IntentEvent, IntentState, update_intent
from streams.core.intent_monitor import is_late as intent_is_late
from streams.core.records import Alert, RoutedTicket, ScoredNews, check_key, encode
from streams.core.ticker_monitor import NewsEvent, TickerState, ticker_of, update_ticker
from streams.core.ticker_monitor import is_late as ticker_is_late
from streams.errors import InvalidRecordError
from streams.runtime.agents import Agent, Collaborators, batched, utcnow
from streams.runtime.delivery import Outbox, send_dead_letter
from streams.runtime.faults import CRASH_AFTER_STATE_WRITE, changelog_flush
from streams.runtime.intake import attempt, read_record
from streams.runtime.tables import BatchRows, OneRow, ParsedRows

Raised = list[tuple[str, Alert, bytes]]
"""(subject key, alert, encoded alert) of a batch, in order."""

CHUNK_SEPARATOR = "@"
"""Between an intent and a chunk's index in the key of the chunk's row."""


def chunk_key(intent: str, index: int) -> str:
    """Key of the row of chunk ``index`` of ``intent``'s window."""
    return f"{intent}{CHUNK_SEPARATOR}{index}"


class IntentRows:
    """The intent monitor's rows: the head (``IntentState.head_row``, which holds the newest
    chunk of the window) under the intent, and each older chunk under :func:`chunk_key`.

    Most batches add to the newest chunk only, so they write one small row per intent they
    touched; every ten seconds of event time a chunk is sealed (written as a row of its
    own) and the oldest leaves (deleted). A batch writes the older chunks that changed,
    then the head, then deletes the chunks that left the window, all to the changelog
    partition of the intent's key. A changelog partition keeps its records in order, so a
    crash leaves the rows of its last batch written up to some point: some chunk rows
    under the old head (which reads the chunks it names, in their new form where written:
    a message of the unacknowledged batch found there is a duplicate of its redelivery,
    one not found is added), or the new head with chunks that left its window still
    stored, never read again. Either way each message is counted once (see
    ``IntentState``). A row of the older form (the whole window under the intent) is read,
    and rewritten as head and chunks at its next write.
    """

    def read(self, key: str, row: Any, fetch: Callable[[str], Any]) -> IntentState:
        if not IntentState.is_head_row(row):
            return IntentState.from_whole_row(row)
        return IntentState.from_rows(row, {i: fetch(chunk_key(key, i)) for i in row["chunks"]})

    def write(
        self, key: str, stored: Any, before: IntentState | None, after: IntentState
    ) -> tuple[Any, dict[str, Any], list[str]]:
        sealed: set[int] = set()
        if stored is not None and IntentState.is_head_row(stored):
            sealed = {int(i) for i in stored["chunks"]}
        known = {chunk.index: chunk for chunk in before.chunks} if before is not None else {}
        older = after.chunks[:-1]
        beside = {
            chunk_key(key, chunk.index): chunk.to_row()
            for chunk in older
            if chunk.index not in sealed or known.get(chunk.index) is not chunk
        }
        gone = sealed - {chunk.index for chunk in older}
        return after.head_row(), beside, [chunk_key(key, i) for i in sorted(gone)]


def check_intent(intent: str) -> None:
    """Refuse an intent whose name could be taken for a chunk's key (``invalid_key``)."""
    if CHUNK_SEPARATOR in intent:
        raise InvalidRecordError(
            "invalid_key", f"an intent may not contain {CHUNK_SEPARATOR!r} (chunk keys use it)"
        )


async def alerts_then_store(
    c: Collaborators, outbox: Outbox, table: Any, rows: BatchRows[Any], raised: Raised
) -> None:
    """Send a batch's alerts, wait for the broker (alerts and dead letters), and only then
    write the rows that would suppress them on a redelivery."""
    for key, _, value in raised:
        await outbox.send(c.topics.alerts, key.encode(), value)
    await outbox.confirm()
    for _, alert, _ in raised:
        c.metrics.alerts.labels(alert.kind).inc()
    rows.write()
    if raised and c.faults.point:
        await c.faults.crash(CRASH_AFTER_STATE_WRITE, changelog_flush(table))


def make_ticker_monitor(c: Collaborators, states: Any) -> Agent:
    """news.scored (key ticker) → alerts on sharp sentiment drops and negative bursts."""
    t = c.topics
    parsed: ParsedRows[TickerState] = ParsedRows()

    async def handle(events: Sequence[Any]) -> None:
        outbox = Outbox(c.metrics, c.send_now)
        rows = BatchRows(
            states, OneRow(TickerState.from_dict, TickerState.to_dict), "ticker-state", parsed
        )
        raised: Raised = []
        for event in events:
            message = event.message
            ticker: str | None = None
            try:
                scored = read_record(message, ScoredNews, c.max_record_bytes)
                ticker = attempt("key", ticker_of, message.key, scored)
                if ticker is None:
                    continue  # about no ticker: nothing to monitor
                state = rows.get(ticker)
                news = attempt("event", NewsEvent.from_scored, scored, ticker)
                if ticker_is_late(state, news, c.ticker_params):
                    c.metrics.late_items.labels("ticker-monitor").inc()
                new_state, alerts = attempt(
                    "update_ticker", update_ticker, state, news, c.ticker_params, now=utcnow()
                )
                values = [attempt("encode", encode, alert) for alert in alerts]
            except InvalidRecordError as exc:
                await send_dead_letter(outbox, t.news_scored_dlq, message, exc)
                rows.drop_if_unreadable(ticker, event, exc)
                continue
            rows.put(ticker, new_state, event)
            raised.extend((ticker, a, v) for a, v in zip(alerts, values, strict=True))
        await alerts_then_store(c, outbox, states, rows, raised)

    return batched("ticker-monitor", c, handle, monitor=True)


def make_intent_monitor(c: Collaborators, states: Any) -> Agent:
    """tickets.routed (key intent) → complaint-spike alerts."""
    t = c.topics
    parsed: ParsedRows[IntentState] = ParsedRows()

    async def handle(events: Sequence[Any]) -> None:
        outbox = Outbox(c.metrics, c.send_now)
        rows = BatchRows(states, IntentRows(), "intent-state", parsed)
        raised: Raised = []
        for event in events:
            message = event.message
            intent: str | None = None
            try:
                ticket = read_record(message, RoutedTicket, c.max_record_bytes)
                attempt("key", check_key, message.key, ticket.intent, "intent")
                check_intent(ticket.intent)
                intent = ticket.intent
                state = rows.get(intent)
                routed = attempt("event", IntentEvent.from_ticket, ticket)
                if intent_is_late(state, routed, c.intent_params):
                    c.metrics.late_items.labels("intent-monitor").inc()
                new_state, alerts = attempt(
                    "update_intent", update_intent, state, routed, c.intent_params, now=utcnow()
                )
                values = [attempt("encode", encode, alert) for alert in alerts]
            except InvalidRecordError as exc:
                await send_dead_letter(outbox, t.tickets_routed_dlq, message, exc)
                rows.drop_if_unreadable(intent, event, exc)
                continue
            rows.put(intent, new_state, event)
            raised.extend((intent, a, v) for a, v in zip(alerts, values, strict=True))
        await alerts_then_store(c, outbox, states, rows, raised)

    return batched("intent-monitor", c, handle, monitor=True)
