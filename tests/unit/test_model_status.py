"""`models show`'s status lines: the last gate decision and, apart, the last shadow review."""

from __future__ import annotations

from pathlib import Path

from models.registry import Registry
from streams.cli.model_status import model_status, status_lines


def _version(registry: Registry) -> str:
    with registry.staging("sentiment") as staging:
        (staging / "labels.json").write_text("[]", encoding="utf-8")
        return registry.commit("sentiment", staging, {"labels": []})


def test_a_shadow_review_is_shown_apart_from_the_gate_decision_it_follows(
    tmp_path: Path,
) -> None:
    registry = Registry(tmp_path)
    candidate = _version(registry)
    gate = {"decision": "promote", "summary": "promote: recent accuracy +4.00 pts [+1.0, +7.0]"}
    registry.record_decision("sentiment", candidate, {**gate, "at": "2026-12-06T10:00:00+00:00"})
    review = {"decision": "shadow_wait", "summary": "shadow review: wait (19 labelled items)"}
    registry.record_decision("sentiment", candidate, {**review, "at": "2026-12-06T11:00:00+00:00"})

    lines = status_lines(model_status(registry, "sentiment"))

    assert lines[1].startswith(f"  last gate decision: promote {candidate} (2026-12-06T10")
    assert "recent accuracy +4.00 pts" in lines[1]
    assert lines[2].startswith(f"  last shadow review: shadow review {candidate} (2026-12-06T11")
    assert "wait (19 labelled items)" in lines[2]


def test_without_a_shadow_review_there_is_no_review_line(tmp_path: Path) -> None:
    registry = Registry(tmp_path)
    candidate = _version(registry)
    registry.record_decision("sentiment", candidate, {"decision": "refuse", "summary": "refuse"})

    lines = status_lines(model_status(registry, "sentiment"))

    assert [line.split(":")[0] for line in lines] == [
        "sentiment",
        "  last gate decision",
        "  drift score (largest PSI of the served predictions)",
    ]
