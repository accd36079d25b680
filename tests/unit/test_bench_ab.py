"""The A/B bench's pairing: alternating order, medians and pairs won (pure logic)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bench import pipeline
from bench.ab import _overrides, main, order, summary
from bench.worker import _env_args
from streams.settings import Settings


def _row(repeat: int, arm: str, rate: float, p50: float, p99: float) -> dict[str, Any]:
    return {"repeat": repeat, "arm": arm, "rate": rate, "p50_ms": p50, "p99_ms": p99}


def test_the_arms_alternate_which_goes_first() -> None:
    assert [order(r) for r in range(4)] == [("A", "B"), ("B", "A"), ("A", "B"), ("B", "A")]


def test_a_pair_is_won_by_the_higher_rate_and_the_lower_latency() -> None:
    rows = [
        _row(0, "A", 240, 100, 180),
        _row(0, "B", 280, 80, 150),
        _row(1, "B", 270, 90, 220),
        _row(1, "A", 245, 95, 190),
        _row(2, "A", 250, 70, 140),
        _row(2, "B", 260, 75, 160),
    ]
    result = summary(rows)
    assert result["B"]["rate"] == 270 and result["A"]["rate"] == 245
    assert result["B"]["rate_won"] == 3 and result["A"]["rate_won"] == 0
    assert result["B"]["p50_ms_won"] == 2 and result["A"]["p50_ms_won"] == 1
    assert result["B"]["p99_ms_won"] == 1 and result["A"]["p99_ms_won"] == 2
    assert result["A"]["p99_ms"] == 180


def test_arm_b_takes_only_real_settings() -> None:
    assert _overrides(["producer_linger_s=0", "batch_size=32"]) == {
        "producer_linger_s": "0",
        "batch_size": "32",
    }
    for bad in (["producer_linger_s"], ["no_such_setting=1"]):
        with pytest.raises(SystemExit):
            _overrides(bad)


def test_main_wants_arm_b_settings_or_arm_a_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        main(["--registry", str(tmp_path)])
    assert "give arm B's SETTING=VALUE, or --a-source" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--registry", str(tmp_path), "--a-source", str(tmp_path)])
    assert "no streams/cli there (not a checkout)" in capsys.readouterr().err


def test_a_worker_gets_every_setting_its_caller_set_but_no_secret() -> None:
    settings = Settings.model_validate(
        {
            "producer_compression": "gzip",
            "alert_cooldown_s": 5,
            "kafka_bootstrap": "broker:9093",
            "kafka_security_protocol": "SASL_PLAINTEXT",
            "kafka_sasl_mechanism": "PLAIN",
            "kafka_sasl_username": "bench",
            "kafka_sasl_password": "hunter2",
        }
    )
    args = _env_args(settings, 9999)
    assert "STREAMSENSE_PRODUCER_COMPRESSION=gzip" in args
    assert "STREAMSENSE_ALERT_COOLDOWN_S=5.0" in args
    # TLS/SASL reach the worker through the inherited environment, never as arguments
    assert not any("KAFKA_S" in a or "hunter2" in a for a in args)


def test_arm_b_may_override_the_plans_own_batching(monkeypatch: pytest.MonkeyPatch) -> None:
    """bench.ab's arm B with batch_max_wait_s=...: it wins over the plan's (it collided)."""
    seen: dict[str, Any] = {}

    class Stop(Exception):
        pass

    def capture(*args: Any, **kwargs: Any) -> None:
        seen.update(kwargs)
        raise Stop

    monkeypatch.setattr(pipeline, "private_settings", capture)
    plan = pipeline.PointPlan(64, 0.01, 0.0, 10, 0, 130.0, 5.0, 0.5, 0)
    texts = pipeline.Texts(messages=["hi"], news=["up"])
    with pytest.raises(Stop):
        pipeline.run_point(
            Settings(), "b:1", Path("r"), Path("w"), texts, plan, {"batch_max_wait_s": "0.005"}
        )
    assert seen == {"batch_size": "64", "batch_max_wait_s": "0.005", "latency_target_s": "0.0"}
