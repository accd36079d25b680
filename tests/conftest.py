"""Fixtures shared by all tests: the real Kafka broker and unique names."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy.broker import BrokerError, LocalBroker, broker_answers, fetch_jars
from streams.settings import Settings

pytest_plugins = ["tests.model_fixtures"]


@pytest.fixture(scope="session")
def settings() -> Settings:
    """Settings as the environment gives them (the tests never change the environment)."""
    return Settings()


@pytest.fixture(scope="session")
def kafka_bootstrap(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Kafka broker: the configured cluster, else a local one started for this session.

    If no broker can be had the tests that need one fail with the reason; they never skip.
    """
    if settings.kafka_bootstrap:
        if not broker_answers(settings.kafka_bootstrap, timeout_s=10):
            pytest.fail(f"STREAMSENSE_KAFKA_BOOTSTRAP={settings.kafka_bootstrap} does not answer")
        yield settings.kafka_bootstrap
        return
    state: Path = tmp_path_factory.mktemp("kafka-state")
    try:
        broker = LocalBroker(state, fetch_jars(settings.kafka_version, settings.cache_dir))
        info = broker.start()
    except BrokerError as exc:
        pytest.fail(f"the local Kafka broker could not start: {exc}")
    try:
        yield info.bootstrap
    finally:
        broker.stop()


@pytest.fixture
def unique() -> str:
    """A short random suffix for this test's topics and consumer groups."""
    return uuid.uuid4().hex[:10]
