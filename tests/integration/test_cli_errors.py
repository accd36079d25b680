"""Start-up refusals are one clear line and a non-zero exit, never a traceback.

Each case runs the real console script (``python -m streams.cli``) against the real broker,
the way an operator meets it: a worker with no production model, a worker and a scheduler
whose feedback database cannot be reached.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from deploy.broker import free_port
from models.registry import Registry
from tests.model_fixtures import copy_registry

pytestmark = pytest.mark.integration


def _run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("STREAMSENSE_")}
    return subprocess.run(
        [sys.executable, "-m", "streams.cli", *args],
        env={**base, "PYTHONUNBUFFERED": "1", **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def _assert_one_line_error(run: subprocess.CompletedProcess[str], *needles: str) -> str:
    output = run.stdout + run.stderr
    assert run.returncode == 2, f"exit {run.returncode}\n{output[-4000:]}"
    assert "Traceback" not in output, output[-4000:]
    errors = [line for line in run.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, run.stderr[-4000:]
    for needle in needles:
        assert needle in errors[0], errors[0]
    return errors[0]


def _env(kafka_bootstrap: str, tmp_path: Path, unique: str, **extra: str) -> dict[str, str]:
    return {
        "STREAMSENSE_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "STREAMSENSE_STATE_DIR": str(tmp_path / "state"),
        "STREAMSENSE_APP_ID": f"cli-errors-{unique}",
        "STREAMSENSE_METRICS_PORT": str(free_port()),
        "STREAMSENSE_FEEDBACK_DB_URL": f"sqlite:///{tmp_path}/feedback.db",
        **{f"STREAMSENSE_{k.upper()}": v for k, v in extra.items()},
    }


def test_worker_without_a_production_model_says_so_in_one_line(
    kafka_bootstrap: str, tmp_path: Path, unique: str
) -> None:
    empty = tmp_path / "empty-registry"
    empty.mkdir()
    run = _run(
        ["worker"], _env(kafka_bootstrap, tmp_path, unique, registry_dir=str(empty)), tmp_path
    )
    line = _assert_one_line_error(run)
    assert "sentiment" in line or "intent" in line, line


def _unreachable_postgres() -> tuple[str, str]:
    port = free_port()  # nothing listens there
    return f"postgresql://streamsense:hunter2-secret@127.0.0.1:{port}/feedback", str(port)


@pytest.mark.parametrize("command", ["worker", "scheduler"])
def test_an_unreachable_feedback_database_is_one_line_without_the_password(
    command: str, kafka_bootstrap: str, trained_registry: Path, tmp_path: Path, unique: str
) -> None:
    url, port = _unreachable_postgres()
    env = _env(
        kafka_bootstrap,
        tmp_path,
        unique,
        registry_dir=str(trained_registry),
        feedback_db_url=url,
    )
    run = _run([command], env, tmp_path)
    _assert_one_line_error(run, port)
    assert "hunter2-secret" not in run.stdout + run.stderr


def test_worker_with_a_tampered_model_names_the_file_in_one_line(
    kafka_bootstrap: str, trained_registry: Path, tmp_path: Path, unique: str
) -> None:
    registry = copy_registry(trained_registry, tmp_path / "registry")
    version = Registry(registry).production("sentiment")
    assert version is not None
    model = next((registry / "sentiment" / version).glob("model*.onnx"))
    model.write_bytes(model.read_bytes()[:-16] + b"\x00" * 16)
    env = _env(kafka_bootstrap, tmp_path, unique, registry_dir=str(registry))
    line = _assert_one_line_error(_run(["worker"], env, tmp_path), model.name)
    assert "sha256" in line, line
