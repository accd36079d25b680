"""Drift of the served traffic, measured in the worker as it scores (``streams.core.drift``).

After every model call the scorer hands a sample of the batch (at most
:data:`SAMPLE_PER_BATCH` items: PSI over a window needs a sample, not every item, and
the per-item cost stays off the hot path) to the monitor of the version that scored it.
The monitor compares its window with that version's reference in the registry
(``drift_reference.json``, written by the retrain job, ``streamsense models
drift-reference`` or ``make run``) and the metrics carry the result. A swap starts a new
window for the new version. A version without a reference is not measured (its metrics
stay NaN) and the worker says so once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from models.prediction import Prediction
from models.registry import Registry
from models.runtime import Classifier
from streams.core.drift import DriftMonitor
from streams.runtime.metrics import Metrics

logger = logging.getLogger(__name__)

SAMPLE_PER_BATCH = 8
RECHECK_S = 60.0
"""How often a version without a reference is looked up again."""


class DriftWatch:
    """One drift monitor per task, for the version serving it."""

    def __init__(
        self, registry: Registry | None, metrics: Metrics, window: int, min_items: int
    ) -> None:
        self.registry = registry
        self.metrics = metrics
        self.window = window
        self.min_items = min_items
        self.monitors: dict[str, DriftMonitor | None] = {}
        self._versions: dict[str, str] = {}
        self._recheck: dict[str, float] = {}
        self._missing_said: set[str] = set()

    def _monitor(self, task: str, version: str) -> DriftMonitor | None:
        now = time.monotonic()
        if self._versions.get(task) == version:
            monitor = self.monitors.get(task)
            if monitor is not None or now < self._recheck.get(task, 0.0):
                return monitor
        self._recheck[task] = now + RECHECK_S  # a reference written later is picked up
        self._versions[task] = version
        monitor = None
        if self.registry is not None:
            try:
                reference = self.registry.drift_reference(task, version)
            except Exception as exc:  # a damaged reference must not stop the scorer
                logger.warning("drift reference of %s/%s unusable: %s", task, version, exc)
                reference = None
            if reference is None and task not in self._missing_said:
                self._missing_said.add(task)
                logger.info(
                    "no drift reference for %s/%s: drift is not measured "
                    "(streamsense models drift-reference %s)",
                    task,
                    version,
                    task,
                )
            elif reference is not None:
                monitor = DriftMonitor(reference, window=self.window, min_items=self.min_items)
        self.monitors[task] = monitor
        return monitor

    def observe(
        self, classifier: Classifier, texts: Sequence[str], predictions: Sequence[Prediction]
    ) -> None:
        """Add a sample of one scored batch to its task's window and publish the drift."""
        monitor = self._monitor(classifier.task, classifier.version)
        if monitor is None or not texts:
            return
        step = max(1, len(texts) // SAMPLE_PER_BATCH)
        sample = range(0, len(texts), step)
        report = monitor.observe([texts[i] for i in sample], [predictions[i] for i in sample])
        if report is not None:
            self.metrics.record_drift(report.task, report.psi, report.score, report.items)
