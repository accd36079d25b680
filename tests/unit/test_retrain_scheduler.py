"""When the scheduler starts a retrain run, and that a task never runs twice at once."""

from __future__ import annotations

import threading

import pytest

from retrain.exceptions import ScheduleError
from retrain.scheduler import RetrainScheduler, cron_trigger, should_run, should_run_on_drift


@pytest.mark.parametrize(
    ("new", "threshold", "expected"),
    [(0, 100, False), (99, 100, False), (100, 100, True), (5000, 100, True), (5000, 0, False)],
)
def test_should_run(new: int, threshold: int, expected: bool) -> None:
    assert should_run(new, threshold) is expected


def test_invalid_crontab_names_the_value() -> None:
    with pytest.raises(ScheduleError, match="'every day'"):
        cron_trigger("every day")


def test_check_runs_the_task_only_past_the_threshold() -> None:
    counts = {"sentiment": 10, "intent": 700}
    ran: list[str] = []
    scheduler = RetrainScheduler(
        ["sentiment", "intent"], ran.append, counts.__getitem__, cron=None, min_new_labels=500
    )
    assert scheduler.check("sentiment") is False
    assert scheduler.check("intent") is True
    assert ran == ["intent"]


def test_a_task_never_runs_twice_at_once() -> None:
    started, release = threading.Event(), threading.Event()
    runs: list[str] = []

    def slow(task: str) -> None:
        runs.append(task)
        started.set()
        release.wait(10)

    scheduler = RetrainScheduler(["sentiment"], slow, lambda _: 10_000, min_new_labels=1)
    first = threading.Thread(target=scheduler.run_now, args=("sentiment", "cron schedule"))
    first.start()
    assert started.wait(10)
    assert scheduler.check("sentiment") is False  # the cron run holds the task
    release.set()
    first.join(10)
    assert runs == ["sentiment"]
    assert scheduler.run_now("sentiment", "manual") is True


def test_a_failing_run_does_not_stop_the_scheduler() -> None:
    def broken(task: str) -> None:
        raise RuntimeError("disk full")

    scheduler = RetrainScheduler(["intent"], broken, lambda _: 0, cron=None)
    assert scheduler.run_now("intent", "manual") is True
    assert scheduler.run_now("intent", "manual") is True  # the lock was released


def test_start_schedules_cron_and_check_jobs() -> None:
    scheduler = RetrainScheduler(
        ["sentiment"], lambda _: None, lambda _: 0, cron="0 3 * * *", check_interval_s=3600
    )
    scheduler.start()
    try:
        jobs = {job.id: job for job in scheduler.scheduler.get_jobs()}
        assert set(jobs) == {"retrain-cron-sentiment", "retrain-check-sentiment"}
        assert all(job.max_instances == 1 and job.coalesce for job in jobs.values())
    finally:
        scheduler.shutdown(wait=False)


@pytest.mark.parametrize(
    ("score", "new", "expected"),
    [(None, 500, False), (0.1, 500, False), (0.3, 99, False), (0.3, 100, True), (0.25, 100, True)],
)
def test_should_run_on_drift(score: float | None, new: int, expected: bool) -> None:
    assert should_run_on_drift(score, new, threshold=0.25, min_new_labels=100) is expected


def test_drift_lowers_the_label_bar_and_runs_the_drift_job() -> None:
    counts = {"sentiment": 150, "intent": 150}
    scores = {"sentiment": 0.8, "intent": 0.02}
    ran: list[str] = []
    drift_runs: list[str] = []
    scheduler = RetrainScheduler(
        ["sentiment", "intent"],
        ran.append,
        counts.__getitem__,
        cron=None,
        min_new_labels=500,
        drift=scores.__getitem__,
        drift_threshold=0.25,
        drift_min_new_labels=100,
        run_on_drift=drift_runs.append,
    )
    assert scheduler.check("intent") is False  # no drift: 150 labels are not 500
    assert scheduler.check("sentiment") is True  # drifting: 150 labels are enough
    assert (ran, drift_runs) == ([], ["sentiment"])
    counts["intent"] = 600
    assert scheduler.check("intent") is True  # the label trigger still runs the plain job
    assert ran == ["intent"]
