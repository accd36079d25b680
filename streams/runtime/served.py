"""The served predictions: each scorer batch writes its own to the feedback store.

The store joins a label to the prediction it corrects (online accuracy, the drift score).
The batch that produced a prediction writes it, beside the confirm of its outputs and before
its input is acknowledged: a crash in between redelivers the input, and the upsert (by item
and task) takes the same prediction again. A separate sink consuming ``news.scored`` and
``tickets.routed`` did this before, at the cost of reading each of those records once more.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Executor

from retrain.rows import PredictionRow
from streams.core.records import RoutedTicket, ScoredNews

Record = Callable[[Sequence[PredictionRow]], None]
"""The store's ``record_predictions``."""


def news_prediction(news: ScoredNews) -> PredictionRow:
    """The sentiment served for a news item."""
    return PredictionRow(
        news.id,
        "sentiment",
        news.model_version,
        news.label,
        news.probs.get(news.label, 0.0),
        news.scored_at,
    )


def ticket_prediction(ticket: RoutedTicket) -> PredictionRow:
    """The intent served for a customer message."""
    return PredictionRow(
        ticket.id,
        "intent",
        ticket.model_version,
        ticket.intent,
        ticket.confidence,
        ticket.scored_at,
    )


async def confirmed_and_stored(
    confirm: Awaitable[object],
    record: Record | None,
    executor: Executor,
    rows: Sequence[PredictionRow],
) -> None:
    """Await ``confirm`` (the batch's outputs) and the store write of ``rows`` together;
    raise the first failure once both have ended (nothing left running)."""
    if record is None or not rows:
        await confirm
        return
    write = asyncio.get_running_loop().run_in_executor(executor, record, rows)
    results = await asyncio.gather(confirm, write, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
