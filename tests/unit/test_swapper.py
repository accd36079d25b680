"""The swapper converges on the registry alias: refusals, missed announcements, retries.

Pure logic with an in-memory registry and classifiers (no broker, no ONNX): the Kafka side
of the swap is covered by tests/integration/test_hot_swap.py.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime

from streams.core.records import ModelControl, encode
from streams.runtime.agents import ModelSlot
from streams.runtime.metrics import Metrics
from streams.runtime.swapper import ModelSwapper
from streams.settings import Settings


@dataclass
class FakeClassifier:
    task: str
    version: str

    def warmup(self) -> None:
        return None


@dataclass
class FakeRegistry:
    alias: dict[str, str]
    broken: set[str] = field(default_factory=set)
    loads: list[str] = field(default_factory=list)
    shadows: dict[str, str] = field(default_factory=dict)

    def production(self, task: str) -> str | None:
        return self.alias.get(task)

    def shadow(self, task: str) -> str | None:
        return self.shadows.get(task)

    def load(
        self, task: str, version: str, threads: int = 0, row_loop: bool = True
    ) -> FakeClassifier:
        self.loads.append(version)
        if version in self.broken:
            raise OSError(f"{task}/{version}: model.onnx is missing")
        return FakeClassifier(task, version)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _swapper(registry: FakeRegistry, clock: Clock) -> tuple[ModelSwapper, ModelSlot, Metrics]:
    metrics = Metrics.create()
    metrics.prime(["sentiment"], [], [], [], "test")
    slot = ModelSlot(FakeClassifier("sentiment", "v0001-a"))  # type: ignore[arg-type]
    settings = Settings.model_validate({"swap_retry_max_s": 8.0})
    swapper = ModelSwapper(
        settings,
        "127.0.0.1:1",
        registry,  # type: ignore[arg-type]
        {"sentiment": slot},
        metrics,
        clock=clock,
    )
    return swapper, slot, metrics


def _value(metrics: Metrics, name: str) -> float:
    value = metrics.registry.get_sample_value(name, {"task": "sentiment"})
    assert value is not None, name
    return value


def _control(version: str) -> bytes:
    control = ModelControl(
        task="sentiment", version=version, action="promote", at=datetime.now(UTC)
    )
    return encode(control)


def test_a_control_record_for_a_version_the_alias_does_not_name_is_refused() -> None:
    registry = FakeRegistry({"sentiment": "v0001-a"})
    swapper, slot, metrics = _swapper(registry, Clock())
    assert swapper._accept(_control("v0002-refused-by-the-gate")) is False
    asyncio.run(swapper.reconcile())
    assert slot.classifier.version == "v0001-a"
    assert registry.loads == []
    assert _value(metrics, "streamsense_model_control_refused_total") == 1


def test_a_promotion_without_an_announcement_is_picked_up_from_the_alias() -> None:
    registry = FakeRegistry({"sentiment": "v0001-a"})
    swapper, slot, metrics = _swapper(registry, Clock())
    registry.alias["sentiment"] = "v0002-b"  # promoted, but the control record never came
    assert asyncio.run(swapper.reconcile()) == ["sentiment"]
    assert slot.classifier.version == "v0002-b"
    assert _value(metrics, "streamsense_model_alias_mismatch") == 0
    assert _value(metrics, "streamsense_model_swaps_total") == 1


def test_a_failed_load_is_retried_with_backoff_until_it_succeeds() -> None:
    registry = FakeRegistry({"sentiment": "v0002-b"}, broken={"v0002-b"})
    clock = Clock()
    swapper, slot, metrics = _swapper(registry, clock)

    async def scenario() -> None:
        assert await swapper.reconcile() == []  # attempt 1 fails: retry after 1 s
        assert _value(metrics, "streamsense_model_alias_mismatch") == 1
        assert await swapper.reconcile() == []  # within the backoff: not even tried
        assert registry.loads == ["v0002-b"]
        clock.now += 1.0
        assert await swapper.reconcile() == []  # attempt 2 fails: retry after 2 s
        clock.now += 1.5
        assert await swapper.reconcile() == []
        assert len(registry.loads) == 2
        for _ in range(6):  # the backoff doubles up to the cap (8 s here)
            clock.now += 100.0
            await swapper.reconcile()
        assert swapper._backoff["sentiment"].not_before - clock.now == 8.0
        registry.broken.clear()  # the files are back
        clock.now += 8.0
        assert await swapper.reconcile() == ["sentiment"]

    asyncio.run(scenario())
    assert slot.classifier.version == "v0002-b"
    assert _value(metrics, "streamsense_model_alias_mismatch") == 0
    assert _value(metrics, "streamsense_model_swap_failures_total") == 8


def test_a_valid_announcement_of_the_alias_version_is_accepted() -> None:
    registry = FakeRegistry({"sentiment": "v0002-b"})
    swapper, slot, _ = _swapper(registry, Clock())
    assert swapper._accept(_control("v0002-b")) is True
    assert swapper._accept(b"not json") is False
    asyncio.run(swapper.reconcile())
    assert slot.classifier.version == "v0002-b"


def test_shadow_follows_the_shadow_alias_and_never_touches_production() -> None:
    registry = FakeRegistry({"sentiment": "v0001-a"}, broken={"v0003-c"})
    clock = Clock()
    swapper, slot, metrics = _swapper(registry, clock)

    async def main() -> list[str | None]:
        seen: list[str | None] = []

        async def look() -> None:
            await swapper.reconcile()
            seen.append(slot.shadow.version if slot.shadow else None)

        await look()  # no shadow alias
        registry.shadows["sentiment"] = "v0002-b"
        await look()  # loaded beside production
        registry.shadows["sentiment"] = "v0003-c"  # unloadable: the old shadow goes on
        await look()
        await look()  # backing off: no second load yet
        clock.now += 10
        registry.broken.clear()
        await look()
        del registry.shadows["sentiment"]  # ended
        await look()
        registry.shadows["sentiment"] = "v0001-a"  # names production itself: no shadow
        await look()
        return seen

    seen = asyncio.run(main())

    assert seen == [None, "v0002-b", "v0002-b", "v0002-b", "v0003-c", None, None]
    assert registry.loads == ["v0002-b", "v0003-c", "v0003-c"]
    assert slot.classifier.version == "v0001-a" and slot.swaps == 0
    assert _value(metrics, "streamsense_model_swap_failures_total") == 0  # production only


def test_a_starting_worker_loads_the_shadow_version_before_its_first_batch() -> None:
    registry = FakeRegistry({"sentiment": "v0001-a"}, shadows={"sentiment": "v0002-b"})
    swapper, slot, _ = _swapper(registry, Clock())
    swapper.load_shadows()
    assert slot.shadow is not None and slot.shadow.version == "v0002-b"
    assert slot.classifier.version == "v0001-a"

    broken = FakeRegistry({"sentiment": "v0001-a"}, {"v0003-c"}, shadows={"sentiment": "v0003-c"})
    swapper, slot, _ = _swapper(broken, Clock())
    swapper.load_shadows()  # a shadow that does not load never stops the worker's start
    assert slot.shadow is None and slot.classifier.version == "v0001-a"
