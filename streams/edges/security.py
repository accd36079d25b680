"""Kafka TLS and SASL: the settings turned into each client library's configuration.

Every Kafka client streamsense creates (kafka-python, aiokafka, Faust) takes its security
configuration from here, so all of them connect the same way. The settings were checked
when they were loaded (:class:`streams.settings.Settings`). The mappings returned hold the
secrets' values, as the client libraries need them: hand them to a client, never log them.
Their ``repr`` is masked, and so are the secrets in the client libraries' own log records
(they dump requests and configurations at DEBUG).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pydantic import SecretStr

from streams.errors import ConfigurationError
from streams.settings import Settings

logger = logging.getLogger(__name__)

SECURITY_FIELDS = tuple(
    name
    for name in Settings.model_fields
    if name.startswith(("kafka_security_", "kafka_ssl_", "kafka_sasl_"))
)
"""The settings this module reads (a child process's settings must carry them along)."""


_MASK = "**********"

_WIRE_LOGGERS = (
    "aiokafka.conn",
    "kafka.net.connection",
    "kafka.protocol.parser",
    "kafka.admin.client",
)
"""Loggers that write whole requests (SASL PLAIN's password among them) or a client's
configuration at DEBUG; every other logger of the client libraries that exists is masked
as well."""


class ClientSecret(str):
    """A secret handed to a client library: the value itself, but its ``repr`` hides it.

    kafka-python's admin client logs its whole configuration at DEBUG, and a dict shows its
    values by ``repr``; the libraries themselves only ``encode`` or join the value.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return f"'{_MASK}'"


class _SecretFilter(logging.Filter):
    """Masks the secrets handed to Kafka clients in their libraries' log records."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: frozenset[str] = frozenset()

    def filter(self, record: logging.LogRecord) -> bool:
        secrets = self.secrets  # replaced, never changed: safe against other threads
        if secrets:
            message = record.getMessage()
            if any(secret in message for secret in secrets):
                for secret in secrets:
                    message = message.replace(secret, _MASK)
                record.msg, record.args = message, None
        return True


_FILTER = _SecretFilter()


def _hide_in_logs(value: str) -> None:
    """Mask ``value`` (also as the escaped bytes a request dump shows) in client logs."""
    forms = {value, repr(value.encode())[2:-1]} - {""}
    _FILTER.secrets = _FILTER.secrets | forms
    clients = [
        name
        for name in logging.root.manager.loggerDict
        if name.partition(".")[0] in ("kafka", "aiokafka", "faust")
    ]
    for name in {*_WIRE_LOGGERS, *clients}:
        client_logger = logging.getLogger(name)
        if _FILTER not in client_logger.filters:
            client_logger.addFilter(_FILTER)


def _reveal(secret: SecretStr | None) -> ClientSecret | None:
    if secret is None:
        return None
    _hide_in_logs(secret.get_secret_value())
    return ClientSecret(secret.get_secret_value())


def uses_tls(settings: Settings) -> bool:
    """True when the clients connect over TLS (``SSL`` or ``SASL_SSL``)."""
    return settings.kafka_security_protocol in ("SSL", "SASL_SSL")


def uses_sasl(settings: Settings) -> bool:
    """True when the clients authenticate with SASL (``SASL_PLAINTEXT`` or ``SASL_SSL``)."""
    return settings.kafka_security_protocol in ("SASL_PLAINTEXT", "SASL_SSL")


def _sasl(settings: Settings) -> dict[str, Any]:
    return {
        "sasl_mechanism": settings.kafka_sasl_mechanism,
        "sasl_plain_username": settings.kafka_sasl_username,
        "sasl_plain_password": _reveal(settings.kafka_sasl_password),
    }


def kafka_python_config(settings: Settings) -> dict[str, Any]:
    """Security keyword arguments of kafka-python's producer, consumer and admin client."""
    config: dict[str, Any] = {"security_protocol": settings.kafka_security_protocol}
    if uses_tls(settings):
        config["ssl_check_hostname"] = settings.kafka_ssl_check_hostname
        files = {
            "ssl_cafile": settings.kafka_ssl_cafile,
            "ssl_certfile": settings.kafka_ssl_certfile,
            "ssl_keyfile": settings.kafka_ssl_keyfile,
        }
        config.update({key: str(path.expanduser()) for key, path in files.items() if path})
        if settings.kafka_ssl_key_password is not None:
            config["ssl_password"] = _reveal(settings.kafka_ssl_key_password)
    if uses_sasl(settings):
        config.update(_sasl(settings))
    return config


def ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """The TLS context of the asyncio clients (aiokafka, Faust); None without TLS.

    Built like kafka-python builds its own: TLS 1.2 or later, the brokers' certificates
    checked against the CA file (else the system's CAs), the host name checked unless
    turned off, and the client certificate presented when one is configured.
    """
    if not uses_tls(settings):
        return None
    cafile = settings.kafka_ssl_cafile
    try:
        context = ssl.create_default_context(
            ssl.Purpose.SERVER_AUTH, cafile=str(cafile.expanduser()) if cafile else None
        )
    except (OSError, ssl.SSLError) as exc:
        raise ConfigurationError(
            f"STREAMSENSE_KAFKA_SSL_CAFILE={cafile}: no PEM CA certificates could be read "
            f"({exc.__class__.__name__}: {exc})"
        ) from None
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = settings.kafka_ssl_check_hostname
    certfile, keyfile = settings.kafka_ssl_certfile, settings.kafka_ssl_keyfile
    if certfile is not None:
        password = settings.kafka_ssl_key_password
        try:
            context.load_cert_chain(
                str(certfile.expanduser()),
                str(keyfile.expanduser()) if keyfile else None,
                password.get_secret_value() if password else None,
            )
        except (OSError, ssl.SSLError) as exc:
            raise ConfigurationError(
                f"STREAMSENSE_KAFKA_SSL_CERTFILE={certfile}, STREAMSENSE_KAFKA_SSL_KEYFILE="
                f"{keyfile}: the client certificate and key could not be loaded (not PEM, not a "
                f"pair, or a wrong STREAMSENSE_KAFKA_SSL_KEY_PASSWORD): {exc}"
            ) from None
    return context


def aiokafka_config(settings: Settings) -> dict[str, Any]:
    """Security keyword arguments of ``AIOKafkaProducer`` and ``AIOKafkaConsumer``."""
    config: dict[str, Any] = {"security_protocol": settings.kafka_security_protocol}
    if uses_tls(settings):
        config["ssl_context"] = ssl_context(settings)
    if uses_sasl(settings):
        config.update(_sasl(settings))
    return config


def faust_credentials(settings: Settings) -> Any:
    """The ``broker_credentials`` of a ``faust.App``; None for PLAINTEXT.

    faust-streaming hands ``SASLCredentials`` (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512; SASL_SSL
    when it carries a TLS context) and ``SSLCredentials`` to aiokafka unchanged
    (``faust.transport.drivers.aiokafka.credentials_to_aiokafka_auth``), for its consumer,
    its producer and the client that creates its topics alike.
    """
    from faust.auth import SASLCredentials, SSLCredentials

    context = ssl_context(settings)
    if uses_sasl(settings):
        sasl = _sasl(settings)
        return SASLCredentials(
            username=sasl["sasl_plain_username"],
            password=sasl["sasl_plain_password"],
            mechanism=sasl["sasl_mechanism"],
            ssl_context=context,
        )
    if context is not None:
        return SSLCredentials(context)
    return None


def check_access(settings: Settings, bootstrap: str, timeout_s: float = 15.0) -> None:
    """Open one connection to the cluster with the configured TLS and SASL; raise if refused.

    The clients themselves retry a refused login until they time out, logging each attempt;
    this says at once, in one line, what was refused and which setting to look at. A server
    that cannot be reached is skipped (the clients retry those as usual).

    Raises:
        ConfigurationError: a broker refused the login, or the TLS handshake failed.
    """
    servers = [s.strip() for s in bootstrap.split(",") if s.strip()]
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="kafka-access") as pool:
        # a loop of its own: callers may or may not run inside one
        problem = pool.submit(asyncio.run, _first_answer(settings, servers, timeout_s)).result()
    if problem:
        raise ConfigurationError(problem)


async def _first_answer(settings: Settings, servers: list[str], timeout_s: float) -> str:
    """Why the first server that answers refuses us ("" when it accepts, or none answers)."""
    from aiokafka.conn import create_conn
    from aiokafka.errors import (
        KafkaConnectionError,
        SaslAuthenticationFailed,
        UnsupportedSaslMechanismError,
    )

    protocol = settings.kafka_security_protocol
    config = aiokafka_config(settings)  # a client certificate that cannot load raises here
    for server in servers:
        host, _, port = server.rpartition(":")
        try:
            conn = await asyncio.wait_for(create_conn(host, int(port), **config), timeout_s)
        except SaslAuthenticationFailed as exc:
            return (
                f"Kafka at {server} refused the SASL login of user "
                f"'{settings.kafka_sasl_username}' ({settings.kafka_sasl_mechanism}): {exc}. "
                "Check STREAMSENSE_KAFKA_SASL_USERNAME and STREAMSENSE_KAFKA_SASL_PASSWORD."
            )
        except UnsupportedSaslMechanismError as exc:
            return (
                f"Kafka at {server} does not offer STREAMSENSE_KAFKA_SASL_MECHANISM="
                f"{settings.kafka_sasl_mechanism}: {exc}"
            )
        except ssl.SSLCertVerificationError as exc:
            return (
                f"the TLS certificate of Kafka at {server} was not accepted: "
                f"{exc.verify_message}. Check STREAMSENSE_KAFKA_SSL_CAFILE (or, for a name "
                "mismatch, the bootstrap host; STREAMSENSE_KAFKA_SSL_CHECK_HOSTNAME)."
            )
        except ssl.SSLError as exc:
            return _tls_refused(server, protocol, exc)
        except KafkaConnectionError as exc:
            cause = exc.__cause__
            if isinstance(cause, ssl.SSLError):
                return _tls_refused(server, protocol, cause)
            if isinstance(cause, asyncio.IncompleteReadError):
                return (
                    f"Kafka at {server} closed the connection during the handshake: does "
                    f"the listener speak STREAMSENSE_KAFKA_SECURITY_PROTOCOL={protocol}?"
                )
            logger.debug("Kafka at %s not reached: %s", server, exc)
        except (OSError, ValueError, TimeoutError) as exc:
            logger.debug("Kafka at %s not reached: %s", server, exc)
        else:
            conn.close()
            return ""
    return ""


def _tls_refused(server: str, protocol: str, exc: ssl.SSLError) -> str:
    return (
        f"the TLS handshake with Kafka at {server} failed ({exc.reason or exc}): does the "
        f"listener speak STREAMSENSE_KAFKA_SECURITY_PROTOCOL={protocol}, and does it want a "
        "client certificate (STREAMSENSE_KAFKA_SSL_CERTFILE, STREAMSENSE_KAFKA_SSL_KEYFILE)?"
    )
