"""TLS and SASL settings: checked at start-up, mapped the same way for every Kafka client."""

from __future__ import annotations

import logging
import ssl
from pathlib import Path

import pytest
from faust.auth import SASLCredentials, SSLCredentials
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth
from faust.types.auth import AuthProtocol, SASLMechanism

from deploy.broker import SecureListeners, free_fixed_port
from streams.edges.security import (
    SECURITY_FIELDS,
    aiokafka_config,
    faust_credentials,
    kafka_python_config,
    ssl_context,
)
from streams.errors import ConfigurationError
from streams.settings import Settings

SECRET = "s3cret-Pa55word"
KEY_SECRET = "k3y-Pa55word"


@pytest.fixture
def pem_files(tmp_path: Path) -> dict[str, Path]:
    """Placeholder files: the mapping passes paths on and never reads them."""
    files = {name: tmp_path / f"{name}.pem" for name in ("ca", "cert", "key")}
    for path in files.values():
        path.write_text("placeholder\n", encoding="ascii")
    return files


def sasl_ssl(**overrides: object) -> Settings:
    values: dict[str, object] = {
        "kafka_bootstrap": "kafka-1:9093,kafka-2:9093",
        "kafka_security_protocol": "SASL_SSL",
        "kafka_sasl_mechanism": "SCRAM-SHA-512",
        "kafka_sasl_username": "streamsense",
        "kafka_sasl_password": SECRET,
        **overrides,
    }
    return Settings(**values)  # type: ignore[arg-type]


def test_plaintext_is_the_default_and_adds_nothing() -> None:
    settings = Settings(kafka_bootstrap="kafka:9092")
    assert kafka_python_config(settings) == {"security_protocol": "PLAINTEXT"}
    assert aiokafka_config(settings) == {"security_protocol": "PLAINTEXT"}
    assert ssl_context(settings) is None
    assert faust_credentials(settings) is None


def test_sasl_ssl_scram_for_kafka_python(pem_files: dict[str, Path]) -> None:
    settings = sasl_ssl(kafka_ssl_cafile=pem_files["ca"])
    assert kafka_python_config(settings) == {
        "security_protocol": "SASL_SSL",
        "ssl_check_hostname": True,
        "ssl_cafile": str(pem_files["ca"]),
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "streamsense",
        "sasl_plain_password": SECRET,
    }


def test_mutual_tls_for_kafka_python(pem_files: dict[str, Path]) -> None:
    settings = Settings(
        kafka_bootstrap="kafka:9093",
        kafka_security_protocol="SSL",
        kafka_ssl_cafile=pem_files["ca"],
        kafka_ssl_certfile=pem_files["cert"],
        kafka_ssl_keyfile=pem_files["key"],
        kafka_ssl_key_password=KEY_SECRET,  # type: ignore[arg-type]
        kafka_ssl_check_hostname=False,
    )
    assert kafka_python_config(settings) == {
        "security_protocol": "SSL",
        "ssl_check_hostname": False,
        "ssl_cafile": str(pem_files["ca"]),
        "ssl_certfile": str(pem_files["cert"]),
        "ssl_keyfile": str(pem_files["key"]),
        "ssl_password": KEY_SECRET,
    }


@pytest.mark.parametrize("check_hostname", [True, False])
def test_aiokafka_gets_a_verifying_tls_context(check_hostname: bool) -> None:
    settings = sasl_ssl(kafka_ssl_check_hostname=check_hostname)  # system CAs
    config = aiokafka_config(settings)
    context = config.pop("ssl_context")
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname is check_hostname
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert config == {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "streamsense",
        "sasl_plain_password": SECRET,
    }


def test_sasl_plaintext_has_no_tls() -> None:
    settings = sasl_ssl(kafka_security_protocol="SASL_PLAINTEXT", kafka_sasl_mechanism="PLAIN")
    assert "ssl_context" not in aiokafka_config(settings)
    assert not any(key.startswith("ssl_") for key in kafka_python_config(settings))
    assert kafka_python_config(settings)["sasl_mechanism"] == "PLAIN"


@pytest.mark.parametrize(
    ("protocol", "mechanism"),
    [
        ("SASL_SSL", "SCRAM-SHA-512"),
        ("SASL_SSL", "SCRAM-SHA-256"),
        ("SASL_PLAINTEXT", "PLAIN"),
    ],
)
def test_faust_passes_sasl_credentials_to_aiokafka(protocol: str, mechanism: str) -> None:
    """faust-streaming turns ``broker_credentials`` into exactly our aiokafka settings."""
    settings = sasl_ssl(kafka_security_protocol=protocol, kafka_sasl_mechanism=mechanism)
    credentials = faust_credentials(settings)
    assert isinstance(credentials, SASLCredentials)
    assert credentials.mechanism is SASLMechanism(mechanism)
    assert credentials.protocol is AuthProtocol(protocol)
    assert SECRET not in repr(credentials)
    through_faust = dict(credentials_to_aiokafka_auth(credentials))
    ours = aiokafka_config(settings)
    assert (through_faust.pop("ssl_context") is not None) == (protocol == "SASL_SSL")
    ours.pop("ssl_context", None)
    assert through_faust == ours


def test_faust_gets_ssl_credentials_for_tls_without_sasl() -> None:
    settings = Settings(kafka_bootstrap="kafka:9093", kafka_security_protocol="SSL")
    credentials = faust_credentials(settings)
    assert isinstance(credentials, SSLCredentials)
    auth = credentials_to_aiokafka_auth(credentials)
    assert auth["security_protocol"] == "SSL"
    assert isinstance(auth["ssl_context"], ssl.SSLContext)


def test_lower_case_and_blank_values_are_accepted() -> None:
    settings = sasl_ssl(
        kafka_security_protocol="sasl_ssl",
        kafka_sasl_mechanism="scram-sha-256",
        kafka_ssl_cafile="",
    )
    assert settings.kafka_security_protocol == "SASL_SSL"
    assert settings.kafka_sasl_mechanism == "SCRAM-SHA-256"
    assert settings.kafka_ssl_cafile is None


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (
            {"kafka_sasl_mechanism": None},
            "STREAMSENSE_KAFKA_SECURITY_PROTOCOL=SASL_SSL needs STREAMSENSE_KAFKA_SASL_MECHANISM",
        ),
        ({"kafka_sasl_password": None}, "needs STREAMSENSE_KAFKA_SASL_PASSWORD"),
        ({"kafka_sasl_password": ""}, "needs STREAMSENSE_KAFKA_SASL_PASSWORD"),
        ({"kafka_sasl_username": ""}, "needs STREAMSENSE_KAFKA_SASL_USERNAME"),
        (
            {"kafka_ssl_cafile": "/nowhere/ca.pem"},
            "STREAMSENSE_KAFKA_SSL_CAFILE=/nowhere/ca.pem is no file",
        ),
        ({"kafka_bootstrap": ""}, "needs STREAMSENSE_KAFKA_BOOTSTRAP"),
        (
            {"kafka_security_protocol": "SSL"},
            "STREAMSENSE_KAFKA_SASL_MECHANISM, STREAMSENSE_KAFKA_SASL_USERNAME, "
            "STREAMSENSE_KAFKA_SASL_PASSWORD set, but STREAMSENSE_KAFKA_SECURITY_PROTOCOL=SSL "
            "uses no SASL",
        ),
    ],
)
def test_impossible_combinations_fail_at_start_with_one_clear_error(
    overrides: dict[str, object], expected: str
) -> None:
    with pytest.raises(ConfigurationError) as info:
        sasl_ssl(**overrides)
    message = str(info.value)
    assert expected in message
    assert "\n" not in message
    assert SECRET not in message


def test_tls_files_without_tls_and_a_key_without_its_certificate(
    pem_files: dict[str, Path],
) -> None:
    with pytest.raises(ConfigurationError, match="uses no TLS"):
        Settings(kafka_bootstrap="kafka:9092", kafka_ssl_cafile=pem_files["ca"])
    with pytest.raises(ConfigurationError, match="KEYFILE needs STREAMSENSE_KAFKA_SSL_CERTFILE"):
        Settings(
            kafka_bootstrap="kafka:9093",
            kafka_security_protocol="SSL",
            kafka_ssl_keyfile=pem_files["key"],
        )


def test_an_unknown_mechanism_is_refused() -> None:
    with pytest.raises(ValueError, match="kafka_sasl_mechanism"):
        sasl_ssl(kafka_sasl_mechanism="GSSAPI")


def test_secrets_stay_out_of_repr_and_dumps(pem_files: dict[str, Path]) -> None:
    settings = sasl_ssl(
        kafka_security_protocol="SASL_SSL",
        kafka_ssl_cafile=pem_files["ca"],
        kafka_ssl_certfile=pem_files["cert"],
        kafka_ssl_key_password=KEY_SECRET,
    )
    for text in (repr(settings), str(settings), settings.model_dump_json(), str(vars(settings))):
        assert SECRET not in text
        assert KEY_SECRET not in text
    assert settings.kafka_sasl_password is not None
    assert settings.kafka_sasl_password.get_secret_value() == SECRET


def test_client_configs_hide_secrets_when_printed(pem_files: dict[str, Path]) -> None:
    """kafka-python logs its admin client's configuration at DEBUG: the dict must not show
    the secrets, though the client still gets their values."""
    settings = Settings(
        kafka_bootstrap="kafka:9093",
        kafka_security_protocol="SASL_SSL",
        kafka_ssl_certfile=pem_files["cert"],
        kafka_ssl_key_password=KEY_SECRET,  # type: ignore[arg-type]
        kafka_sasl_mechanism="PLAIN",
        kafka_sasl_username="u",
        kafka_sasl_password=SECRET,  # type: ignore[arg-type]
    )
    config = kafka_python_config(settings)
    logged = logging.LogRecord("kafka", logging.DEBUG, "", 0, "config: %s", (config,), None)
    for text in (str(config), repr(config), logged.getMessage()):
        assert SECRET not in text
        assert KEY_SECRET not in text
    assert config["sasl_plain_password"].encode() == SECRET.encode()
    assert "\0".join(["u", "u", config["sasl_plain_password"]]) == f"u\0u\0{SECRET}"
    assert config["ssl_password"] == KEY_SECRET


def test_secrets_given_to_clients_are_masked_in_their_request_logs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """aiokafka and kafka-python dump whole requests at DEBUG; SASL PLAIN's holds the
    password (as escaped bytes)."""
    caplog.set_level(logging.DEBUG)
    for library in ("aiokafka", "kafka"):  # the log policy may have raised them in this process
        caplog.set_level(logging.DEBUG, logger=library)
    password = "pl@in-Pa55"
    settings = sasl_ssl(kafka_sasl_mechanism="PLAIN", kafka_sasl_password=password)
    aiokafka_config(settings)
    wire = ("\0streamsense\0" + password).encode()
    logging.getLogger("aiokafka.conn").debug("Request 3: SaslAuthenticateRequest(%r)", wire)
    logging.getLogger("kafka.protocol.parser").debug("Send: %r", bytearray(wire))
    logging.getLogger("kafka.admin.client").debug("config: %s", {"pw": password})
    assert len(caplog.records) == 3
    assert password not in caplog.text
    assert caplog.text.count("**********") == 3


def test_a_ca_file_that_is_no_pem_is_named(pem_files: dict[str, Path]) -> None:
    settings = sasl_ssl(kafka_ssl_cafile=pem_files["ca"])
    with pytest.raises(ConfigurationError, match=r"STREAMSENSE_KAFKA_SSL_CAFILE=.*ca\.pem"):
        aiokafka_config(settings)


def test_security_fields_are_the_kafka_tls_and_sasl_settings() -> None:
    assert set(SECURITY_FIELDS) == {
        "kafka_security_protocol",
        "kafka_ssl_cafile",
        "kafka_ssl_certfile",
        "kafka_ssl_keyfile",
        "kafka_ssl_key_password",
        "kafka_ssl_check_hostname",
        "kafka_sasl_mechanism",
        "kafka_sasl_username",
        "kafka_sasl_password",
    }


def test_secure_listeners_config_and_redaction(tmp_path: Path) -> None:
    listeners = SecureListeners(
        keystore=tmp_path / "broker.p12",
        truststore=tmp_path / "trust.p12",
        store_password="store-pw",
        users={"alice": "alice-pw"},
    )
    props = listeners.server_properties(19094, 19095)
    assert props["listeners"] == "SASL_SSL://127.0.0.1:19094,SSL://127.0.0.1:19095"
    assert props["listener.name.ssl.ssl.client.auth"] == "required"
    assert "SCRAM-SHA-512" in props["sasl.enabled.mechanisms"]
    assert listeners.format_args()[:2] == [
        "--add-scram",
        "SCRAM-SHA-512=[name=alice,password=alice-pw]",
    ]
    assert listeners.redact("bad alice-pw / store-pw") == "bad *** / ***"


def test_new_listener_ports_lie_below_the_ephemeral_range() -> None:
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    ports = {free_fixed_port() for _ in range(20)}
    assert all(1024 < port < low for port in ports)
