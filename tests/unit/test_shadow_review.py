"""The shadow period's rule (retrain.shadow_review): wait, promote or end, on paired items."""

from __future__ import annotations

import pytest

from retrain.rows import ShadowPair
from retrain.shadow_review import END, PROMOTE, WAIT, ShadowPolicy, review

HOUR = 3600.0
POLICY = ShadowPolicy(min_items=200, min_duration_s=HOUR, max_duration_s=24 * HOUR)


def _pairs(both: int, production_only: int, shadow_only: int, neither: int) -> list[ShadowPair]:
    """Items on which both, only production, only the shadow, or neither got the label."""
    rows = (
        [("pos", "pos", "pos")] * both
        + [("pos", "pos", "neg")] * production_only
        + [("pos", "neg", "pos")] * shadow_only
        + [("pos", "neg", "neu")] * neither
    )
    return [ShadowPair(f"i{n}", y, p, s) for n, (y, p, s) in enumerate(rows)]


def test_a_short_period_waits_and_says_what_it_lacks() -> None:
    result = review(_pairs(100, 2, 5, 3), 10 * 60.0, POLICY)

    assert result.outcome == WAIT
    assert any("110 of the 200 labelled items" in r for r in result.reasons)
    assert any("600 s of the 3600 s" in r for r in result.reasons)
    assert result.interval["n"] == 110  # the comparison so far is reported all the same


def test_enough_labels_but_not_enough_time_waits() -> None:
    result = review(_pairs(280, 5, 15, 0), HOUR / 2, POLICY)

    assert result.outcome == WAIT
    assert not any("labelled items the period needs" in r for r in result.reasons)


def test_a_candidate_as_good_online_is_promoted_with_its_interval() -> None:
    result = review(_pairs(260, 6, 18, 16), 2 * HOUR, POLICY)

    assert result.outcome == PROMOTE, result.reasons
    assert result.interval["low"] >= -POLICY.tolerance
    assert result.numbers["shadow_accuracy"] > result.numbers["production_accuracy"]
    assert result.as_dict()["decision"] == "shadow_promote"
    assert "online accuracy +4.00 pts" in result.summary()


def test_a_candidate_significantly_worse_online_ends_its_shadow() -> None:
    result = review(_pairs(240, 30, 8, 22), 2 * HOUR, POLICY)

    assert result.outcome == END
    assert any("significantly worse online" in r for r in result.reasons)
    assert result.interval["p_value"] < 0.05


def test_an_undecided_comparison_waits_then_ends_at_the_periods_limit() -> None:
    # slightly behind, not significantly: cannot show it is within 1 point
    pairs = _pairs(220, 12, 9, 9)
    assert review(pairs, 2 * HOUR, POLICY).outcome == WAIT
    late = review(pairs, 25 * HOUR, POLICY)
    assert late.outcome == END
    assert any("not enough evidence" in r for r in late.reasons)


def test_too_few_labels_by_the_periods_limit_end_it() -> None:
    result = review(_pairs(20, 0, 2, 0), 25 * HOUR, POLICY)

    assert result.outcome == END
    assert any("22 of the 200" in r for r in result.reasons)


def test_no_labels_at_all_wait_without_an_interval() -> None:
    result = review([], 2 * HOUR, POLICY)

    assert result.outcome == WAIT
    assert result.interval == {}
    assert "0 labelled items" in result.summary()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"min_items": 0},
        {"min_duration_s": 10.0, "max_duration_s": 5.0},
        {"tolerance": -0.1},
        {"alpha": 0.6},
    ],
)
def test_a_policy_that_cannot_work_is_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        ShadowPolicy(**kwargs)  # type: ignore[arg-type]
