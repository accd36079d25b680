"""Where the Kafka cluster is: the configured one, else the local broker (started if needed)."""

from __future__ import annotations

from deploy.broker import LocalBroker, fetch_jars
from streams.settings import Settings


def local_broker(settings: Settings) -> LocalBroker:
    """The local broker described by ``settings`` (jars fetched on first use)."""
    libs = fetch_jars(settings.kafka_version, settings.cache_dir)
    return LocalBroker(settings.resolved_state_dir(), libs, port=settings.broker_port)


def resolve_bootstrap(settings: Settings, *, start: bool = True) -> str:
    """The bootstrap servers to use; starts the local broker when none is configured."""
    if settings.kafka_bootstrap:
        return settings.kafka_bootstrap
    broker = local_broker(settings)
    info = broker.status()
    if info is None:
        if not start:
            from deploy.broker import BrokerError

            raise BrokerError(
                "no Kafka broker: run `streamsense broker start` or set STREAMSENSE_KAFKA_BOOTSTRAP"
            )
        info = broker.start()
    return info.bootstrap
