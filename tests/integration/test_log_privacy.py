"""Customer ids and message text stay out of the worker's log, even at DEBUG.

A real worker runs at ``STREAMSENSE_LOG_LEVEL=DEBUG`` while customer messages with canary
customer ids and canary words in their text flow through the whole pipeline (scored,
routed, recommended, recorded). Faust logs every sent key and value at DEBUG, which is
how customer ids used to reach the log; the worker's log must hold no canary at all,
while our own DEBUG lines are still there (the level really was DEBUG).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.kafka_helpers import produce
from tests.pipeline_helpers import Pipeline, TopicReader

pytestmark = pytest.mark.integration

CANARY_CUSTOMER = "cust-canary-7f3a9"
CANARY_WORD = "zebracanary"


@pytest.fixture
def debug_pipeline(
    kafka_bootstrap: str, trained_registry: Path, tmp_path: Path, unique: str
) -> Iterator[Pipeline]:
    pipe = Pipeline.create(kafka_bootstrap, unique, trained_registry, tmp_path, log_level="DEBUG")
    pipe.start_worker()
    yield pipe
    pipe.stop_all()


def test_debug_logs_hold_no_customer_id_or_message_text(debug_pipeline: Pipeline) -> None:
    pipe = debug_pipeline
    s = pipe.settings
    now = datetime.now(UTC).isoformat()
    records = []
    ids = []
    for n in range(30):
        item_id = f"privacy-{n}"
        ids.append(item_id)
        message = {
            "id": item_id,
            "sent_at": now,
            "customer_id": f"{CANARY_CUSTOMER}-{n % 3}",
            "channel": "chat",
            "text": f"my card {CANARY_WORD} was declined at the shop, number {n}",
        }
        records.append((f"{CANARY_CUSTOMER}-{n % 3}".encode(), json.dumps(message).encode()))
    produce(pipe.bootstrap, s.topic_messages_raw, records)

    routed = TopicReader(pipe.bootstrap, s.topic_tickets_routed)
    recs = TopicReader(pipe.bootstrap, s.topic_recommendations)
    try:
        routed.wait_for_ids(ids, 240, pipe.assert_workers_alive)
        recs.wait_for_ids(ids, 60, pipe.assert_workers_alive)
    finally:
        routed.close()
        recs.close()
    assert set(ids) <= {r["id"] for r in recs.records}, pipe.logs()
    pipe.stop_all()
    assert pipe.restarts == 0, pipe.logs()

    log = "\n".join(p.read_text(errors="replace") for p in pipe.workdir.glob("worker-*.log"))
    assert "DEBUG" in log, "the worker did not log at DEBUG"
    leaks = [line for line in log.splitlines() if CANARY_CUSTOMER in line or CANARY_WORD in line]
    assert not leaks, f"{len(leaks)} log line(s) carry customer data, e.g. {leaks[:3]}"
