"""The promotion gate: a paired statistical decision over two evaluations, with its reasons.

Champion (production) and candidate are scored on the same items: the recent-feedback
slice and the task's fixed held-out split. The gate has three outcomes:

- **promote** when, on the recent slice (at least ``min_slice`` items), the candidate's
  accuracy gain is significant (two-sided mid-p McNemar test, ``p < alpha``), its macro-F1
  is not significantly lower (the bootstrap interval of the difference does not lie below
  0), and on the held-out split the *lower* bound of the interval of the accuracy
  difference stays above ``-tolerance``: it has not forgotten the original domain, with
  confidence, not only on the point estimate;
- **refuse** when the candidate is not ahead on the recent slice, is significantly worse
  there (accuracy or macro-F1), or cannot be shown to stay within the held-out tolerance;
- **not enough evidence** when it is ahead but not significantly, or the slice is smaller
  than ``min_slice``: the decision says how many labels a test at ``alpha`` with 80% power
  would need at the observed effect.

Every condition yields one reason line, met or not, with the interval behind it, and
the decision carries the intervals as numbers for the registry, the logs and the metrics.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from retrain.stats import (
    DEFAULT_RESAMPLES,
    DEFAULT_SEED,
    PairedComparison,
    labels_needed,
    paired_comparison,
)

DEFAULT_TOLERANCE = 0.02
"""Two points. On PhraseBank's 970 held-out sentences a real retrain changes 3-4 % of the
labels, so the 95 % interval of the difference is about ±1.2 points wide: with one point,
retrains that forgot nothing measurable (-0.2 points [-1.3, +1.0]) were refused, every
point of the learning curve of 2026-12-06 among them (README)."""
DEFAULT_ALPHA = 0.05
DEFAULT_MIN_SLICE = 100

PROMOTE = "promote"
REFUSE = "refuse"
NOT_ENOUGH_EVIDENCE = "not_enough_evidence"
OUTCOMES = (PROMOTE, REFUSE, NOT_ENOUGH_EVIDENCE)
METRIC_LABELS = {
    PROMOTE: "promoted",
    REFUSE: "rejected",
    NOT_ENOUGH_EVIDENCE: "not_enough_evidence",
}
"""The ``decision`` label of ``streamsense_gate_decisions_total`` per outcome."""
SHADOWED = "shadowed"
"""The ``decision`` label of a pass that went into shadow, not production (the shadow
review counts what happens next in ``streamsense_shadow_reviews_total``)."""


@dataclass(frozen=True)
class GatePolicy:
    """The gate's settings: held-out tolerance, significance level, minimum slice size."""

    tolerance: float = DEFAULT_TOLERANCE
    alpha: float = DEFAULT_ALPHA
    min_slice: int = DEFAULT_MIN_SLICE
    resamples: int = DEFAULT_RESAMPLES
    seed: int = DEFAULT_SEED

    def __post_init__(self) -> None:
        if self.tolerance < 0:
            raise ValueError(f"tolerance must be >= 0, got {self.tolerance}")
        if not 0 < self.alpha < 0.5:
            raise ValueError(f"significance level alpha must be in (0, 0.5), got {self.alpha}")
        if self.min_slice < 1:
            raise ValueError(f"minimum slice size must be >= 1, got {self.min_slice}")

    @property
    def level(self) -> float:
        """Confidence of the intervals: 1 - alpha."""
        return round(1 - self.alpha, 6)

    def as_dict(self) -> dict[str, Any]:
        return {
            "tolerance": self.tolerance,
            "alpha": self.alpha,
            "min_slice": self.min_slice,
            "resamples": self.resamples,
            "seed": self.seed,
        }


@dataclass(frozen=True)
class EvalResult:
    """One version's scores on the recent slice and the held-out split, item by item.

    ``*_truth`` and ``*_predicted`` are label ids in the task's label order, one per item,
    in the same item order for every version judged: the gate pairs them.
    """

    version: str
    recent_accuracy: float
    recent_macro_f1: float
    recent_n: int
    heldout_accuracy: float
    heldout_macro_f1: float
    heldout_n: int
    n_labels: int = 0
    recent_truth: tuple[int, ...] = field(default=(), repr=False)
    recent_predicted: tuple[int, ...] = field(default=(), repr=False)
    heldout_truth: tuple[int, ...] = field(default=(), repr=False)
    heldout_predicted: tuple[int, ...] = field(default=(), repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "recent": {
                "accuracy": round(self.recent_accuracy, 6),
                "macro_f1": round(self.recent_macro_f1, 6),
                "n": self.recent_n,
            },
            "heldout": {
                "accuracy": round(self.heldout_accuracy, 6),
                "macro_f1": round(self.heldout_macro_f1, 6),
                "n": self.heldout_n,
            },
        }


@dataclass(frozen=True)
class GateDecision:
    """The outcome, why (one line per condition), the numbers and intervals compared."""

    outcome: str
    reasons: list[str]
    numbers: dict[str, Any]
    intervals: dict[str, Any] = field(default_factory=dict)
    labels_needed: int | None = None

    @property
    def promote(self) -> bool:
        return self.outcome == PROMOTE

    @property
    def metric_label(self) -> str:
        """The ``decision`` label of ``streamsense_gate_decisions_total``."""
        return METRIC_LABELS[self.outcome]

    def summary(self) -> str:
        """One line for logs and the live view: outcome and the recent-slice interval."""
        recent = self.intervals.get("recent_accuracy")
        text = self.outcome.replace("_", " ")
        if recent:
            text += (
                f": recent accuracy {recent['estimate'] * 100:+.2f} pts "
                f"[{recent['low'] * 100:+.2f}, {recent['high'] * 100:+.2f}] "
                f"p={recent.get('p_value', float('nan')):.3g} n={recent.get('n')}"
            )
        if self.labels_needed is not None:
            text += f"; ~{self.labels_needed} more labels needed"
        return text

    def as_dict(self) -> dict[str, Any]:
        return {
            "decision": self.outcome,
            "reasons": list(self.reasons),
            "numbers": dict(self.numbers),
            "intervals": dict(self.intervals),
            "labels_needed": self.labels_needed,
            "summary": self.summary(),
        }


def _check_paired(result: EvalResult, where: str) -> None:
    n = result.recent_n if where == "recent" else result.heldout_n
    truth = result.recent_truth if where == "recent" else result.heldout_truth
    predicted = result.recent_predicted if where == "recent" else result.heldout_predicted
    if len(truth) != n or len(predicted) != n:
        raise ValueError(
            f"{result.version}: the gate needs per-item {where} predictions (n={n}, got "
            f"{len(truth)} labels and {len(predicted)} predictions); build EvalResult with "
            "retrain.evaluation.evaluate_version"
        )


def _compare(candidate: EvalResult, champion: EvalResult, where: str, policy: GatePolicy) -> Any:
    for result in (candidate, champion):
        _check_paired(result, where)
    truth = candidate.recent_truth if where == "recent" else candidate.heldout_truth
    other = champion.recent_truth if where == "recent" else champion.heldout_truth
    if truth != other:
        raise ValueError(
            f"champion {champion.version} and candidate {candidate.version} were judged on "
            f"different {where} items: a paired comparison needs the same items in the same order"
        )
    n_labels = max(candidate.n_labels, champion.n_labels, 1)
    return paired_comparison(
        truth,
        champion.recent_predicted if where == "recent" else champion.heldout_predicted,
        candidate.recent_predicted if where == "recent" else candidate.heldout_predicted,
        n_labels,
        level=policy.level,
        resamples=policy.resamples,
        seed=policy.seed,
    )


def _interval(comparison: PairedComparison, metric: str) -> dict[str, Any]:
    interval = comparison.accuracy if metric == "accuracy" else comparison.macro_f1
    body: dict[str, Any] = {**interval.as_dict(), "n": comparison.n}
    if metric == "accuracy":
        body["p_value"] = round(comparison.mcnemar.p_value, 6)
        body["champion_only"] = comparison.mcnemar.champion_only
        body["candidate_only"] = comparison.mcnemar.candidate_only
    return body


def decide(
    candidate: EvalResult,
    champion: EvalResult,
    tolerance: float = DEFAULT_TOLERANCE,
    *,
    policy: GatePolicy | None = None,
) -> GateDecision:
    """Promote, refuse or hold back ``candidate`` against ``champion``, saying why.

    ``policy`` (when given) supersedes ``tolerance``. Raises ``ValueError`` when the
    results lack per-item predictions or were judged on different items.
    """
    policy = policy or GatePolicy(tolerance=tolerance)
    tol, alpha, level = policy.tolerance, policy.alpha, policy.level
    numbers: dict[str, Any] = {
        "candidate": candidate.version,
        "champion": champion.version,
        "tolerance": tol,
        "alpha": alpha,
        "min_slice": policy.min_slice,
        "recent_n": candidate.recent_n,
        "heldout_n": candidate.heldout_n,
        "candidate_recent_accuracy": round(candidate.recent_accuracy, 6),
        "champion_recent_accuracy": round(champion.recent_accuracy, 6),
        "recent_accuracy_delta": round(candidate.recent_accuracy - champion.recent_accuracy, 6),
        "candidate_recent_macro_f1": round(candidate.recent_macro_f1, 6),
        "champion_recent_macro_f1": round(champion.recent_macro_f1, 6),
        "recent_macro_f1_delta": round(candidate.recent_macro_f1 - champion.recent_macro_f1, 6),
        "candidate_heldout_accuracy": round(candidate.heldout_accuracy, 6),
        "champion_heldout_accuracy": round(champion.heldout_accuracy, 6),
        "heldout_accuracy_delta": round(candidate.heldout_accuracy - champion.heldout_accuracy, 6),
    }
    intervals: dict[str, Any] = {}
    # (status, text): status is PROMOTE (condition met), REFUSE or NOT_ENOUGH_EVIDENCE
    checks: list[tuple[str, str]] = []
    needed: int | None = None
    pct = f"{level * 100:.0f}%"

    recent_n = candidate.recent_n
    if recent_n == 0:
        checks.append(
            (NOT_ENOUGH_EVIDENCE, "no recent feedback to judge the candidate on (0 rows)")
        )
        needed = policy.min_slice
    else:
        recent = _compare(candidate, champion, "recent", policy)
        intervals["recent_accuracy"] = _interval(recent, "accuracy")
        intervals["recent_macro_f1"] = _interval(recent, "macro_f1")
        test = recent.mcnemar
        b, c, p = test.champion_only, test.candidate_only, test.p_value
        counts = (
            f"candidate alone right on {c}, champion alone on {b} of {recent_n} rows, "
            f"McNemar mid-p {p:.4f}"
        )
        acc = f"recent-feedback accuracy {recent.accuracy.points()}"
        if c > b and p < alpha:
            checks.append((PROMOTE, f"{acc}: significant gain at alpha {alpha} ({counts})"))
        elif c > b:
            estimate = labels_needed(b, c, recent_n, alpha=alpha)
            more = None if estimate is None else max(estimate - recent_n, 1)
            needed = more
            hint = (
                "" if more is None else f"; about {more} more labels would be needed at this effect"
            )
            checks.append(
                (
                    NOT_ENOUGH_EVIDENCE,
                    f"{acc}: gain not significant at alpha {alpha} ({counts}){hint}",
                )
            )
        elif b > c and p < alpha:
            checks.append((REFUSE, f"{acc}: significantly worse than the champion ({counts})"))
        else:
            checks.append((REFUSE, f"{acc}: no gain over the champion ({counts}); must be higher"))
        f1 = recent.macro_f1
        checks.append(
            (
                REFUSE if f1.high < 0 else PROMOTE,
                f"recent-feedback macro-F1 {f1.points()}: must not be significantly lower "
                f"(upper bound >= 0)",
            )
        )
        if recent_n < policy.min_slice:
            short = policy.min_slice - recent_n
            needed = max(needed or 0, short)
            checks.append(
                (
                    NOT_ENOUGH_EVIDENCE,
                    f"recent slice of {recent_n} rows is below the minimum of "
                    f"{policy.min_slice} ({short} more labels needed)",
                )
            )
    if candidate.heldout_n == 0:
        checks.append((REFUSE, "no held-out rows to check forgetting on (0 rows)"))
    else:
        heldout = _compare(candidate, champion, "heldout", policy)
        intervals["heldout_accuracy"] = _interval(heldout, "accuracy")
        intervals["heldout_macro_f1"] = _interval(heldout, "macro_f1")
        bound = heldout.accuracy.low
        text = (
            f"held-out accuracy {heldout.accuracy.points()} on {heldout.n} rows: the {pct} "
            f"lower bound {bound * 100:+.2f} must stay above -{tol * 100:.2f} points"
        )
        if heldout.accuracy.high < -tol:
            text += " (a significant loss beyond the tolerance)"
        checks.append((PROMOTE if bound >= -tol - 1e-12 else REFUSE, text))

    statuses = [status for status, _ in checks]
    if REFUSE in statuses:
        outcome = REFUSE
        needed = None
    elif NOT_ENOUGH_EVIDENCE in statuses:
        outcome = NOT_ENOUGH_EVIDENCE
    else:
        outcome = PROMOTE
        needed = None
    marks = {PROMOTE: "ok", REFUSE: "FAILED", NOT_ENOUGH_EVIDENCE: "NOT ENOUGH EVIDENCE"}
    reasons = [f"{marks[status]}: {text}" for status, text in checks]
    return GateDecision(
        outcome=outcome,
        reasons=reasons,
        numbers=numbers,
        intervals=intervals,
        labels_needed=needed,
    )
