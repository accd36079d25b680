"""When to close a micro-batch: size and wait chosen from a latency target.

A record's time from arrival to output is about the time its batch waits to fill plus the
time the batch takes to process. With records arriving at ``rate`` per second, a batch of
``n`` fills in ``n / rate`` seconds and is processed in ``overhead + n * cost`` seconds
(``cost`` per record, ``overhead`` per batch: the model calls' fixed part, the broker's
confirm). The controller picks the largest ``n`` whose oldest record still meets the target,
but never one so small that batches cannot keep up with the arrivals; at saturation (the
worker cannot keep up at any size) it takes the largest batch (throughput first: the
target cannot be met, and a backlog only grows with smaller batches).

Pure: the agents feed it observations (arrivals, batch timings) and ask it for a plan.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class BatchPlan:
    """Close the batch at ``size`` records or when its oldest has waited ``wait_s``."""

    size: int
    wait_s: float


class BatchController:
    """Batch size and wait from a latency target and what it has observed."""

    def __init__(
        self, target_s: float, max_size: int, *, min_wait_s: float = 0.001, alpha: float = 0.2
    ) -> None:
        if target_s <= 0 or max_size < 1 or not 0 < alpha <= 1:
            raise ValueError("target_s > 0, max_size >= 1 and 0 < alpha <= 1 are required")
        self.target_s = target_s
        self.max_size = max_size
        self.min_wait_s = min_wait_s
        self.alpha = alpha
        self.rate: float | None = None
        """Arrivals per second (exponentially weighted)."""
        self.cost_s: float | None = None
        """Processing seconds per record."""
        self.overhead_s = 0.0
        """Processing seconds per batch, whatever its size."""

    def _ewma(self, old: float | None, new: float) -> float:
        return new if old is None else old + self.alpha * (new - old)

    def observe_arrivals(self, count: int, seconds: float) -> None:
        """``count`` records arrived over ``seconds`` (while the agent was waiting for them)."""
        if count > 0 and seconds > 0:
            self.rate = self._ewma(self.rate, count / seconds)

    def observe_batch(self, size: int, seconds: float) -> None:
        """A batch of ``size`` records took ``seconds`` to process (outputs confirmed)."""
        if size < 1 or seconds < 0:
            return
        if self.cost_s is None or size > 1:
            per_record = (seconds - self.overhead_s) / size
            self.cost_s = self._ewma(self.cost_s, max(per_record, 0.0))
        self.overhead_s = max(self._ewma(self.overhead_s, seconds - self.cost_s * size), 0.0)

    def saturated(self) -> bool:
        """Whether arrivals outpace what the largest batch can process."""
        if self.rate is None or self.cost_s is None:
            return True
        capacity = self.max_size / (self.overhead_s + self.cost_s * self.max_size)
        return self.rate >= capacity

    def plan(self) -> BatchPlan:
        """The next batch's size and wait."""
        if self.rate is None or self.cost_s is None or self.saturated():
            return BatchPlan(self.max_size, max(self.target_s / 2, self.min_wait_s))
        rate, cost, overhead = self.rate, self.cost_s, self.overhead_s
        budget = self.target_s - overhead
        by_latency = math.floor(budget / (1 / rate + cost)) if budget > 0 else 1
        load = rate * cost
        by_throughput = math.ceil(overhead * rate / (1 - load)) if load < 1 else self.max_size
        size = min(max(by_latency, by_throughput, 1), self.max_size)
        wait = min(size / rate, self.target_s - overhead - size * cost)
        return BatchPlan(size, max(wait, self.min_wait_s))
