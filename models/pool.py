"""Parallel inference: one batch's model calls spread over the machine's cores.

A single short text is too small a piece of work for ONNX Runtime's intra-op threads: on
2 cores, one call at a time with two intra-op threads scored 455 customer messages/s (both
models) at 4.3 ms of CPU per message (the pool's threads spin between operators), and one
intra-op thread 510/s at 2.1 ms. The two models at once, each on its own thread with one
intra-op thread, scored 874/s (``python -m bench.schedule``). So a :class:`InferencePool`
runs ``calls`` model calls at once (one per core by default): the models of a batch side by
side, and each model's texts split into contiguous shares when there are more cores than
models, on sessions opened with one intra-op thread. ``InferenceSession.run`` is
thread-safe, and the int8 model scores one text per call (batch invariance), so a split
changes no result; a CUDA session gets the whole batch in one call.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import os
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Protocol, TypeVar

from models.prediction import Prediction

R = TypeVar("R")

CPU = "CPUExecutionProvider"


class Scorer(Protocol):
    """What the pool calls: :class:`models.runtime.Classifier` is one."""

    provider: str

    def predict(self, texts: Sequence[str]) -> list[Prediction]: ...


THREAD_NAME = "ss-inference"
"""The pool threads' name in the operating system (``top -H``, ``/proc/<pid>/task``)."""


def _name_thread() -> None:
    """Give the calling thread :data:`THREAD_NAME` as its OS name (Linux; elsewhere no-op)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(15, THREAD_NAME.encode(), 0, 0, 0)  # PR_SET_NAME
    except (OSError, AttributeError):
        pass


def available_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def split_bounds(texts: Sequence[str], parts: int) -> list[tuple[int, int]]:
    """Contiguous (start, stop) shares of ``texts``, at most ``parts``, none empty, balanced
    by characters (a text's cost grows with its length)."""
    n = len(texts)
    parts = max(1, min(parts, n))
    if parts == 1:
        return [(0, n)] if n else []
    total = sum(len(t) + 1 for t in texts)
    bounds: list[tuple[int, int]] = []
    start = done = 0
    for i, text in enumerate(texts[:-1]):  # a cut after text i?
        if len(bounds) == parts - 1:
            break
        done += len(text) + 1
        cuts_left = parts - 1 - len(bounds)
        if done * parts >= total * (len(bounds) + 1) or n - i - 1 == cuts_left:
            bounds.append((start, i + 1))
            start = i + 1
    bounds.append((start, n))
    return bounds


class InferencePool:
    """Runs a batch's model calls ``calls`` at a time, in threads of its own."""

    def __init__(self, calls: int) -> None:
        self.calls = max(1, calls)
        self._executor = ThreadPoolExecutor(
            self.calls, thread_name_prefix="inference", initializer=_name_thread
        )

    def jobs(self, models: Sequence[Scorer], texts: Sequence[str]) -> list[tuple[int, int, int]]:
        """(model index, start, stop) of every call a batch takes.

        The models run side by side first: each CPU model's texts are split into
        ``calls // len(models)`` shares (at least one), a CUDA model's never. Two calls on
        one session contend inside ONNX Runtime: on 2 cores the two models at once scored
        924 messages/s, each model split in two 710/s (``python -m bench.schedule``)."""
        jobs: list[tuple[int, int, int]] = []
        for m, model in enumerate(models):
            parts = max(1, self.calls // len(models)) if model.provider == CPU else 1
            jobs.extend((m, start, stop) for start, stop in split_bounds(texts, parts))
        return jobs

    def _submit(
        self, models: Sequence[Scorer], texts: Sequence[str], jobs: Sequence[tuple[int, int, int]]
    ) -> list[Future[Any]]:
        return [
            self._executor.submit(models[m].predict, texts[start:stop]) for m, start, stop in jobs
        ]

    def predict(self, models: Sequence[Scorer], texts: Sequence[str]) -> list[list[Prediction]]:
        """Every model's predictions of ``texts``, in order (one list per model); blocks."""
        jobs = self.jobs(models, texts)
        futures = self._submit(models, texts, jobs)
        return _assemble(len(models), jobs, [f.result() for f in futures])

    async def predict_async(
        self, models: Sequence[Scorer], texts: Sequence[str]
    ) -> list[list[Prediction]]:
        """:meth:`predict` for an event loop: awaits the calls without blocking it.

        If a call fails, the others are still awaited (no call outlives this coroutine)
        and the first failure is raised."""
        jobs = self.jobs(models, texts)
        futures = [asyncio.wrap_future(f) for f in self._submit(models, texts, jobs)]
        results = await asyncio.gather(*futures, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return _assemble(len(models), jobs, results)  # type: ignore[arg-type]

    async def run(self, fn: Callable[..., R], *args: Any) -> R:
        """Run ``fn(*args)`` on one of the pool's threads (a call outside a batch)."""
        return await asyncio.wrap_future(self._executor.submit(fn, *args))

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def _assemble(
    n_models: int, jobs: Sequence[tuple[int, int, int]], results: Sequence[list[Prediction]]
) -> list[list[Prediction]]:
    columns: list[list[Prediction]] = [[] for _ in range(n_models)]
    for (m, _, _), preds in zip(jobs, results, strict=True):
        columns[m].extend(preds)  # a model's jobs are in text order
    return columns
