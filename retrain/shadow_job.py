"""The shadow review as a job: read a task's shadow pairs, decide, act on the registry.

Imports neither torch nor the training stack: the scheduler runs it every few minutes and
``streamsense models shadow-review`` on demand.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

from models.registry import Registry, utc_now
from retrain.exceptions import RetrainError
from retrain.publish import Publish, announce
from retrain.shadow_review import END, PROMOTE, ShadowPolicy, ShadowReview, review
from retrain.store import FeedbackStore

logger = logging.getLogger(__name__)


def review_shadow(
    task: str,
    *,
    registry_root: Path,
    store: FeedbackStore,
    policy: ShadowPolicy | None = None,
    publish: Publish | None = None,
    now: datetime | None = None,
) -> ShadowReview | None:
    """Review the version in shadow for ``task`` on its labelled live items, and act on it.

    Promote (announced with ``publish``), end the shadow, or leave it running; the review
    is appended to the version's decisions. None when no version is in shadow.
    """
    registry = Registry(registry_root)
    record = registry.shadow_record(task)
    if record is None:
        return None
    version = str(record["version"])
    since = datetime.fromisoformat(str(record.get("since") or utc_now()))
    elapsed = ((now or datetime.now(UTC)) - since).total_seconds()
    pairs = store.shadow_pairs(task, version, since)
    result = review(pairs, elapsed, policy or ShadowPolicy())
    registry.record_decision(task, version, result.as_dict())
    logger.info("%s/%s: %s; %s", task, version, result.summary(), result.reasons)
    if result.outcome == PROMOTE:
        registry.promote(task, version, reason=result.summary())
        announce(publish, task, version)
    elif result.outcome == END:
        registry.clear_shadow(task)
    return result


def shadow_policy(
    min_items: int, min_duration_s: float, max_duration_s: float, tolerance: float, alpha: float
) -> ShadowPolicy:
    """A :class:`ShadowPolicy` from settings; a bad combination raises a one-line error."""
    try:
        return ShadowPolicy(
            min_items=min_items,
            min_duration_s=min_duration_s,
            max_duration_s=max_duration_s,
            tolerance=tolerance,
            alpha=alpha,
        )
    except ValueError as exc:
        raise RetrainError(f"shadow period settings: {exc}") from exc
