"""The Faust agents' shared wiring, and the news scorer.

Every agent takes micro-batches with ``noack_take`` and acknowledges a batch only after
every output (and dead letter) of it is confirmed by the broker, in one confirm per batch.
The stateful agents (message scorer and router: :mod:`streams.runtime.messages`; monitors:
:mod:`streams.runtime.monitors`) keep their state in Faust tables keyed like their input and
write the batch's rows only after the outputs those rows would suppress are confirmed
(:mod:`streams.runtime.tables`).

Every consumed record's key, headers and value are untrusted bytes. Each agent splits its
work into pure steps over the record (decode, validate, read the table row, compute,
encode), run through :func:`streams.runtime.intake.attempt` so that any exception there
becomes a dead letter with its reason, and I/O (sends, confirms, table writes, store
writes), whose failures exit the worker (crash-only): a restart re-reads from the last
committed offset.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from pydantic import BaseModel

from models.pool import InferencePool
from models.prediction import Prediction
from models.runtime import Classifier
from retrain.rows import ShadowRow
from streams.core.batching import BatchController
from streams.core.intent_monitor import IntentParams
from streams.core.recommend import ActionCatalog
from streams.core.records import NewsItem, ScoredNews, encode
from streams.core.routing import RoutingTable
from streams.core.scoring import DEFAULT_MAX_TICKERS, news_text, score_news_item
from streams.core.shadow import ShadowTally
from streams.core.ticker_monitor import TickerParams
from streams.core.tickers import CompanyDictionary
from streams.errors import InvalidRecordError
from streams.runtime.batches import adaptive_batches
from streams.runtime.delivery import Outbox, send_dead_letter
from streams.runtime.drift_watch import DriftWatch
from streams.runtime.faults import Faults, segfault_if_marked
from streams.runtime.inflight import PoisonGuard, record_ref
from streams.runtime.intake import attempt, read_record
from streams.runtime.metrics import BatchClock, Metrics
from streams.runtime.served import Record, confirmed_and_stored, news_prediction

logger = logging.getLogger(__name__)

T = TypeVar("T", bound=BaseModel)
FATAL_EXIT = 70


class ModelSlot:
    """The classifier serving one task. A swap is one reference assignment between batches.

    ``shadow`` is the candidate the registry's shadow alias names, if any: it scores every
    batch beside ``classifier`` and is never served (``tally`` compares the two).
    """

    def __init__(self, classifier: Classifier) -> None:
        self.classifier = classifier
        self.swaps = 0
        self.shadow: Classifier | None = None
        self.tally = ShadowTally()

    def swap(self, classifier: Classifier) -> Classifier:
        """Serve ``classifier`` from the next batch on; return the one it replaces."""
        old, self.classifier = self.classifier, classifier
        self.swaps += 1
        return old

    def set_shadow(self, classifier: Classifier | None) -> Classifier | None:
        """Score ``classifier`` in shadow from the next batch on (None: end the shadow);
        the comparison starts afresh. Returns the shadow it replaces."""
        old, self.shadow = self.shadow, classifier
        self.tally = ShadowTally()
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


@dataclass
class Collaborators:
    """Everything the agents need besides Faust itself."""

    topics: Topics
    sentiment: ModelSlot
    intent: ModelSlot
    inference: InferencePool
    """Runs the batches' model calls in parallel (:mod:`models.pool`)."""
    dictionary: CompanyDictionary
    routing: RoutingTable
    actions: ActionCatalog
    ticker_params: TickerParams
    intent_params: IntentParams
    max_record_bytes: int
    batch_size: int
    batch_max_wait_s: float
    monitor_batch_size: int
    monitor_batch_max_wait_s: float
    """The monitors' batches: larger and rarer than the scorers' (fewer state rows written)."""
    metrics: Metrics
    store_executor: Executor
    max_tickers: int = DEFAULT_MAX_TICKERS
    faults: Faults = field(default_factory=Faults)
    """Test-only fault points (none armed in production)."""
    drift: DriftWatch | None = None
    """The served traffic's drift against each version's reference (None: not measured)."""
    poison: PoisonGuard = field(default_factory=PoisonGuard)
    """In-flight notes and the quarantine of ``worker --supervise`` (inert without it)."""
    latency_target_s: float = 0.0
    """Close batches adaptively for this produce-to-output latency (0: fixed size and wait)."""
    overlap_batches: bool = False
    """After a scorer batch that was not full, take and score the next batch while that one
    emits and confirms (:func:`batched`; not with a latency target)."""
    route_in_scorer: bool = True
    """Route customer messages keyed by their customer id inside the scorer's batch
    (otherwise every scored message goes through ``messages.scored`` and the router)."""
    record_predictions: Record | None = None
    """Keeps the predictions served, for online accuracy and the drift score (called on
    ``store_executor`` before a batch is acknowledged; None: not kept)."""
    send_now: Callable[[], None] | None = None
    """Makes the producer send what it holds now (:func:`~streams.runtime.delivery.send_now_for`):
    called when a batch waits for its confirms (None: the records wait out the linger)."""
    record_shadow: Callable[[list[ShadowRow]], None] | None = None
    """Keeps what a version in shadow predicted, for its online accuracy once labels come
    (called on ``store_executor``; None: only agreement and confidence are counted)."""

    def slot(self, task: str) -> ModelSlot | None:
        """The slot serving ``task`` (None for a task this worker does not serve)."""
        return {"sentiment": self.sentiment, "intent": self.intent}.get(task)


def utcnow() -> datetime:
    return datetime.now(UTC)


async def decode_batch(
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


async def _predict(
    c: Collaborators, classifiers: Sequence[Classifier], texts: list[str]
) -> list[list[Prediction]]:
    """Every classifier's predictions of ``texts`` (one list each), their calls run in
    parallel on the inference pool; each task's inference time is the batch's."""
    started = time.perf_counter()
    columns = await c.inference.predict_async(classifiers, texts)
    elapsed = time.perf_counter() - started
    for classifier, preds in zip(classifiers, columns, strict=True):
        c.metrics.inference_seconds.labels(classifier.task).observe(elapsed)
        for pred in preds:
            c.metrics.predictions.labels(classifier.task, pred.label).inc()
            c.metrics.confidence.labels(classifier.task).observe(pred.confidence)
        if c.drift is not None:
            c.drift.observe(classifier, texts, preds)
    return columns


def observe_latency(c: Collaborators, topic: str, event_time: datetime) -> None:
    """Observe the time from an output's event time to now (it was just confirmed)."""
    c.metrics.end_to_end_seconds.labels(topic).observe(
        max(0.0, (utcnow() - event_time).total_seconds())
    )


async def score_batch(
    c: Collaborators,
    classifiers: Sequence[Classifier],
    pairs: list[tuple[Any, T]],
    text_of: Callable[[T], str],
    outbox: Outbox,
    dlq: Any,
) -> tuple[list[tuple[Any, T]], list[list[Prediction]]]:
    """Score a batch with every classifier (one call each).

    If a batch call fails, the batch is scored item by item and an item that still fails
    becomes a dead letter; the others go on. Under ``worker --supervise`` a quarantined
    record becomes a dead letter unscored, and a suspect (in flight when a worker died) is
    scored in a call of its own (:mod:`streams.runtime.inflight`). Returns the kept pairs
    and, per classifier, their predictions in order.
    """
    guard = c.poison
    if guard.active:
        pairs = await _drop_quarantined(guard, pairs, outbox, dlq)
    refs = [record_ref(event.message) for event, _ in pairs] if guard.active else []
    groups = guard.quarantine.groups(refs) if refs else [list(range(len(pairs)))]
    if len(groups) == 1:
        return await _score_group(c, classifiers, pairs, refs, text_of, outbox, dlq)
    rows: dict[int, list[Prediction]] = {}
    for group in groups:
        sub = [pairs[i] for i in group]
        kept, columns = await _score_group(
            c, classifiers, sub, [refs[i] for i in group], text_of, outbox, dlq
        )
        where = {id(pair): i for pair, i in zip(sub, group, strict=True)}
        for n, pair in enumerate(kept):
            rows[where[id(pair)]] = [column[n] for column in columns]
    order = sorted(rows)  # the batch's own order: outputs of one key stay in sequence
    return [pairs[i] for i in order], [[rows[i][m] for i in order] for m in range(len(classifiers))]


async def _drop_quarantined(
    guard: PoisonGuard, pairs: list[tuple[Any, T]], outbox: Outbox, dlq: Any
) -> list[tuple[Any, T]]:
    kept = []
    for event, record in pairs:
        if guard.quarantine.is_quarantined(record_ref(event.message)):
            error = InvalidRecordError(
                "quarantined", f"in flight alone at {guard.deaths} worker deaths"
            )
            await send_dead_letter(outbox, dlq, event.message, error)
        else:
            kept.append((event, record))
    return kept


async def _score_group(
    c: Collaborators,
    classifiers: Sequence[Classifier],
    pairs: list[tuple[Any, T]],
    refs: list[tuple[str, int, int]],
    text_of: Callable[[T], str],
    outbox: Outbox,
    dlq: Any,
) -> tuple[list[tuple[Any, T]], list[list[Prediction]]]:
    texts = [text_of(r) for _, r in pairs]
    agent = "+".join(m.task for m in classifiers)
    with c.poison.in_flight.working_on(agent, refs):
        if c.faults.point:
            segfault_if_marked(c.faults, texts)
        try:
            batch = await _predict(c, classifiers, texts)
        except Exception:
            logger.exception("batch inference failed; retrying item by item")
        else:
            for model, preds in zip(classifiers, batch, strict=True):
                await _score_in_shadow(c, model, pairs, texts, preds)
            return pairs, batch
        kept: list[tuple[Any, T]] = []
        columns: list[list[Prediction]] = [[] for _ in classifiers]
        for (event, record), text in zip(pairs, texts, strict=True):
            try:
                row = [column[0] for column in await _predict(c, classifiers, [text])]
            except Exception as exc:
                versions = ",".join(m.version for m in classifiers)
                error = InvalidRecordError("inference_error", f"{versions}: {type(exc).__name__}")
                await send_dead_letter(outbox, dlq, event.message, error)
                continue
            kept.append((event, record))
            for column, pred in zip(columns, row, strict=True):
                column.append(pred)
        return kept, columns


async def _score_in_shadow(
    c: Collaborators,
    production: Classifier,
    pairs: list[tuple[Any, Any]],
    texts: list[str],
    preds: list[Prediction],
) -> None:
    """Score a batch production just scored with the task's shadow version, if any, and
    count how the two compare. The shadow's output is never served: the two labels of each
    item go to the feedback store in the background (judged when the item's label comes),
    and a shadow that fails is dropped (the swapper loads it again on its next look) while
    production goes on."""
    slot = c.slot(production.task)
    shadow = slot.shadow if slot is not None else None
    if slot is None or shadow is None or shadow.version == production.version:
        return
    loop = asyncio.get_running_loop()
    try:
        (shadow_preds,) = await c.inference.predict_async([shadow], texts)
    except Exception as exc:
        if slot.shadow is shadow:
            slot.set_shadow(None)
        logger.error(
            "shadow %s/%s failed on a batch (%s); scoring without it until it is reloaded",
            shadow.task,
            shadow.version,
            type(exc).__name__,
        )
        return
    batch = slot.tally.add(preds, shadow_preds)
    c.metrics.record_shadow(
        production.task, batch.items, batch.agreements, slot.tally.confidence_shift()
    )
    if c.record_shadow is not None:
        now = datetime.now(UTC)
        rows = [
            ShadowRow(r.id, shadow.task, shadow.version, s.label, production.version, p.label, now)
            for (_, r), p, s in zip(pairs, preds, shadow_preds, strict=True)
        ]
        # not awaited: a lost write is a statistic lost, never a record
        write = loop.run_in_executor(c.store_executor, c.record_shadow, rows)
        write.add_done_callback(_log_failed_shadow_write)


def _log_failed_shadow_write(write: asyncio.Future[None]) -> None:
    if not write.cancelled() and write.exception() is not None:
        logger.warning("shadow predictions not stored: %r", write.exception())


def fatal(agent: str, exc: BaseException) -> None:
    """Stop the process at once, committing nothing more: a restart re-reads from the last
    committed offset, so nothing is lost (crash-only, as the kill tests prove)."""
    logger.critical("agent %s failed (%s); exiting so that a restart redelivers", agent, exc)
    logging.shutdown()
    os._exit(FATAL_EXIT)


Agent = Callable[[Any], Awaitable[None]]


def batched(
    name: str,
    c: Collaborators,
    handle: Callable[..., Awaitable[None]],
    *,
    scorer: bool = False,
    monitor: bool = False,
) -> Agent:
    """An agent that hands micro-batches to ``handle`` and acks each batch after it.

    A ``scorer`` (an agent on the produce-to-output path) closes its batches as a
    :class:`BatchController` plans when a latency target is set (at most ``batch_size``
    records), and its ``handle`` gets the batch's
    :class:`~streams.runtime.metrics.BatchClock` too, to time its own phases between the
    ``wait`` and the ``ack`` timed here; a ``monitor`` closes its batches at
    ``monitor_batch_size`` or every ``monitor_batch_max_wait_s``; the others (and the
    scorers without a target), at ``batch_size`` or every ``batch_max_wait_s``.
    """
    size, wait = (
        (c.monitor_batch_size, c.monitor_batch_max_wait_s)
        if monitor
        else (c.batch_size, c.batch_max_wait_s)
    )

    async def agent(stream: Any) -> None:
        controller = BatchController(c.latency_target_s or wait, size)
        if scorer and c.latency_target_s > 0:
            batches = adaptive_batches(stream, controller)
        else:
            batches = stream.noack_take(size, within=wait)
        clock = c.metrics.batch_clock(name)
        overlap = scorer and c.overlap_batches and not c.latency_target_s
        # a scorer's last two batches: at most one emits while the next one is scored
        older: asyncio.Task[None] | None = None
        previous: asyncio.Task[None] | None = None
        try:
            async for events in batches:
                c.metrics.batch_size.labels(name).observe(len(events))
                for event in events:
                    c.metrics.records_in.labels(event.message.topic).inc()
                if scorer:
                    if older is not None and not older.done():
                        # the last batch still waits for its turn: no third batch in flight
                        await asyncio.wait({older})
                    clock.lap("wait")
                    older, previous = (
                        previous,
                        await _scorer_batch(
                            name,
                            c,
                            handle,
                            stream,
                            events,
                            previous,
                            controller,
                            overlap=overlap and len(events) < size,
                        ),
                    )
                    clock.restart()  # the next batch's wait starts now
                    continue
                try:
                    await handle(events)
                except Exception as exc:
                    fatal(name, exc)
                for event in events:
                    await stream.ack(event)
            if previous is not None:
                await previous
        finally:
            for task in (older, previous):  # stopping: their records are not acknowledged
                if task is not None and not task.done():
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task

    agent.__name__ = agent.__qualname__ = name.replace("-", "_")
    return agent


Turn = Callable[[], Awaitable[None]]
"""What a scorer's ``handle`` awaits once its batch is scored, before it emits anything: the
batch before it has emitted, confirmed and acknowledged."""


async def _scorer_batch(
    name: str,
    c: Collaborators,
    handle: Callable[[Sequence[Any], BatchClock, Turn], Awaitable[None]],
    stream: Any,
    events: Sequence[Any],
    previous: asyncio.Task[None] | None,
    controller: BatchController,
    *,
    overlap: bool,
) -> asyncio.Task[None]:
    """Run one scorer batch in a task of its own; return the task once the batch is done, or
    (``overlap``) once it is scored, so that the next batch is taken and scored while this
    one emits and confirms.

    Order is kept all the same: a batch emits only after the batch before it (``previous``)
    has confirmed its outputs, written its state rows and acknowledged its records (its
    ``turn``), so outputs of one key, the customers' histories and the committed offsets go
    in batch order as when batches run one at a time; the model calls of two batches never
    run together, and the agent takes no third batch while the last one waits for its turn
    (a slow broker holds the input back as before). A full batch means a backlog: the next
    one is taken when it is done (two batches' work side by side only slowed a backlog
    down, measured in the README).
    """
    clock = c.metrics.batch_clock(name)
    scored = asyncio.Event()

    async def turn() -> None:
        if scored.is_set():  # the handle's turn came already
            return
        scored.set()
        if previous is not None:
            await previous
        clock.lap("turn")

    async def run() -> None:
        started = time.perf_counter()
        try:
            await handle(events, clock, turn)
            await turn()  # a batch that emitted nothing (all dead letters) acks in order too
            controller.observe_batch(len(events), time.perf_counter() - started)
            for event in events:
                await stream.ack(event)
        except Exception as exc:  # an ack that fails too: no task may fail unseen
            fatal(name, exc)
        finally:
            scored.set()  # a batch that failed (only where fatal returns: tests) is done too
        clock.lap("ack")

    task = asyncio.ensure_future(run())
    try:
        await (scored.wait() if overlap else task)
    except asyncio.CancelledError:
        task.cancel()  # the agent stops: so does its batch, unacknowledged
        raise
    return task


def make_news_scorer(c: Collaborators) -> Agent:
    """news.raw → news.scored (one record per item and ticker, key ticker)."""
    t = c.topics

    async def handle(events: Sequence[Any], clock: BatchClock, turn: Turn) -> None:
        outbox = Outbox(c.metrics, c.send_now)
        pairs = await decode_batch(events, NewsItem, outbox, t.news_dlq, c.max_record_bytes)
        clock.lap("decode")
        if pairs:
            classifier = c.sentiment.classifier
            pairs, (preds,) = await score_batch(
                c, [classifier], pairs, news_text, outbox, t.news_dlq
            )
            clock.lap("inference")
            await turn()
            now = utcnow()
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
            clock.lap("emit")
            await confirmed_and_stored(
                outbox.confirm(),
                c.record_predictions,
                c.store_executor,
                [news_prediction(record) for record in scored],
            )
            for record in scored:
                observe_latency(c, t.news_scored.get_topic_name(), record.published_at)
        await outbox.confirm()
        clock.lap("confirm")

    return batched("news-scorer", c, handle, scorer=True)
