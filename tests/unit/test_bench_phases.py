"""The paced run's split of a scorer batch's time, from two scrapes of its phase histogram."""

from __future__ import annotations

import math

import pytest

from bench.report import phase_line
from bench.stats import phase_split


def test_the_split_is_the_difference_between_the_scrapes_per_batch_and_share() -> None:
    before = {"wait": (10.0, 5.0), "inference": (10.0, 0.5), "ack": (10.0, 0.01)}
    after = {
        "wait": (30.0, 5.2),
        "inference": (30.0, 0.9),
        "confirm": (20.0, 0.2),
        "ack": (30.0, 0.01),
    }
    split = phase_split(before, after)
    assert list(split) == ["wait", "inference", "confirm", "ack"]  # per batch: 20 of them
    # 0.2 s waiting, 0.4 s in the models, 0.2 s confirming over 20 batches (0.8 s)
    assert split["wait"]["ms_per_batch"] == pytest.approx(10.0)
    assert split["inference"]["ms_per_batch"] == pytest.approx(20.0)
    assert split["confirm"]["ms_per_batch"] == pytest.approx(10.0)
    assert split["inference"]["share"] == pytest.approx(0.5)
    assert split["ack"]["share"] == pytest.approx(0.0)
    assert phase_line(split).startswith("wait 10.0 (25 %), inference 20.0 (50 %)")


def test_no_batch_between_the_scrapes_gives_no_numbers() -> None:
    same = {"wait": (3.0, 1.0), "ack": (3.0, 0.1)}
    split = phase_split(same, same)
    assert math.isnan(split["wait"]["ms_per_batch"]) and math.isnan(split["wait"]["share"])


def test_a_worker_without_the_metric_gives_an_empty_split() -> None:
    assert phase_split({}, {}) == {}
