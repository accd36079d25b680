"""Consumer lag per input partition, measured off the event loop for the metrics."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from streams.edges.security import kafka_python_config
from streams.runtime.metrics import Metrics
from streams.settings import Settings

logger = logging.getLogger(__name__)


def committed_lag(
    bootstrap: str, security: Mapping[str, Any], group: str, topics: Sequence[str]
) -> dict[tuple[str, int], int]:
    """Records of each partition of ``topics`` that consumer group ``group`` has not
    committed yet (end offset - committed offset), read without joining the group."""
    from kafka import KafkaConsumer
    from kafka import TopicPartition as KafkaTP

    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False, **security
    )
    try:
        partitions = [
            KafkaTP(topic, p)
            for topic in topics
            for p in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        ends = consumer.end_offsets(partitions)
        return {
            (tp.topic, tp.partition): max(0, ends[tp] - (consumer.committed(tp) or 0))
            for tp in partitions
        }
    finally:
        consumer.close()


class LagReporter:
    """Exports the consumer group's lag per partition of every topic its agents consume."""

    def __init__(self, settings: Settings, bootstrap: str, metrics: Metrics) -> None:
        self.settings = settings
        self.bootstrap = bootstrap
        self.metrics = metrics

    def _measure(self) -> dict[tuple[str, int], int]:
        s = self.settings
        return committed_lag(self.bootstrap, kafka_python_config(s), s.app_id, s.consumed_topics())

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
