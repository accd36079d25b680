"""The composition root: builds the Faust app, the models, the cores and the agents."""

from __future__ import annotations

import asyncio
import importlib.metadata
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import faust
from aiokafka import AIOKafkaConsumer, TopicPartition

from models.registry import Registry
from retrain.store import FeedbackStore
from streams import faust_guard
from streams.agents import (
    Collaborators,
    ModelSlot,
    Topics,
    make_intent_monitor,
    make_message_scorer,
    make_news_scorer,
    make_router,
    make_ticker_monitor,
)
from streams.errors import InvalidRecordError
from streams.intent_monitor import IntentParams
from streams.metrics import Metrics
from streams.recommend import ActionCatalog
from streams.records import ModelControl, decode
from streams.routing import RoutingTable
from streams.settings import Settings
from streams.sinks import make_feedback_sink, make_prediction_sink
from streams.ticker_monitor import TickerParams
from streams.tickers import CompanyDictionary

logger = logging.getLogger(__name__)

TASKS = ("sentiment", "intent")
ALERT_KINDS = ("sentiment_drop", "negative_burst", "complaint_spike")
DEAD_LETTER_REASONS = (
    "empty_value",
    "too_large",
    "invalid_utf8",
    "invalid_json",
    "not_an_object",
    "empty_text",
    "validation_error",
    "inference_error",
)


def _version() -> str:
    try:
        return importlib.metadata.version("streamsense")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _raw_topic(app: faust.App, name: str) -> Any:
    return app.topic(name, key_serializer="raw", value_serializer="raw")


def build_topics(app: faust.App, s: Settings) -> Topics:
    """Faust topic objects for every topic the agents read or write (raw bytes)."""
    return Topics(
        news_raw=_raw_topic(app, s.topic_news_raw),
        messages_raw=_raw_topic(app, s.topic_messages_raw),
        news_scored=_raw_topic(app, s.topic_news_scored),
        messages_scored=_raw_topic(app, s.topic_messages_scored),
        tickets_routed=_raw_topic(app, s.topic_tickets_routed),
        recommendations=_raw_topic(app, s.topic_recommendations),
        alerts=_raw_topic(app, s.topic_alerts),
        news_dlq=_raw_topic(app, s.dlq_topic(s.topic_news_raw)),
        messages_dlq=_raw_topic(app, s.dlq_topic(s.topic_messages_raw)),
        news_scored_dlq=_raw_topic(app, s.dlq_topic(s.topic_news_scored)),
        messages_scored_dlq=_raw_topic(app, s.dlq_topic(s.topic_messages_scored)),
        tickets_routed_dlq=_raw_topic(app, s.dlq_topic(s.topic_tickets_routed)),
        feedback=_raw_topic(app, s.topic_feedback),
        feedback_dlq=_raw_topic(app, s.dlq_topic(s.topic_feedback)),
        predictions=app.topic(
            s.topic_news_scored,
            s.topic_tickets_routed,
            key_serializer="raw",
            value_serializer="raw",
        ),
    )


class ModelSwapper:
    """Follows ``models.control`` and swaps a verified, warmed model into each slot.

    Every worker reads the control topic on its own (no consumer group), from its end:
    the registry's alias already told it the production version at start-up.
    """

    def __init__(
        self,
        settings: Settings,
        bootstrap: str,
        registry: Registry,
        slots: dict[str, ModelSlot],
        metrics: Metrics,
    ) -> None:
        self.metrics = metrics
        self.settings = settings
        self.bootstrap = bootstrap
        self.registry = registry
        self.slots = slots
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model-loader")

    def _load(self, task: str, version: str) -> Any:
        classifier = self.registry.load(task, version, threads=self.settings.inference_threads)
        classifier.warmup()
        return classifier

    async def apply(self, task: str, version: str) -> bool:
        """Load ``version`` of ``task`` beside the serving one, then swap; True if swapped."""
        slot = self.slots.get(task)
        if slot is None or slot.classifier.version == version:
            return False
        loop = asyncio.get_running_loop()
        try:
            classifier = await loop.run_in_executor(self.executor, self._load, task, version)
        except Exception:
            logger.exception(
                "could not load %s/%s; still serving %s", task, version, slot.classifier.version
            )
            return False
        old = slot.swap(classifier)
        self.metrics.model_info.labels(task, old.version).set(0)
        self.metrics.model_info.labels(task, version).set(1)
        self.metrics.swaps.labels(task).inc()
        logger.info("swapped %s: %s -> %s", task, old.version, version)
        return True

    async def run(self) -> None:
        """Consume ``models.control`` until cancelled."""
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False)
        await consumer.start()
        try:
            tp = TopicPartition(self.settings.topic_models_control, 0)
            consumer.assign([tp])
            await consumer.seek_to_end(tp)
            for task in self.slots:  # a promotion between start-up and now
                current = self.registry.production(task)
                if current:
                    await self.apply(task, current)
            while True:
                batches = await consumer.getmany(timeout_ms=1000)
                for messages in batches.values():
                    for message in messages:
                        await self._handle(message.value)
        finally:
            await consumer.stop()

    async def _handle(self, value: bytes | None) -> None:
        try:
            control = decode(ModelControl, value)
        except InvalidRecordError as exc:
            logger.warning("ignoring an invalid models.control record: %s", exc.reason)
            return
        await self.apply(control.task, control.version)


class LagReporter:
    """Exports the consumer group's lag per input partition (end offset - committed)."""

    def __init__(self, settings: Settings, bootstrap: str, metrics: Metrics) -> None:
        self.settings = settings
        self.bootstrap = bootstrap
        self.metrics = metrics

    def _measure(self) -> dict[tuple[str, int], int]:
        from kafka import KafkaConsumer
        from kafka import TopicPartition as KafkaTP

        s = self.settings
        consumer = KafkaConsumer(
            bootstrap_servers=self.bootstrap, group_id=s.app_id, enable_auto_commit=False
        )
        try:
            partitions = [
                KafkaTP(topic, p)
                for topic in (
                    s.topic_news_raw,
                    s.topic_messages_raw,
                    s.topic_news_scored,
                    s.topic_messages_scored,
                    s.topic_tickets_routed,
                )
                for p in sorted(consumer.partitions_for_topic(topic) or ())
            ]
            ends = consumer.end_offsets(partitions)
            return {
                (tp.topic, tp.partition): max(0, ends[tp] - (consumer.committed(tp) or 0))
                for tp in partitions
            }
        finally:
            consumer.close()

    async def run(self) -> None:
        """Measure every 10 seconds until cancelled."""
        loop = asyncio.get_running_loop()
        while True:
            try:
                lags = await loop.run_in_executor(None, self._measure)
            except Exception as exc:  # lag is best effort; the pipeline goes on
                logger.warning("could not measure consumer lag: %s", exc)
            else:
                for (topic, partition), lag in lags.items():
                    self.metrics.consumer_lag.labels(topic, str(partition)).set(lag)
            await asyncio.sleep(10)


def build_app(
    settings: Settings, bootstrap: str, registry: Registry, metrics: Metrics | None = None
) -> faust.App:
    """The worker's Faust app with every agent, table and background task registered."""
    metrics = metrics if metrics is not None else Metrics.create()
    faust_guard.install()
    datadir = settings.resolved_state_dir() / "faust" / f"{settings.app_id}-{os.getpid()}"
    datadir.parent.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        settings.app_id,
        broker=f"kafka://{bootstrap}",
        store="memory://",
        datadir=str(datadir),
        web_enabled=False,
        topic_partitions=settings.topic_partitions,
        topic_disable_leader=True,
        producer_acks=-1,
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=1.0,
        # a crashed worker's partitions move on after 10 s, not Faust's default minute
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=min(3.0, settings.session_timeout_s / 3),
    )
    topics = build_topics(app, settings)
    slots = {
        task: ModelSlot(registry.load(task, threads=settings.inference_threads)) for task in TASKS
    }
    metrics.prime(
        TASKS,
        [settings.topic_news_raw, settings.topic_messages_raw, settings.topic_feedback],
        DEAD_LETTER_REASONS,
        ALERT_KINDS,
        _version(),
    )
    for task, slot in slots.items():
        slot.classifier.warmup()
        metrics.model_info.labels(task, slot.classifier.version).set(1)
    config = settings.config_dir
    collab = Collaborators(
        topics=topics,
        sentiment=slots["sentiment"],
        intent=slots["intent"],
        executor=ThreadPoolExecutor(max_workers=1, thread_name_prefix="inference"),
        dictionary=CompanyDictionary.load(config / "companies.toml"),
        routing=RoutingTable.load(config / "routing.toml"),
        actions=ActionCatalog.load(config / "actions.toml"),
        ticker_params=TickerParams(
            drop_threshold=settings.alert_drop_threshold,
            min_volume=settings.alert_min_volume,
            burst_min_count=settings.alert_burst_min_count,
            cooldown=timedelta(seconds=settings.alert_cooldown_s),
        ),
        intent_params=IntentParams(
            min_count=settings.spike_min_count,
            factor=settings.spike_factor,
            cooldown=timedelta(seconds=settings.alert_cooldown_s),
        ),
        max_record_bytes=settings.max_record_bytes,
        batch_size=settings.batch_size,
        batch_max_wait_s=settings.batch_max_wait_s,
        metrics=metrics,
        store_executor=ThreadPoolExecutor(max_workers=1, thread_name_prefix="feedback-store"),
    )
    partitions = settings.topic_partitions
    # keys are str, values plain JSON dicts (the cores' to_dict); the default JSON codec
    # writes and recovers them from the changelogs
    history = app.Table("customer-history", partitions=partitions)
    tickers = app.Table("ticker-state", partitions=partitions)
    intents = app.Table("intent-state", partitions=partitions)

    def agent(topic: Any, name: str, fn: Any) -> None:
        app.agent(topic, name=name, concurrency=1)(fn)

    agent(topics.news_raw, "news-scorer", make_news_scorer(collab))
    agent(topics.messages_raw, "message-scorer", make_message_scorer(collab))
    agent(topics.messages_scored, "router", make_router(collab, history))
    agent(topics.news_scored, "ticker-monitor", make_ticker_monitor(collab, tickers))
    agent(topics.tickets_routed, "intent-monitor", make_intent_monitor(collab, intents))
    store = FeedbackStore.open(settings.feedback_db_url)
    agent(
        topics.predictions,
        "prediction-sink",
        make_prediction_sink(
            collab, store, settings.topic_news_scored, settings.topic_tickets_routed
        ),
    )
    agent(topics.feedback, "feedback-sink", make_feedback_sink(collab, store, topics.feedback_dlq))

    swapper = ModelSwapper(settings, bootstrap, registry, slots, metrics)
    app.task(swapper.run)
    lag = LagReporter(settings, bootstrap, metrics)
    app.task(lag.run)
    return app
