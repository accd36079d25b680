"""Every Kafka client streamsense makes, against a real broker's TLS + SCRAM listener.

The module starts its own broker (PLAINTEXT, SASL_SSL with SCRAM-SHA-512/256 and PLAIN, and
SSL that requires a client certificate) with a certificate authority made for the run.
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from kafka import KafkaAdminClient, KafkaConsumer

from deploy.broker import BrokerError
from streams.edges.bootstrap import resolve_bootstrap
from streams.edges.control import publish_control
from streams.edges.replay import ReplayItem, produce_items
from streams.edges.security import aiokafka_config, check_access, kafka_python_config
from streams.edges.topics import ensure_topics, pipeline_topics
from streams.errors import ConfigurationError
from streams.runtime.lag import LagReporter
from streams.runtime.metrics import Metrics
from streams.settings import Settings
from tests.kafka_helpers import consume_until, create_topics, produce
from tests.security_helpers import USER, SecureBroker, start_secure_broker


@pytest.fixture(scope="module")
def secure(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureBroker]:
    """A local broker with TLS and SCRAM listeners; the tests fail (never skip) without it."""
    try:
        broker, secured = start_secure_broker(tmp_path_factory.mktemp("kafka-secure"), settings)
    except BrokerError as exc:
        pytest.fail(f"the secured local Kafka broker could not start: {exc}")
    try:
        yield secured
    finally:
        broker.stop()


def _private_topics(unique: str) -> dict[str, str]:
    return {name: f"{name.removeprefix('topic_')}-{unique}" for name in Settings.topic_fields()}


def _assert_no_secret(secure: SecureBroker, *texts: str) -> None:
    for text in texts:
        assert secure.password not in text
        assert secure.certs.key_password not in text


def test_streamsense_edges_over_sasl_ssl_scram_sha_512(
    secure: SecureBroker, unique: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Topic creation, a control announcement, a replay and the lag reporter, all over TLS +
    SCRAM-SHA-512; nothing at DEBUG shows the password."""
    caplog.set_level(logging.DEBUG)
    settings = secure.sasl_settings(app_id=f"sec-{unique}", **_private_topics(unique))
    bootstrap = resolve_bootstrap(settings)  # checks the login once
    assert bootstrap == secure.info.sasl_ssl_bootstrap
    created = ensure_topics(settings, bootstrap)
    assert sorted(created) == sorted(pipeline_topics(settings))

    publish_control(settings, "sentiment", "v-secure", "promote")
    items = [
        ReplayItem("news", f"k{i}".encode(), b'{"n": %d}' % i, f"id{i}", "x", "t") for i in range(5)
    ]
    security = kafka_python_config(settings)
    assert produce_items(bootstrap, settings.topic_news_raw, items, security=security) == 5

    control = consume_until(
        bootstrap, settings.topic_models_control, lambda v: len(v) >= 1, 60, security
    )
    assert b"v-secure" in control[0]
    news = consume_until(bootstrap, settings.topic_news_raw, lambda v: len(v) >= 5, 60, security)
    assert sorted(news) == sorted(item.value for item in items)

    lags = LagReporter(settings, bootstrap, Metrics.create())._measure()
    assert sum(lag for (topic, _), lag in lags.items() if topic == settings.topic_news_raw) == 5

    assert any(r.levelno == logging.DEBUG and r.name.startswith("kafka") for r in caplog.records)
    _assert_no_secret(secure, caplog.text, repr(settings), str(settings))


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "PLAIN"])
def test_kafka_python_round_trip_with_other_mechanisms(
    secure: SecureBroker, unique: str, mechanism: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    settings = secure.sasl_settings(mechanism)
    security = kafka_python_config(settings)
    bootstrap = resolve_bootstrap(settings)
    topic = f"sec-{mechanism.lower()}-{unique}"
    create_topics(bootstrap, [topic], partitions=1, security=security)
    produce(bootstrap, topic, [(b"k", mechanism.encode())], security=security)
    assert consume_until(bootstrap, topic, bool, 60, security) == [mechanism.encode()]
    _assert_no_secret(secure, caplog.text)


def test_aiokafka_round_trip_over_sasl_ssl(
    secure: SecureBroker, unique: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The asyncio client the model swapper uses, configured the same way."""
    caplog.set_level(logging.DEBUG)
    settings = secure.sasl_settings()
    topic = f"sec-aio-{unique}"
    create_topics(settings.kafka_bootstrap, [topic], 1, kafka_python_config(settings))

    async def round_trip() -> list[bytes]:
        producer = AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap, acks="all", **aiokafka_config(settings)
        )
        await producer.start()
        try:
            await producer.send_and_wait(topic, b"over tls", key=b"k")
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=settings.kafka_bootstrap,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            **aiokafka_config(settings),
        )
        await consumer.start()
        try:
            batches = await consumer.getmany(timeout_ms=20_000, max_records=1)
        finally:
            await consumer.stop()
        return [m.value for messages in batches.values() for m in messages if m.value]

    assert asyncio.run(round_trip()) == [b"over tls"]
    _assert_no_secret(secure, caplog.text)


def test_faust_worker_round_trip_over_sasl_ssl(
    secure: SecureBroker, unique: str, tmp_path: Path
) -> None:
    """A Faust worker given the app's ``broker_credentials`` consumes, produces and creates
    its internal topics over TLS + SCRAM-SHA-512; its DEBUG log never shows the password."""
    settings = secure.sasl_settings()
    security = kafka_python_config(settings)
    bootstrap = settings.kafka_bootstrap
    source, sink = f"sec-echo-in-{unique}", f"sec-echo-out-{unique}"
    create_topics(bootstrap, [source, sink], partitions=2, security=security)
    env = {
        **os.environ,
        "STREAMSENSE_KAFKA_BOOTSTRAP": bootstrap,
        "STREAMSENSE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "STREAMSENSE_KAFKA_SSL_CAFILE": str(secure.certs.ca),
        "STREAMSENSE_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "STREAMSENSE_KAFKA_SASL_USERNAME": USER,
        "STREAMSENSE_KAFKA_SASL_PASSWORD": secure.password,
        "ECHO_APP_ID": f"sec-echo-{unique}",
        "ECHO_BOOTSTRAP": bootstrap,
        "ECHO_IN": source,
        "ECHO_OUT": sink,
        "ECHO_DATADIR": str(tmp_path / "faust"),
    }
    log_path = tmp_path / "worker.log"
    worker_file = Path(__file__).with_name("echo_worker.py")
    with log_path.open("wb") as log:
        worker = subprocess.Popen(
            [sys.executable, str(worker_file), "worker", "--loglevel", "debug"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            produce(bootstrap, source, [(b"k", f"hello {i}".encode()) for i in range(5)], security)

            def done(values: list[bytes]) -> bool:
                assert worker.poll() is None, log_path.read_text(errors="replace")[-3000:]
                return len(values) >= 5

            values = consume_until(bootstrap, sink, done, 120, security)
        finally:
            worker.terminate()
            worker.wait(timeout=60)
    assert sorted(values) == [f"HELLO {i}".encode() for i in range(5)]
    worker_log = log_path.read_text(errors="replace")
    assert f"Authenticated as {USER} via SCRAM-SHA-512" in worker_log
    _assert_no_secret(secure, worker_log)


def test_mutual_tls_without_sasl(secure: SecureBroker, unique: str) -> None:
    """SSL with a client certificate whose key is encrypted; no certificate is refused."""
    settings = secure.mtls_settings()
    bootstrap = resolve_bootstrap(settings)
    assert bootstrap == secure.info.ssl_bootstrap
    security = kafka_python_config(settings)
    topic = f"sec-mtls-{unique}"
    create_topics(bootstrap, [topic], partitions=1, security=security)
    produce(bootstrap, topic, [(None, b"mutual")], security=security)
    assert consume_until(bootstrap, topic, bool, 60, security) == [b"mutual"]

    anonymous = secure.mtls_settings(
        kafka_ssl_certfile=None, kafka_ssl_keyfile=None, kafka_ssl_key_password=None
    )
    with pytest.raises(ConfigurationError, match="client certificate"):
        check_access(anonymous, bootstrap)


def test_wrong_password_is_refused_in_one_clean_line(secure: SecureBroker) -> None:
    wrong = f"not-{secure.password}"
    settings = secure.sasl_settings(kafka_sasl_password=wrong)
    with pytest.raises(ConfigurationError) as info:
        resolve_bootstrap(settings)
    message = str(info.value)
    assert "refused the SASL login of user 'streamsense-test' (SCRAM-SHA-512)" in message
    assert "STREAMSENSE_KAFKA_SASL_PASSWORD" in message
    assert "\n" not in message
    assert wrong not in message
    assert secure.password not in message


def test_wrong_password_stops_the_cli_with_one_line(secure: SecureBroker) -> None:
    wrong = f"not-{secure.password}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("STREAMSENSE_")},
        "STREAMSENSE_KAFKA_BOOTSTRAP": secure.info.sasl_ssl_bootstrap,
        "STREAMSENSE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "STREAMSENSE_KAFKA_SSL_CAFILE": str(secure.certs.ca),
        "STREAMSENSE_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "STREAMSENSE_KAFKA_SASL_USERNAME": USER,
        "STREAMSENSE_KAFKA_SASL_PASSWORD": wrong,
        "STREAMSENSE_LOG_LEVEL": "DEBUG",
        "COLUMNS": "400",
    }
    result = subprocess.run(
        [sys.executable, "-m", "streams.cli", "topics"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1, result.stderr[-3000:]
    assert "refused the SASL login" in errors[0]
    assert wrong not in result.stdout + result.stderr


def test_an_untrusted_broker_certificate_is_refused(secure: SecureBroker) -> None:
    settings = secure.sasl_settings(kafka_ssl_cafile=secure.certs.other_ca)
    with pytest.raises(ConfigurationError, match="STREAMSENSE_KAFKA_SSL_CAFILE") as info:
        check_access(settings, settings.kafka_bootstrap)
    assert "certificate" in str(info.value)


def test_a_wrong_key_password_is_named_without_the_password(secure: SecureBroker) -> None:
    wrong = f"not-{secure.certs.key_password}"
    settings = secure.mtls_settings(kafka_ssl_key_password=wrong)
    with pytest.raises(ConfigurationError, match="STREAMSENSE_KAFKA_SSL_KEY_PASSWORD") as info:
        check_access(settings, settings.kafka_bootstrap)
    assert wrong not in str(info.value)


def test_a_host_name_the_certificate_names_is_accepted(secure: SecureBroker) -> None:
    """Host names are checked (the default): ``localhost`` is in the broker's certificate."""
    port = secure.info.sasl_ssl_bootstrap.rpartition(":")[2]
    settings = secure.sasl_settings(kafka_bootstrap=f"localhost:{port}")
    check_access(settings, settings.kafka_bootstrap)
    admin = KafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap, **kafka_python_config(settings)
    )
    try:
        assert isinstance(admin.list_topics(), list)
    finally:
        admin.close()
    consumer = KafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap, **kafka_python_config(settings)
    )
    try:
        assert consumer.topics() is not None
    finally:
        consumer.close()
