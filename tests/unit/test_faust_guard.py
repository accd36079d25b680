"""streams.runtime.faust_guard against faust-streaming's real consumer, with a fake driver.

The consumer is faust's aiokafka ``Consumer`` itself: its ``_drain_messages``, ``getmany``,
``ack``, ``commit`` and rebalance callbacks run unchanged; only the consumer thread that
would talk to the broker is replaced by :class:`FakeKafka`, one partition held in memory.
The fake checks every commit it receives: an offset below the commit that no agent has
finished is a record a crash at that moment would lose.

Tests named ``test_upstream_*`` reproduce faust-streaming 0.15.3's own behaviour, with no
guard installed. They are expected to pass: if one fails after an upgrade, faust changed
that behaviour, and the guard (and docs/faust-gap.md) must be revisited before the new
version joins ``faust_guard.TESTED_FAUST_VERSIONS``.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, NamedTuple, cast
from unittest.mock import AsyncMock, MagicMock

import pytest
from faust.transport import consumer as faust_consumer
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.transport.utils import DefaultSchedulingStrategy
from faust.types import TP
from mode import Service

from streams.errors import ConfigurationError
from streams.runtime import faust_guard

TOPIC = "messages-raw"
TP0 = TP(TOPIC, 0)
MAX_FETCHES = 50  # a consumer that rewinds forever fails here instead of hanging


class FakeRecord(NamedTuple):
    """The fields of an aiokafka ConsumerRecord that faust's ``_to_message`` reads."""

    topic: str
    partition: int
    offset: int
    timestamp: int | None = None
    timestamp_type: int = 0
    headers: tuple[Any, ...] = ()
    key: bytes | None = None
    value: bytes = b"{}"
    checksum: int | None = None
    serialized_key_size: int = 0
    serialized_value_size: int = 2


class FakeKafka(Service):
    """The consumer thread's stand-in: partition ``TP0`` of a broker, in memory.

    ``offsets`` are the offsets that exist (a hole is a transaction marker, an aborted or a
    compacted record). ``jumps`` reproduces the fault the kill test met after a restart:
    a fetch from position ``p`` in it starts at ``jumps[p]`` instead, once. A fetch returns
    at most ``batch`` records.
    """

    def __init__(
        self,
        offsets: Iterable[int],
        committed: int | None,
        jumps: Mapping[int, int],
        max_fetches: int,
        batch: int,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.offsets = sorted(offsets)
        self.committed: int | None = committed
        self.jumps = dict(jumps)
        self.max_fetches = max_fetches
        self.batch = batch
        self.position = committed if committed else self.offsets[0]
        # offsets an agent has finished; those below the start were finished before it
        self.processed = {o for o in self.offsets if committed and o < committed}
        self.assigned = True
        self.fetches = 0
        self.seeks: list[int] = []
        self.commits: list[int] = []
        self.committed_unprocessed: set[int] = set()
        self.idle = asyncio.Event()
        self.hung = False  # a fetch that returns nothing until the next seek

    async def getmany(self, active_partitions: set[TP] | None, timeout: float) -> Any:
        if self.hung:
            self.idle.set()
            return {}
        if self.fetches >= self.max_fetches:
            if self.max_fetches >= MAX_FETCHES:  # not a test's own limit: a rewind loop
                raise AssertionError(f"still fetching after {MAX_FETCHES} fetches")
            self.idle.set()  # the test stops the consumer here
            return {}
        position = self.jumps.pop(self.position, self.position)
        batch = [o for o in self.offsets if o >= position][: self.batch]
        if not batch or not active_partitions or TP0 not in active_partitions:
            self.idle.set()
            return {}
        self.fetches += 1
        self.position = batch[-1] + 1
        return {TP0: [FakeRecord(TP0.topic, TP0.partition, o) for o in batch]}

    async def seek_to_committed(self) -> Mapping[TP, int | None]:
        if self.committed:  # aiokafka seeks only to a committed offset above 0
            self.position = self.committed
        return {TP0: self.committed}

    def seek(self, tp: TP, offset: int) -> None:
        self.seeks.append(offset)
        self.position = offset
        self.hung = False

    async def commit(self, offsets: Mapping[TP, int]) -> bool:
        offset = offsets[TP0]
        self.committed_unprocessed |= {
            o for o in self.offsets if o < offset and o not in self.processed
        }
        self.committed = offset
        self.commits.append(offset)
        return True

    def assignment(self) -> set[TP]:
        return {TP0} if self.assigned else set()

    def highwater(self, tp: TP) -> int:
        return self.offsets[-1] + 1

    async def highwaters(self, *tps: TP) -> Mapping[TP, int]:
        return {tp: self.offsets[-1] + 1 for tp in tps}


class DriverConsumer(faust_aiokafka.Consumer):
    """faust's aiokafka consumer with its thread (the broker client) replaced by FakeKafka."""

    def _new_consumer_thread(self) -> Any:
        return cast(Any, self.transport).kafka

    async def position(self, tp: TP) -> int | None:
        return cast(Any, self.transport).kafka.position


class UpstreamConsumer(DriverConsumer):
    """faust-streaming's consumer as released: no guard."""


class GuardedConsumer(DriverConsumer):
    """faust-streaming's consumer with the guard installed, as streams.runtime.app does."""


faust_guard.install(version="0.15.3", consumer_class=GuardedConsumer)


@dataclass
class Worker:
    """One consumer on TP0 and an agent that finishes each record at once unless held."""

    consumer: Any
    kafka: FakeKafka
    hold: set[int]
    delivered: list[int] = field(default_factory=list)
    held: list[Any] = field(default_factory=list)
    on_offset: dict[int, Callable[[Any], None]] = field(default_factory=dict)

    async def on_message(self, message: Any) -> None:
        self.consumer.track_message(message)
        self.delivered.append(message.offset)
        if message.offset in self.on_offset:
            self.on_offset.pop(message.offset)(self.consumer)
        if message.offset in self.hold:
            self.held.append(message)
        else:
            self.finish(message)

    def finish(self, message: Any) -> None:
        self.kafka.processed.add(message.offset)
        self.consumer.ack(message)

    async def start(self) -> None:
        """What faust does when the partition is assigned: seek it to its committed offset."""
        self.kafka.assigned = True
        await self.consumer.on_partitions_assigned({TP0})
        await self.consumer.perform_seek()

    async def drain(self) -> None:
        """Run faust's ``_drain_messages`` until the fake has nothing more to fetch."""
        self.kafka.idle.clear()
        fetcher = SimpleNamespace(_stopped=self.kafka.idle)
        await self.consumer._drain_messages(fetcher)

    async def release_held(self) -> None:
        for message in self.held:
            self.finish(message)
        self.held.clear()
        await self.consumer.commit()

    @property
    def read(self) -> Any:
        return self.consumer._read_offset


def make_app() -> MagicMock:
    app = MagicMock()
    app.conf.broker_commit_every = 1  # commit after every acknowledgement: catches any window
    app.conf.broker_commit_interval = 1.0
    app.conf.broker_commit_livelock_soft_timeout = 300.0
    app.conf.consumer_auto_offset_reset = "earliest"
    app.conf.ConsumerScheduler = DefaultSchedulingStrategy
    app.in_transaction = False
    app.client_only = False
    app.consumer_generation_id = 1
    app.topics.acks_enabled_for.return_value = True
    app._attachments.publish_for_tp_offset = AsyncMock(return_value=[])
    app.producer.flush = AsyncMock()
    app._start_span_from_rebalancing = lambda name: contextlib.nullcontext()
    return app


def run(
    consumer_class: type[Any],
    scenario: Callable[[Worker], Awaitable[None]],
    *,
    offsets: Iterable[int],
    committed: int | None,
    jumps: Mapping[int, int] | None = None,
    hold: Iterable[int] = (),
    max_fetches: int = MAX_FETCHES,
    batch: int = 1000,
) -> Worker:
    """Build a worker on a fresh FakeKafka and run ``scenario`` on it in a new event loop."""
    if consumer_class is UpstreamConsumer:
        assert UpstreamConsumer._add_gap.__module__ == "faust.transport.consumer", (
            "faust's Consumer is patched in this process: upstream behaviour cannot be shown"
        )

    async def main() -> Worker:
        app = make_app()
        transport = MagicMock()
        transport.app = app
        transport.kafka = FakeKafka(offsets, committed, jumps or {}, max_fetches, batch)
        box: list[Worker] = []

        async def callback(message: Any) -> None:
            await box[0].on_message(message)

        consumer = consumer_class(
            transport,
            callback=callback,
            on_partitions_revoked=AsyncMock(),
            on_partitions_assigned=AsyncMock(),
        )
        worker = Worker(consumer, transport.kafka, set(hold))
        box.append(worker)
        await scenario(worker)
        return worker

    return asyncio.run(main())


async def restart(worker: Worker) -> None:
    """A worker (re)starting on the partition: assignment, seek, read all, final commit."""
    await worker.start()
    await worker.drain()
    await worker.consumer.commit()


# --- a gap is counted as processed --------------------------------------------------------


def run_restart_gap(
    consumer_class: type[Any],
    scenario: Callable[[Worker], Awaitable[None]] = restart,
    *,
    max_fetches: int = MAX_FETCHES,
) -> Worker:
    """The kill test's loss: committed 80, the first fetch after the restart began at 87."""
    return run(
        consumer_class,
        scenario,
        offsets=range(100),
        committed=80,
        jumps={80: 87},
        max_fetches=max_fetches,
    )


def test_upstream_counts_a_gap_as_processed() -> None:
    """UPSTREAM BEHAVIOUR (faust-streaming 0.15.3): 80..86 are never read, yet committed."""
    worker = run_restart_gap(UpstreamConsumer)

    assert worker.delivered == list(range(87, 100))
    assert worker.kafka.committed == 100
    assert worker.kafka.committed_unprocessed == set(range(80, 87))


def test_guard_rereads_a_gap_and_commits_only_processed_records() -> None:
    worker = run_restart_gap(GuardedConsumer)

    assert worker.kafka.seeks == [79]  # one before the gap: a record known to exist
    assert set(range(79, 100)) <= set(worker.delivered)
    assert worker.kafka.committed == 100
    assert worker.kafka.committed_unprocessed == set()
    assert (worker.read.rewinds, worker.read.gaps_accepted) == (1, 0)
    assert worker.read.pending == {}


# --- a commit starts one record past the committed offset ---------------------------------


def test_upstream_commits_past_a_record_in_flight_at_the_committed_offset() -> None:
    """UPSTREAM BEHAVIOUR: with 10 committed and 10 still in flight, 11..19 commit 20."""
    worker = run(UpstreamConsumer, restart, offsets=range(20), committed=10, hold={10})

    assert worker.kafka.committed == 20
    assert worker.kafka.committed_unprocessed == {10}


def test_guard_commits_only_from_the_committed_offset() -> None:
    async def scenario(worker: Worker) -> None:
        await restart(worker)
        assert worker.kafka.commits == []  # 10 is still in flight
        await worker.release_held()

    worker = run(GuardedConsumer, scenario, offsets=range(20), committed=10, hold={10})

    assert worker.kafka.commits == [20]
    assert worker.kafka.committed_unprocessed == set()


# --- offset 0, a partition with no commit yet -----------------------------------------------


@pytest.mark.parametrize("committed", [None, 0])
def test_upstream_commits_past_a_gap_at_the_start_of_a_partition(committed: int | None) -> None:
    """UPSTREAM BEHAVIOUR: with no commit, a first fetch that starts at 5 loses 0..4."""
    worker = run(UpstreamConsumer, restart, offsets=range(10), committed=committed, jumps={0: 5})

    assert worker.delivered == [5, 6, 7, 8, 9]
    assert worker.kafka.committed_unprocessed == {0, 1, 2, 3, 4}


@pytest.mark.parametrize("committed", [None, 0])
def test_guard_rereads_a_gap_at_the_start_of_a_partition(committed: int | None) -> None:
    worker = run(GuardedConsumer, restart, offsets=range(10), committed=committed, jumps={0: 5})

    assert worker.kafka.seeks == [0]
    assert set(worker.delivered) == set(range(10))
    assert worker.kafka.committed == 10
    assert worker.kafka.committed_unprocessed == set()


def test_upstream_commits_past_a_record_in_flight_on_a_partition_with_no_commit() -> None:
    """UPSTREAM BEHAVIOUR: no commit yet and 0 in flight: 1..9 commit 10."""
    worker = run(UpstreamConsumer, restart, offsets=range(10), committed=None, hold={0})

    assert worker.kafka.committed == 10
    assert worker.kafka.committed_unprocessed == {0}


def test_guard_commits_a_partition_with_no_commit_from_its_first_record() -> None:
    async def scenario(worker: Worker) -> None:
        await restart(worker)
        assert worker.kafka.commits == []  # 0 is still in flight
        await worker.release_held()

    worker = run(GuardedConsumer, scenario, offsets=range(10), committed=None, hold={0})

    assert worker.kafka.commits == [10]
    assert worker.kafka.committed_unprocessed == set()


def test_upstream_does_not_see_a_gap_after_offset_0() -> None:
    """UPSTREAM BEHAVIOUR: a read offset of 0 is false, so 1..4 skipped are not even seen.

    Nothing is committed past them, but the partition's commits stop at 1 until a restart.
    """
    worker = run(
        UpstreamConsumer, restart, offsets=range(10), committed=None, jumps={1: 5}, batch=1
    )

    assert worker.delivered == [0, 5, 6, 7, 8, 9]
    assert worker.kafka.committed == 1
    assert worker.kafka.committed_unprocessed == set()


def test_guard_rereads_a_gap_after_offset_0() -> None:
    worker = run(GuardedConsumer, restart, offsets=range(10), committed=None, jumps={1: 5}, batch=1)

    assert worker.kafka.seeks == [0]
    assert set(worker.delivered) == set(range(10))
    assert worker.kafka.committed == 10
    assert worker.kafka.committed_unprocessed == set()


# --- a partition revoked during a rewind ------------------------------------------------------


def test_guard_drops_a_rewind_when_its_partition_is_revoked() -> None:
    async def scenario(worker: Worker) -> None:
        await worker.start()
        await worker.drain()  # max_fetches=1: the rewind is sought, its re-read not fetched
        assert TP0 in worker.read.pending
        await worker.consumer.on_partitions_revoked({TP0})  # faust's own revoke path
        worker.kafka.assigned = False
        assert worker.read.pending == {}
        assert worker.read.floor == {}

        # another worker finished 80..99 and committed 100; this one gets the partition
        # back, and after this restart too the first fetch skips records (100..104)
        worker.kafka.processed |= set(range(80, 100))
        worker.kafka.committed = 100
        worker.kafka.offsets = list(range(120))
        worker.kafka.jumps = {100: 105}
        worker.kafka.max_fetches = MAX_FETCHES
        await restart(worker)

    worker = run_restart_gap(GuardedConsumer, scenario, max_fetches=1)

    assert worker.kafka.seeks == [79, 99]
    assert set(range(100, 120)) <= set(worker.delivered)
    assert worker.kafka.committed == 120
    assert worker.kafka.committed_unprocessed == set()


# --- records fetched but not handed over: the flow stops or the partition pauses mid-batch --


def _stop_flow_briefly(consumer: Any) -> None:
    """What a rebalance starting and being cancelled does to the flow: stop, then resume."""
    consumer.stop_flow()
    asyncio.get_running_loop().call_later(0.01, consumer.resume_flow)


def _pause_briefly(consumer: Any) -> None:
    """What faust's recovery does to a stream partition while its tables catch up."""
    consumer.pause_partitions({TP0})
    asyncio.get_running_loop().call_later(0.01, consumer.resume_partitions, {TP0})


def run_interrupted_batch(consumer_class: type[Any], interrupt: Callable[[Any], None]) -> Worker:
    """Committed 0, one batch of 0..19; handing over 5, the flow stops or 0 pauses."""

    async def scenario(worker: Worker) -> None:
        worker.on_offset[5] = interrupt
        await restart(worker)

    return run(consumer_class, scenario, offsets=range(20), committed=None)


@pytest.mark.parametrize("interrupt", [_stop_flow_briefly, _pause_briefly])
def test_upstream_never_hands_over_the_rest_of_an_interrupted_batch(
    interrupt: Callable[[Any], None],
) -> None:
    """UPSTREAM BEHAVIOUR: 6..19 were fetched, so the position is past them; nobody reads them.

    Nothing is committed past them either: the partition just stalls at 6 until a new
    record arrives and shows the gap, which on a quiet partition is never (the chaos
    test's "workers had not caught up" after the last restart).
    """
    worker = run_interrupted_batch(UpstreamConsumer, interrupt)

    assert worker.delivered == list(range(6))
    assert worker.kafka.position == 20
    assert worker.kafka.committed == 6


@pytest.mark.parametrize("interrupt", [_stop_flow_briefly, _pause_briefly])
def test_guard_refetches_the_rest_of_an_interrupted_batch(
    interrupt: Callable[[Any], None], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=faust_guard.__name__)

    worker = run_interrupted_batch(GuardedConsumer, interrupt)

    assert worker.kafka.seeks == [6]
    assert worker.delivered == list(range(20))
    assert worker.kafka.committed == 20
    assert worker.kafka.committed_unprocessed == set()
    assert worker.read.refetches == 1
    assert any("did not hand them to the agents" in r.getMessage() for r in caplog.records)


def test_guard_does_not_seek_a_partition_revoked_meanwhile() -> None:
    def revoke(consumer: Any) -> None:
        consumer.transport.kafka.assigned = False
        _stop_flow_briefly(consumer)

    worker = run_interrupted_batch(GuardedConsumer, revoke)

    assert worker.kafka.seeks == []
    assert worker.read.refetches == 0


# --- the position watch: a partition stalled past records nobody holds -----------------------


def _lose_a_fetch(worker: Worker) -> None:
    """The rebalance race the watch exists for, after 0..19 were read and committed: a fetch
    of 20..29 lands between the broker side of faust's seek to the committed offset (20) and
    its bookkeeping; the rebalance clears those records from the agents' buffers."""
    worker.kafka.offsets = list(range(30))
    worker.kafka.position = 30
    worker.read.update({TP0: 20})


def test_position_watch_seeks_back_a_partition_stalled_past_unread_records(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger=faust_guard.__name__)
    found: list[list[TP]] = []

    async def scenario(worker: Worker) -> None:
        await restart(worker)
        _lose_a_fetch(worker)
        await worker.drain()
        assert worker.delivered == list(range(20))  # nothing arrives: the stall
        watch = faust_guard.PositionWatch(lambda: worker.consumer, interval_s=0)
        found.append(await watch.check())  # first sight: could be a fetch in transit
        found.append(await watch.check())
        await worker.drain()
        await worker.consumer.commit()

    worker = run(GuardedConsumer, scenario, offsets=range(20), committed=None)

    assert found == [[], [TP0]]
    assert worker.kafka.seeks == [20]
    assert worker.delivered == list(range(30))
    assert worker.kafka.committed == 30
    assert worker.kafka.committed_unprocessed == set()
    assert any("neither in flight nor in a batch" in r.getMessage() for r in caplog.records)


def test_position_watch_seeks_back_a_partition_whose_commit_waits_for_a_lost_record() -> None:
    """The other stall: 10..19 were fetched and lost with no read offset to show the jump,
    20..29 were read and acked, and the commit waits at 10 for a record nobody holds."""
    found: list[list[TP]] = []

    async def scenario(worker: Worker) -> None:
        await restart(worker)  # 0..9 read, committed 10
        worker.kafka.offsets = list(range(30))
        worker.kafka.position = 20
        del worker.read[TP0]
        await worker.drain()
        await worker.consumer.commit()
        assert worker.kafka.commits[-1] == 10  # 20..29 acked, 10 owed: no commit moves
        watch = faust_guard.PositionWatch(lambda: worker.consumer, interval_s=0)
        found.append(await watch.check())
        found.append(await watch.check())
        await worker.drain()
        await worker.consumer.commit()

    worker = run(GuardedConsumer, scenario, offsets=range(10), committed=None)

    assert found == [[], [TP0]]
    assert worker.kafka.seeks == [10]
    assert set(worker.delivered) == set(range(30))
    assert worker.kafka.committed == 30
    assert worker.kafka.committed_unprocessed == set()


def test_position_watch_leaves_a_partition_at_rest_or_with_its_record_in_flight() -> None:
    found: list[list[TP]] = []

    async def scenario(worker: Worker) -> None:
        await restart(worker)  # 0..19 read, 10 still in an agent: committed 10
        watch = faust_guard.PositionWatch(lambda: worker.consumer, interval_s=0, idle_checks=1)
        found.append(await watch.check())
        found.append(await watch.check())
        await worker.release_held()  # at rest: committed 20, position 20
        found.append(await watch.check())
        found.append(await watch.check())

    worker = run(GuardedConsumer, scenario, offsets=range(20), committed=None, hold={10})

    assert found == [[], [], [], []]
    assert worker.kafka.seeks == []
    assert worker.kafka.committed == 20


def test_position_watch_wakes_a_partition_faust_left_paused(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """0..19 read and committed; faust leaves the partition paused with the flow active, and
    20..29 arrive on the broker: nothing is fetched, nothing is owed, the position stays at
    the committed offset. The idle look resumes it."""
    caplog.set_level(logging.WARNING, logger=faust_guard.__name__)
    found: list[list[TP]] = []

    async def scenario(worker: Worker) -> None:
        await restart(worker)
        worker.consumer.pause_partitions({TP0})
        worker.kafka.offsets = list(range(30))
        watch = faust_guard.PositionWatch(lambda: worker.consumer, interval_s=0, idle_checks=1)
        found.append(await watch.check())  # first sight: it may be about to fetch
        found.append(await watch.check())
        assert TP0 in worker.consumer._get_active_partitions()
        await worker.drain()
        await worker.consumer.commit()

    worker = run(GuardedConsumer, scenario, offsets=range(20), committed=None)

    assert found == [[], [TP0]]
    assert worker.kafka.seeks == [20]
    assert worker.delivered == list(range(30))
    assert worker.kafka.committed == 30
    assert any("paused True" in r.getMessage() for r in caplog.records)


def test_position_watch_restarts_a_fetch_that_hangs() -> None:
    """The partition is active, yet its fetch returns nothing while 20..29 wait."""
    found: list[list[TP]] = []

    async def scenario(worker: Worker) -> None:
        await restart(worker)
        worker.kafka.offsets = list(range(30))
        worker.kafka.hung = True
        await worker.drain()
        assert worker.delivered == list(range(20))
        watch = faust_guard.PositionWatch(lambda: worker.consumer, interval_s=0, idle_checks=1)
        found.append(await watch.check())
        found.append(await watch.check())
        await worker.drain()
        await worker.consumer.commit()

    worker = run(GuardedConsumer, scenario, offsets=range(20), committed=None)

    assert found == [[], [TP0]]
    assert worker.kafka.seeks == [20]
    assert worker.delivered == list(range(30))
    assert worker.kafka.committed_unprocessed == set()


def test_position_watch_leaves_a_partition_whose_commit_is_not_confirmed() -> None:
    """The broker is down: 0..19 are processed, faust has dropped their acks and sent the
    commit of 20, which does not come back; the committed offset stays at 0 for as long as
    the outage lasts. Nothing is owed (the chaos suite's broker restart: before this, the
    watch re-read every partition during the outage)."""
    found: list[list[TP]] = []

    async def scenario(worker: Worker) -> None:
        await restart(worker)
        worker.consumer._committed_offset[TP0] = None  # the commit of 20 never got through
        watch = faust_guard.PositionWatch(lambda: worker.consumer, interval_s=0)
        found.append(await watch.check())
        found.append(await watch.check())

    worker = run(GuardedConsumer, scenario, offsets=range(20), committed=None)

    assert worker.read.committing == {TP0: 20}
    assert found == [[], []]
    assert worker.kafka.seeks == []


def test_position_watch_gives_up_on_a_record_that_keeps_vanishing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger=faust_guard.__name__)
    found: list[list[TP]] = []

    async def scenario(worker: Worker) -> None:
        await restart(worker)
        _lose_a_fetch(worker)
        watch = faust_guard.PositionWatch(lambda: worker.consumer, interval_s=0, tries=2)
        for _ in range(8):  # the re-read never comes (no drain): the record stays owed
            worker.kafka.position = 30
            found.append(await watch.check())

    worker = run(GuardedConsumer, scenario, offsets=range(20), committed=None)

    assert [tp for tps in found for tp in tps] == [TP0, TP0]
    assert worker.kafka.seeks == [20, 20]
    assert sum("still stuck" in r.getMessage() for r in caplog.records) == 1


def test_position_watch_waits_while_the_flow_is_stopped() -> None:
    found: list[list[TP]] = []

    async def scenario(worker: Worker) -> None:
        await restart(worker)
        _lose_a_fetch(worker)
        worker.consumer.stop_flow()  # a rebalance under way: it seeks every partition itself
        watch = faust_guard.PositionWatch(lambda: worker.consumer, interval_s=0)
        found.append(await watch.check())
        found.append(await watch.check())

    worker = run(GuardedConsumer, scenario, offsets=range(20), committed=None)

    assert found == [[], []]
    assert worker.kafka.seeks == []


# --- a real gap: offsets that never come back ----------------------------------------------


def _without(*holes: int) -> list[int]:
    return [o for o in range(20) if o not in holes]


@pytest.mark.parametrize(
    ("offsets", "committed", "seeks", "accepted"),
    [
        pytest.param(_without(15), 10, [14], 1, id="transaction-marker"),
        pytest.param(_without(10), 10, [9], 1, id="marker-at-the-committed-offset"),
        pytest.param(_without(12, 15, 16, 18), 10, [11, 14, 17], 3, id="compacted"),
        pytest.param(range(5, 20), None, [0], 1, id="log-starts-after-0-no-commit"),
    ],
)
def test_guard_accepts_offsets_a_reread_skips_again(
    offsets: Iterable[int],
    committed: int | None,
    seeks: list[int],
    accepted: int,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger=faust_guard.__name__)

    worker = run(GuardedConsumer, restart, offsets=offsets, committed=committed)

    assert worker.kafka.seeks == seeks  # one re-read per gap, no loop
    assert worker.kafka.committed == 20
    assert worker.kafka.committed_unprocessed == set()
    assert (worker.read.rewinds, worker.read.gaps_accepted) == (len(seeks), accepted)
    assert sum("absent on a re-read" in r.getMessage() for r in caplog.records) == accepted


def test_guard_rereads_a_gap_whose_records_do_come_back_on_a_marker_topic() -> None:
    """A restart gap (80..86) on a topic that also has a real one (90): both end right."""
    offsets = [o for o in range(100) if o != 90]
    worker = run(GuardedConsumer, restart, offsets=offsets, committed=80, jumps={80: 87})

    assert worker.kafka.seeks == [79, 89]
    assert set(range(80, 87)) <= set(worker.delivered)
    assert worker.kafka.committed == 100
    assert worker.kafka.committed_unprocessed == set()
    assert worker.read.gaps_accepted == 1


# --- which faust-streaming the guard runs on ----------------------------------------------


def test_installed_faust_streaming_is_a_tested_version() -> None:
    faust_guard.check_version(importlib.metadata.version("faust-streaming"))


@pytest.mark.parametrize("version", ["0.15.2", "0.15.4", "0.16.0", "1.0.0"])
def test_guard_refuses_an_untested_faust_streaming(version: str) -> None:
    class Fresh(DriverConsumer):
        pass

    with pytest.raises(faust_guard.UnsupportedFaustVersionError) as raised:
        faust_guard.install(version=version, consumer_class=Fresh)

    assert isinstance(raised.value, ConfigurationError)
    assert f"but {version} is installed" in str(raised.value)
    assert "faust-streaming 0.15.3" in str(raised.value)
    assert Fresh._add_gap is faust_consumer.Consumer._add_gap  # nothing patched


def test_install_patches_fausts_consumer_once(monkeypatch: pytest.MonkeyPatch) -> None:
    base = faust_consumer.Consumer
    for name in ("__init__", "_add_gap", "_new_offset", "_wait_next_records", "getmany"):
        monkeypatch.setattr(base, name, vars(base)[name])  # restored after the test
    monkeypatch.setattr(base, "_streamsense_faust_guard", False, raising=False)

    faust_guard.install(version="0.15.3")
    patched = base._add_gap
    faust_guard.install(version="0.15.3")

    assert patched.__module__ == faust_guard.__name__
    assert base._add_gap is patched
    assert faust_aiokafka.Consumer._new_offset.__module__ == faust_guard.__name__
