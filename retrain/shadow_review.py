"""The shadow period's decision: a candidate the offline gate passed, judged on live traffic.

In shadow a candidate scores the same live items as production and is never served; the
labels that arrive later for those items judge both models on the same items (the feedback
store's shadow pairs). The gate judged the candidate on labelled data it was shown
(recent feedback, the held-out split); the shadow period asks the question the gate
cannot: is it at least as good on the traffic it will serve? At each review:

- **wait** while the period is shorter than ``min_duration_s`` or fewer than ``min_items``
  of its items have been labelled;
- **end** the shadow (production unchanged, the candidate stays in the registry) when the
  candidate is significantly worse online: production alone right more often than the
  candidate alone, two-sided mid-p McNemar ``p < alpha``;
- **promote** when the lower bound of the ``1 - alpha`` paired-bootstrap interval of the
  online accuracy difference (candidate - production) stays above ``-tolerance``: not
  worse beyond the tolerance, with confidence;
- otherwise wait for more labels, and **end** with "not enough evidence" once
  ``max_duration_s`` has passed.

Pure: the job (``retrain.shadow_job.review_shadow``) reads the pairs and acts on the outcome.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from retrain.rows import ShadowPair
from retrain.stats import DEFAULT_RESAMPLES, DEFAULT_SEED, paired_comparison

WAIT = "wait"
PROMOTE = "promote"
END = "end"
OUTCOMES = (WAIT, PROMOTE, END)


@dataclass(frozen=True)
class ShadowPolicy:
    """How long and on how many labelled items a candidate stays in shadow, and the rule."""

    min_items: int = 200
    min_duration_s: float = 3600.0
    max_duration_s: float = 7 * 86400.0
    tolerance: float = 0.01
    alpha: float = 0.05
    resamples: int = DEFAULT_RESAMPLES
    seed: int = DEFAULT_SEED

    def __post_init__(self) -> None:
        if self.min_items < 1:
            raise ValueError(f"a shadow period needs >= 1 labelled item, got {self.min_items}")
        if not 0 <= self.min_duration_s <= self.max_duration_s:
            raise ValueError(
                f"shadow durations must satisfy 0 <= min ({self.min_duration_s} s) <= max "
                f"({self.max_duration_s} s)"
            )
        if self.tolerance < 0:
            raise ValueError(f"tolerance must be >= 0, got {self.tolerance}")
        if not 0 < self.alpha < 0.5:
            raise ValueError(f"significance level alpha must be in (0, 0.5), got {self.alpha}")


@dataclass(frozen=True)
class ShadowReview:
    """The outcome, why, and the numbers and interval behind it."""

    outcome: str
    reasons: list[str]
    numbers: dict[str, Any]
    interval: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> str:
        """One line for logs, the registry's history and ``models show``."""
        n = self.numbers.get("judged", 0)
        text = f"shadow review: {self.outcome} ({n} labelled items"
        if self.interval:
            i = self.interval
            text += (
                f", online accuracy {i['estimate'] * 100:+.2f} pts "
                f"[{i['low'] * 100:+.2f}, {i['high'] * 100:+.2f}] p={i['p_value']:.3g}"
            )
        return text + ")"

    def as_dict(self) -> dict[str, Any]:
        return {
            "decision": f"shadow_{self.outcome}",
            "reasons": list(self.reasons),
            "numbers": dict(self.numbers),
            "intervals": {"online_accuracy": dict(self.interval)} if self.interval else {},
            "summary": self.summary(),
        }


def review(pairs: Sequence[ShadowPair], elapsed_s: float, policy: ShadowPolicy) -> ShadowReview:
    """Promote, end or keep the shadow of a candidate judged on ``pairs`` after ``elapsed_s``."""
    n = len(pairs)
    numbers: dict[str, Any] = {
        "judged": n,
        "elapsed_s": round(elapsed_s, 1),
        "min_items": policy.min_items,
        "min_duration_s": policy.min_duration_s,
        "max_duration_s": policy.max_duration_s,
        "tolerance": policy.tolerance,
        "alpha": policy.alpha,
    }
    reasons: list[str] = []
    interval: dict[str, Any] = {}
    if n:
        labels = sorted({x for p in pairs for x in (p.label, p.production_label, p.shadow_label)})
        index = {label: i for i, label in enumerate(labels)}
        comparison = paired_comparison(
            [index[p.label] for p in pairs],
            [index[p.production_label] for p in pairs],
            [index[p.shadow_label] for p in pairs],
            len(labels),
            level=round(1 - policy.alpha, 6),
            resamples=policy.resamples,
            seed=policy.seed,
        )
        test = comparison.mcnemar
        interval = {
            **comparison.accuracy.as_dict(),
            "n": n,
            "p_value": round(test.p_value, 6),
            "production_only": test.champion_only,
            "shadow_only": test.candidate_only,
        }
        numbers["production_accuracy"] = round(
            sum(p.production_label == p.label for p in pairs) / n, 6
        )
        numbers["shadow_accuracy"] = round(sum(p.shadow_label == p.label for p in pairs) / n, 6)
        reasons.append(
            f"online accuracy of the candidate minus production {comparison.accuracy.points()} "
            f"on {n} labelled items (candidate alone right on {test.candidate_only}, production "
            f"alone on {test.champion_only}, McNemar mid-p {test.p_value:.4f})"
        )
    short_items = n < policy.min_items
    short_time = elapsed_s < policy.min_duration_s
    if short_items or short_time:
        if short_items:
            reasons.append(f"{n} of the {policy.min_items} labelled items the period needs")
        if short_time:
            reasons.append(
                f"{elapsed_s:.0f} s of the {policy.min_duration_s:.0f} s the period lasts at least"
            )
        if elapsed_s >= policy.max_duration_s:
            reasons.append(_expired(policy))
            return ShadowReview(END, reasons, numbers, interval)
        return ShadowReview(WAIT, reasons, numbers, interval)
    worse = interval["production_only"] > interval["shadow_only"] and (
        interval["p_value"] < policy.alpha
    )
    if worse:
        reasons.append(f"the candidate is significantly worse online (p < {policy.alpha})")
        return ShadowReview(END, reasons, numbers, interval)
    if interval["low"] >= -policy.tolerance - 1e-12:
        reasons.append(
            f"the lower bound {interval['low'] * 100:+.2f} pts stays above "
            f"-{policy.tolerance * 100:.2f}: not worse than production beyond the tolerance"
        )
        return ShadowReview(PROMOTE, reasons, numbers, interval)
    reasons.append(
        f"the lower bound {interval['low'] * 100:+.2f} pts is below -{policy.tolerance * 100:.2f}: "
        "more labels are needed to tell"
    )
    if elapsed_s >= policy.max_duration_s:
        reasons.append(_expired(policy))
        return ShadowReview(END, reasons, numbers, interval)
    return ShadowReview(WAIT, reasons, numbers, interval)


def _expired(policy: ShadowPolicy) -> str:
    return f"the period's limit of {policy.max_duration_s:.0f} s has passed: not enough evidence"
