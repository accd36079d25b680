"""Creating the pipeline's topics with the configured partition count."""

from __future__ import annotations

import logging
import time
from typing import Any

from kafka import KafkaAdminClient, TopicPartition
from kafka.admin import OffsetSpec
from kafka.errors import (
    KafkaTimeoutError,
    NotLeaderForPartitionError,
    TopicAlreadyExistsError,
    for_code,
)

from streams.edges.security import kafka_python_config
from streams.errors import ConfigurationError
from streams.settings import Settings

logger = logging.getLogger(__name__)

LEADER_WAIT_S = 30.0
"""How long :func:`ensure_topics` waits for the new partitions' leaders."""


def ensure_topics(
    settings: Settings, bootstrap: str, *, leader_wait_s: float = LEADER_WAIT_S
) -> list[str]:
    """Create every missing pipeline topic; return the names created.

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
        inputs = {settings.topic_news_raw, settings.topic_messages_raw, settings.topic_feedback}
        big = {"max.message.bytes": str(settings.max_input_message_bytes)}
        wanted: dict[str, dict[str, Any]] = {
            name: {
                "num_partitions": (
                    1 if name == settings.topic_models_control else settings.topic_partitions
                ),
                "replication_factor": 1,
                "configs": big if name in inputs else {},
            }
            for name in settings.all_topics()
            if name not in existing
        }
        if not wanted:
            return []
        created = _create(admin, wanted)
        started = time.monotonic()
        try:
            _wait_for_leaders(admin, wanted, started + leader_wait_s)
        except (KafkaTimeoutError, NotLeaderForPartitionError) as exc:
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
    request is answered only by the serving leader (kafka-python retries it quietly).
    """
    admin.wait_for_topics(
        list(topics), timeout_ms=max(0, int((deadline - time.monotonic()) * 1000))
    )
    partitions = {
        TopicPartition(name, p): OffsetSpec.LATEST
        for name, spec in topics.items()
        for p in range(spec["num_partitions"])
    }
    admin.list_partition_offsets(
        partitions, timeout_ms=max(1, int((deadline - time.monotonic()) * 1000))
    )


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
