"""Creating the pipeline's topics: partitions, replication and min.insync.replicas."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from kafka import KafkaAdminClient, TopicPartition
from kafka.admin import OffsetSpec
from kafka.errors import (
    KafkaTimeoutError,
    NotLeaderForPartitionError,
    TopicAlreadyExistsError,
    UnknownTopicOrPartitionError,
    for_code,
)

from streams.edges.security import kafka_python_config
from streams.errors import ConfigurationError
from streams.settings import Settings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Replication:
    """Replicas per partition and the least in sync for an ``acks=all`` write to succeed."""

    factor: int
    min_insync: int

    def topic_configs(self) -> dict[str, str]:
        return {"min.insync.replicas": str(self.min_insync)}


def choose_replication(factor: int, min_insync: int, brokers: int) -> Replication:
    """The replication for a cluster of ``brokers``; 0 in a setting means "choose".

    Defaults are the usual safe ones: three replicas where the cluster has three brokers
    (fewer on a smaller one) and ``min.insync.replicas`` one less than the replicas, so a
    confirmed write is on two brokers and one broker may fail without stopping writes.
    """
    if brokers < 1:
        raise ConfigurationError("the Kafka cluster reports no broker")
    rf = factor or min(3, brokers)
    if rf > brokers:
        raise ConfigurationError(
            f"STREAMSENSE_REPLICATION_FACTOR={rf} but the cluster has {brokers} broker(s): "
            "lower it, or 0 to match the cluster"
        )
    isr = min_insync or max(1, rf - 1)
    if isr > rf:
        raise ConfigurationError(
            f"STREAMSENSE_MIN_INSYNC_REPLICAS={isr} exceeds the replication factor {rf}: "
            "no write could ever be confirmed"
        )
    return Replication(rf, isr)


def cluster_replication(settings: Settings, bootstrap: str) -> Replication:
    """:func:`choose_replication` for the cluster at ``bootstrap`` (asks it its size)."""
    admin = KafkaAdminClient(
        bootstrap_servers=bootstrap, client_id="streamsense-admin", **kafka_python_config(settings)
    )
    try:
        return _replication(settings, admin)
    finally:
        admin.close()


def _replication(settings: Settings, admin: Any) -> Replication:
    brokers = len(admin.describe_cluster().get("brokers") or [])
    return choose_replication(settings.replication_factor, settings.min_insync_replicas, brokers)


TABLES = ("customer-history", "ticker-state", "intent-state")
"""The worker's Faust tables; each one is backed by a compacted changelog topic."""


def changelog_topic(settings: Settings, table: str) -> str:
    """Faust's name for a table's changelog topic."""
    return f"{settings.app_id}-{table}-changelog"


def pipeline_topics(settings: Settings) -> list[str]:
    """Every topic a worker uses: the pipeline's, their dead-letter topics, the changelogs."""
    return [*settings.all_topics(), *(changelog_topic(settings, t) for t in TABLES)]


LEADER_WAIT_S = 30.0
"""How long :func:`ensure_topics` waits for the new partitions' leaders."""


def ensure_topics(
    settings: Settings,
    bootstrap: str,
    *,
    replication: Replication | None = None,
    leader_wait_s: float = LEADER_WAIT_S,
) -> list[str]:
    """Create every missing pipeline topic; return the names created.

    ``replication`` is asked of the cluster (:func:`cluster_replication`) when not given.

    ``models.control`` gets one partition so every worker sees promotions in order. Input
    topics accept records up to ``max_input_message_bytes``, so an oversized record reaches
    the worker and is dead-lettered with its reason instead of being refused at the door.

    Returns only once every partition of the new topics has a leader that serves it (at
    most ``leader_wait_s``): a client that produces to a partition whose leader is not
    ready yet is refused with ``NotLeaderForPartition`` and logs a warning for each retry.
    """
    admin = KafkaAdminClient(
        bootstrap_servers=bootstrap, client_id="streamsense-admin", **kafka_python_config(settings)
    )
    try:
        existing = set(admin.list_topics())
        # the changelogs too: created here, they have their leaders before faust looks for
        # them (else a fresh worker can find one with "0 partitions" and stop)
        missing = [name for name in pipeline_topics(settings) if name not in existing]
        changelogs = {changelog_topic(settings, table) for table in TABLES}
        if not missing:
            return []
        replication = replication or _replication(settings, admin)
        inputs = {settings.topic_news_raw, settings.topic_messages_raw, settings.topic_feedback}
        big = {"max.message.bytes": str(settings.max_input_message_bytes)}
        wanted: dict[str, dict[str, Any]] = {
            name: {
                "num_partitions": (
                    1 if name == settings.topic_models_control else settings.topic_partitions
                ),
                "replication_factor": replication.factor,
                "configs": {
                    **replication.topic_configs(),
                    **(big if name in inputs else {}),
                    **({"cleanup.policy": "compact"} if name in changelogs else {}),
                },
            }
            for name in missing
        }
        created = _create(admin, wanted)
        started = time.monotonic()
        try:
            _wait_for_leaders(admin, wanted, started + leader_wait_s)
        except (KafkaTimeoutError, NotLeaderForPartitionError, UnknownTopicOrPartitionError) as exc:
            logger.warning(
                "Created topics %s, but not every partition has a leader after %.0f s "
                "(clients retry until one is elected): %s",
                ", ".join(created),
                leader_wait_s,
                exc,
            )
        else:
            logger.info(
                "Created topics %s; every partition has a leader (%.1f s)",
                ", ".join(created) or "(none: another process was first)",
                time.monotonic() - started,
            )
        return created
    finally:
        admin.close()


def _wait_for_leaders(
    admin: KafkaAdminClient, topics: dict[str, dict[str, Any]], deadline: float
) -> None:
    """Wait until every partition of ``topics`` has a leader, and that leader answers for it.

    The metadata names a new partition's leader a moment before that broker serves the
    partition, so a metadata check alone still lets the first sends fail; a ListOffsets
    request is answered only by the serving leader (kafka-python retries it quietly, except
    when the leader does not know the topic yet: a cluster's brokers learn of a new topic
    one after another, so that answer is retried here until the deadline).
    """
    admin.wait_for_topics(
        list(topics), timeout_ms=max(0, int((deadline - time.monotonic()) * 1000))
    )
    partitions = {
        TopicPartition(name, p): OffsetSpec.LATEST
        for name, spec in topics.items()
        for p in range(spec["num_partitions"])
    }
    while True:
        try:
            admin.list_partition_offsets(
                partitions, timeout_ms=max(1, int((deadline - time.monotonic()) * 1000))
            )
            return
        except UnknownTopicOrPartitionError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.2)


def _create(admin: KafkaAdminClient, wanted: dict[str, dict[str, Any]]) -> list[str]:
    """Create ``wanted``; return the names this call created (another process may race)."""
    response = admin.create_topics(wanted, raise_errors=False)
    created: list[str] = []
    for topic in response["topics"]:
        error = for_code(topic["error_code"])
        if topic["error_code"] == 0:
            created.append(topic["name"])
        elif error is TopicAlreadyExistsError:
            logger.info("Another process created topic %s first", topic["name"])
        else:
            raise ConfigurationError(
                f"Kafka refused to create topic {topic['name']}: {error.__name__} "
                f"({topic.get('error_message') or 'no message'})"
            )
    return created
