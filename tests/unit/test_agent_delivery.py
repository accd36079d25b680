"""The stateful agents against in-memory topics and tables: what is sent, confirmed,
written and acknowledged, in which order, for good records, hostile ones and failures, one
record per batch and in micro-batches.

No broker: the fakes record every step, so the delivery rules (an alert is confirmed before
the state that suppresses it is written; a dead letter is confirmed before its offset is
acknowledged; an infrastructure failure exits without acknowledging) are checked directly.
The same rules against the real broker: tests/integration/test_alert_crash.py and
tests/integration/test_poison.py.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from models.pool import InferencePool
from models.prediction import Prediction
from streams.core.intent_monitor import IntentParams
from streams.core.recommend import ActionCatalog
from streams.core.records import CustomerMessage, NewsItem, ScoredMessage, ScoredNews, encode
from streams.core.routing import RoutingTable
from streams.core.ticker_monitor import TickerParams
from streams.core.tickers import CompanyDictionary
from streams.runtime import agents, faults, messages
from streams.runtime.agents import Collaborators, ModelSlot, Topics
from streams.runtime.faults import CRASH_AFTER_STATE_WRITE, Faults
from streams.runtime.messages import make_message_scorer, make_router
from streams.runtime.metrics import Metrics, phase_totals
from streams.runtime.monitor_agents import make_intent_monitor, make_ticker_monitor
from tests.record_factories import routed_ticket

CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "config"
T0 = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
Log = list[tuple[str, ...]]


class Crash(Exception):
    """Stands in for the process exit of ``fatal`` and of an injected fault."""


@dataclass
class FakeTopic:
    name: str
    log: Log
    fail: bool = False
    delay_s: float = 0.0
    """How long the broker takes to confirm a record."""

    async def send(self, key: bytes | None, value: bytes, force: bool) -> Awaitable[None]:
        assert force
        self.log.append(("send", self.name))
        return self._confirm()

    async def _confirm(self) -> None:
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.fail:
            raise ConnectionError("broker gone")
        self.log.append(("confirmed", self.name))

    def get_topic_name(self) -> str:
        return self.name


@dataclass
class FakeBuffer:
    size: int = 0


class FakeProducer:
    def __init__(self, log: Log) -> None:
        self.log = log
        self.buffer = FakeBuffer()

    async def flush(self) -> None:
        self.log.append(("flush",))


@dataclass
class FakeApp:
    producer: FakeProducer


class FakeTable(dict[str, Any]):
    def __init__(self, log: Log) -> None:
        super().__init__()
        self.log = log
        self.app = FakeApp(FakeProducer(log))
        self.fail = False

    def __setitem__(self, key: str, value: Any) -> None:
        if self.fail:
            raise OSError("disk full")
        self.log.append(("write", key))
        super().__setitem__(key, value)

    def __delitem__(self, key: str) -> None:
        self.log.append(("delete", key))
        super().__delitem__(key)


@dataclass
class FakeMessage:
    topic: str
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[Any, bytes]] = field(default_factory=list)
    partition: int = 0


@dataclass
class FakeEvent:
    message: FakeMessage


class FakeStream:
    def __init__(self, events: list[FakeEvent], log: Log, chunk: int = 0) -> None:
        self._events = events
        self.log = log
        self.chunk = chunk
        """Records per batch when fewer than the agent's batch size arrive in its wait."""

    async def noack_take(self, max_: int, within: float) -> AsyncIterator[list[FakeEvent]]:
        step = min(self.chunk or max_, max_)
        for start in range(0, len(self._events), step):
            yield self._events[start : start + step]

    async def ack(self, event: FakeEvent) -> None:
        self.log.append(("ack", str(event.message.offset)))


@dataclass
class World:
    log: Log
    collab: Collaborators
    table: FakeTable
    topics: dict[str, FakeTopic]

    def run(
        self, agent: Callable[[Any], Awaitable[None]], messages: list[FakeMessage], chunk: int = 0
    ) -> None:
        asyncio.run(agent(FakeStream([FakeEvent(m) for m in messages], self.log, chunk)))

    def sent(self, topic: str) -> int:
        return sum(1 for entry in self.log if entry == ("confirmed", topic))

    def letters(self) -> list[dict[str, Any]]:
        return [json.loads(v) for v in self.dlq_values]

    dlq_values: list[bytes] = field(default_factory=list)


def _world(faults_point: faults.FaultPoint = "", batch_size: int = 1) -> World:
    log: Log = []
    names = [
        "news_raw",
        "messages_raw",
        "news_scored",
        "messages_scored",
        "tickets_routed",
        "recommendations",
        "alerts",
        "news_dlq",
        "messages_dlq",
        "news_scored_dlq",
        "messages_scored_dlq",
        "tickets_routed_dlq",
        "feedback",
        "feedback_dlq",
    ]
    topics = {name: FakeTopic(name, log) for name in names}
    world_values: list[bytes] = []

    class DeadLetters(FakeTopic):
        async def send(self, key: bytes | None, value: bytes, force: bool) -> Awaitable[None]:
            world_values.append(value)
            return await super().send(key, value, force)

    for name in names:
        if name.endswith("_dlq"):
            topics[name] = DeadLetters(name, log)
    collab = Collaborators(
        topics=Topics(**topics),  # type: ignore[arg-type]
        sentiment=None,  # type: ignore[arg-type]
        intent=None,  # type: ignore[arg-type]
        inference=InferencePool(2),
        dictionary=CompanyDictionary({}),
        routing=RoutingTable.load(CONFIG / "routing.toml"),
        actions=ActionCatalog.load(CONFIG / "actions.toml"),
        ticker_params=TickerParams(),
        intent_params=IntentParams(),
        max_record_bytes=1_000_000,
        batch_size=batch_size,
        batch_max_wait_s=0.05,
        monitor_batch_size=batch_size,
        monitor_batch_max_wait_s=0.05,
        metrics=Metrics.create(),
        store_executor=None,  # type: ignore[arg-type]
        faults=Faults(faults_point),
    )
    world = World(log, collab, FakeTable(log), topics)
    world.dlq_values = world_values
    return world


@pytest.fixture(autouse=True)
def _no_exit(monkeypatch: pytest.MonkeyPatch) -> None:
    def crash(*args: object) -> None:
        raise Crash(args)

    monkeypatch.setattr(agents, "fatal", crash)
    monkeypatch.setattr(faults.os, "_exit", crash)
    monkeypatch.setattr(faults.logging, "shutdown", lambda: None)


def _news(n: int, score: float, at: datetime, ticker: str = "NOKIA", **extra: Any) -> FakeMessage:
    record = ScoredNews(
        id=f"n{n}",
        model_version="s1",
        label="negative",
        probs={"negative": max(-score, 0.0), "neutral": 1 - abs(score), "positive": max(score, 0)},
        score=score,
        tickers=[ticker],
        headline=f"headline {n}",
        published_at=at,
        scored_at=at,
    )
    value = json.loads(encode(record))
    value.update(extra)
    return FakeMessage("news.scored", n, ticker.encode(), json.dumps(value).encode())


def _burst(count: int = 5) -> list[FakeMessage]:
    return [_news(n, -0.95, T0 + timedelta(seconds=30 * n)) for n in range(count)]


def test_an_alert_is_confirmed_before_the_state_that_suppresses_it() -> None:
    world = _world()
    world.run(make_ticker_monitor(world.collab, world.table), _burst())
    last = world.log[world.log.index(("ack", "3")) + 1 :]
    assert last == [
        ("send", "alerts"),
        ("confirmed", "alerts"),
        ("write", "NOKIA"),
        ("ack", "4"),
    ]
    assert world.sent("alerts") == 1


def test_a_crash_right_after_the_state_write_finds_the_alert_confirmed() -> None:
    world = _world(CRASH_AFTER_STATE_WRITE)
    with pytest.raises(Crash):
        world.run(make_ticker_monitor(world.collab, world.table), _burst())
    assert world.log[-4:] == [
        ("send", "alerts"),
        ("confirmed", "alerts"),
        ("write", "NOKIA"),
        ("flush",),
    ]
    assert ("ack", "4") not in world.log


def test_a_failed_alert_send_exits_before_the_state_is_written() -> None:
    world = _world()
    world.topics["alerts"].fail = True
    with pytest.raises(Crash):
        world.run(make_ticker_monitor(world.collab, world.table), _burst())
    assert world.log[-1] == ("send", "alerts")
    assert [e for e in world.log if e[0] == "write"] == [("write", "NOKIA")] * 4


def test_hostile_scored_news_is_dead_lettered_and_the_monitor_goes_on() -> None:
    world = _world()
    ancient = _news(0, -0.9, T0, published_at="0001-01-01T00:00:00Z")
    wrong_key = _news(1, -0.9, T0)
    wrong_key.key = b"MSFT"
    bad_key = _news(2, -0.9, T0)
    bad_key.key = b"\xff"
    future = _news(3, -0.9, datetime.now(UTC) + timedelta(days=30))
    header = _news(4, -0.9, T0)
    header.headers = [("ok", b"1"), ("\udcff\udcfe", b"2")]
    nul = _news(5, -0.9, T0, headline="a\u0000b")
    good = _news(6, -0.9, T0)
    world.run(
        make_ticker_monitor(world.collab, world.table),
        [ancient, wrong_key, bad_key, future, header, nul, good],
    )
    reasons = [letter["reason"] for letter in world.letters()]
    assert reasons == [
        "validation_error",
        "invalid_key",
        "invalid_key",
        "event_time_in_future",
        "invalid_header",
        "unsafe_text",
    ]
    assert "published_at: time_out_of_range" in world.letters()[0]["detail"]
    # every dead letter is confirmed before its record is acknowledged
    for offset in range(6):
        ack = world.log.index(("ack", str(offset)))
        assert world.log[ack - 1] == ("confirmed", "news_scored_dlq")
    assert ("write", "NOKIA") in world.log and ("ack", "6") in world.log
    letter = world.letters()[4]
    assert letter["header_names_b64"] == ["b2s=", base64.b64encode(b"\xff\xfe").decode()]
    assert letter["headers"] == [["ok", "MQ=="], ["\\xff\\xfe", "Mg=="]]


def test_a_state_row_that_cannot_be_read_is_dead_lettered_and_dropped() -> None:
    world = _world()
    dict.__setitem__(world.table, "NOKIA", {"subject": "NOKIA", "items": "old format"})
    world.run(make_ticker_monitor(world.collab, world.table), _burst(2))
    [letter] = world.letters()
    assert letter["reason"] == "invalid_state" and letter["offset"] == 0
    assert "ticker-state" in letter["detail"]
    assert world.log[:4] == [
        ("send", "news_scored_dlq"),
        ("confirmed", "news_scored_dlq"),
        ("delete", "NOKIA"),
        ("ack", "0"),
    ]
    assert world.table["NOKIA"]["items"][0][0] == "n1"  # the next record starts afresh


def test_a_table_write_failure_exits_without_acknowledging() -> None:
    world = _world()
    world.table.fail = True
    with pytest.raises(Crash):
        world.run(make_ticker_monitor(world.collab, world.table), _burst(1))
    assert world.letters() == [] and not any(e[0] == "ack" for e in world.log)


def _scored_message(n: int, customer: str = "c1", **extra: Any) -> FakeMessage:
    record = ScoredMessage(
        id=f"m{n}",
        customer_id=customer,
        channel="chat",
        model_version="i1",
        sentiment_model_version="s1",
        intent_probs={"card_arrival": 0.9},
        sentiment="neutral",
        sentiment_score=0.0,
        sent_at=T0,
        scored_at=T0,
    )
    value = json.loads(encode(record))
    value.update(extra)
    return FakeMessage("messages.scored", n, customer.encode(), json.dumps(value).encode())


def test_the_router_dead_letters_hostile_records_and_routes_the_rest() -> None:
    world = _world()
    empty = _scored_message(0, intent_probs={})
    header = _scored_message(1)
    header.headers = [(b"\xff", b"x")]
    wrong_key = _scored_message(2)
    wrong_key.key = b"someone-else"
    good = _scored_message(3)
    world.run(make_router(world.collab, world.table), [empty, header, wrong_key, good])
    letters = world.letters()
    assert [letter["reason"] for letter in letters] == [
        "validation_error",
        "invalid_header",
        "invalid_key",
    ]
    assert "intent_probs: too_short" in letters[0]["detail"]
    assert world.sent("tickets_routed") == world.sent("recommendations") == 1
    # the history is written after the ticket and the recommendation are confirmed
    assert world.log[-4:] == [
        ("confirmed", "tickets_routed"),
        ("confirmed", "recommendations"),
        ("write", "c1"),
        ("ack", "3"),
    ]


def test_an_unexpected_error_in_a_pure_step_is_a_processing_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise ValueError("a message that may quote the content: my card 4111")

    monkeypatch.setattr(messages, "route_and_recommend", broken)
    world = _world()
    world.run(make_router(world.collab, world.table), [_scored_message(0)])
    [letter] = world.letters()
    assert letter["reason"] == "processing_error"
    assert letter["detail"].startswith("route: ValueError at test_agent_delivery.py:")
    assert "4111" not in letter["detail"]


def test_the_intent_monitor_checks_the_key_and_confirms_spikes_first() -> None:
    world = _world()

    def ticket(n: int, at: datetime) -> FakeMessage:
        record = routed_ticket(
            f"t{n}", at, customer_id=f"c{n}", model_version="i1", sentiment_model_version="s1"
        )
        return FakeMessage("tickets.routed", n, b"card_not_working", encode(record))

    messages = [ticket(n, T0 + timedelta(minutes=n)) for n in range(30)]
    surge = T0 + timedelta(minutes=31)
    messages += [ticket(100 + n, surge + timedelta(seconds=4 * n)) for n in range(30)]
    stray = ticket(200, surge)
    stray.key = b"lost_or_stolen_card"
    world.run(make_intent_monitor(world.collab, world.table), [stray, *messages])
    assert [letter["reason"] for letter in world.letters()] == ["invalid_key"]
    assert world.sent("alerts") == 1
    alert = world.log.index(("confirmed", "alerts"))
    writes = list(itertools.takewhile(lambda e: e[0] == "write", world.log[alert + 1 :]))
    assert writes and writes[-1] == ("write", "card_not_working")  # chunks, then the head


def test_an_intent_named_like_a_window_chunk_is_dead_lettered_not_stored() -> None:
    """An intent's window is stored in rows keyed ``<intent>@<index>``: a ticket whose
    intent has that shape would overwrite another intent's chunk, so it is refused."""
    world = _world()
    record = routed_ticket("t1", T0, intent="card_not_working@2", model_version="i1")
    fine = routed_ticket("t2", T0, model_version="i1")
    messages = [
        FakeMessage("tickets.routed", 0, b"card_not_working@2", encode(record)),
        FakeMessage("tickets.routed", 1, b"card_not_working", encode(fine)),
    ]
    world.run(make_intent_monitor(world.collab, world.table), messages)
    assert [letter["reason"] for letter in world.letters()] == ["invalid_key"]
    assert "card_not_working" in world.table and "card_not_working@2" not in world.table


def test_a_batch_confirms_every_alert_once_before_it_writes_any_row() -> None:
    world = _world(batch_size=16)
    both = [
        *_burst(),
        *[_news(10 + n, -0.95, T0 + timedelta(seconds=30 * n), "ACME") for n in range(5)],
    ]
    world.run(make_ticker_monitor(world.collab, world.table), both)
    assert world.sent("alerts") == 2
    writes = [i for i, e in enumerate(world.log) if e[0] == "write"]
    confirms = [i for i, e in enumerate(world.log) if e[0] == "confirmed"]
    acks = [i for i, e in enumerate(world.log) if e[0] == "ack"]
    assert len(writes) == 2 and len(acks) == 10  # one row per ticker, one ack per record
    assert max(confirms) < min(writes) and max(writes) < min(acks)


def test_a_batch_gives_the_same_alerts_and_rows_as_one_record_at_a_time() -> None:
    records = [
        _news(n, -0.95 if n % 3 else 0.4, T0 + timedelta(seconds=20 * n), ("NOKIA", "ACME")[n % 2])
        for n in range(24)
    ]
    one, batch = _world(batch_size=1), _world(batch_size=16)
    one.run(make_ticker_monitor(one.collab, one.table), records)
    batch.run(make_ticker_monitor(batch.collab, batch.table), records)
    assert one.sent("alerts") == batch.sent("alerts") >= 1
    assert dict(one.table) == dict(batch.table)


def test_an_unreadable_row_in_a_batch_is_dropped_and_the_key_starts_afresh() -> None:
    world = _world(batch_size=16)
    dict.__setitem__(world.table, "NOKIA", {"subject": "NOKIA", "items": "old format"})
    world.run(make_ticker_monitor(world.collab, world.table), _burst(2))
    [letter] = world.letters()
    assert letter["reason"] == "invalid_state" and letter["offset"] == 0
    assert [e for e in world.log if e[0] in ("write", "delete")] == [("write", "NOKIA")]
    assert [item[0] for item in world.table["NOKIA"]["items"]] == ["n1"]


@dataclass
class FakeClassifier:
    task: str
    label: str
    version: str = "v1"
    provider: str = "CPUExecutionProvider"

    def predict(self, texts: list[str]) -> list[Prediction]:
        other = "neutral" if self.label != "neutral" else "positive"
        return [Prediction(self.label, {self.label: 0.9, other: 0.1}) for _ in texts]


def _raw_message(n: int, customer: str, key: bytes | None) -> FakeMessage:
    record = CustomerMessage(
        id=f"m{n}", sent_at=T0, customer_id=customer, channel="chat", text="hi"
    )
    return FakeMessage("messages.raw", n, key, encode(record), partition=n % 4)


def _scorer_world(route_in_scorer: bool) -> World:
    world = _world(batch_size=16)
    world.collab.intent = ModelSlot(FakeClassifier("intent", "card_arrival"))  # type: ignore[arg-type]
    world.collab.sentiment = ModelSlot(FakeClassifier("sentiment", "negative"))  # type: ignore[arg-type]
    world.collab.route_in_scorer = route_in_scorer
    return world


def test_the_message_scorer_routes_messages_keyed_by_their_customer_in_its_batch() -> None:
    world = _scorer_world(route_in_scorer=True)
    batch = [_raw_message(n, f"c{n % 2}", f"c{n % 2}".encode()) for n in range(4)]
    batch.append(_raw_message(4, "c9", b"not-the-customer"))  # repartitioned via the router
    world.run(make_message_scorer(world.collab, world.table), batch)
    assert world.sent("tickets_routed") == world.sent("recommendations") == 4
    assert world.sent("messages_scored") == 1
    # each customer's history counts both of its messages, written after every confirm
    assert [len(world.table[c]["contacts"]) for c in ("c0", "c1")] == [2, 2]
    writes = [i for i, e in enumerate(world.log) if e[0] == "write"]
    confirms = [i for i, e in enumerate(world.log) if e[0] == "confirmed"]
    assert len(writes) == 2 and max(confirms) < min(writes)


def test_without_routing_in_the_scorer_every_message_goes_to_messages_scored() -> None:
    world = _scorer_world(route_in_scorer=False)
    batch = [_raw_message(n, "c1", b"c1") for n in range(3)]
    world.run(make_message_scorer(world.collab, world.table), batch)
    assert world.sent("messages_scored") == 3 and world.sent("tickets_routed") == 0
    assert not any(e[0] == "write" for e in world.log)


class FakeStore:
    """The feedback store's ``record_predictions``, on a real executor thread."""

    def __init__(self, log: Log, fail: bool = False) -> None:
        self.log = log
        self.fail = fail
        self.rows: list[Any] = []

    def record_predictions(self, rows: Any) -> None:
        time.sleep(0.05)  # still writing while the outputs are confirmed
        if self.fail:
            raise OSError("database is locked")
        self.rows.extend(rows)
        self.log.append(("stored", ",".join(r.item_id for r in rows)))


def _with_store(world: World, fail: bool = False) -> FakeStore:
    store = FakeStore(world.log, fail)
    world.collab.record_predictions = store.record_predictions
    world.collab.store_executor = ThreadPoolExecutor(1)
    return store


def test_the_message_scorer_stores_the_intents_it_served_before_it_acknowledges() -> None:
    world = _scorer_world(route_in_scorer=True)
    store = _with_store(world)
    batch = [_raw_message(n, f"c{n}", f"c{n}".encode()) for n in range(3)]
    batch.append(_raw_message(3, "c9", b"not-the-customer"))  # routed later, by the router
    world.run(make_message_scorer(world.collab, world.table), batch)
    assert [(r.item_id, r.task, r.label, r.model_version) for r in store.rows] == [
        (f"m{n}", "intent", "card_arrival", "v1") for n in range(3)
    ]
    stored = world.log.index(("stored", "m0,m1,m2"))
    acks = [i for i, e in enumerate(world.log) if e[0] == "ack"]
    confirms = [i for i, e in enumerate(world.log) if e[0] == "confirmed"]
    assert len(acks) == 4 and stored < min(acks) and max(confirms) < min(acks)


def _phases(world: World, agent: str) -> dict[str, tuple[float, float]]:
    """(batches, seconds) observed per phase of ``agent``'s batches."""
    totals = phase_totals(world.collab.metrics.registry.collect(), agent)
    return {phase: (count, seconds) for phase, (count, seconds) in totals.items() if count}


def test_a_scorer_batch_shows_where_its_time_went() -> None:
    world = _scorer_world(route_in_scorer=True)
    _with_store(world)  # the served intents take 50 ms to store: part of the confirm
    batch = [_raw_message(n, f"c{n}", f"c{n}".encode()) for n in range(3)]
    started = time.perf_counter()
    world.run(make_message_scorer(world.collab, world.table), batch)
    elapsed = time.perf_counter() - started
    phases = _phases(world, "message-scorer")
    assert list(phases) == ["wait", "decode", "inference", "turn", "emit", "confirm", "ack"]
    assert all(count == 1 for count, _ in phases.values())  # one batch
    seconds = {phase: s for phase, (_, s) in phases.items()}
    assert seconds["confirm"] >= 0.05 and max(seconds, key=seconds.__getitem__) == "confirm"
    assert sum(seconds.values()) <= elapsed
    assert _phases(world, "router") == {}  # the scorers' phases only


def test_the_router_stores_the_intents_it_served() -> None:
    world = _world()
    store = _with_store(world)
    world.run(make_router(world.collab, world.table), [_scored_message(0), _scored_message(1)])
    assert [r.item_id for r in store.rows] == ["m0", "m1"]
    assert world.log.index(("stored", "m0")) < world.log.index(("ack", "0"))


def test_the_news_scorer_stores_one_sentiment_per_item_before_it_acknowledges() -> None:
    world = _world(batch_size=8)
    world.collab.sentiment = ModelSlot(FakeClassifier("sentiment", "negative"))  # type: ignore[arg-type]
    world.collab.dictionary = CompanyDictionary.load(CONFIG / "companies.toml")
    store = _with_store(world)
    items = [
        NewsItem(id=f"n{n}", headline=headline, published_at=T0, source="wire")
        for n, headline in enumerate(["Nokia and Apple sign a deal", "Markets are quiet"])
    ]
    raw = [FakeMessage("news.raw", n, None, encode(item)) for n, item in enumerate(items)]
    world.run(agents.make_news_scorer(world.collab), raw)
    assert world.sent("news_scored") >= 2  # a record per ticker, one item's prediction
    assert [(r.item_id, r.task, r.label, r.confidence) for r in store.rows] == [
        ("n0", "sentiment", "negative", 0.9),
        ("n1", "sentiment", "negative", 0.9),
    ]
    assert world.log.index(("stored", "n0,n1")) < world.log.index(("ack", "0"))


def test_a_store_failure_exits_without_acknowledging_or_writing_the_history() -> None:
    world = _scorer_world(route_in_scorer=True)
    _with_store(world, fail=True)
    with pytest.raises(Crash):
        world.run(make_message_scorer(world.collab, world.table), [_raw_message(0, "c0", b"c0")])
    assert ("confirmed", "tickets_routed") in world.log  # the confirm still ended
    assert not any(e[0] in ("ack", "write", "stored") for e in world.log)


def test_the_monitors_take_their_own_larger_batches() -> None:
    world = _world(batch_size=1)
    world.collab.monitor_batch_size = 8  # the scorers' batches stay at one record
    world.run(make_ticker_monitor(world.collab, world.table), _burst())
    writes = [i for i, e in enumerate(world.log) if e[0] == "write"]
    acks = [i for i, e in enumerate(world.log) if e[0] == "ack"]
    assert len(writes) == 1 and len(acks) == 5 and writes[0] < min(acks)  # one batch of 5
    world = _scorer_world(route_in_scorer=True)
    world.collab.batch_size, world.collab.monitor_batch_size = 1, 8
    batch = [_raw_message(n, f"c{n}", f"c{n}".encode()) for n in range(3)]
    world.run(make_message_scorer(world.collab, world.table), batch)
    assert [e[0] for e in world.log].count("write") == 3  # one batch per message


@dataclass
class LoggingClassifier(FakeClassifier):
    """Logs each model call (the n-th call of its task), from the pool's thread."""

    log: Log = field(default_factory=list)
    calls: int = 0
    slow_call: int = 0
    """This call takes 0.3 s."""

    def predict(self, texts: list[str]) -> list[Prediction]:
        self.calls += 1
        self.log.append(("predict", self.task, str(self.calls)))
        if self.calls == self.slow_call:
            time.sleep(0.3)
        return super().predict(texts)


def _overlap_world(batch_size: int, overlap: bool = True) -> World:
    world = _scorer_world(route_in_scorer=True)
    world.collab.batch_size = batch_size
    world.collab.overlap_batches = overlap
    world.collab.intent = ModelSlot(LoggingClassifier("intent", "card_arrival", log=world.log))  # type: ignore[arg-type]
    world.topics["tickets_routed"].delay_s = 0.05  # the broker is slow to confirm
    return world


def _two_batches_of_two() -> list[FakeMessage]:
    # customers c0 and c1 write to the same histories in both batches
    return [_raw_message(n, f"c{n % 2}", f"c{n % 2}".encode()) for n in range(4)]


def test_the_scorer_scores_its_next_batch_while_the_last_one_confirms_and_emits_in_order() -> None:
    world = _overlap_world(batch_size=16)
    world.run(make_message_scorer(world.collab, world.table), _two_batches_of_two(), chunk=2)
    log = world.log
    acks = [e[1] for e in log if e[0] == "ack"]
    assert acks == ["0", "1", "2", "3"]
    first_done = log.index(("ack", "1"))
    # the second batch (not full) was taken and scored while the first one waited for
    # its confirms
    assert log.index(("predict", "intent", "2")) < log.index(("confirmed", "tickets_routed"))
    # ... and emitted nothing before the first batch had confirmed, written and acked
    sends = [i for i, e in enumerate(log) if e == ("send", "tickets_routed")]
    assert len(sends) == 4 and sends[2] > first_done
    writes = [i for i, e in enumerate(log) if e[0] == "write"]
    assert len(writes) == 4 and max(writes[:2]) < first_done < min(writes[2:])
    # so each customer's history counts both of its messages, as one batch at a time does
    assert [len(world.table[c]["contacts"]) for c in ("c0", "c1")] == [2, 2]
    phases = _phases(world, "message-scorer")
    assert phases["turn"][0] == 2 and phases["turn"][1] >= 0.03  # the second batch waited


def test_a_scorer_takes_no_third_batch_while_the_second_waits_for_its_turn() -> None:
    world = _overlap_world(batch_size=16)
    messages = [_raw_message(n, f"c{n % 2}", f"c{n % 2}".encode()) for n in range(6)]
    world.run(make_message_scorer(world.collab, world.table), messages, chunk=2)
    log = world.log
    assert log.index(("predict", "intent", "2")) < log.index(("ack", "1"))  # overlapped
    assert log.index(("predict", "intent", "3")) > log.index(("ack", "1"))  # but two at most
    assert [e[1] for e in log if e[0] == "ack"] == [str(n) for n in range(6)]


def test_full_scorer_batches_run_one_after_the_other() -> None:
    world = _overlap_world(batch_size=2)  # a backlog: every batch full
    world.run(make_message_scorer(world.collab, world.table), _two_batches_of_two())
    assert world.log.index(("predict", "intent", "2")) > world.log.index(("ack", "1"))
    assert [e[1] for e in world.log if e[0] == "ack"] == ["0", "1", "2", "3"]


def test_without_overlap_a_scorer_takes_its_next_batch_once_the_last_one_acked() -> None:
    world = _overlap_world(batch_size=16, overlap=False)
    world.run(make_message_scorer(world.collab, world.table), _two_batches_of_two(), chunk=2)
    assert world.log.index(("predict", "intent", "2")) > world.log.index(("ack", "1"))


def test_a_scorer_stopped_between_two_overlapping_batches_acknowledges_neither() -> None:
    world = _overlap_world(batch_size=16)
    world.topics["tickets_routed"].delay_s = 10.0  # the first batch never gets its confirms
    world.collab.intent.classifier.slow_call = 2  # type: ignore[attr-defined]
    agent = make_message_scorer(world.collab, world.table)
    stream = FakeStream([FakeEvent(m) for m in _two_batches_of_two()], world.log, chunk=2)

    async def stop_while_both_are_in_flight() -> list[asyncio.Task[Any]]:
        running = asyncio.ensure_future(agent(stream))
        while ("predict", "intent", "2") not in world.log:
            await asyncio.sleep(0.01)
        running.cancel()  # the second batch is being scored, the first one confirms
        with pytest.raises(asyncio.CancelledError):
            await running
        await asyncio.sleep(0.05)
        return [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]

    left = asyncio.run(stop_while_both_are_in_flight())
    assert ("send", "tickets_routed") in world.log  # the first batch had emitted
    assert not [e for e in world.log if e[0] in ("ack", "write")]
    assert left == []  # neither batch goes on after the agent stopped


def test_a_failed_acknowledgement_in_an_overlapped_batch_exits_at_once() -> None:
    world = _overlap_world(batch_size=16)

    class FailingAcks(FakeStream):
        async def ack(self, event: FakeEvent) -> None:
            raise RuntimeError("consumer gone")

    stream = FailingAcks([FakeEvent(m) for m in _two_batches_of_two()[:2]], world.log, chunk=2)
    with pytest.raises(Crash):  # fatal: the process exits, nothing is committed
        asyncio.run(make_message_scorer(world.collab, world.table)(stream))
