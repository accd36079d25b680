"""Hot swap: follow ``models.control`` and swap a verified, warmed model between batches."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from models.registry import Registry
from streams.core.records import ModelControl, decode
from streams.edges.security import aiokafka_config
from streams.errors import InvalidRecordError
from streams.runtime.agents import ModelSlot
from streams.runtime.metrics import Metrics
from streams.settings import Settings

logger = logging.getLogger(__name__)


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
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            enable_auto_commit=False,
            **aiokafka_config(self.settings),
        )
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
