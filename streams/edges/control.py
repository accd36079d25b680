"""Announcing promotions and rollbacks on ``models.control`` so running workers swap."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from kafka import KafkaProducer

from streams.core.records import ModelControl, encode
from streams.edges.bootstrap import resolve_bootstrap
from streams.edges.security import kafka_python_config
from streams.settings import Settings

logger = logging.getLogger(__name__)


def publish_control(settings: Settings, task: str, version: str, action: str) -> None:
    """Send one confirmed ``ModelControl`` record; every worker then serves ``version``."""
    record = ModelControl.model_validate(
        {"task": task, "version": version, "action": action, "at": datetime.now(UTC)}
    )
    producer = KafkaProducer(
        bootstrap_servers=resolve_bootstrap(settings, start=False),
        acks="all",
        **kafka_python_config(settings),
    )
    try:
        topic = settings.topic_models_control
        producer.send(topic, key=task.encode(), value=encode(record)).get(timeout=30)
    finally:
        producer.close()
    logger.info("announced %s of %s/%s on %s", action, task, version, topic)
