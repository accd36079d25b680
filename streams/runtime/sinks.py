"""Sink agents: served predictions and labelled feedback into the feedback store.

The store joins each label to the prediction it corrects (online accuracy) and keeps the
labels, with their text, for the retrain job. Writes run on an executor thread.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from retrain.store import FeedbackRow, FeedbackStore, Judged, PredictionRow
from streams.core.records import Feedback, RoutedTicket, ScoredNews, decode
from streams.errors import InvalidRecordError
from streams.runtime.agents import Agent, Collaborators, batched
from streams.runtime.delivery import Outbox, send_dead_letter
from streams.runtime.intake import read_record

logger = logging.getLogger(__name__)


def prediction_rows(
    events: Sequence[Any], news_topic: str, tickets_topic: str
) -> list[PredictionRow]:
    """The predictions carried by a batch of news.scored and tickets.routed records.

    A record that cannot be read is skipped here: the monitor that consumes the same topic
    dead-letters it.
    """
    rows: list[PredictionRow] = []
    for event in events:
        message = event.message
        try:
            if message.topic == news_topic:
                news = decode(ScoredNews, message.value)
                rows.append(
                    PredictionRow(
                        news.id,
                        "sentiment",
                        news.model_version,
                        news.label,
                        news.probs.get(news.label, 0.0),
                        news.scored_at,
                    )
                )
            elif message.topic == tickets_topic:
                ticket = decode(RoutedTicket, message.value)
                rows.append(
                    PredictionRow(
                        ticket.id,
                        "intent",
                        ticket.model_version,
                        ticket.intent,
                        ticket.confidence,
                        ticket.scored_at,
                    )
                )
        except Exception as exc:  # the record's fault: its monitor dead-letters it
            logger.debug(
                "prediction sink skips %s[%s]@%s (%s)",
                message.topic,
                message.partition,
                message.offset,
                type(exc).__name__,
            )
    return rows


def make_prediction_sink(
    c: Collaborators, store: FeedbackStore, news_topic: str, tickets_topic: str
) -> Agent:
    """news.scored + tickets.routed → the store's served predictions (upsert by item)."""

    async def handle(events: Sequence[Any]) -> None:
        rows = prediction_rows(events, news_topic, tickets_topic)
        if rows:
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(c.store_executor, store.record_predictions, rows)

    return batched("prediction-sink", c, handle)


def make_feedback_sink(c: Collaborators, store: FeedbackStore, dlq: Any) -> Agent:
    """feedback → the store; updates online accuracy when a label meets its prediction."""
    m = c.metrics

    def write(feedback: list[Feedback]) -> list[tuple[str, Judged | None, float | None]]:
        out: list[tuple[str, Judged | None, float | None]] = []
        for fb in feedback:
            judged = store.add_feedback(
                FeedbackRow(
                    fb.item_id,
                    fb.task,
                    fb.label,
                    fb.annotator,
                    fb.at,
                    fb.text,
                    fb.model_version,
                    fb.predicted_label,
                )
            )
            out.append((fb.task, judged, store.online_accuracy(fb.task) if judged else None))
        return out

    async def handle(events: Sequence[Any]) -> None:
        outbox = Outbox(m)
        valid: list[Feedback] = []
        for event in events:
            try:
                valid.append(read_record(event.message, Feedback, c.max_record_bytes))
            except InvalidRecordError as exc:
                await send_dead_letter(outbox, dlq, event.message, exc)
        await outbox.confirm()
        if not valid:
            return
        loop = asyncio.get_running_loop()
        for task, judged, accuracy in await loop.run_in_executor(c.store_executor, write, valid):
            m.feedback.labels(task).inc()
            if judged is not None:
                for production_right, shadow_right in judged.shadow:
                    m.record_shadow_judged(task, production_right, shadow_right)
                m.online_total.labels(task).inc()
                if judged.correct:
                    m.online_correct.labels(task).inc()
            if accuracy is not None:
                m.online_accuracy.labels(task).set(accuracy)
        logger.debug("stored %d feedback labels at %s", len(valid), datetime.now(UTC))

    return batched("feedback-sink", c, handle)
