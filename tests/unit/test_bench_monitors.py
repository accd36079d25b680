"""bench.monitors runs the intent monitor's batch work and prints a rate per window."""

from __future__ import annotations

import pytest

from bench.monitors import main


def test_the_monitor_bench_prints_one_line_per_window(capsys: pytest.CaptureFixture[str]) -> None:
    main(["--windows", "20", "60", "--ticker-windows", "30", "--batches", "2", "--rounds", "1"])
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == [
        "window 20 items",
        "window 60 items",
        "ticker window 30 items",
    ]
    assert all(float(line.split(": ")[1].split()[0]) > 0 for line in lines)
