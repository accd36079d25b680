"""Paired statistics for the promotion gate: McNemar's test, a paired bootstrap, sample size.

Champion and candidate are scored on the same items, so the comparison is paired: only
the items on which they disagree about correctness carry information about which is
better. ``b`` counts the items the champion gets right and the candidate wrong, ``c`` the
reverse.

- :func:`mcnemar_midp`: the exact conditional McNemar test with the mid-p correction
  (Fagerland, Lydersen and Laake 2013, BMC Med Res Methodol 13:91): exact on small
  counts, less conservative than the plain exact test.
- :func:`paired_bootstrap`: resamples items (the same indices for both models), so the
  interval of the accuracy and macro-F1 difference reflects their correlation. Seeded:
  a decision is reproducible.
- :func:`labels_needed`: how many paired items a McNemar test needs to detect the
  observed effect (Connor 1987, Biometrics 43:207), for "not enough evidence" answers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from statistics import NormalDist

import numpy as np
import numpy.typing as npt

DEFAULT_RESAMPLES = 2000
DEFAULT_SEED = 20261130
DEFAULT_POWER = 0.8
_CHUNK = 250

IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class McNemar:
    """Discordant counts and the two-sided mid-p value of the exact McNemar test."""

    champion_only: int
    candidate_only: int
    p_value: float

    @property
    def discordant(self) -> int:
        return self.champion_only + self.candidate_only


@dataclass(frozen=True)
class Interval:
    """A point estimate of a difference (candidate - champion) and its confidence interval."""

    estimate: float
    low: float
    high: float
    level: float

    def as_dict(self) -> dict[str, float]:
        return {
            "estimate": round(self.estimate, 6),
            "low": round(self.low, 6),
            "high": round(self.high, 6),
            "level": self.level,
        }

    def points(self) -> str:
        """``+1.20 points (95% CI -0.40 to +2.80)``."""
        return (
            f"{self.estimate * 100:+.2f} points ({self.level * 100:.0f}% CI "
            f"{self.low * 100:+.2f} to {self.high * 100:+.2f})"
        )


@dataclass(frozen=True)
class PairedComparison:
    """Everything the gate knows about one paired comparison on one evaluation set."""

    n: int
    mcnemar: McNemar
    accuracy: Interval
    macro_f1: Interval


def _binomial_half(n: int, k: int) -> tuple[Fraction, Fraction]:
    """``P(X <= k)`` and ``P(X = k)`` for X ~ Binomial(n, 1/2), exactly."""
    total = 1 << n
    below = sum(math.comb(n, i) for i in range(k + 1))
    return Fraction(below, total), Fraction(math.comb(n, k), total)


def mcnemar_midp(champion_only: int, candidate_only: int) -> McNemar:
    """Two-sided mid-p McNemar test of ``champion_only`` vs ``candidate_only`` discordant pairs.

    mid-p = 2 * (P(X <= k) - P(X = k) / 2), k = min(b, c), X ~ Bin(b + c, 1/2), capped at 1;
    with no discordant pair the models cannot be told apart (p = 1).
    """
    if champion_only < 0 or candidate_only < 0:
        raise ValueError(f"discordant counts must be >= 0, got {champion_only}, {candidate_only}")
    n = champion_only + candidate_only
    if n == 0:
        return McNemar(champion_only, candidate_only, 1.0)
    cdf, pmf = _binomial_half(n, min(champion_only, candidate_only))
    p = min(Fraction(1), 2 * (cdf - pmf / 2))
    return McNemar(champion_only, candidate_only, float(p))


def mcnemar_exact(champion_only: int, candidate_only: int) -> float:
    """The plain (conservative) exact conditional McNemar p-value, for reference."""
    n = champion_only + candidate_only
    if n == 0:
        return 1.0
    cdf, _ = _binomial_half(n, min(champion_only, candidate_only))
    return float(min(Fraction(1), 2 * cdf))


def macro_f1_rows(truth: IntArray, predicted: IntArray, n_labels: int) -> npt.NDArray[np.float64]:
    """Macro-F1 of every row of ``(rows, n)`` label matrices, over the classes present in a row.

    Same convention as :func:`models.metrics.classification_report`: a class counts when it
    occurs in the truth or the predictions of that row.
    """
    rows = truth.shape[0]
    offset = (np.arange(rows, dtype=np.int64) * n_labels)[:, None]
    size = rows * n_labels
    hit = truth == predicted
    tp = np.bincount((offset + truth)[hit], minlength=size).reshape(rows, n_labels)
    support = np.bincount((offset + truth).ravel(), minlength=size).reshape(rows, n_labels)
    guessed = np.bincount((offset + predicted).ravel(), minlength=size).reshape(rows, n_labels)
    denom = (support + guessed).astype(np.float64)
    f1 = np.divide(2.0 * tp, denom, out=np.zeros_like(denom), where=denom > 0)
    present = denom > 0
    counted = present.sum(axis=1)
    result: npt.NDArray[np.float64] = np.divide(
        f1.sum(axis=1), counted, out=np.zeros(rows), where=counted > 0
    )
    return result


def _as_labels(values: Sequence[int] | IntArray, what: str, n_labels: int) -> IntArray:
    array = np.asarray(values, dtype=np.int64)
    if array.ndim != 1:
        raise ValueError(f"{what} must be a flat sequence of label ids")
    if array.size and (array.min() < 0 or array.max() >= n_labels):
        raise ValueError(f"{what} holds label ids outside 0..{n_labels - 1}")
    return array


def paired_comparison(
    truth: Sequence[int] | IntArray,
    champion: Sequence[int] | IntArray,
    candidate: Sequence[int] | IntArray,
    n_labels: int,
    *,
    level: float = 0.95,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> PairedComparison:
    """McNemar's test and percentile-bootstrap intervals of candidate - champion.

    Every resample draws ``n`` item indices with replacement and scores both models on
    the same draw. ``level`` is the two-sided confidence of the intervals.
    """
    if not 0 < level < 1:
        raise ValueError(f"confidence level must be in (0, 1), got {level}")
    if resamples < 100:
        raise ValueError(f"at least 100 bootstrap resamples are needed, got {resamples}")
    y = _as_labels(truth, "truth", n_labels)
    a = _as_labels(champion, "champion predictions", n_labels)
    c = _as_labels(candidate, "candidate predictions", n_labels)
    if not y.size == a.size == c.size:
        raise ValueError(
            f"paired data must have one entry per item: {y.size} labels, "
            f"{a.size} champion and {c.size} candidate predictions"
        )
    n = int(y.size)
    a_right, c_right = a == y, c == y
    test = mcnemar_midp(int((a_right & ~c_right).sum()), int((c_right & ~a_right).sum()))
    if n == 0:
        empty = Interval(0.0, 0.0, 0.0, level)
        return PairedComparison(0, test, empty, empty)
    acc_point = float(c_right.mean() - a_right.mean())
    f1_point = float(
        macro_f1_rows(y[None, :], c[None, :], n_labels)[0]
        - macro_f1_rows(y[None, :], a[None, :], n_labels)[0]
    )
    rng = np.random.default_rng(seed)
    acc_diffs: list[npt.NDArray[np.float64]] = []
    f1_diffs: list[npt.NDArray[np.float64]] = []
    step = max(1, min(_CHUNK, 2_000_000 // n))
    for start in range(0, resamples, step):
        rows = min(step, resamples - start)
        idx = rng.integers(0, n, size=(rows, n))
        yt, at, ct = y[idx], a[idx], c[idx]
        acc_diffs.append((ct == yt).mean(axis=1) - (at == yt).mean(axis=1))
        f1_diffs.append(macro_f1_rows(yt, ct, n_labels) - macro_f1_rows(yt, at, n_labels))
    tail = (1 - level) / 2 * 100
    acc_low, acc_high = np.percentile(np.concatenate(acc_diffs), [tail, 100 - tail])
    f1_low, f1_high = np.percentile(np.concatenate(f1_diffs), [tail, 100 - tail])
    return PairedComparison(
        n=n,
        mcnemar=test,
        accuracy=Interval(acc_point, float(acc_low), float(acc_high), level),
        macro_f1=Interval(f1_point, float(f1_low), float(f1_high), level),
    )


def labels_needed(
    champion_only: int,
    candidate_only: int,
    n: int,
    *,
    alpha: float = 0.05,
    power: float = DEFAULT_POWER,
) -> int | None:
    """Paired items a two-sided McNemar test at ``alpha`` needs to detect the observed gain.

    Connor's (1987) formula with the observed discordant proportion ``psi = (b + c) / n`` and
    effect ``delta = (c - b) / n``: ``N = (z_{a/2} sqrt(psi) + z_power sqrt(psi - delta^2))^2 /
    delta^2``. None when the candidate is not ahead (no amount of labels shows a gain
    that is not there).
    """
    if n <= 0 or candidate_only <= champion_only:
        return None
    psi = (champion_only + candidate_only) / n
    delta = (candidate_only - champion_only) / n
    normal = NormalDist()
    z_alpha = normal.inv_cdf(1 - alpha / 2)
    z_power = normal.inv_cdf(power)
    spread = max(psi - delta * delta, 0.0)
    needed = (z_alpha * math.sqrt(psi) + z_power * math.sqrt(spread)) ** 2 / (delta * delta)
    return math.ceil(needed)
