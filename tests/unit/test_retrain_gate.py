"""The promotion gate: promote on a significant gain, refuse on a loss, hold back on noise."""

from __future__ import annotations

import pytest

from retrain.gate import (
    NOT_ENOUGH_EVIDENCE,
    PROMOTE,
    REFUSE,
    EvalResult,
    GatePolicy,
    decide,
)

LABELS = 3


def _paired(
    n: int, champion_only: int, candidate_only: int, both_wrong: int = 0
) -> tuple[list[int], list[int], list[int]]:
    """Truth, champion and candidate predictions with the given discordant counts."""
    truth = [i % LABELS for i in range(n)]
    champ = list(truth)
    cand = list(truth)
    i = 0
    for _ in range(champion_only):
        cand[i] = (truth[i] + 1) % LABELS
        i += 1
    for _ in range(candidate_only):
        champ[i] = (truth[i] + 1) % LABELS
        i += 1
    for _ in range(both_wrong):
        champ[i] = cand[i] = (truth[i] + 2) % LABELS
        i += 1
    return truth, champ, cand


def _acc(truth: list[int], pred: list[int]) -> float:
    return sum(t == p for t, p in zip(truth, pred, strict=True)) / max(len(truth), 1)


def _pair(
    recent: tuple[list[int], list[int], list[int]],
    heldout: tuple[list[int], list[int], list[int]],
) -> tuple[EvalResult, EvalResult]:
    def one(version: str, k: int) -> EvalResult:
        return EvalResult(
            version=version,
            recent_accuracy=_acc(recent[0], recent[k]),
            recent_macro_f1=_acc(recent[0], recent[k]),
            recent_n=len(recent[0]),
            heldout_accuracy=_acc(heldout[0], heldout[k]),
            heldout_macro_f1=_acc(heldout[0], heldout[k]),
            heldout_n=len(heldout[0]),
            n_labels=LABELS,
            recent_truth=tuple(recent[0]),
            recent_predicted=tuple(recent[k]),
            heldout_truth=tuple(heldout[0]),
            heldout_predicted=tuple(heldout[k]),
        )

    return one("v0002-20261130T110000", 2), one("v0001-20261130T100000", 1)


SAME_HELDOUT = _paired(970, 0, 0, both_wrong=140)


def test_a_small_insignificant_gain_is_not_enough_evidence() -> None:
    # the make-run case: 153 items, one more right than wrong (+0.65 points)
    candidate, champion = _pair(_paired(153, 4, 5, both_wrong=50), SAME_HELDOUT)
    decision = decide(candidate, champion)
    assert decision.outcome == NOT_ENOUGH_EVIDENCE
    assert not decision.promote
    assert decision.labels_needed is not None and decision.labels_needed > 1000
    recent = decision.intervals["recent_accuracy"]
    assert recent["low"] < 0 < recent["high"]
    assert recent["p_value"] == pytest.approx(0.7539, abs=1e-4)  # 2 * (1/2 - C(9,4)/2**10)
    held = [r for r in decision.reasons if r.startswith("NOT ENOUGH EVIDENCE")]
    assert "gain not significant" in held[0] and "more labels would be needed" in held[0]
    assert decision.as_dict()["decision"] == "not_enough_evidence"
    assert decision.metric_label == "not_enough_evidence"


def test_a_clear_gain_within_the_heldout_bound_is_promoted() -> None:
    candidate, champion = _pair(_paired(400, 5, 40, both_wrong=60), SAME_HELDOUT)
    decision = decide(candidate, champion)
    assert decision.outcome == PROMOTE, decision.reasons
    assert all(r.startswith("ok") for r in decision.reasons)
    recent = decision.intervals["recent_accuracy"]
    assert recent["estimate"] == pytest.approx(35 / 400)
    assert 0 < recent["low"] < recent["estimate"] < recent["high"]
    assert recent["p_value"] < 0.001
    assert decision.labels_needed is None
    assert decision.metric_label == "promoted"


def test_a_significant_heldout_loss_is_refused_even_with_a_clear_gain() -> None:
    heldout = _paired(970, 40, 5, both_wrong=100)  # -3.6 points on the original domain
    candidate, champion = _pair(_paired(400, 5, 40), heldout)
    decision = decide(candidate, champion, tolerance=0.01)
    assert decision.outcome == REFUSE
    failed = [r for r in decision.reasons if r.startswith("FAILED")]
    assert len(failed) == 1 and failed[0].startswith("FAILED: held-out accuracy -3.61 points")
    assert "a significant loss beyond the tolerance" in failed[0]
    assert decision.intervals["heldout_accuracy"]["high"] < -0.01


def test_the_heldout_bound_not_the_point_estimate_is_held_to_the_tolerance() -> None:
    # point estimate -0.5 points (inside a 1-point tolerance), but the interval reaches below
    heldout = _paired(400, 6, 4)
    candidate, champion = _pair(_paired(400, 5, 40), heldout)
    decision = decide(candidate, champion, tolerance=0.01)
    assert decision.numbers["heldout_accuracy_delta"] == pytest.approx(-0.005)
    assert decision.intervals["heldout_accuracy"]["low"] < -0.01
    assert decision.outcome == REFUSE
    # a looser tolerance lets the same candidate through
    assert decide(candidate, champion, tolerance=0.05).outcome == PROMOTE


def test_a_candidate_that_is_not_ahead_is_refused() -> None:
    candidate, champion = _pair(_paired(400, 8, 8), SAME_HELDOUT)
    decision = decide(candidate, champion)
    assert decision.outcome == REFUSE
    assert any("no gain over the champion" in r for r in decision.reasons)
    worse, champ = _pair(_paired(400, 40, 5), SAME_HELDOUT)
    assert any("significantly worse" in r for r in decide(worse, champ).reasons)


def test_a_significantly_lower_macro_f1_is_refused() -> None:
    # the candidate predicts the majority class everywhere: more right on it, minorities lost
    truth = [1] * 300 + [0] * 50 + [2] * 50
    champ = [1] * 200 + [0] * 50 + [2] * 50 + [0] * 50 + [2] * 50
    cand = [1] * 300 + [0] * 10 + [1] * 40 + [2] * 10 + [1] * 40
    candidate, champion = _pair((truth, champ, cand), SAME_HELDOUT)
    decision = decide(candidate, champion)
    assert decision.outcome == REFUSE
    failed = [r for r in decision.reasons if r.startswith("FAILED")]
    assert failed and failed[0].startswith("FAILED: recent-feedback macro-F1 -19.")


def test_a_slice_below_the_minimum_is_held_back_whatever_it_shows() -> None:
    candidate, champion = _pair(_paired(80, 0, 30), SAME_HELDOUT)
    decision = decide(candidate, champion, policy=GatePolicy(min_slice=100))
    assert decision.outcome == NOT_ENOUGH_EVIDENCE
    assert decision.labels_needed == 20
    assert any("below the minimum of 100 (20 more labels needed)" in r for r in decision.reasons)


def test_no_recent_feedback_is_not_enough_evidence() -> None:
    candidate, champion = _pair(([], [], []), SAME_HELDOUT)
    decision = decide(candidate, champion)
    assert decision.outcome == NOT_ENOUGH_EVIDENCE
    assert any("no recent feedback" in r for r in decision.reasons)


def test_decision_record_carries_intervals_and_policy_numbers() -> None:
    candidate, champion = _pair(_paired(400, 5, 40), SAME_HELDOUT)
    record = decide(candidate, champion, policy=GatePolicy(alpha=0.01)).as_dict()
    assert record["decision"] == "promote"
    assert set(record["intervals"]) == {
        "recent_accuracy",
        "recent_macro_f1",
        "heldout_accuracy",
        "heldout_macro_f1",
    }
    assert record["intervals"]["recent_accuracy"]["level"] == 0.99
    assert record["numbers"]["alpha"] == 0.01 and record["numbers"]["champion"] == champion.version
    assert record["summary"].startswith("promote: recent accuracy +8.75 pts [")


def test_decisions_are_reproducible() -> None:
    candidate, champion = _pair(_paired(300, 10, 20, both_wrong=30), SAME_HELDOUT)
    assert decide(candidate, champion).as_dict() == decide(candidate, champion).as_dict()


def test_results_without_paired_items_or_on_different_items_are_refused_loudly() -> None:
    bare = EvalResult("v2", 0.8, 0.8, 400, 0.85, 0.85, 970)
    with pytest.raises(ValueError, match="per-item recent predictions"):
        decide(bare, bare)
    a, _ = _pair(_paired(100, 0, 10), SAME_HELDOUT)
    _, b = _pair(_paired(101, 0, 10), SAME_HELDOUT)
    with pytest.raises(ValueError, match="different recent items"):
        decide(a, b)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"tolerance": -0.1}, "tolerance"), ({"alpha": 0.7}, "alpha"), ({"min_slice": 0}, "slice")],
)
def test_invalid_policies_are_rejected(kwargs: dict[str, float], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        GatePolicy(**kwargs)  # type: ignore[arg-type]
