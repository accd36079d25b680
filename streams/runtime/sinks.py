"""The feedback sink: labelled feedback into the feedback store.

The store joins each label to the prediction it corrects (online accuracy: the scorers
write the served predictions, :mod:`streams.runtime.served`) and keeps the labels, with
their text, for the retrain job. Writes run on an executor thread.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from retrain.store import FeedbackRow, FeedbackStore, Judged
from streams.core.records import Feedback
from streams.errors import InvalidRecordError
from streams.runtime.agents import Agent, Collaborators, batched
from streams.runtime.delivery import Outbox, send_dead_letter
from streams.runtime.intake import read_record

logger = logging.getLogger(__name__)


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
