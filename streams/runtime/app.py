"""The worker's Faust app: topics, tables, agents and background tasks, wired to the cores.

It is handed its collaborators (settings, registry, metrics, feedback store) by the
composition root, :mod:`streams.compose`.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import faust

from models.pool import InferencePool
from models.registry import Registry
from retrain.store import FeedbackStore
from streams.core.intent_monitor import IntentParams
from streams.core.recommend import ActionCatalog
from streams.core.routing import RoutingTable
from streams.core.ticker_monitor import TickerParams
from streams.core.tickers import CompanyDictionary
from streams.edges.security import faust_credentials
from streams.edges.topics import TABLES, Replication
from streams.errors import ConfigurationError
from streams.runtime import connect_backoff, faust_guard, record_guard
from streams.runtime.agents import Collaborators, ModelSlot, Topics, make_news_scorer
from streams.runtime.delivery import send_now_for
from streams.runtime.drift_watch import DriftWatch
from streams.runtime.faults import Faults
from streams.runtime.inflight import PoisonGuard
from streams.runtime.lag import LagReporter
from streams.runtime.messages import make_message_scorer, make_router
from streams.runtime.metrics import Metrics
from streams.runtime.monitor_agents import make_intent_monitor, make_ticker_monitor
from streams.runtime.sinks import make_feedback_sink
from streams.runtime.swapper import ModelSwapper
from streams.settings import Settings

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
    "unsafe_text",
    "invalid_header",
    "invalid_key",
    "invalid_state",
    "event_time_in_future",
    "processing_error",
    "quarantined",
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
    )


def producer_compression(codec: str) -> str | None:
    """Faust's ``producer_compression_type`` for the setting; a codec whose library is
    missing is a configuration error here, not a producer failing at its first send."""
    if codec == "none":
        return None
    from aiokafka import codec as codecs

    if codec != "gzip" and not getattr(codecs, f"has_{codec}")():
        raise ConfigurationError(
            f"STREAMSENSE_PRODUCER_COMPRESSION={codec} needs the cramjam package "
            "(pip install cramjam), and every consumer of the outputs its codec"
        )
    return codec


def build_app(
    settings: Settings,
    bootstrap: str,
    registry: Registry,
    metrics: Metrics,
    store: FeedbackStore,
    replication: Replication,
) -> faust.App:
    """The worker's Faust app with every agent, table and background task registered."""
    faust_guard.install(
        on_reposition=lambda cause: metrics.consumer_repositions.labels(cause).inc()
    )
    for cause in faust_guard.REPOSITION_CAUSES:
        metrics.consumer_repositions.labels(cause)
    record_guard.install()
    connect_backoff.install(on_failure=metrics.broker_connect_failures.inc)
    datadir = settings.resolved_state_dir() / "faust" / f"{settings.app_id}-{os.getpid()}"
    datadir.parent.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        settings.app_id,
        broker=f"kafka://{bootstrap}",
        broker_credentials=faust_credentials(settings),
        store="memory://",
        datadir=str(datadir),
        web_enabled=False,
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=replication.factor,  # the tables' changelogs
        topic_disable_leader=True,
        producer_acks=-1,
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=1.0,
        producer_linger=settings.producer_linger_s,
        producer_compression_type=producer_compression(settings.producer_compression),
        # a crashed worker's partitions move on after 10 s, not Faust's default minute
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=min(3.0, settings.session_timeout_s / 3),
    )
    topics = build_topics(app, settings)
    slots = {
        task: ModelSlot(
            registry.load(task, threads=settings.session_threads(), row_loop=settings.int8_row_loop)
        )
        for task in TASKS
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
        inference=InferencePool(settings.parallel_calls()),
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
        monitor_batch_size=settings.monitor_batch_size,
        monitor_batch_max_wait_s=settings.monitor_batch_max_wait_s,
        metrics=metrics,
        store_executor=ThreadPoolExecutor(max_workers=1, thread_name_prefix="feedback-store"),
        max_tickers=settings.max_tickers_per_item,
        faults=Faults(settings.fault_injection),
        drift=DriftWatch(registry, metrics, settings.drift_window, settings.drift_min_items),
        poison=PoisonGuard.from_paths(
            settings.in_flight_dir, settings.quarantine_file, settings.poison_deaths
        ),
        route_in_scorer=settings.route_in_scorer,
        overlap_batches=settings.overlap_batches,
        record_predictions=store.record_predictions,
        record_shadow=store.record_shadow,
        latency_target_s=settings.latency_target_s,
        send_now=send_now_for(app),
    )
    partitions = settings.topic_partitions
    # keys are str, values plain JSON dicts (the cores' to_dict); the default JSON codec
    # writes and recovers them from the changelogs
    changelog = replication.topic_configs()
    history, tickers, intents = (
        app.Table(name, partitions=partitions, extra_topic_configs=changelog) for name in TABLES
    )

    def agent(topic: Any, name: str, fn: Any) -> None:
        app.agent(topic, name=name, concurrency=1)(fn)

    agent(topics.news_raw, "news-scorer", make_news_scorer(collab))
    agent(topics.messages_raw, "message-scorer", make_message_scorer(collab, history))
    agent(topics.messages_scored, "router", make_router(collab, history))
    agent(topics.news_scored, "ticker-monitor", make_ticker_monitor(collab, tickers))
    agent(topics.tickets_routed, "intent-monitor", make_intent_monitor(collab, intents))
    agent(topics.feedback, "feedback-sink", make_feedback_sink(collab, store, topics.feedback_dlq))

    swapper = ModelSwapper(settings, bootstrap, registry, slots, metrics)
    swapper.load_shadows()  # in shadow from the first batch, not from the swapper's first look
    app.task(swapper.run)
    lag = LagReporter(settings, bootstrap, metrics)
    app.task(lag.run)
    app.task(faust_guard.PositionWatch(lambda: app.consumer).run)
    return app
