"""Pure step from a scored message and the customer's history to ticket and recommendation."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from streams.core.recommend import ActionCatalog, recommend
from streams.core.records import Recommendation, RoutedTicket, ScoredMessage
from streams.core.routing import CustomerHistory, RoutingTable, route


@dataclass(frozen=True)
class TicketOutcome:
    """What one scored message becomes, and the customer's history after it."""

    ticket: RoutedTicket
    recommendation: Recommendation
    history: CustomerHistory


def route_and_recommend(
    scored: ScoredMessage,
    history: CustomerHistory,
    table: RoutingTable,
    catalog: ActionCatalog,
    *,
    now: datetime,
    k: int = 3,
) -> TicketOutcome:
    """Route ``scored`` with ``table`` and rank next-best actions from ``catalog``."""
    decision = route(
        scored.intent_probs,
        scored.sentiment,
        scored.sentiment_score,
        history,
        table,
        at=scored.sent_at,
        message_id=scored.id,
    )
    ticket = RoutedTicket(
        id=scored.id,
        customer_id=scored.customer_id,
        model_version=scored.model_version,
        sentiment_model_version=scored.sentiment_model_version,
        intent=decision.intent,
        confidence=decision.confidence,
        intent_probs=scored.intent_probs,
        queue=decision.queue,
        priority=decision.priority,
        sentiment=scored.sentiment,
        sentiment_score=scored.sentiment_score,
        low_confidence=decision.low_confidence,
        repeat_contacts=decision.repeat_contacts,
        reasons=list(decision.reasons),
        sent_at=scored.sent_at,
        scored_at=now,
    )
    actions = recommend(scored.intent_probs, catalog, repeat_contacts=decision.repeat_contacts, k=k)
    rec = Recommendation(
        id=scored.id,
        customer_id=scored.customer_id,
        model_version=scored.model_version,
        actions=actions,
        sent_at=scored.sent_at,
    )
    rule = table.repeat_contact
    new_history = history.updated(
        decision.intent, scored.sent_at, rule.history_max_len, rule.window, scored.id
    )
    return TicketOutcome(ticket, rec, new_history)
