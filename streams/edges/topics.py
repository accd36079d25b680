"""Creating the pipeline's topics with the configured partition count."""

from __future__ import annotations

import logging

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError

from streams.settings import Settings

logger = logging.getLogger(__name__)


def ensure_topics(settings: Settings, bootstrap: str) -> list[str]:
    """Create every missing pipeline topic; return the names created.

    ``models.control`` gets one partition so every worker sees promotions in order. Input
    topics accept records up to ``max_input_message_bytes``, so an oversized record reaches
    the worker and is dead-lettered with its reason instead of being refused at the door.
    """
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="streamsense-admin")
    try:
        existing = set(admin.list_topics())
        inputs = {settings.topic_news_raw, settings.topic_messages_raw, settings.topic_feedback}
        big = {"max.message.bytes": str(settings.max_input_message_bytes)}
        wanted = [
            NewTopic(
                name,
                1 if name == settings.topic_models_control else settings.topic_partitions,
                1,
                topic_configs=big if name in inputs else {},
            )
            for name in settings.all_topics()
            if name not in existing
        ]
        if wanted:
            try:
                admin.create_topics(wanted)
            except TopicAlreadyExistsError:
                logger.info("Another process created some topics first")
        created = [t.name for t in wanted]
        if created:
            logger.info("Created topics %s", ", ".join(created))
        return created
    finally:
        admin.close()
