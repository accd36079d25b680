"""The outbox tells the producer to send once a batch waits for its confirms (the glue
logic; ``tests/integration/test_send_now.py`` shows it on a real broker and worker)."""

from __future__ import annotations

import asyncio
import logging
from types import SimpleNamespace
from typing import Any

import pytest

from streams.runtime import delivery
from streams.runtime.delivery import Outbox, send_now_for
from streams.runtime.metrics import Metrics


class Topic:
    def __init__(self, log: list[str]) -> None:
        self.log = log

    async def send(self, key: bytes | None, value: bytes, force: bool) -> asyncio.Future[None]:
        self.log.append("queued")
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        # the broker confirms only records the producer has sent
        asyncio.get_running_loop().call_later(0.01, future.set_result, None)
        return future

    def get_topic_name(self) -> str:
        return "out"


def test_the_producer_is_told_to_send_when_the_batch_waits_and_not_before() -> None:
    log: list[str] = []

    async def run() -> None:
        outbox = Outbox(Metrics.create(), lambda: log.append("send now"))
        await outbox.send(Topic(log), b"k", b"v")
        await outbox.send(Topic(log), b"k", b"v")
        assert "send now" not in log
        assert await outbox.confirm() == 2
        assert await outbox.confirm() == 0  # nothing pending: nothing to send

    asyncio.run(run())
    assert log == ["queued", "queued", "send now"]


class Accumulator:
    def __init__(self) -> None:
        self.flushes = 0

    async def flush_for_commit(self) -> None:
        self.flushes += 1


def _app(producer: Any) -> Any:
    return SimpleNamespace(producer=SimpleNamespace(_producer=producer))


def test_send_now_closes_the_producers_open_batches() -> None:
    accumulator = Accumulator()
    send_now = send_now_for(_app(SimpleNamespace(_message_accumulator=accumulator)))

    async def run() -> None:
        send_now()
        await asyncio.sleep(0)  # the flush runs as a task of its own

    asyncio.run(run())
    assert accumulator.flushes == 1


def test_without_a_started_producer_there_is_nothing_to_send() -> None:
    send_now_for(_app(None))()  # no error, and no flush scheduled
    assert not delivery._FLUSHES


def test_a_producer_that_cannot_be_told_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    send_now = send_now_for(_app(SimpleNamespace()))  # no accumulator: another driver
    with caplog.at_level(logging.WARNING, logger="streams.runtime.delivery"):
        send_now()
        send_now()
    assert [r.getMessage() for r in caplog.records] == [
        "the producer cannot be told to send now; sends wait the linger"
    ]
