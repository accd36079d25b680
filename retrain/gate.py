"""The promotion gate: a pure decision over two evaluations, with its reasons and numbers.

A candidate is promoted only if, against the champion (the production version):

1. on the recent-feedback slice its **accuracy is strictly higher** — accuracy is what the
   users of the stream see and what online accuracy from feedback measures — and its
   macro-F1 is not lower, so a candidate cannot win by collapsing onto the majority class;
2. on the task's fixed held-out split of the original data it loses no more than
   ``tolerance`` accuracy (0.01 = one point), so it has not forgotten the original domain.

Every condition yields one reason, met or not, with the numbers behind it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

DEFAULT_TOLERANCE = 0.01
_EPS = 1e-12


@dataclass(frozen=True)
class EvalResult:
    """Accuracy and macro-F1 of one model version on the recent slice and the held-out split."""

    version: str
    recent_accuracy: float
    recent_macro_f1: float
    recent_n: int
    heldout_accuracy: float
    heldout_macro_f1: float
    heldout_n: int

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
    """Whether to promote, why (one line per condition), and the numbers compared."""

    promote: bool
    reasons: list[str]
    numbers: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {
            "decision": "promote" if self.promote else "refuse",
            "reasons": list(self.reasons),
            "numbers": dict(self.numbers),
        }


def _points(delta: float) -> str:
    return f"{delta * 100:+.2f} points"


def decide(
    candidate: EvalResult, champion: EvalResult, tolerance: float = DEFAULT_TOLERANCE
) -> GateDecision:
    """Promote ``candidate`` over ``champion`` or refuse, saying why with numbers."""
    if tolerance < 0:
        raise ValueError(f"tolerance must be >= 0, got {tolerance}")
    recent_acc = candidate.recent_accuracy - champion.recent_accuracy
    recent_f1 = candidate.recent_macro_f1 - champion.recent_macro_f1
    heldout_acc = candidate.heldout_accuracy - champion.heldout_accuracy
    numbers: dict[str, Any] = {
        "candidate": candidate.version,
        "champion": champion.version,
        "tolerance": tolerance,
        "recent_n": candidate.recent_n,
        "heldout_n": candidate.heldout_n,
        "candidate_recent_accuracy": round(candidate.recent_accuracy, 6),
        "champion_recent_accuracy": round(champion.recent_accuracy, 6),
        "recent_accuracy_delta": round(recent_acc, 6),
        "candidate_recent_macro_f1": round(candidate.recent_macro_f1, 6),
        "champion_recent_macro_f1": round(champion.recent_macro_f1, 6),
        "recent_macro_f1_delta": round(recent_f1, 6),
        "candidate_heldout_accuracy": round(candidate.heldout_accuracy, 6),
        "champion_heldout_accuracy": round(champion.heldout_accuracy, 6),
        "heldout_accuracy_delta": round(heldout_acc, 6),
    }
    checks: list[tuple[bool, str]] = []
    if candidate.recent_n == 0:
        checks.append((False, "no recent feedback to judge the candidate on (0 rows)"))
    else:
        checks.append(
            (
                recent_acc > _EPS,
                f"recent-feedback accuracy {candidate.recent_accuracy:.4f} vs champion "
                f"{champion.recent_accuracy:.4f} ({_points(recent_acc)}; must be higher) "
                f"on {candidate.recent_n} rows",
            )
        )
        checks.append(
            (
                recent_f1 >= -_EPS,
                f"recent-feedback macro-F1 {candidate.recent_macro_f1:.4f} vs champion "
                f"{champion.recent_macro_f1:.4f} ({_points(recent_f1)}; must not be lower)",
            )
        )
    checks.append(
        (
            heldout_acc >= -tolerance - _EPS,
            f"held-out accuracy {candidate.heldout_accuracy:.4f} vs champion "
            f"{champion.heldout_accuracy:.4f} ({_points(heldout_acc)}; may lose at most "
            f"{tolerance * 100:.2f} points) on {candidate.heldout_n} rows",
        )
    )
    promote = all(ok for ok, _ in checks)
    reasons = [f"{'ok' if ok else 'FAILED'}: {text}" for ok, text in checks]
    return GateDecision(promote=promote, reasons=reasons, numbers=numbers)
