"""The composition root: builds a worker's collaborators from its settings, in one place.

Settings come from the environment once; from them the Kafka bootstrap, the topics, the
model registry, the metrics, the feedback store, the Faust app and its event-loop heartbeat
are built here and passed in, so nothing below this module reads the environment or builds
its own.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from models.registry import Registry
from retrain.store import FeedbackStore
from streams.edges.bootstrap import resolve_bootstrap
from streams.edges.topics import cluster_replication, ensure_topics
from streams.errors import ConfigurationError, LocalFeedbackStoreError
from streams.runtime.app import build_app
from streams.runtime.liveness import HEALTH_PATH, Heartbeat, serve
from streams.runtime.metrics import Metrics
from streams.settings import Settings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorkerParts:
    """Everything one worker process runs with."""

    settings: Settings
    bootstrap: str
    registry: Registry
    metrics: Metrics
    store: FeedbackStore
    app: Any  # faust.App (faust ships no type information)
    heartbeat: Heartbeat


def require_shared_store(settings: Settings) -> None:
    """Refuse a SQLite feedback store when ``STREAMSENSE_REQUIRE_SHARED_STORE`` is set.

    Where workers and the scheduler run on several machines (Kubernetes), a SQLite file is
    private to one pod: each worker would keep its own feedback and the scheduler would
    retrain on none of it.
    """
    if settings.require_shared_store and settings.feedback_db_url.startswith("sqlite:"):
        raise LocalFeedbackStoreError(
            "STREAMSENSE_REQUIRE_SHARED_STORE is true but STREAMSENSE_FEEDBACK_DB_URL names a "
            "SQLite file, which only this machine sees (each worker would keep its own feedback "
            "and the scheduler would retrain on none of it); set STREAMSENSE_FEEDBACK_DB_URL to "
            "a postgresql:// URL (in Kubernetes: the Secret streamsense-feedback-db, key url), "
            "or set STREAMSENSE_REQUIRE_SHARED_STORE=false when every process runs on one machine"
        )


def compose_worker(settings: Settings) -> WorkerParts:
    """Build a worker: cluster, topics, registry, metrics, store, the Faust app and the
    heartbeat its event loop stamps (a task of the app, exported as a metric).

    Raises a :class:`streamsense.errors.StreamsenseError` (one clear line at the CLI)
    when the shared-store rule refuses the feedback store, no production model is
    registered or the feedback store cannot be opened.
    """
    require_shared_store(settings)
    bootstrap = resolve_bootstrap(settings)
    replication = cluster_replication(settings, bootstrap)  # once: topics and changelogs
    ensure_topics(settings, bootstrap, replication=replication)
    registry = Registry(settings.registry_dir)
    metrics = Metrics.create()
    store = FeedbackStore.open(settings.feedback_db_url)
    app = build_app(settings, bootstrap, registry, metrics, store, replication)
    heartbeat = Heartbeat(settings.liveness_max_age_s)
    app.task(heartbeat.run)
    metrics.event_loop_heartbeat_age.set_function(heartbeat.age_s)
    return WorkerParts(settings, bootstrap, registry, metrics, store, app, heartbeat)


def serve_metrics(settings: Settings, metrics: Metrics, heartbeat: Heartbeat) -> None:
    """Serve ``/metrics`` for Prometheus and ``/healthz`` (the event loop's liveness) on the
    configured host and port."""
    try:
        serve(settings.metrics_host, settings.metrics_port, metrics.registry, heartbeat)
    except OSError as exc:
        raise ConfigurationError(
            f"cannot serve metrics on {settings.metrics_host}:{settings.metrics_port} ({exc}); "
            "give each worker on a machine its own STREAMSENSE_METRICS_PORT"
        ) from exc
    where = f"http://{settings.metrics_host}:{settings.metrics_port}"
    logger.info("metrics on %s/metrics, liveness on %s%s", where, where, HEALTH_PATH)


def run_worker(settings: Settings) -> None:
    """Run one Faust worker of the pipeline in this process until stopped."""
    from streams.runtime import worker

    parts = compose_worker(settings)
    serve_metrics(settings, parts.metrics, parts.heartbeat)
    logger.debug(
        "worker composed: app %s, %d partitions per topic, batch %d within %.3f s",
        settings.app_id,
        settings.topic_partitions,
        settings.batch_size,
        settings.batch_max_wait_s,
    )
    worker.run(parts.app, settings.log_level, settings.shutdown_timeout_s)
