"""The retrain scheduler's drift score: served predictions in the store vs the reference.

The workers export the full drift score (inputs and outputs) as metrics; the scheduler,
which may run on another machine, reads what every worker writes to the shared feedback
store instead: the predicted label and confidence of the latest served items of the
production version, compared with the version's drift reference (:mod:`models.drift`).
"""

from __future__ import annotations

import logging

from models.drift import bin_of, psi
from models.exceptions import ModelsError
from models.registry import Registry
from retrain.store import FeedbackStore

logger = logging.getLogger(__name__)


def served_drift(
    store: FeedbackStore,
    registry: Registry,
    task: str,
    *,
    window: int = 1000,
    min_items: int = 200,
) -> float | None:
    """Largest PSI of label and confidence over the latest ``window`` served predictions.

    None when there is no production version, no drift reference for it (a reference is
    written by the retrain job's evaluation or ``streamsense models drift-reference``), or
    fewer than ``min_items`` served predictions.
    """
    version = registry.production(task)
    if version is None:
        return None
    try:
        reference = registry.drift_reference(task, version)
    except ModelsError as exc:
        logger.warning("drift of %s not measured: %s", task, exc)
        return None
    if reference is None:
        return None
    rows = store.recent_predictions(task, version, window)
    if len(rows) < min_items:
        return None
    labels = [0] * reference.bins("label")
    confidence = [0] * reference.bins("confidence")
    index = {name: i for i, name in enumerate(reference.labels)}
    for label, conf in rows:
        if label in index:
            labels[index[label]] += 1
        confidence[bin_of(reference.edges["confidence"], conf)] += 1
    return max(
        psi(reference.counts["label"], labels),
        psi(reference.counts["confidence"], confidence),
    )
