"""Alerts survive a crash between the monitor's state write and anything after it.

A real worker runs with the test-only fault point ``crash_after_state_write`` armed: at the
first table write that goes with an alert it flushes the producer (so the state is in the
changelog, as faust's own flush schedule may make it at any moment) and exits. A second
worker, started without the fault, recovers the table and re-reads the unacknowledged
record. With the alert confirmed before the state is written, the alert is on the topic;
written the other way round, the recovered state marks the record as seen and the alert is
lost (as this test showed before the fix: 0 alerts of 1, for either monitor).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from streams.core.records import ScoredNews, encode
from streams.runtime.faults import CRASH_AFTER_STATE_WRITE, FAULT_EXIT
from streams.settings import Settings
from tests.kafka_helpers import produce
from tests.pipeline_helpers import Pipeline, TopicReader
from tests.record_factories import routed_ticket

pytestmark = pytest.mark.integration

START = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)


def _burst(s: Settings) -> tuple[str, list[tuple[bytes, bytes]], str]:
    """Five strongly negative items about one ticker in 2 minutes: one negative burst."""
    records = []
    for n in range(5):
        at = START + timedelta(seconds=30 * n)
        item = ScoredNews(
            id=f"crash-{n}",
            model_version="script",
            label="negative",
            probs={"negative": 0.95, "neutral": 0.05, "positive": 0.0},
            score=-0.95,
            tickers=["CRSH"],
            headline=f"CRSH profit warning {n}",
            published_at=at,
            scored_at=at,
        )
        records.append((b"CRSH", encode(item)))
    return s.topic_news_scored, records, "CRSH"


def _surge(s: Settings) -> tuple[str, list[tuple[bytes, bytes]], str]:
    """Half an hour of one ticket a minute, then thirty in two minutes: one complaint spike."""

    def ticket(i: str, at: datetime) -> tuple[bytes, bytes]:
        return b"card_not_working", encode(routed_ticket(i, at))

    records = [ticket(f"base-{m}", START + timedelta(minutes=m)) for m in range(30)]
    outage = START + timedelta(minutes=31)
    records += [ticket(f"outage-{i}", outage + timedelta(seconds=4 * i)) for i in range(30)]
    return s.topic_tickets_routed, records, "card_not_working"


SCENARIOS: dict[str, Callable[[Settings], tuple[str, list[tuple[bytes, bytes]], str]]] = {
    "ticker-monitor": _burst,
    "intent-monitor": _surge,
}


@pytest.mark.parametrize("monitor", list(SCENARIOS))
def test_an_alert_survives_a_crash_right_after_the_state_write(
    kafka_bootstrap: str, trained_registry: Path, tmp_path: Path, unique: str, monitor: str
) -> None:
    pipe = Pipeline.create(kafka_bootstrap, unique, trained_registry, tmp_path)
    topic, records, subject = SCENARIOS[monitor](pipe.settings)
    alerts = TopicReader(pipe.bootstrap, pipe.settings.topic_alerts)
    try:
        first = pipe.start_worker({"STREAMSENSE_FAULT_INJECTION": CRASH_AFTER_STATE_WRITE})
        produce(pipe.bootstrap, topic, records)
        status = pipe.wait_for_exit(first, 240)
        assert status == FAULT_EXIT, f"the worker exited {status}, not at the fault\n{pipe.logs()}"
        assert f"fault injection: {CRASH_AFTER_STATE_WRITE}" in pipe.logs()

        pipe.start_worker()  # as a supervisor would, without the fault
        # the restarted worker recovers the table, re-reads the record it crashed on (never
        # acknowledged) and the rest, and acknowledges them all
        done = pipe.wait_committed(topic, 240, pipe.assert_workers_alive)
        assert done, f"the restarted worker did not get through {topic}\n{pipe.logs()}"
        found = alerts.wait_for(lambda recs: any(r["subject"] == subject for r in recs), 10)
        pipe.assert_workers_alive()
    finally:
        pipe.stop_all()
        alerts.close()
    ids = Counter(r["alert_id"] for r in found if r["subject"] == subject)
    print(f"\n{monitor}: crash after the state write; alerts on the topic: {dict(ids)}")
    assert len(ids) == 1, f"no alert (or several distinct ones) after the crash: {found}"


def test_an_intents_window_survives_a_restart(
    kafka_bootstrap: str, trained_registry: Path, tmp_path: Path, unique: str
) -> None:
    """The intent monitor's state is a head row and a row per older chunk of its window:
    a worker restarted in the middle of a surge reads them back from the changelog and
    goes on counting. Nine outage messages before the restart and eight after cross the
    spike threshold (three times the baseline of about one a minute over five minutes)
    only together; either half alone raises nothing."""
    pipe = Pipeline.create(kafka_bootstrap, unique, trained_registry, tmp_path)
    topic = pipe.settings.topic_tickets_routed

    def ticket(i: str, at: datetime) -> tuple[bytes, bytes]:
        return b"card_not_working", encode(routed_ticket(i, at))

    outage = START + timedelta(minutes=31)
    before = [ticket(f"base-{m}", START + timedelta(minutes=m)) for m in range(30)]
    before += [ticket(f"outage-{i}", outage + timedelta(seconds=5 * i)) for i in range(9)]
    after = [ticket(f"outage-{i}", outage + timedelta(seconds=5 * i)) for i in range(9, 17)]
    alerts = TopicReader(pipe.bootstrap, pipe.settings.topic_alerts)
    try:
        pipe.start_worker()
        produce(pipe.bootstrap, topic, before)
        assert pipe.wait_committed(topic, 240, pipe.assert_workers_alive), pipe.logs()
        pipe.stop_all()
        pipe.workers.clear()  # stopped on purpose: not a crash to restart
        assert alerts.wait_for(lambda recs: bool(recs), 3) == [], "an alert before the restart"

        pipe.start_worker()
        produce(pipe.bootstrap, topic, after)
        assert pipe.wait_committed(topic, 240, pipe.assert_workers_alive), pipe.logs()
        found = alerts.wait_for(lambda recs: bool(recs), 15)
        pipe.assert_workers_alive()
    finally:
        pipe.stop_all()
        alerts.close()
    spikes = [r for r in found if r["subject"] == "card_not_working"]
    assert len(spikes) == 1, f"no spike (the window was lost?) or several: {found}"
    assert spikes[0]["value"] > 8  # the messages after the restart are not all it counted
    assert {"outage-0", "outage-11"} <= set(spikes[0]["evidence_ids"])  # both sides
