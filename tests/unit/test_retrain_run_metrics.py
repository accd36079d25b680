"""What the scheduler counts for a finished retrain run (pure: a fresh metrics registry)."""

from __future__ import annotations

import pytest

from retrain.gate import PROMOTE, REFUSE, GateDecision
from retrain.job import RetrainReport
from streams.cli.retrain import _observe
from streams.runtime.metrics import Metrics


def _decisions(metrics: Metrics, task: str) -> dict[str, float]:
    values: dict[str, float] = {}
    for family in metrics.registry.collect():
        for sample in family.samples:
            if sample.name == "streamsense_gate_decisions_total" and sample.labels["task"] == task:
                values[sample.labels["decision"]] = sample.value
    return values


@pytest.mark.parametrize(
    "status, outcome, counted",
    [
        ("promoted", PROMOTE, "promoted"),
        ("shadow", PROMOTE, "shadowed"),  # passed the gate, but serves in shadow only
        ("refused", REFUSE, "rejected"),
    ],
)
def test_a_gate_pass_that_goes_into_shadow_is_not_counted_as_a_promotion(
    status: str, outcome: str, counted: str
) -> None:
    metrics = Metrics.create()
    decision = GateDecision(outcome=outcome, reasons=[], numbers={})
    report = RetrainReport(task="sentiment", status=status, message="", decision=decision)

    _observe(metrics, report)

    decisions = _decisions(metrics, "sentiment")
    assert decisions.pop(counted) == 1.0
    assert all(value == 0.0 for value in decisions.values())
