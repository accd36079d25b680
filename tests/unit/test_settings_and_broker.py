"""Settings come from STREAMSENSE_* variables; the broker launcher explains what is missing."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from pydantic import ValidationError

from deploy import broker
from deploy import ports as ports_module
from streams.settings import Settings


def test_settings_read_prefixed_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMSENSE_KAFKA_BOOTSTRAP", "kafka-1:9092,kafka-2:9092")
    monkeypatch.setenv("STREAMSENSE_BATCH_SIZE", "64")
    settings = Settings()
    assert settings.kafka_bootstrap == "kafka-1:9092,kafka-2:9092"
    assert settings.batch_size == 64
    assert settings.metrics_host == "127.0.0.1"


def test_settings_are_frozen_and_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings()
    with pytest.raises(ValidationError):
        settings.batch_size = 3  # type: ignore[misc]
    monkeypatch.setenv("STREAMSENSE_BATCH_SIZE", "0")
    with pytest.raises(ValidationError, match="batch_size"):
        Settings()


def test_missing_java_names_the_fix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(broker.shutil, "which", lambda name: None)
    with pytest.raises(broker.BrokerError) as info:
        broker.fetch_jars("4.1.1", tmp_path)
    message = str(info.value)
    assert "'java'" in message
    assert "apt-get install" in message
    assert "STREAMSENSE_KAFKA_BOOTSTRAP" in message


def test_cluster_id_is_a_kafka_uuid() -> None:
    cluster_id = broker._kafka_uuid()
    assert len(cluster_id) == 22
    assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16
    assert cluster_id != broker._kafka_uuid()
    # the storage tool's command line would take a leading '-' for an option
    assert not any(broker._kafka_uuid().startswith("-") for _ in range(2000))


def test_broker_config_listens_on_loopback_only(tmp_path: Path) -> None:
    local = broker.LocalBroker(tmp_path, tmp_path / "libs")
    local.home.mkdir(parents=True)
    config = local._write_config(19092, 19093).read_text(encoding="utf-8")
    assert "listeners=PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093" in config
    assert "process.roles=broker,controller" in config
    assert "0.0.0.0" not in config


def test_the_local_broker_ports_lie_outside_the_ephemeral_range(tmp_path: Path) -> None:
    """Inside the range, a client retrying while the broker is down can connect to itself
    on the broker's port (seen: 127.0.0.1:39092 <-> 127.0.0.1:39092) and the restarted
    broker cannot bind it again."""
    low, high = ports_module._ephemeral_range()
    for _ in range(20):
        ports = broker.LocalBroker(tmp_path, tmp_path)._choose_ports()
        assert ports["port"] != ports["controller_port"]
        for port in ports.values():
            assert not low <= port <= high, (port, low, high)
