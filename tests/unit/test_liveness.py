"""The event-loop heartbeat and /healthz, judged without a loop, a thread or a socket."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest

from streams.runtime.liveness import HEALTH_PATH, Heartbeat, health_app, judge


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_fresh_heartbeat_is_healthy() -> None:
    verdict = judge(last_beat=100.0, started=0.0, now=101.5, max_age_s=30)
    assert verdict.healthy
    assert verdict.age_s == pytest.approx(1.5)
    assert verdict.reason.startswith("ok")


def test_a_heartbeat_as_old_as_the_limit_is_stalled_and_says_what_to_tune() -> None:
    verdict = judge(last_beat=100.0, started=0.0, now=130.0, max_age_s=30)
    assert not verdict.healthy
    assert verdict.age_s == pytest.approx(30.0)
    assert verdict.reason.startswith("stalled")
    assert "30.0 s old" in verdict.reason and "STREAMSENSE_LIVENESS_MAX_AGE_S" in verdict.reason


def test_before_the_first_beat_the_loop_counts_as_starting_not_alive() -> None:
    verdict = judge(last_beat=None, started=50.0, now=53.0, max_age_s=30)
    assert not verdict.healthy
    assert verdict.age_s == pytest.approx(3.0)
    assert verdict.reason.startswith("starting")


def test_a_clock_that_goes_backwards_gives_no_negative_age() -> None:
    assert judge(last_beat=10.0, started=0.0, now=9.0, max_age_s=30).age_s == 0.0


def test_heartbeat_ages_with_the_clock_and_a_beat_makes_it_fresh_again() -> None:
    clock = Clock()
    beat = Heartbeat(max_age_s=5, clock=clock)
    clock.now += 2
    assert not beat.verdict().healthy  # no beat yet
    assert beat.age_s() == pytest.approx(2)
    beat.beat()
    clock.now += 4.9
    assert beat.verdict().healthy
    clock.now += 0.1
    assert not beat.verdict().healthy
    assert beat.age_s() == pytest.approx(5)
    beat.beat()
    assert beat.verdict().healthy and beat.age_s() == 0


def _call(app: Any, path: str) -> tuple[str, dict[str, str], bytes]:
    seen: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        seen["status"], seen["headers"] = status, dict(headers)

    body: Iterable[bytes] = app({"PATH_INFO": path, "REQUEST_METHOD": "GET"}, start_response)
    return seen["status"], seen["headers"], b"".join(body)


def _metrics_app(environ: Any, start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"metrics"]


def test_healthz_answers_200_while_fresh_and_503_with_the_reason_when_stalled() -> None:
    clock = Clock()
    beat = Heartbeat(max_age_s=30, clock=clock)
    app = health_app(_metrics_app, beat)
    status, _, body = _call(app, HEALTH_PATH)
    assert status.startswith("503") and body.startswith(b"starting")
    beat.beat()
    status, headers, body = _call(app, HEALTH_PATH)
    assert status == "200 OK" and body.startswith(b"ok")
    assert headers["Content-Length"] == str(len(body))
    clock.now += 31
    status, _, body = _call(app, HEALTH_PATH)
    assert status == "503 Service Unavailable"
    assert body.startswith(b"stalled: event-loop heartbeat 31.0 s old")


@pytest.mark.parametrize("path", ["/metrics", "/", "/healthz/extra"])
def test_every_other_path_is_the_metrics_app(path: str) -> None:
    app = health_app(_metrics_app, Heartbeat(max_age_s=30))
    assert _call(app, path) == ("200 OK", {"Content-Type": "text/plain"}, b"metrics")
