"""What `models show` and the live view say about a task: production, shadow, the last
gate decision with its interval, and the drift score."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from models.registry import Registry

DriftSource = Callable[[str], float | None]


@dataclass(frozen=True)
class ModelStatus:
    """One task's models as the registry (and the feedback store, for drift) see them."""

    task: str
    production: str | None
    shadow: str | None
    decision: dict[str, Any] | None
    """The newest gate decision (a retrain's), not a shadow review."""
    drift: float | None
    drift_noise: float | None
    """The drift score of the reference's own control sample: what no drift looks like."""
    shadow_review: dict[str, Any] | None = None
    """The newest shadow review (wait, promote or end), when one ran."""


def _is_shadow_review(decision: dict[str, Any]) -> bool:
    return str(decision.get("decision", "")).startswith("shadow_")


def model_status(registry: Registry, task: str, drift: DriftSource | None = None) -> ModelStatus:
    """Read a task's status; ``drift`` gives its drift score (None: not measured)."""
    production = registry.production(task)
    reference = registry.drift_reference(task, production) if production else None
    control = reference.control if reference is not None else None
    return ModelStatus(
        task=task,
        production=production,
        shadow=registry.shadow(task),
        decision=registry.last_decision(task, lambda d: not _is_shadow_review(d)),
        drift=drift(task) if drift is not None else None,
        drift_noise=float(control["score"]) if control and "score" in control else None,
        shadow_review=registry.last_decision(task, _is_shadow_review),
    )


def decision_text(decision: dict[str, Any] | None) -> str:
    """``not enough evidence v0002-...: recent accuracy +0.65 pts [-2.61, +3.92] p=0.754 ...``."""
    if decision is None:
        return "-"
    version, at = decision.get("version", "?"), decision.get("at", "?")
    summary = decision.get("summary")
    if isinstance(summary, str) and summary:
        outcome, _, rest = summary.partition(":")
        return f"{outcome} {version} ({at}):{rest}" if rest else f"{outcome} {version} ({at})"
    reasons = decision.get("reasons") or []
    first = f": {reasons[0]}" if reasons else ""
    return f"{decision.get('decision', '?')} {version} ({at}){first}"


def drift_text(status: ModelStatus) -> str:
    """``0.412 (no-drift control 0.052)`` or ``-`` when not measured."""
    if status.drift is None:
        return "-"
    noise = "" if status.drift_noise is None else f" (no-drift control {status.drift_noise:.3f})"
    return f"{status.drift:.3f}{noise}"


def status_lines(status: ModelStatus) -> list[str]:
    """The lines `models show` prints before the version's details."""
    lines = [
        f"{status.task}: production {status.production or 'none'}; "
        f"shadow {status.shadow or 'none'}",
        f"  last gate decision: {decision_text(status.decision)}",
    ]
    if status.shadow_review is not None:
        lines.append(f"  last shadow review: {decision_text(status.shadow_review)}")
    lines.append(f"  drift score (largest PSI of the served predictions): {drift_text(status)}")
    return lines
