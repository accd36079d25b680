"""The batch controller (batch size and wait from a latency target and observations) and
the adaptive batches it closes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from streams.core.batching import BatchController, BatchPlan
from streams.runtime.batches import adaptive_batches


def _controller(rate: float, cost: float, overhead: float = 0.0, **kw: float) -> BatchController:
    c = BatchController(kw.pop("target_s", 0.1), int(kw.pop("max_size", 64)))
    for _ in range(50):
        c.observe_arrivals(int(rate), 1.0)
        c.observe_batch(1, overhead + cost)
        c.observe_batch(10, overhead + 10 * cost)
    return c


def test_before_any_observation_it_takes_full_batches() -> None:
    assert BatchController(0.1, 32).plan() == BatchPlan(32, 0.05)


def test_at_low_rate_batches_stay_small_and_close_within_the_target() -> None:
    c = _controller(rate=20, cost=0.004, overhead=0.005)
    plan = c.plan()
    # a batch of n fills in n/20 s: only one or two records fit a 100 ms target
    assert 1 <= plan.size <= 2
    assert plan.wait_s + c.overhead_s + plan.size * c.cost_s <= 0.1 + 1e-9  # type: ignore[operator]


def test_a_higher_rate_gives_larger_batches_and_every_plan_meets_the_target() -> None:
    sizes = []
    for rate in (20, 100, 200):
        c = _controller(rate=rate, cost=0.003, overhead=0.01)
        plan = c.plan()
        sizes.append(plan.size)
        fill = plan.size / rate
        assert fill + 0.01 + plan.size * 0.003 <= 0.1 + 1e-6
    assert sizes == sorted(sizes) and sizes[-1] > sizes[0]


def test_batches_never_get_too_small_to_keep_up_with_the_arrivals() -> None:
    # 250/s at 3 ms per record and 20 ms per batch: below 12 records a batch, the
    # backlog grows, so the target yields to throughput
    c = _controller(rate=250, cost=0.003, overhead=0.02, target_s=0.03)
    size = c.plan().size
    assert size / (0.02 + size * 0.003) >= 250


def test_at_saturation_it_takes_the_largest_batch() -> None:
    c = _controller(rate=2000, cost=0.003, overhead=0.01, max_size=32)
    assert c.saturated() and c.plan().size == 32


def test_it_learns_per_record_cost_and_per_batch_overhead() -> None:
    c = _controller(rate=10, cost=0.004, overhead=0.02)
    assert c.cost_s == pytest.approx(0.004, rel=0.05)
    assert c.overhead_s == pytest.approx(0.02, rel=0.05)


def test_nonsense_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="target_s"):
        BatchController(0, 32)


class _Stream:
    """Faust's ``noack_take`` as seen by the agent: chunks at given times, then silence."""

    def __init__(self, chunks: list[tuple[float, list[int]]]) -> None:
        self.chunks = chunks

    async def noack_take(self, max_: int, within: float) -> AsyncIterator[list[int]]:
        for delay, chunk in self.chunks:
            await asyncio.sleep(delay)
            yield chunk
        await asyncio.sleep(3600)  # no more records: the stream never ends


def _gather(stream: _Stream, controller: BatchController, n: int) -> list[tuple[float, list[int]]]:
    async def run() -> list[tuple[float, list[int]]]:
        out: list[tuple[float, list[int]]] = []
        start = time.monotonic()
        batches = adaptive_batches(stream, controller).__aiter__()
        for _ in range(n):
            batch = await asyncio.wait_for(batches.__anext__(), 5)
            out.append((time.monotonic() - start, batch))
        await batches.aclose()  # type: ignore[attr-defined]
        return out

    return asyncio.run(run())


def test_a_partial_batch_closes_at_its_wait_even_when_no_record_follows() -> None:
    controller = BatchController(0.1, 32)  # no observations: size 32, wait 50 ms
    [(at, batch)] = _gather(_Stream([(0.0, [1, 2]), (0.01, [3])]), controller, 1)
    assert batch == [1, 2, 3]
    assert 0.04 <= at < 0.5


def test_a_full_batch_closes_at_once_and_nothing_is_lost() -> None:
    controller = BatchController(0.4, 4)
    got = _gather(_Stream([(0.0, [1, 2, 3]), (0.0, [4, 5]), (0.0, [6])]), controller, 2)
    assert [b for _, b in got] == [[1, 2, 3, 4, 5], [6]]
    assert got[0][0] < 1.0
