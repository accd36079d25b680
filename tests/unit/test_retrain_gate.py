"""The promotion gate: when it promotes, and that every refusal says why with numbers."""

from __future__ import annotations

import pytest

from retrain.gate import EvalResult, decide


def _eval(
    version: str, recent: float, heldout: float, recent_f1: float | None = None
) -> EvalResult:
    return EvalResult(
        version=version,
        recent_accuracy=recent,
        recent_macro_f1=recent if recent_f1 is None else recent_f1,
        recent_n=400,
        heldout_accuracy=heldout,
        heldout_macro_f1=heldout,
        heldout_n=970,
    )


CHAMPION = _eval("v0001-20261128T100000", recent=0.62, heldout=0.85)


def test_promotes_a_candidate_better_on_recent_feedback_within_tolerance() -> None:
    decision = decide(_eval("v0002-20261128T110000", 0.80, 0.845), CHAMPION, tolerance=0.01)
    assert decision.promote
    assert all(reason.startswith("ok") for reason in decision.reasons)
    assert decision.numbers["recent_accuracy_delta"] == pytest.approx(0.18)
    assert decision.numbers["heldout_accuracy_delta"] == pytest.approx(-0.005)


def test_refuses_a_candidate_that_forgets_the_original_domain() -> None:
    decision = decide(_eval("v0002-20261128T110000", 0.80, 0.83), CHAMPION, tolerance=0.01)
    assert not decision.promote
    failed = [r for r in decision.reasons if r.startswith("FAILED")]
    assert len(failed) == 1
    assert "held-out accuracy 0.8300 vs champion 0.8500" in failed[0]
    assert "-2.00 points" in failed[0]
    assert "at most 1.00 points" in failed[0]


def test_loss_exactly_at_the_tolerance_is_allowed() -> None:
    decision = decide(_eval("v2", 0.70, 0.84), CHAMPION, tolerance=0.01)
    assert decision.promote


def test_refuses_a_candidate_that_is_not_strictly_better_on_recent_feedback() -> None:
    decision = decide(_eval("v2", 0.62, 0.86), CHAMPION)
    assert not decision.promote
    failed = [r for r in decision.reasons if r.startswith("FAILED")]
    assert failed == [
        "FAILED: recent-feedback accuracy 0.6200 vs champion 0.6200 (+0.00 points; must be "
        "higher) on 400 rows"
    ]


def test_refuses_higher_accuracy_bought_with_a_lower_macro_f1() -> None:
    # e.g. a candidate that predicts the majority class more often
    decision = decide(_eval("v2", 0.66, 0.85, recent_f1=0.50), CHAMPION)
    assert not decision.promote
    assert any("macro-F1 0.5000 vs champion 0.6200" in r for r in decision.reasons)


def test_refuses_without_recent_feedback() -> None:
    empty = EvalResult("v2", 0.0, 0.0, 0, 0.9, 0.9, 970)
    decision = decide(empty, CHAMPION)
    assert not decision.promote
    assert any("no recent feedback" in r for r in decision.reasons)


def test_decision_serialises_for_the_registry() -> None:
    record = decide(_eval("v2", 0.5, 0.5), CHAMPION).as_dict()
    assert record["decision"] == "refuse"
    assert record["numbers"]["champion"] == CHAMPION.version
    assert len(record["reasons"]) == 3


def test_negative_tolerance_is_rejected() -> None:
    with pytest.raises(ValueError, match="tolerance"):
        decide(CHAMPION, CHAMPION, tolerance=-0.1)
