"""The chaos suite: faults an operator meets, with a verifier that knows every id sent.

Each scenario streams real data through real worker processes while something breaks,
then checks every input against every output: nothing lost, every repeat decided the same
way, order kept per customer. ``make test`` runs the short form; ``make chaos``
(``STREAMSENSE_CHAOS=full``) the full one (20,000 messages, 10 SIGKILLs). Each scenario
prints one ``chaos:`` line and appends it to ``chaos-results.jsonl`` in the test's
directory (the README's figures come from a ``make chaos`` run).
"""

from __future__ import annotations

import json
import random
import signal
import time
from collections.abc import Hashable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaAdminClient

from deploy.broker import LocalBroker, fetch_jars
from deploy.cluster import LocalCluster
from models.data import load_banking77, load_twitter
from streams.edges.replay import customer_messages, news_items
from streams.settings import Settings
from tests.chaos.harness import (
    FULL,
    Collector,
    Item,
    LoadGenerator,
    cpu_seconds,
    kill_points,
    log_lines,
    median,
)
from tests.chaos.verifier import Ledger, Verdict, resume_times
from tests.kafka_helpers import produce
from tests.pipeline_helpers import Pipeline, kill_hard, metric_value

pytestmark = [pytest.mark.integration, pytest.mark.chaos]

TWITTER = Path("twitter_financial_news") / "sent_train.csv"
RESULTS = Path("chaos-results.jsonl")


def _messages(settings: Settings, count: int, prefix: str) -> list[Item]:
    """``count`` real customer messages (BANKING77, repeated with new ids past its end)."""
    data = load_banking77(settings.data_dir)
    items: list[Item] = []
    rounds = 0
    while len(items) < count:
        take = min(count - len(items), len(data.texts))
        chunk = customer_messages(data.subset(range(take)), prefix=f"{prefix}{rounds}", seed=rounds)
        items += [Item(i.key, i.value, i.item_id) for i in chunk]
        rounds += 1
    return items


def _news(settings: Settings, count: int, prefix: str) -> list[Item]:
    data = load_twitter(settings.data_dir / TWITTER).subset(range(count))
    return [Item(i.key, i.value, i.item_id) for i in news_items(data, prefix=prefix)]


def _routed(body: dict[str, Any], key: bytes | None) -> tuple[str, Hashable]:
    return body["id"], (body["customer_id"], body["intent"])


def _recommended(body: dict[str, Any], key: bytes | None) -> tuple[str, Hashable]:
    return body["id"], body["customer_id"]


def _scored(body: dict[str, Any], key: bytes | None) -> tuple[str, Hashable] | None:
    tickers = body.get("tickers") or []
    if tickers and key != tickers[0].encode():
        return None  # one copy per ticker: count the first ticker's
    return body["id"], body["label"]


def _consumed(settings: Settings) -> list[str]:
    """Every topic a worker consumes (each has a dead-letter topic)."""
    return [
        settings.topic_news_raw,
        settings.topic_messages_raw,
        settings.topic_feedback,
        settings.topic_news_scored,
        settings.topic_messages_scored,
        settings.topic_tickets_routed,
    ]


def _collector(pipe: Pipeline) -> Collector:
    s = pipe.settings
    collector = Collector(
        pipe.bootstrap,
        {
            s.topic_tickets_routed: _routed,
            s.topic_recommendations: _recommended,
            s.topic_news_scored: _scored,
        },
        dlqs=[s.dlq_topic(t) for t in _consumed(s)],
    )
    collector.start()
    return collector


def _poison(pipe: Pipeline, ledger: Ledger) -> None:
    """One undecodable record on every consumed topic, keyed so its dead letter names it."""
    for topic in _consumed(pipe.settings):
        key = f"chaos-poison-{topic}"
        produce(pipe.bootstrap, topic, [(key.encode(), b"\x00\xff not a record")])
        ledger.sent_poison(key)


class Run:
    """One scenario's load, collector and verdicts."""

    def __init__(self, pipe: Pipeline, messages: int, news: int, rate: float) -> None:
        s = pipe.settings
        self.pipe = pipe
        self.messages, self.news, self.poison = Ledger(), Ledger(), Ledger()
        self.collector = _collector(pipe)
        self.loads = [
            LoadGenerator(
                pipe.bootstrap,
                s.topic_messages_raw,
                _messages(s, messages, "m"),
                self.messages,
                rate,
            ),
            LoadGenerator(
                pipe.bootstrap, s.topic_news_raw, _news(s, news, "n"), self.news, rate / 4
            ),
        ]
        self.started = time.monotonic()

    def start(self) -> None:
        for load in self.loads:
            load.start()

    def delivered(self) -> int:
        return len(self.collector.ids(self.pipe.settings.topic_tickets_routed))

    def wait_progress(self, more: int, timeout_s: float = 300) -> None:
        """Wait until ``more`` new messages were routed."""
        target = self.delivered() + more
        done = self.collector.wait(
            lambda: self.delivered() >= target, timeout_s, self.pipe.assert_workers_alive
        )
        assert done, f"no progress in {timeout_s} s\n{self.pipe.logs()}"

    def finish(self, timeout_s: float, stop: bool = True) -> dict[str, Verdict]:
        """Let the load end, wait until every id has its outputs, stop (the workers too,
        unless ``stop`` is false), judge."""
        for load in self.loads:
            load.join_checked(timeout_s)
        s = self.pipe.settings
        wanted = {
            s.topic_tickets_routed: self.messages,
            s.topic_recommendations: self.messages,
            s.topic_news_scored: self.news,
        }

        def complete() -> bool:
            letters = self.collector.dead_letter_keys()
            return self.poison.poison <= letters and all(
                set(ledger.order) <= self.collector.ids(topic) for topic, ledger in wanted.items()
            )

        if not self.collector.wait(complete, timeout_s, self.pipe.assert_workers_alive):
            # not all there: lost, or still queued? lost only if the group committed past it
            behind = [
                t
                for t in (s.topic_messages_raw, s.topic_news_raw)
                if not self.pipe.wait_committed(t, 5)
            ]
            assert not behind, (
                f"the workers had not caught up on {behind} after {timeout_s:.0f} s "
                "(too slow for this load, not a loss): "
                f"{self.delivered()} of {len(self.messages.order)} messages routed"
            )
        if stop:
            self.pipe.stop_all()
        self.collector.stop()
        verdicts = {
            topic: ledger.verdict(self.collector.outputs_of(topic))
            for topic, ledger in wanted.items()
        }
        verdicts["dead letters"] = self.poison.verdict([], self.collector.dead_letter_keys())
        return verdicts

    def resume_times(self, faults: list[float]) -> list[float]:
        topic = self.pipe.settings.topic_tickets_routed
        first = [o.seen_at for o in self.collector.outputs_of(topic)]
        return resume_times(faults, first)


def _report(
    name: str, verdicts: dict[str, Verdict], workdir: Path, **figures: float | int | str
) -> None:
    lines = [f"chaos: {name}: " + ", ".join(f"{k} {v}" for k, v in figures.items())]
    lines += [f"  {topic}: {verdict.line()}" for topic, verdict in verdicts.items()]
    print("\n" + "\n".join(lines))
    record = {
        "scenario": name,
        **figures,
        **{
            topic: {
                "sent": v.sent,
                "lost": len(v.lost),
                "duplicates": v.duplicates,
                "out_of_order": v.out_of_order,
                "inconsistent": len(v.inconsistent),
                "dead_lettered": v.dead_lettered,
            }
            for topic, v in verdicts.items()
        },
    }
    with (workdir / RESULTS).open("a", encoding="utf-8") as out:
        out.write(json.dumps(record) + "\n")
    for topic, verdict in verdicts.items():
        assert not verdict.lost, f"{topic}: {len(verdict.lost)} lost, e.g. {verdict.lost[:5]}"
        assert not verdict.inconsistent, f"{topic}: decided differently {verdict.inconsistent[:5]}"
        assert verdict.unknown == 0, f"{topic}: {verdict.unknown} outputs for ids never sent"


def test_sigkills_at_random_points_and_poison_on_every_topic_lose_nothing(
    kafka_bootstrap: str, trained_registry: Path, tmp_path: Path, unique: str
) -> None:
    count, kills, rate = (20_000, 10, 150.0) if FULL else (800, 2, 60.0)
    rng = random.Random(11)
    pipe = Pipeline.create(kafka_bootstrap, unique, trained_registry, tmp_path)
    run = Run(pipe, count, count // 4, rate)
    pipe.start_worker()
    run.start()
    killed_at: list[float] = []
    for n, delay in enumerate(kill_points(rng, kills, 0.0, 4.0)):
        run.wait_progress(50)
        time.sleep(delay)
        if n == 0:
            _poison(pipe, run.poison)  # while the first kill is near: a redelivered poison
        pipe.assert_workers_alive()
        worker = pipe.workers[-1]
        kill_hard(worker)
        killed_at.append(time.monotonic())
        pipe.workers.remove(worker)
        pipe.start_worker()
    verdicts = run.finish(1800 if FULL else 300)
    resumed = run.resume_times(killed_at)
    _report(
        "SIGKILL",
        verdicts,
        tmp_path,
        messages=count,
        kills=kills,
        crash_only_restarts=pipe.restarts,
        resume_median_s=round(median(resumed), 1),
        resume_max_s=round(max(resumed, default=float("nan")), 1),
        wall_s=round(time.monotonic() - run.started),
    )


@pytest.fixture
def own_broker(settings: Settings, tmp_path: Path) -> Iterator[LocalBroker]:
    """A broker of this test's own, to stop and start (the session's broker serves others)."""
    broker = LocalBroker(tmp_path / "kafka", fetch_jars(settings.kafka_version, settings.cache_dir))
    broker.start()
    yield broker
    broker.stop()


def test_a_broker_restart_mid_stream_loses_nothing_and_the_worker_waits_quietly(
    own_broker: LocalBroker, trained_registry: Path, tmp_path: Path, unique: str
) -> None:
    """The broker stops mid-stream and comes back: nothing lost, and while it is down the
    worker neither floods its log nor spins; then, with the broker down again, SIGTERM
    stops the worker within seconds."""
    count, outage_s = (5_000, 30.0) if FULL else (500, 15.0)
    info = own_broker.status()
    assert info is not None
    pipe = Pipeline.create(info.bootstrap, unique, trained_registry, tmp_path)
    run = Run(pipe, count, count // 4, 40.0)
    worker = pipe.start_worker()
    run.start()
    run.wait_progress(60)

    log = tmp_path / "worker-0.log"
    lines_before, cpu_before = log_lines(log), cpu_seconds(worker.pid)
    own_broker.stop()
    time.sleep(outage_s)
    lines_down = log_lines(log) - lines_before
    cpu_down = cpu_seconds(worker.pid) - cpu_before
    assert worker.poll() is None, f"the worker exited while the broker was down\n{pipe.logs()}"
    failures = metric_value(pipe.metrics_ports[-1], "streamsense_broker_connect_failures_total")
    assert failures, "the outage must show in streamsense_broker_connect_failures_total"
    own_broker.start()
    back_at = time.monotonic()
    verdicts = run.finish(600 if FULL else 300, stop=False)
    resumed = run.resume_times([back_at])

    own_broker.stop()  # down again: a clean shutdown cannot commit, the deadline ends it
    time.sleep(3)
    worker = pipe.workers[-1]
    worker.send_signal(signal.SIGTERM)
    asked = time.monotonic()
    status = pipe.wait_for_exit(worker, 60)
    took = time.monotonic() - asked
    pipe.stop_all()
    _report(
        "broker restart",
        verdicts,
        tmp_path,
        messages=count,
        outage_s=outage_s,
        worker_log_lines_during_outage=lines_down,
        worker_cpu_s_during_outage=round(cpu_down, 1),
        connect_failures_during_outage=int(failures),
        resume_s=round(resumed[0], 1) if resumed else "-",
        crash_only_restarts=pipe.restarts,
        sigterm_exit=status,
        sigterm_s=round(took, 1),
    )
    # a worker waiting for its broker backs off: a few lines, not a log storm, and not a
    # busy loop (without the reconnect backoff: 6.9 CPU-seconds in a 15 s outage)
    assert lines_down <= 10 + outage_s, f"{lines_down} log lines in a {outage_s} s outage"
    assert cpu_down <= 0.3 * outage_s, f"{cpu_down:.1f} CPU-s in a {outage_s} s outage"
    # STREAMSENSE_SHUTDOWN_TIMEOUT_S (10 s) bounds it; without it: a minute and more
    assert took < 20, f"the worker took {took:.0f} s to stop on SIGTERM\n{pipe.logs()}"


def _busiest_leader(bootstrap: str, topics: list[str]) -> int:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        leaders = [p["leader_id"] for t in admin.describe_topics(topics) for p in t["partitions"]]
    finally:
        admin.close()
    return max(set(leaders), key=leaders.count)


@pytest.mark.chaos_full  # three brokers start and stop: make chaos only (make test's time)
def test_killing_a_partition_leader_of_a_three_broker_cluster_loses_nothing(
    settings: Settings, trained_registry: Path, tmp_path: Path, unique: str
) -> None:
    count = 5_000 if FULL else 400
    libs = fetch_jars(settings.kafka_version, settings.cache_dir)
    cluster = LocalCluster(tmp_path / "kafka", libs)
    cluster.start()
    try:
        pipe = Pipeline.create(
            cluster.bootstrap,
            unique,
            trained_registry,
            tmp_path,
            replication_factor="3",
            min_insync_replicas="2",
        )
        run = Run(pipe, count, count // 4, 40.0)
        pipe.start_worker()
        run.start()
        run.wait_progress(60)
        s = pipe.settings
        victim = _busiest_leader(cluster.bootstrap, [s.topic_messages_raw, s.topic_tickets_routed])
        cluster.kill(victim)
        killed_at = time.monotonic()
        run.wait_progress(60)
        verdicts = run.finish(600 if FULL else 300)
        resumed = run.resume_times([killed_at])
        _report(
            "leader killed (3 brokers, RF 3, min ISR 2)",
            verdicts,
            tmp_path,
            messages=count,
            killed_node=victim,
            resume_s=round(resumed[0], 1) if resumed else "-",
            crash_only_restarts=pipe.restarts,
        )
    finally:
        cluster.stop()


@pytest.mark.chaos_full  # make test covers 2 -> 1 (test_pipeline.py); make chaos runs this
def test_scaling_one_two_one_workers_under_load_loses_nothing(
    kafka_bootstrap: str, trained_registry: Path, tmp_path: Path, unique: str
) -> None:
    count = 5_000 if FULL else 1_000
    pipe = Pipeline.create(kafka_bootstrap, unique, trained_registry, tmp_path)
    run = Run(pipe, count, count // 4, 50.0)
    first = pipe.start_worker()
    run.start()
    run.wait_progress(60)
    pipe.start_worker()  # 1 -> 2: the partitions are shared
    scaled_at = [time.monotonic()]
    run.wait_progress(120)
    first.terminate()  # 2 -> 1: its partitions move to the other worker
    pipe.wait_for_exit(first, 60)
    scaled_at.append(time.monotonic())
    verdicts = run.finish(600 if FULL else 300)
    resumed = run.resume_times(scaled_at)
    _report(
        "scale 1 -> 2 -> 1",
        verdicts,
        tmp_path,
        messages=count,
        resume_median_s=round(median(resumed), 1),
        crash_only_restarts=pipe.restarts,
    )
