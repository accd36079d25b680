"""The chaos suite's moving parts: a load generator that survives broker outages, collectors
that read outputs and dead letters as they come, and the measurements of a worker process.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import random
import threading
import time
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, KafkaProducer
from kafka.errors import KafkaError

from tests.chaos.verifier import Ledger, Output

SCALE = os.environ.get("STREAMSENSE_CHAOS", "short")
"""``short`` inside ``make test``; ``full`` from ``make chaos``."""
FULL = SCALE == "full"


@dataclass(frozen=True)
class Item:
    """One record to send: its key, its bytes and the id its outputs will carry."""

    key: bytes | None
    value: bytes
    item_id: str


class LoadGenerator(threading.Thread):
    """Sends ``items`` to ``topic`` at ``rate`` per second in chunks, and notes each id in the
    ledger once the broker acknowledged it. A chunk that fails (broker down, leader moving)
    is sent again until it is acknowledged: the input keeps flowing through every fault."""

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        items: Sequence[Item],
        ledger: Ledger,
        rate: float,
        chunk: int = 20,
    ) -> None:
        super().__init__(daemon=True, name=f"load-{topic}")
        self.bootstrap = bootstrap
        self.topic = topic
        self.items = items
        self.ledger = ledger
        self.rate = rate
        self.chunk = chunk
        self.retries = 0
        self.stopped = threading.Event()
        self.lock = threading.Lock()
        """Held while a chunk is noted in the ledger (the verifier reads it from another
        thread)."""
        self.error: BaseException | None = None

    def _producer(self) -> KafkaProducer:
        return KafkaProducer(
            bootstrap_servers=self.bootstrap,
            acks="all",
            linger_ms=5,
            retries=5,
            request_timeout_ms=10_000,
            max_block_ms=10_000,
            reconnect_backoff_max_ms=1000,
        )

    def run(self) -> None:
        try:
            self._run()
        except BaseException as exc:  # surfaced by join_checked
            self.error = exc

    def _run(self) -> None:
        producer: KafkaProducer | None = None
        started = time.monotonic()
        for n in range(0, len(self.items), self.chunk):
            if self.stopped.is_set():
                break
            batch = self.items[n : n + self.chunk]
            while not self.stopped.is_set():
                try:
                    producer = producer or self._producer()
                    futures = [producer.send(self.topic, key=i.key, value=i.value) for i in batch]
                    for future in futures:
                        future.get(timeout=30)
                    break
                except (KafkaError, OSError):
                    self.retries += 1
                    if producer is not None:
                        # closing flushes what it still holds, which times out while the
                        # broker is down (the full broker restart's 30 s outage)
                        with contextlib.suppress(KafkaError, OSError):
                            producer.close(timeout=1)
                        producer = None
                    time.sleep(1.0)
            else:
                break
            with self.lock:
                for i in batch:
                    self.ledger.sent(i.item_id, i.key)
            ahead = started + (n + len(batch)) / self.rate - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
        if producer is not None:
            producer.close(timeout=5)

    def join_checked(self, timeout_s: float) -> None:
        self.join(timeout_s)
        assert not self.is_alive(), f"the load generator of {self.topic} did not finish"
        if self.error is not None:
            raise self.error


Read = Callable[[dict[str, Any], bytes | None], tuple[str, Hashable] | None]
"""An output record (body, key) -> (the id it answers, what was decided), or None for a
record that is not the one to count (a fan-out's extra copies)."""


class Collector(threading.Thread):
    """Reads output topics and DLQs from the beginning as records arrive.

    ``outputs``: output topic -> what the worker decided for an item in it.
    """

    def __init__(
        self,
        bootstrap: str,
        outputs: dict[str, Read],
        dlqs: Sequence[str] = (),
    ) -> None:
        super().__init__(daemon=True, name="collector")
        self.bootstrap = bootstrap
        self.outputs = outputs
        self.dlqs = dlqs
        self.stopped = threading.Event()
        self.lock = threading.Lock()
        self.records: dict[str, list[Output]] = {topic: [] for topic in outputs}
        self.dead_letters: dict[str, list[dict[str, Any]]] = {topic: [] for topic in dlqs}
        self.first_seen: dict[str, float] = {}
        """Id -> when its first output (on any output topic) was read."""
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._run()
        except BaseException as exc:  # surfaced by wait() and stop()
            self.error = exc

    def _run(self) -> None:
        consumer = KafkaConsumer(
            *self.outputs,
            *self.dlqs,
            bootstrap_servers=self.bootstrap,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            reconnect_backoff_max_ms=1000,
            metadata_max_age_ms=5000,
        )
        try:
            while not self.stopped.is_set():
                batches = consumer.poll(timeout_ms=300)
                now = time.monotonic()
                with self.lock:
                    for records in batches.values():
                        for record in records:
                            self._note(record.topic, record.key, record.value, now)
        finally:
            consumer.close()

    def _note(self, topic: str, key: bytes | None, value: bytes, now: float) -> None:
        try:
            body = json.loads(value)
        except ValueError:
            body = {}
        if topic in self.dead_letters:
            self.dead_letters[topic].append(body)
            return
        if not isinstance(body, dict) or "id" not in body:
            return  # not an output: the poison sent to an internal topic is read here too
        read = self.outputs[topic](body, key)
        if read is None:
            return
        item_id, decision = read
        self.records[topic].append(Output(item_id, key, decision, now))
        self.first_seen.setdefault(item_id, now)

    def outputs_of(self, topic: str) -> list[Output]:
        with self.lock:
            return list(self.records[topic])

    def ids(self, topic: str) -> set[str]:
        with self.lock:
            return {o.item_id for o in self.records[topic]}

    def dead_letter_keys(self) -> set[str]:
        """The original keys of every dead letter read (they name the poison records)."""
        with self.lock:
            return {
                base64.b64decode(letter["key"]).decode(errors="replace")
                for letters in self.dead_letters.values()
                for letter in letters
                if letter.get("key")
            }

    def wait(self, done: Callable[[], bool], timeout_s: float, check: Callable[[], None]) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.error is not None:
                raise AssertionError("the collector failed") from self.error
            if done():
                return True
            check()
            time.sleep(0.5)
        return done()

    def stop(self) -> None:
        self.stopped.set()
        self.join(30)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds the process has used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def log_lines(path: Path) -> int:
    with path.open("rb") as f:
        return sum(1 for _ in f)


def kill_points(rng: random.Random, kills: int, low: float, high: float) -> list[float]:
    """Seconds to wait, after the restarted worker has made progress, before each SIGKILL."""
    return [rng.uniform(low, high) for _ in range(kills)]


def median(values: Iterable[float]) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2
