"""When to retrain: a cron schedule, a periodic check for enough new labels, and drift.

The drift trigger (optional) lowers the label bar: while a task's drift score is at or
above ``drift_threshold``, the periodic check starts a run (``run_on_drift``) as soon as
``drift_min_new_labels`` new labels exist instead of ``min_new_labels``: traffic that has
moved away from the training data is worth learning from sooner.

APScheduler 3 runs the jobs in its thread pool. Each task has a cron job and a check job;
both go through one per-task lock, so a task never has two runs at once (APScheduler's
``max_instances=1`` only guards each job against itself).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from retrain.exceptions import ScheduleError

logger = logging.getLogger(__name__)

DEFAULT_CRON = "0 3 * * *"
DEFAULT_CHECK_INTERVAL_S = 60.0


def should_run(new_labels: int, threshold: int) -> bool:
    """Whether ``new_labels`` new labels warrant a run (a threshold of 0 disables the trigger)."""
    return threshold > 0 and new_labels >= threshold


def should_run_on_drift(
    score: float | None, new_labels: int, threshold: float, min_new_labels: int
) -> bool:
    """Whether a drift ``score`` at or above ``threshold`` with enough new labels warrants a run."""
    return (
        score is not None
        and threshold > 0
        and score >= threshold
        and (new_labels >= max(1, min_new_labels))
    )


def cron_trigger(crontab: str) -> CronTrigger:
    """A UTC trigger from a five-field crontab string; raises a clear error when invalid."""
    try:
        return CronTrigger.from_crontab(crontab, timezone="UTC")
    except ValueError as exc:
        raise ScheduleError(
            f"invalid retrain cron schedule {crontab!r} (expected five fields, e.g. "
            f"'{DEFAULT_CRON}' = daily at 03:00 UTC): {exc}"
        ) from exc


class RetrainScheduler:
    """Cron and label-count triggers for retrain runs; one run per task at a time."""

    def __init__(
        self,
        tasks: Sequence[str],
        run: Callable[[str], Any],
        count_new: Callable[[str], int],
        *,
        cron: str | None = DEFAULT_CRON,
        min_new_labels: int = 500,
        check_interval_s: float = DEFAULT_CHECK_INTERVAL_S,
        drift: Callable[[str], float | None] | None = None,
        drift_threshold: float = 0.25,
        drift_min_new_labels: int = 100,
        run_on_drift: Callable[[str], Any] | None = None,
    ) -> None:
        if check_interval_s <= 0:
            raise ScheduleError(f"check interval must be > 0 seconds, got {check_interval_s}")
        self.tasks = list(tasks)
        self._run = run
        self._count_new = count_new
        self._cron = cron_trigger(cron) if cron else None
        self.min_new_labels = min_new_labels
        self.check_interval_s = check_interval_s
        self._drift = drift
        self.drift_threshold = drift_threshold
        self.drift_min_new_labels = drift_min_new_labels
        self._run_on_drift = run_on_drift or run
        self._locks = {task: threading.Lock() for task in self.tasks}
        self.scheduler = BackgroundScheduler(timezone="UTC")

    def run_now(self, task: str, trigger: str, *, on_drift: bool = False) -> bool:
        """Run ``task`` unless a run of it is in progress; return whether this one ran."""
        lock = self._locks[task]
        if not lock.acquire(blocking=False):
            logger.info("retrain of %s (%s) not started: a run is in progress", task, trigger)
            return False
        try:
            logger.info("retrain of %s started by %s", task, trigger)
            (self._run_on_drift if on_drift else self._run)(task)
        except Exception:
            logger.exception("retrain of %s (%s) failed", task, trigger)
        finally:
            lock.release()
        return True

    def check(self, task: str) -> bool:
        """The periodic check: run ``task`` when enough new labels have accumulated, or
        fewer while its traffic drifts."""
        new = self._count_new(task)
        if should_run(new, self.min_new_labels):
            return self.run_now(task, f"{new} new labels (threshold {self.min_new_labels})")
        score = self._drift(task) if self._drift is not None else None
        if should_run_on_drift(score, new, self.drift_threshold, self.drift_min_new_labels):
            return self.run_now(
                task,
                f"drift score {score:.3f} (threshold {self.drift_threshold}) with {new} new "
                f"labels (at least {self.drift_min_new_labels} while drifting)",
                on_drift=True,
            )
        logger.debug(
            "%s: %s new label(s), threshold %s; drift score %s",
            task,
            new,
            self.min_new_labels,
            score,
        )
        return False

    def start(self) -> None:
        """Add the jobs and start the scheduler's background thread."""
        options: dict[str, Any] = {"max_instances": 1, "coalesce": True}
        for task in self.tasks:
            if self._cron is not None:
                self.scheduler.add_job(
                    self.run_now,
                    self._cron,
                    args=[task, "cron schedule"],
                    id=f"retrain-cron-{task}",
                    misfire_grace_time=3600,
                    **options,
                )
            if self.min_new_labels > 0 or self._drift is not None:
                self.scheduler.add_job(
                    self.check,
                    IntervalTrigger(seconds=self.check_interval_s, timezone="UTC"),
                    args=[task],
                    id=f"retrain-check-{task}",
                    misfire_grace_time=int(self.check_interval_s),
                    **options,
                )
        self.scheduler.start()
        for job in self.scheduler.get_jobs():
            logger.info("scheduled %s: %s, next run %s", job.id, job.trigger, job.next_run_time)

    def shutdown(self, wait: bool = True) -> None:
        """Stop scheduling; with ``wait``, let a run in progress finish first."""
        self.scheduler.shutdown(wait=wait)
