"""confirmed_and_stored: the batch's confirm and its store write awaited together, neither
left running when the other fails."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from streams.runtime.served import confirmed_and_stored


async def _confirm(log: list[str], fail: bool = False) -> int:
    await asyncio.sleep(0.01)
    if fail:
        raise ConnectionError("broker gone")
    log.append("confirmed")
    return 2


def _writer(log: list[str], fail: bool = False, delay: float = 0.1) -> Any:
    def record(rows: Any) -> None:
        time.sleep(delay)
        if fail:
            raise OSError("database is locked")
        log.append(f"stored {len(rows)} on {threading.current_thread().name}")

    return record


def test_both_end_before_it_returns_and_the_write_runs_on_the_executor() -> None:
    log: list[str] = []
    with ThreadPoolExecutor(1, thread_name_prefix="store") as executor:
        asyncio.run(confirmed_and_stored(_confirm(log), _writer(log), executor, ["a", "b"]))
    assert log == ["confirmed", "stored 2 on store_0"]  # side by side: confirm ends first


def test_a_failed_confirm_is_raised_once_the_write_has_ended() -> None:
    log: list[str] = []
    with ThreadPoolExecutor(1) as executor, pytest.raises(ConnectionError):
        asyncio.run(confirmed_and_stored(_confirm(log, fail=True), _writer(log), executor, ["a"]))
    assert len(log) == 1 and log[0].startswith("stored 1")


def test_a_failed_write_is_raised_once_the_confirm_has_ended() -> None:
    log: list[str] = []
    with ThreadPoolExecutor(1) as executor, pytest.raises(OSError, match="locked"):
        asyncio.run(
            confirmed_and_stored(_confirm(log), _writer(log, fail=True, delay=0.0), executor, ["a"])
        )
    assert log == ["confirmed"]


@pytest.mark.parametrize(("with_store", "rows"), [(False, ["a"]), (True, [])])
def test_no_store_or_no_rows_only_confirms(with_store: bool, rows: list[str]) -> None:
    log: list[str] = []
    record = _writer(log) if with_store else None
    with ThreadPoolExecutor(1) as executor:
        asyncio.run(confirmed_and_stored(_confirm(log), record, executor, rows))
    assert log == ["confirmed"]
