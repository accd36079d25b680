"""What the deployment files rely on, shown on real processes and a real event loop.

- a worker answers ``/healthz`` with 200 while its event loop runs (the probe Kubernetes
  uses), and the same thread-served endpoint answers 503 once a real asyncio loop is
  blocked;
- the scheduler serves ``/metrics`` on ``STREAMSENSE_SCHEDULER_METRICS_PORT`` (the variable
  the manifests and the compose file set), not on ``STREAMSENSE_METRICS_PORT``;
- with ``STREAMSENSE_REQUIRE_SHARED_STORE`` a worker and the scheduler refuse a SQLite
  feedback store in one line, before they touch Kafka or the registry.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from deploy.broker import free_port
from streams.runtime.liveness import HEALTH_PATH, Heartbeat, serve
from streams.runtime.metrics import Metrics
from tests.pipeline_helpers import Pipeline

pytestmark = pytest.mark.integration

HEARTBEAT_METRIC = "streamsense_event_loop_heartbeat_age_seconds"


def _get(url: str) -> tuple[int, str]:
    """Status and body of a GET; an HTTP error status is an answer, not an exception."""
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _wait_for(
    answer: Callable[[], tuple[int, str] | None], timeout_s: float, what: str
) -> tuple[int, str]:
    """Poll ``answer`` until it returns something; fail with ``what`` otherwise."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        got = answer()
        if got is not None:
            return got
        time.sleep(0.1)
    pytest.fail(f"{what} within {timeout_s} s")


def _wait_for_status(
    url: str, wanted: Callable[[int], bool], timeout_s: float, what: str
) -> tuple[int, str]:
    def answer() -> tuple[int, str] | None:
        got = _get(url)
        return got if wanted(got[0]) else None

    return _wait_for(answer, timeout_s, what)


def _metric(text: str, name: str) -> float:
    [line] = [ln for ln in text.splitlines() if ln.startswith(f"{name} ")]
    return float(line.split()[1])


# -- /healthz over a real event loop ------------------------------------------------------


@pytest.fixture
def running_loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="test-loop", daemon=True)
    thread.start()
    yield loop
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=10)
    loop.close()


def test_healthz_turns_503_while_the_event_loop_is_blocked_and_200_after(
    running_loop: asyncio.AbstractEventLoop,
) -> None:
    metrics = Metrics.create()
    heartbeat = Heartbeat(max_age_s=0.5, interval_s=0.05)
    metrics.event_loop_heartbeat_age.set_function(heartbeat.age_s)
    server = serve("127.0.0.1", 0, metrics.registry, heartbeat)
    base = f"http://127.0.0.1:{server.server_port}"
    beating = asyncio.run_coroutine_threadsafe(heartbeat.run(), running_loop)
    try:
        status, body = _wait_for_status(
            base + HEALTH_PATH,
            lambda code: code == 200,
            10,
            "the heartbeat task did not make /healthz answer 200",
        )
        assert body.startswith("ok")
        # a callback that blocks the loop, as a synchronous call in a coroutine would
        running_loop.call_soon_threadsafe(time.sleep, 3.0)
        status, body = _wait_for_status(
            base + HEALTH_PATH,
            lambda code: code != 200,
            2.5,
            "/healthz did not notice the blocked loop",
        )
        assert status == 503
        assert body.startswith("stalled: event-loop heartbeat"), body
        # /metrics, answered by the same thread, stays up and shows the age
        status, text = _get(base + "/metrics")
        assert status == 200
        assert _metric(text, HEARTBEAT_METRIC) >= 0.5
        _wait_for_status(
            base + HEALTH_PATH,
            lambda code: code == 200,
            5,
            "/healthz did not recover once the loop ran again",
        )
    finally:
        beating.cancel()
        server.shutdown()
        server.server_close()


# -- a real worker ------------------------------------------------------------------------


def test_a_running_worker_answers_healthz_200_and_exports_its_heartbeat_age(
    kafka_bootstrap: str, trained_registry: Path, tmp_path: Path, unique: str
) -> None:
    pipe = Pipeline.create(kafka_bootstrap, unique, trained_registry, tmp_path)
    proc = pipe.start_worker()
    base = f"http://127.0.0.1:{pipe.metrics_ports[0]}"

    def healthy() -> tuple[int, str] | None:
        if proc.poll() is not None:
            pytest.fail(f"worker exited {proc.returncode}\n{pipe.logs()}")
        try:
            got = _get(base + HEALTH_PATH)
        except OSError:  # not listening yet: models still loading
            return None
        return got if got[0] == 200 else None

    try:
        _, body = _wait_for(healthy, 240, "the worker's /healthz did not answer 200")
        assert body.startswith("ok: event-loop heartbeat")
        status, text = _get(base + "/metrics")
        assert status == 200
        assert 0 <= _metric(text, HEARTBEAT_METRIC) < pipe.settings.liveness_max_age_s
    finally:
        pipe.stop_all()


# -- the scheduler ------------------------------------------------------------------------


def _base_env(tmp_path: Path, **values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMSENSE_")}
    env.update(
        {
            "PYTHONUNBUFFERED": "1",
            # nothing here may need Kafka: an address where nothing listens
            "STREAMSENSE_KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()}",
            "STREAMSENSE_STATE_DIR": str(tmp_path / "state"),
            "STREAMSENSE_REGISTRY_DIR": str(tmp_path / "registry"),
            "STREAMSENSE_FEEDBACK_DB_URL": f"sqlite:///{tmp_path / 'feedback.db'}",
            **{f"STREAMSENSE_{k.upper()}": v for k, v in values.items()},
        }
    )
    return env


def _refused(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(2)
        return sock.connect_ex(("127.0.0.1", port)) != 0


def test_the_scheduler_serves_metrics_on_scheduler_metrics_port(tmp_path: Path) -> None:
    (tmp_path / "registry").mkdir()
    port, worker_port = free_port(), free_port()
    env = _base_env(tmp_path, scheduler_metrics_port=str(port), metrics_port=str(worker_port))
    log = tmp_path / "scheduler.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streams.cli",
                "scheduler",
                "--cron",
                "",
                "--min-new-labels",
                "0",
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def running() -> tuple[int, str] | None:
        if proc.poll() is not None:
            pytest.fail(f"scheduler exited {proc.returncode}\n{log.read_text()[-4000:]}")
        return (0, "") if "retrain scheduler running" in log.read_text() else None

    try:
        _wait_for(running, 120, "the scheduler did not start")
        status, text = _get(f"http://127.0.0.1:{port}/metrics")
        assert status == 200
        assert 'streamsense_retrain_runs_total{outcome="failed",task="sentiment"} 0.0' in text
        assert HEARTBEAT_METRIC not in text  # a worker's metric: the scheduler has no loop
        assert _refused(worker_port), "the scheduler must not bind STREAMSENSE_METRICS_PORT"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0, log.read_text()[-4000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# -- the shared-store rule ----------------------------------------------------------------


@pytest.mark.parametrize("command", ["worker", "scheduler"])
def test_a_sqlite_store_is_refused_in_one_line_when_a_shared_one_is_required(
    command: str, tmp_path: Path
) -> None:
    env = _base_env(tmp_path, require_shared_store="true", metrics_port=str(free_port()))
    run = subprocess.run(
        [sys.executable, "-m", "streams.cli", command],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 2, output[-4000:]
    assert "Traceback" not in output, output[-4000:]
    [line] = [ln for ln in run.stderr.splitlines() if ln.startswith("error:")]
    assert "STREAMSENSE_REQUIRE_SHARED_STORE" in line
    assert "STREAMSENSE_FEEDBACK_DB_URL" in line and "postgresql://" in line
    assert not (tmp_path / "feedback.db").exists(), "refused before the store was opened"
