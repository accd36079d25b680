"""Hot swap that converges: every worker serves the version the registry alias names.

The alias is the truth; ``models.control`` is only a nudge. A worker compares what it
serves with the alias at start-up, after each control record and every
``STREAMSENSE_SWAP_RECONCILE_S``, so a lost announcement delays a swap by one interval at
most. A load that fails (file missing, hash mismatch, out of memory) is retried with
exponential backoff up to ``STREAMSENSE_SWAP_RETRY_MAX_S``, and the mismatch is exported
(``streamsense_model_alias_mismatch``, alert ``StreamsenseModelAliasMismatch``). A control
record naming a version the alias does not name (a version the gate refused, a replayed
old record) is refused and counted; nothing the alias does not name is ever loaded.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
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


@dataclass
class _Backoff:
    """When the next load of a failing version may be tried."""

    version: str
    failures: int
    not_before: float


class ModelSwapper:
    """Keeps each slot on the alias's version: load, verify, warm, then swap one reference.

    Every worker reads the control topic on its own (no consumer group), from its end.
    """

    def __init__(
        self,
        settings: Settings,
        bootstrap: str,
        registry: Registry,
        slots: dict[str, ModelSlot],
        metrics: Metrics,
        *,
        clock: Any = time.monotonic,
    ) -> None:
        self.metrics = metrics
        self.settings = settings
        self.bootstrap = bootstrap
        self.registry = registry
        self.slots = slots
        self.clock = clock
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model-loader")
        self._backoff: dict[str, _Backoff] = {}
        self._lock = asyncio.Lock()

    def _load(self, task: str, version: str) -> Any:
        classifier = self.registry.load(
            task,
            version,
            threads=self.settings.session_threads(),
            row_loop=self.settings.int8_row_loop,
        )
        classifier.warmup()
        return classifier

    def _retry_delay(self, failures: int) -> float:
        return float(min(self.settings.swap_retry_max_s, 2.0 ** (failures - 1)))

    async def _load_unless_backing_off(
        self, key: str, task: str, wanted: str
    ) -> tuple[Any | None, str]:
        """Load and warm ``wanted`` unless a failed load of it under ``key`` is still backing
        off. Returns the classifier, or None with why (empty while backing off)."""
        backoff = self._backoff.get(key)
        if backoff and backoff.version == wanted and self.clock() < backoff.not_before:
            return None, ""
        loop = asyncio.get_running_loop()
        try:
            classifier = await loop.run_in_executor(self.executor, self._load, task, wanted)
        except Exception as exc:
            failures = backoff.failures + 1 if backoff and backoff.version == wanted else 1
            delay = self._retry_delay(failures)
            self._backoff[key] = _Backoff(wanted, failures, self.clock() + delay)
            return None, f"attempt {failures}: {exc}; next try in {delay:.0f} s"
        self._backoff.pop(key, None)
        return classifier, ""

    def load_shadows(self) -> None:
        """Before the worker starts: load each version the shadow alias names, so that a
        (re)started worker scores in shadow from its first batch. A version that does not
        load is left to :meth:`reconcile`, which retries it with backoff."""
        for task, slot in self.slots.items():
            try:
                wanted = self.registry.shadow(task)
                if wanted is None or wanted == slot.classifier.version:
                    continue
                slot.set_shadow(self._load(task, wanted))
            except Exception as exc:  # a shadow is never worth a worker that does not start
                logger.warning("%s: shadow not loaded at start (%s); retried later", task, exc)
                continue
            logger.info("%s: scoring %s in shadow beside %s", task, wanted, slot.classifier.version)

    async def reconcile(self) -> list[str]:
        """Bring every slot to the alias's version, and its shadow to the shadow alias's;
        the tasks whose production version was swapped."""
        swapped = []
        async with self._lock:  # one load at a time: the timer and a control record race
            for task in self.slots:
                if await self._reconcile_task(task):
                    swapped.append(task)
                await self._reconcile_shadow(task)
        return swapped

    async def _reconcile_shadow(self, task: str) -> None:
        """Load the version the shadow alias names beside production, or drop the shadow
        when the alias is gone (ended, or promoted). A failed load is retried with the same
        backoff as production's; production is never affected."""
        slot = self.slots[task]
        loop = asyncio.get_running_loop()
        key = f"{task}/shadow"
        try:
            wanted = await loop.run_in_executor(self.executor, self.registry.shadow, task)
        except Exception as exc:
            logger.warning("cannot read the %s shadow alias (%s)", task, exc)
            return
        if wanted == slot.classifier.version:
            wanted = None  # promoted: production serves it now
        current = slot.shadow.version if slot.shadow is not None else None
        if wanted == current:
            self._backoff.pop(key, None)
            return
        if wanted is None:
            slot.set_shadow(None)
            self._backoff.pop(key, None)
            logger.info("%s: shadow of %s ended", task, current)
            return
        classifier, failure = await self._load_unless_backing_off(key, task, wanted)
        if classifier is None:
            if failure:
                logger.error("could not load %s/%s for shadow scoring (%s)", task, wanted, failure)
            return
        slot.set_shadow(classifier)
        logger.info("%s: scoring %s in shadow beside %s", task, wanted, slot.classifier.version)

    async def _reconcile_task(self, task: str) -> bool:
        slot = self.slots[task]
        loop = asyncio.get_running_loop()
        try:
            wanted = await loop.run_in_executor(self.executor, self.registry.production, task)
        except Exception as exc:  # an unreadable alias: keep serving, say so, try again later
            logger.warning(
                "cannot read the %s alias (%s); still serving %s",
                task,
                exc,
                slot.classifier.version,
            )
            return False
        serving = slot.classifier.version
        if not wanted or wanted == serving:
            self._backoff.pop(task, None)
            self.metrics.alias_mismatch.labels(task).set(0)
            return False
        self.metrics.alias_mismatch.labels(task).set(1)
        classifier, failure = await self._load_unless_backing_off(task, task, wanted)
        if classifier is None:
            if failure:
                self.metrics.swap_failures.labels(task).inc()
                logger.error(
                    "could not load %s/%s (%s); still serving %s", task, wanted, failure, serving
                )
            return False
        old = slot.swap(classifier)
        self.metrics.model_info.labels(task, old.version).set(0)
        self.metrics.model_info.labels(task, wanted).set(1)
        self.metrics.swaps.labels(task).inc()
        self.metrics.alias_mismatch.labels(task).set(0)
        logger.info("swapped %s: %s -> %s", task, old.version, wanted)
        return True

    async def run(self) -> None:
        """Follow ``models.control`` and the alias until cancelled."""
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
            await self.reconcile()  # a promotion between start-up and now
            next_check = self.clock() + self.settings.swap_reconcile_s
            while True:
                wait = max(0.0, min(1.0, next_check - self.clock()))
                batches = await consumer.getmany(timeout_ms=int(wait * 1000))
                nudged = False
                for messages in batches.values():
                    for message in messages:
                        nudged = self._accept(message.value) or nudged
                backing_off = any(self.clock() >= b.not_before for b in self._backoff.values())
                if nudged or backing_off or self.clock() >= next_check:
                    await self.reconcile()
                    next_check = self.clock() + self.settings.swap_reconcile_s
        finally:
            await consumer.stop()
            self.executor.shutdown(wait=False, cancel_futures=True)

    def _accept(self, value: bytes | None) -> bool:
        """True when a control record is valid and names the alias's version."""
        try:
            control = decode(ModelControl, value)
        except InvalidRecordError as exc:
            logger.warning("ignoring an invalid models.control record: %s", exc.reason)
            return False
        if control.task not in self.slots:
            return False
        try:
            wanted = self.registry.production(control.task)
        except Exception as exc:
            logger.warning("cannot read the %s alias (%s)", control.task, exc)
            return False
        if control.version != wanted:
            self.metrics.control_refused.labels(control.task).inc()
            logger.warning(
                "refusing a models.control record for %s/%s: the registry alias names %s",
                control.task,
                control.version,
                wanted,
            )
            return False
        return True
