"""bench.steps times the message scorer's pure steps and prints one line per step."""

from __future__ import annotations

import pytest

from bench.steps import main

STEPS = [
    "decode",
    "score_message",
    "recommend (of route)",
    "route_and_recommend",
    "encode ticket + recommendation",
]


def test_the_steps_bench_prints_a_time_per_message_for_each_step(
    capsys: pytest.CaptureFixture[str],
) -> None:
    main(["--messages", "50", "--rounds", "1"])
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("  ")[0] for line in lines] == STEPS
    assert all(float(line.split()[-6]) > 0 for line in lines)
