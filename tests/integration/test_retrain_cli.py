"""The retrain commands against the real broker: feedback ids, control records, status."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from models.data import load_twitter
from streams.cli import retrain as cli_retrain
from streams.core.records import Feedback, ModelControl, decode
from streams.edges.replay import news_items
from streams.settings import Settings
from tests.kafka_helpers import consume_until

pytestmark = pytest.mark.integration


def _settings(bootstrap: str, unique: str, tmp_path: Path) -> Settings:
    topics: dict[str, Any] = {
        name: f"{default}-{unique}"
        for name, default in Settings().model_dump().items()
        if name.startswith("topic_") and isinstance(default, str)
    }
    return Settings(
        kafka_bootstrap=bootstrap,
        registry_dir=tmp_path / "registry",
        feedback_db_url=f"sqlite:///{tmp_path}/feedback.db",
        state_dir=tmp_path / "state",
        **topics,
    )


def _app(settings: Settings) -> typer.Typer:
    app = typer.Typer()
    cli_retrain.register(app, lambda: settings)
    return app


def test_feedback_ids_match_the_replayed_items(
    kafka_bootstrap: str, unique: str, tmp_path: Path
) -> None:
    settings = _settings(kafka_bootstrap, unique, tmp_path)
    tweets = tmp_path / "tweets.csv"
    tweets.write_text('text,label\n"$AAPL beats, shares up",1\nFed holds rates,2\nOil slumps,0\n')
    replay_ids = [item.item_id for item in news_items(load_twitter(tweets))]

    result = CliRunner().invoke(
        _app(settings),
        [
            *("feedback", "--task", "sentiment", "--input", str(tweets)),
            *("--skip", "1", "--limit", "5", "--annotator", "desk"),
        ],
    )

    assert result.exit_code == 0, result.output
    assert "sent 2 feedback record(s)" in result.output
    raw = consume_until(kafka_bootstrap, settings.topic_feedback, lambda v: len(v) >= 2)
    records = sorted((decode(Feedback, r) for r in raw), key=lambda f: f.item_id)
    assert [r.item_id for r in records] == replay_ids[1:]
    assert [(r.label, r.text, r.annotator) for r in records] == [
        ("neutral", "Fed holds rates", "desk"),
        ("negative", "Oil slumps", "desk"),
    ]


def test_a_promotion_is_announced_on_the_control_topic(
    kafka_bootstrap: str, unique: str, tmp_path: Path
) -> None:
    settings = _settings(kafka_bootstrap, unique, tmp_path)
    cli_retrain.make_publisher(settings)("sentiment", "v0002-20261128T140000", "promote")
    raw = consume_until(kafka_bootstrap, settings.topic_models_control, lambda v: len(v) >= 1)
    control = decode(ModelControl, raw[0])
    assert (control.task, control.version, control.action) == (
        "sentiment",
        "v0002-20261128T140000",
        "promote",
    )


def test_retrain_without_a_production_model_says_what_to_do(tmp_path: Path) -> None:
    settings = _settings("127.0.0.1:9", "none", tmp_path)
    runner = CliRunner()
    status = runner.invoke(_app(settings), ["retrain", "--task", "sentiment"])
    assert status.exit_code == 0, status.output
    assert "production none" in status.output
    result = runner.invoke(_app(settings), ["retrain", "--task", "sentiment", "--now"])
    assert result.exit_code == 2
    assert "no production version" in result.output
