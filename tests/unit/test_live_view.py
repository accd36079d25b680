"""The live view's models table: versions in service, the alias, the last gate decision."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console

from models.registry import Registry
from streams.cli.live import LiveState, latest_decision
from streams.settings import Settings

V1 = "v0001-20261128T131000"
V2 = "v0002-20261129T090000"


def _registry(root: Path) -> Registry:
    task = root / "sentiment"
    for version in (V1, V2):
        (task / version).mkdir(parents=True)
    (task / "production.json").write_text(json.dumps({"task": "sentiment", "version": V1}))
    decision = {
        "at": "2026-11-29T09:10:00+00:00",
        "decision": "refuse",
        "reasons": ["held-out accuracy -1.24 points > tolerance 1.00"],
    }
    (task / V2 / "decisions.jsonl").write_text(json.dumps(decision) + "\n")
    return Registry(root)


def test_the_models_table_shows_service_alias_and_last_decision(tmp_path: Path) -> None:
    registry = _registry(tmp_path)
    assert latest_decision(registry, "sentiment") is not None
    settings = Settings()
    state = LiveState(settings, registry)
    state.add(settings.topic_news_scored, {"id": "n1", "model_version": V1})
    console = Console(width=250, record=True)
    console.print(state.render())
    text = console.export_text()
    row = next(line for line in text.splitlines() if "sentiment" in line and V1 in line)
    assert row.count(V1) == 2  # in service and named by the alias
    assert f"refuse {V2}" in row and "held-out accuracy -1.24" in row
    intent = next(line for line in text.splitlines() if line.strip("│ ").startswith("intent"))
    assert "-" in intent
