"""The composition root: builds a worker's collaborators from its settings, in one place.

Settings come from the environment once; from them the Kafka bootstrap, the topics, the
model registry, the metrics, the feedback store and the Faust app are built here and
passed in, so nothing below this module reads the environment or builds its own.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from models.registry import Registry
from retrain.store import FeedbackStore
from streams.edges.bootstrap import resolve_bootstrap
from streams.edges.topics import ensure_topics
from streams.errors import ConfigurationError
from streams.runtime.app import build_app
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


def compose_worker(settings: Settings) -> WorkerParts:
    """Build a worker: cluster, topics, registry, metrics, store and the Faust app.

    Raises a :class:`streamsense.errors.StreamsenseError` (one clear line at the CLI)
    when no production model is registered or the feedback store cannot be opened.
    """
    bootstrap = resolve_bootstrap(settings)
    ensure_topics(settings, bootstrap)
    registry = Registry(settings.registry_dir)
    metrics = Metrics.create()
    store = FeedbackStore.open(settings.feedback_db_url)
    app = build_app(settings, bootstrap, registry, metrics, store)
    return WorkerParts(settings, bootstrap, registry, metrics, store, app)


def serve_metrics(settings: Settings, metrics: Metrics) -> None:
    """Serve ``/metrics`` for Prometheus on the configured host and port."""
    from prometheus_client import start_http_server

    try:
        start_http_server(settings.metrics_port, settings.metrics_host, registry=metrics.registry)
    except OSError as exc:
        raise ConfigurationError(
            f"cannot serve metrics on {settings.metrics_host}:{settings.metrics_port} ({exc}); "
            "give each worker on a machine its own STREAMSENSE_METRICS_PORT"
        ) from exc
    logger.info("metrics on http://%s:%s/metrics", settings.metrics_host, settings.metrics_port)


def run_worker(settings: Settings) -> None:
    """Run one Faust worker of the pipeline in this process until stopped."""
    from faust.worker import Worker

    parts = compose_worker(settings)
    serve_metrics(settings, parts.metrics)
    worker = Worker(parts.app, loglevel=settings.log_level, quiet=True, redirect_stdouts=False)
    worker.execute_from_commandline()
