"""Quiet start: topics streamsense creates take records at once, without leader warnings."""

from __future__ import annotations

import logging

import pytest
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import ConfigResource, ConfigResourceType

from streams.edges.security import kafka_python_config
from streams.edges.topics import ensure_topics, pipeline_topics
from streams.errors import ConfigurationError
from streams.settings import Settings

LEADER_COMPLAINTS = ("NotLeaderForPartition", "LeaderNotAvailable", "LEADER_NOT_AVAILABLE")


def test_fresh_topics_take_records_at_once_without_leader_warnings(
    settings: Settings, kafka_bootstrap: str, unique: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Without the wait in ``ensure_topics``, the first sends to just-created partitions
    were refused with NotLeaderForPartition, and kafka-python warned once per retry."""
    caplog.set_level(logging.WARNING)
    caplog.set_level(logging.INFO, logger="streams.edges.topics")
    private = settings.model_copy(
        update={
            "kafka_bootstrap": kafka_bootstrap,
            "app_id": f"ready-{unique}",
            **{name: f"{name.removeprefix('topic_')}-{unique}" for name in Settings.topic_fields()},
        }
    )
    created = ensure_topics(private, kafka_bootstrap)
    assert sorted(created) == sorted(pipeline_topics(private))
    assert any("every partition has a leader" in r.getMessage() for r in caplog.records)

    security = kafka_python_config(private)
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap, **security)
    try:
        described = admin.describe_topics(created)
    finally:
        admin.close()
    partitions = {
        (topic["name"], p["partition_index"]): p["leader_id"]
        for topic in described
        for p in topic["partitions"]
    }
    expected = {
        (name, p)
        for name in created
        for p in range(1 if name == private.topic_models_control else private.topic_partitions)
    }
    assert set(partitions) == expected
    assert all(leader >= 0 for leader in partitions.values())

    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", **security)
    try:
        futures = [producer.send(t, b"first", key=b"k", partition=p) for t, p in sorted(expected)]
        producer.flush(timeout=60)
        assert all(f.get(timeout=1).offset == 0 for f in futures)
    finally:
        producer.close()
    complaints = [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.WARNING and any(c in r.getMessage() for c in LEADER_COMPLAINTS)
    ]
    assert complaints == []


def test_existing_topics_are_left_alone(
    settings: Settings, kafka_bootstrap: str, unique: str
) -> None:
    private = settings.model_copy(
        update={
            "kafka_bootstrap": kafka_bootstrap,
            "app_id": f"ready-{unique}",
            **{name: f"{name.removeprefix('topic_')}-{unique}" for name in Settings.topic_fields()},
        }
    )
    assert len(ensure_topics(private, kafka_bootstrap)) == len(pipeline_topics(private))
    assert ensure_topics(private, kafka_bootstrap) == []


def test_created_topics_carry_the_replication_settings(
    settings: Settings, kafka_bootstrap: str, unique: str
) -> None:
    """On the one-broker test cluster the defaults are one replica and min ISR 1, written
    on every topic; a factor the cluster cannot hold is refused before anything is made."""
    names = {name: f"{name.removeprefix('topic_')}-rf-{unique}" for name in Settings.topic_fields()}
    private = settings.model_copy(
        update={"kafka_bootstrap": kafka_bootstrap, "app_id": f"rf-{unique}", **names}
    )
    too_many = private.model_copy(update={"replication_factor": 2})
    with pytest.raises(ConfigurationError, match="STREAMSENSE_REPLICATION_FACTOR=2"):
        ensure_topics(too_many, kafka_bootstrap)
    created = ensure_topics(private, kafka_bootstrap)
    assert sorted(created) == sorted(pipeline_topics(private))
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap, **kafka_python_config(private))
    try:
        described = admin.describe_topics(created)
        resources = [ConfigResource(ConfigResourceType.TOPIC, name) for name in created]
        configs = admin.describe_configs(resources)
    finally:
        admin.close()
    assert {len(p["replica_nodes"]) for t in described for p in t["partitions"]} == {1}
    # {resource type: {topic: {config name: {config data}}}}, non-default values only
    (per_topic,) = configs.values()
    found = {
        name: str(values["min.insync.replicas"]["value"])
        for name, values in per_topic.items()
        if "min.insync.replicas" in values
    }
    assert found == dict.fromkeys(created, "1"), per_topic
