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


def test_the_models_table_shows_shadow_the_decision_interval_and_drift(tmp_path: Path) -> None:
    registry = _registry(tmp_path)
    task = tmp_path / "sentiment"
    (task / "shadow.json").write_text(json.dumps({"task": "sentiment", "version": V2}))
    decision = {
        "at": "2026-11-30T09:10:00+00:00",
        "decision": "not_enough_evidence",
        "summary": "not enough evidence: recent accuracy +0.65 pts [-2.61, +3.92] p=0.754 "
        "n=153; ~2400 more labels needed",
    }
    with (task / V2 / "decisions.jsonl").open("a") as handle:
        handle.write(json.dumps(decision) + "\n")
    settings = Settings()
    state = LiveState(settings, registry, drift={"sentiment": 0.41}.get)
    console = Console(width=300, record=True)
    console.print(state.render())
    row = next(line for line in console.export_text().splitlines() if "sentiment" in line)
    cells = [cell.strip() for cell in row.split("│")]
    assert cells[3:5] == [V1, V2]  # the alias, then the version in shadow
    assert f"not enough evidence {V2} (2026-11-30T09:10:00+00:00): recent accuracy +0.65" in row
    assert "[-2.61, +3.92] p=0.754" in row
    assert "0.410" in row
