"""The broker is a real Apache Kafka and every client the project uses works with it."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

from tests.kafka_helpers import consume_until, create_topics, produce

pytestmark = pytest.mark.integration


def test_broker_is_apache_kafka_in_kraft_mode(kafka_bootstrap: str) -> None:
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        cluster = admin.describe_cluster()
    finally:
        admin.close()
    assert cluster["controller_id"] is not None
    assert [b["host"] for b in cluster["brokers"]] == ["127.0.0.1"]


def test_topics_get_the_partitions_asked_for(kafka_bootstrap: str, unique: str) -> None:
    create_topics(kafka_bootstrap, [f"parts-{unique}"], partitions=6)
    consumer = KafkaConsumer(bootstrap_servers=kafka_bootstrap)
    try:
        assert consumer.partitions_for_topic(f"parts-{unique}") == set(range(6))
    finally:
        consumer.close()


def test_kafka_python_round_trip_spreads_keys_over_partitions(
    kafka_bootstrap: str, unique: str
) -> None:
    topic = f"kp-{unique}"
    create_topics(kafka_bootstrap, [topic], partitions=4)
    sent = {f"key-{i}".encode(): f"value-{i}".encode() for i in range(200)}
    produce(kafka_bootstrap, topic, sent.items())
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=kafka_bootstrap,
        auto_offset_reset="earliest",
        consumer_timeout_ms=5000,
    )
    try:
        got = [(m.partition, m.key, m.value) for m in consumer]
    finally:
        consumer.close()
    assert {k: v for _, k, v in got} == sent
    assert {p for p, _, _ in got} == {0, 1, 2, 3}


def test_aiokafka_round_trip(kafka_bootstrap: str, unique: str) -> None:
    topic = f"aio-{unique}"
    create_topics(kafka_bootstrap, [topic], partitions=2)

    async def run() -> list[bytes]:
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
        await producer.start()
        try:
            for i in range(50):
                await producer.send_and_wait(topic, f"m{i}".encode(), key=str(i).encode())
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=kafka_bootstrap,
            auto_offset_reset="earliest",
            group_id=f"aio-{unique}",
        )
        await consumer.start()
        values: list[bytes] = []
        try:
            while len(values) < 50:
                batch = await consumer.getmany(timeout_ms=5000)
                if not batch:
                    break
                values += [m.value for msgs in batch.values() for m in msgs]
        finally:
            await consumer.stop()
        return values

    values = asyncio.run(run())
    assert sorted(values) == sorted(f"m{i}".encode() for i in range(50))


def _group_consumer(bootstrap: str, topic: str, group: str) -> KafkaConsumer:
    return KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=500,
        session_timeout_ms=10000,
        heartbeat_interval_ms=1000,
    )


def _poll_until_assigned(*consumers: KafkaConsumer, expected: int) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        for consumer in consumers:
            consumer.poll(timeout_ms=200)
        if sum(len(c.assignment()) for c in consumers) == expected and all(
            c.assignment() for c in consumers
        ):
            return
    raise AssertionError(f"assignments never settled: {[c.assignment() for c in consumers]}")


def test_two_consumers_in_a_group_share_partitions(kafka_bootstrap: str, unique: str) -> None:
    topic, group = f"grp-{unique}", f"grp-{unique}"
    create_topics(kafka_bootstrap, [topic], partitions=4)
    first = _group_consumer(kafka_bootstrap, topic, group)
    second = _group_consumer(kafka_bootstrap, topic, group)
    try:
        _poll_until_assigned(first, second, expected=4)
        a, b = first.assignment(), second.assignment()
        assert not a & b
        assert {tp.partition for tp in a | b} == {0, 1, 2, 3}
    finally:
        first.close()
        second.close()


def test_restarted_consumer_resumes_at_committed_offset(kafka_bootstrap: str, unique: str) -> None:
    topic, group = f"resume-{unique}", f"resume-{unique}"
    create_topics(kafka_bootstrap, [topic], partitions=1)
    produce(kafka_bootstrap, topic, ((None, f"old-{i}".encode()) for i in range(10)))

    consumer = _group_consumer(kafka_bootstrap, topic, group)
    first_read = [m.value for m in consumer]
    consumer.commit()
    consumer.close()
    assert len(first_read) == 10

    produce(kafka_bootstrap, topic, ((None, f"new-{i}".encode()) for i in range(5)))
    consumer = _group_consumer(kafka_bootstrap, topic, group)
    try:
        second_read = [m.value for m in consumer]
        committed = consumer.committed(TopicPartition(topic, 0))
    finally:
        consumer.close()
    assert second_read == [f"new-{i}".encode() for i in range(5)]
    assert committed == 10


def test_faust_worker_process_consumes_and_produces(
    kafka_bootstrap: str, unique: str, tmp_path: Path
) -> None:
    source, sink = f"echo-in-{unique}", f"echo-out-{unique}"
    create_topics(kafka_bootstrap, [source, sink], partitions=2)
    env = dict(
        os.environ,
        ECHO_APP_ID=f"echo-{unique}",
        ECHO_BOOTSTRAP=kafka_bootstrap,
        ECHO_IN=source,
        ECHO_OUT=sink,
        ECHO_DATADIR=str(tmp_path / "faust"),
    )
    worker_file = Path(__file__).with_name("echo_worker.py")
    log = (tmp_path / "worker.log").open("wb")
    worker = subprocess.Popen(
        [sys.executable, str(worker_file), "worker", "--loglevel", "warn"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        produce(
            kafka_bootstrap, source, ((str(i).encode(), f"hello {i}".encode()) for i in range(20))
        )

        def done(values: list[bytes]) -> bool:
            assert worker.poll() is None, (tmp_path / "worker.log").read_text()
            return len(values) >= 20

        values = consume_until(kafka_bootstrap, sink, done, timeout_s=90)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        log.close()
    assert sorted(values) == sorted(f"HELLO {i}".encode() for i in range(20))
