"""`streamsense label-candidates` on a real registry model: what annotators are offered."""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from models.data import TWITTER_FILE, load_twitter
from models.registry import Registry
from retrain.active import margins
from streams.cli import retrain as cli_retrain
from streams.settings import Settings
from tests.model_fixtures import fixture_data_dir

pytestmark = pytest.mark.integration


def _flat(output: str) -> str:
    """The console wraps long lines: compare with the wrapping undone."""
    return " ".join(output.split())


def _app(registry: Path, tmp_path: Path) -> typer.Typer:
    settings = Settings(
        registry_dir=registry,
        feedback_db_url=f"sqlite:///{tmp_path}/feedback.db",
        state_dir=tmp_path / "state",
    )
    app = typer.Typer()
    cli_retrain.register(app, lambda: settings)
    return app


def test_the_least_confident_stream_items_are_offered_for_labelling(
    trained_registry: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    tweets = load_twitter(fixture_data_dir() / TWITTER_FILE).subset(range(60))
    stream = tmp_path / "stream.csv"
    with stream.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text"])
        writer.writerows([t] for t in [*tweets.texts, tweets.texts[0]])  # one repeated text
    out = tmp_path / "to-label.csv"
    caplog.set_level(logging.DEBUG)

    result = CliRunner().invoke(
        _app(trained_registry, tmp_path),
        [
            *("label-candidates", "--task", "sentiment", "--input", str(stream)),
            *("--out", str(out), "--count", "15"),
        ],
    )

    assert result.exit_code == 0, result.output
    assert "wrote 15 of 60 item(s)" in _flat(result.output)
    with out.open(encoding="utf-8", newline="") as handle:
        offered = list(csv.DictReader(handle))
    assert len(offered) == 15
    assert all(row["label"] == "" and row["reason"] == "least confident" for row in offered)
    # they are the 15 items production is least sure of, the closest call first
    classifier = Registry(trained_registry).load("sentiment")
    probs = np.asarray(
        [[p.probs[n] for n in classifier.labels] for p in classifier.predict(tweets.texts)]
    )
    expected = [f"tw-{i}" for i in np.argsort(margins(probs), kind="stable")[:15]]
    assert [row["id"] for row in offered] == expected
    assert [float(r["margin"]) for r in offered] == sorted(float(r["margin"]) for r in offered)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert not any(text[:30] in logged for text in tweets.texts)  # no customer text in logs


def test_the_same_version_as_candidate_disputes_nothing_and_bad_input_is_one_line(
    trained_registry: Path, tmp_path: Path
) -> None:
    app = _app(trained_registry, tmp_path)
    production = Registry(trained_registry).production("sentiment")
    assert production is not None
    stream = tmp_path / "stream.jsonl"
    stream.write_text('{"id": "n-1", "text": "Oil slumps"}\n{"id": "n-2", "text": "$X up"}\n')
    out = tmp_path / "to-label.jsonl"
    runner = CliRunner()
    same = runner.invoke(
        app,
        [
            *("label-candidates", "--task", "sentiment", "--input", str(stream)),
            *("--out", str(out), "--candidate", production),
        ],
    )
    assert same.exit_code == 0, same.output
    assert "wrote 2 of 2 item(s)" in _flat(same.output) and "(0 disputed" in _flat(same.output)

    bad = runner.invoke(
        app,
        [
            *("label-candidates", "--task", "sentiment", "--input", str(tmp_path / "no.csv")),
            *("--out", str(out)),
        ],
    )
    assert bad.exit_code == 2
    assert f"items file not found: {tmp_path / 'no.csv'}" in _flat(bad.output)

    method = runner.invoke(app, ["retrain", "--task", "sentiment", "--now", "--method", "qlora"])
    assert method.exit_code == 2
    assert "expected one of full, lora" in _flat(method.output)
