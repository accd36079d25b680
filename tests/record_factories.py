"""Records the tests build by hand, in one place (the field lists change with the schema)."""

from __future__ import annotations

from datetime import datetime

from streams.core.records import RoutedTicket


def routed_ticket(
    item_id: str,
    at: datetime,
    *,
    intent: str = "card_not_working",
    customer_id: str | None = None,
    model_version: str = "script",
    sentiment_model_version: str = "s",
) -> RoutedTicket:
    """A confident, neutral ticket for ``intent`` routed to the cards queue at ``at``."""
    return RoutedTicket(
        id=item_id,
        customer_id=customer_id or f"c-{item_id}",
        model_version=model_version,
        sentiment_model_version=sentiment_model_version,
        intent=intent,
        confidence=0.9,
        queue="cards",
        priority=3,
        sentiment="neutral",
        sentiment_score=0.0,
        low_confidence=False,
        reasons=[],
        sent_at=at,
        scored_at=at,
    )
