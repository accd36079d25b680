"""Consumer lag per input partition, measured off the event loop for the metrics."""

from __future__ import annotations

import asyncio
import logging

from streams.edges.security import kafka_python_config
from streams.runtime.metrics import Metrics
from streams.settings import Settings

logger = logging.getLogger(__name__)


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
            bootstrap_servers=self.bootstrap,
            group_id=s.app_id,
            enable_auto_commit=False,
            **kafka_python_config(s),
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
