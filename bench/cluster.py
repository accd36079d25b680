"""The Kafka cluster the bench runs against: the configured one, else a private local broker."""

from __future__ import annotations

import contextlib
import logging
import tempfile
from collections.abc import Iterator
from pathlib import Path

from deploy.broker import LocalBroker, broker_answers, fetch_jars
from streams.edges.security import kafka_python_config
from streams.settings import Settings
from streamsense.errors import StreamsenseError

logger = logging.getLogger(__name__)


class BenchError(StreamsenseError):
    """The bench could not set up or complete a measurement."""


@contextlib.contextmanager
def kafka_cluster(settings: Settings) -> Iterator[tuple[str, str]]:
    """Yield (bootstrap, how it was obtained); a local broker started here is stopped after."""
    if settings.kafka_bootstrap:
        if not broker_answers(
            settings.kafka_bootstrap, timeout_s=10, client_config=kafka_python_config(settings)
        ):
            raise BenchError(
                f"STREAMSENSE_KAFKA_BOOTSTRAP={settings.kafka_bootstrap} does not answer"
            )
        yield settings.kafka_bootstrap, "configured (STREAMSENSE_KAFKA_BOOTSTRAP)"
        return
    with tempfile.TemporaryDirectory(prefix="streamsense-bench-kafka-") as state:
        broker = LocalBroker(Path(state), fetch_jars(settings.kafka_version, settings.cache_dir))
        info = broker.start()
        logger.info("local Kafka broker for the bench on %s (pid %s)", info.bootstrap, info.pid)
        try:
            yield (
                info.bootstrap,
                f"local Apache Kafka {settings.kafka_version}, started by the bench",
            )
        finally:
            broker.stop()
