"""Where the Kafka cluster is: the configured one, else the local broker (started if needed)."""

from __future__ import annotations

from deploy.broker import LocalBroker, fetch_jars
from streams.edges.security import check_access
from streams.settings import Settings


def local_broker(settings: Settings) -> LocalBroker:
    """The local broker described by ``settings`` (jars fetched on first use)."""
    libs = fetch_jars(settings.kafka_version, settings.cache_dir)
    return LocalBroker(settings.resolved_state_dir(), libs, port=settings.broker_port)


def resolve_bootstrap(settings: Settings, *, start: bool = True) -> str:
    """The bootstrap servers to use; starts the local broker when none is configured.

    A configured cluster with TLS or SASL is tried once first (:func:`check_access`), so a
    refused login or certificate stops the command with one clear error.
    """
    if settings.kafka_bootstrap:
        if settings.kafka_security_protocol != "PLAINTEXT":
            check_access(settings, settings.kafka_bootstrap)
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
