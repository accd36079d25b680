"""The inference pool: how a batch is split over parallel calls, and what comes back."""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest

from models.pool import CPU, THREAD_NAME, InferencePool, split_bounds
from models.prediction import Prediction


@dataclass
class Echo:
    """Labels each text with itself; optionally waits at a barrier (proof of parallel
    calls) or fails on one text."""

    provider: str = CPU
    barrier: threading.Barrier | None = None
    fail_on: str | None = None
    calls: list[tuple[str, ...]] = field(default_factory=list)
    threads: set[str] = field(default_factory=set)

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        self.calls.append(tuple(texts))
        self.threads.add(threading.current_thread().name)
        if self.barrier is not None:
            self.barrier.wait()
        if self.fail_on in texts:
            raise RuntimeError("boom")
        return [Prediction(t, {t: 1.0}) for t in texts]


@pytest.mark.parametrize("n,parts", [(1, 2), (2, 2), (7, 3), (64, 2), (5, 8), (40, 4)])
def test_a_split_covers_every_text_once_in_order_and_in_at_most_parts_shares(
    n: int, parts: int
) -> None:
    texts = [f"text number {i}" * (1 + i % 5) for i in range(n)]
    bounds = split_bounds(texts, parts)
    assert len(bounds) == min(n, parts)
    assert bounds[0][0] == 0 and bounds[-1][1] == n
    assert all(stop > start for start, stop in bounds)
    assert all(a[1] == b[0] for a, b in itertools.pairwise(bounds))


def test_a_split_balances_characters_not_counts() -> None:
    texts = ["x" * 600] + ["y" * 10] * 30
    (first, second) = split_bounds(texts, 2)
    assert first == (0, 1)  # the long text alone outweighs the thirty short ones
    assert second == (1, 31)
    assert split_bounds([], 2) == []


def test_calls_run_at_once_on_named_threads_and_results_keep_the_batch_order() -> None:
    barrier = threading.Barrier(2, timeout=10)  # breaks unless two calls run at the same time
    model = Echo(barrier=barrier)
    pool = InferencePool(2)
    texts = [f"t{i}" for i in range(9)]
    try:
        (column,) = pool.predict([model], texts)
    finally:
        pool.shutdown()
    assert [p.label for p in column] == texts
    assert len(model.calls) == 2 and sum(len(c) for c in model.calls) == 9
    assert len(model.threads) == 2


def test_two_models_run_side_by_side_before_either_is_split() -> None:
    barrier = threading.Barrier(2, timeout=10)
    a, b = Echo(barrier=barrier), Echo(barrier=barrier)
    pool = InferencePool(2)
    try:
        columns = pool.predict([a, b], ["p", "q", "r", "s"])
    finally:
        pool.shutdown()
    assert [[p.label for p in col] for col in columns] == [["p", "q", "r", "s"]] * 2
    assert a.calls == b.calls == [("p", "q", "r", "s")]  # one call each, at the same time


def test_with_more_calls_than_models_each_model_is_split() -> None:
    a, b = Echo(), Echo()
    pool = InferencePool(4)
    try:
        columns = pool.predict([a, b], ["p", "q", "r", "s", "t"])
    finally:
        pool.shutdown()
    assert [[p.label for p in col] for col in columns] == [["p", "q", "r", "s", "t"]] * 2
    assert len(a.calls) == len(b.calls) == 2


def test_a_gpu_model_gets_the_whole_batch_in_one_call() -> None:
    model = Echo(provider="CUDAExecutionProvider")
    pool = InferencePool(4)
    try:
        pool.predict([model], ["a", "b", "c", "d", "e"])
    finally:
        pool.shutdown()
    assert model.calls == [("a", "b", "c", "d", "e")]


def test_a_failed_call_is_raised_after_every_call_of_the_batch_ended() -> None:
    model = Echo(fail_on="bad")
    pool = InferencePool(2)

    async def score() -> None:
        await pool.predict_async([model], ["ok", "fine", "bad", "also"])

    try:
        with pytest.raises(RuntimeError, match="boom"):
            asyncio.run(score())
        assert len(model.calls) == 2  # both halves ran; none is still running
    finally:
        pool.shutdown()


def test_pool_threads_carry_their_name_in_the_operating_system() -> None:
    pool = InferencePool(1)

    def native_name() -> str:
        with open(f"/proc/self/task/{threading.get_native_id()}/comm", encoding="ascii") as f:
            return f.read().strip()

    try:
        name = asyncio.run(pool.run(native_name))
    finally:
        pool.shutdown()
    assert name == THREAD_NAME
