"""Dashboards and alert rules against a real Prometheus that scraped a real worker.

A module fixture starts one worker (real broker, really trained models), a real Prometheus
(Debian's ``prometheus``, 1 s scrape and rule evaluation, loading deploy/prometheus/rules.yml)
and replays real data through the worker: Twitter financial news and BANKING77 messages
with their gold labels as feedback, a few undecodable records (dead letters), a burst of
routed tickets that raises a complaint-spike alert, and a promotion on ``models.control``
that makes the worker hot-swap its sentiment model. Then every panel query of every
dashboard, and every operand of every alert rule's expression (the rule split at its
top-level comparison and set operators, thresholds dropped; see
``deploy.observability.base_queries``), must return data through ``/api/v1/query``.

The retrain and gate metrics (``streamsense_retrain_*``, ``streamsense_gate_*``) come from the
scheduler process, which does not exist yet. Until it does, this module serves them from a
prometheus_client registry built by ``streams.runtime.metrics.Metrics.create()`` (the same
definitions) on an HTTP port inside the test process, incremented the way a scheduler
would (one succeeded and one failed run per task, their durations, a promotion and a
refusal): Prometheus scrapes it as the ``streamsense-scheduler`` job. That checks the
queries and the scrape job, not the scheduler's own instrumentation; swap it for a real
``streamsense scheduler`` process once there is one.

Nothing here skips: a missing ``prometheus``/``promtool`` fails with the command that
installs them (``deploy/install-prometheus.sh``, run by ``make test``).
"""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import start_http_server
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from deploy.broker import free_port
from deploy.grafana.dashboards import build
from deploy.observability import (
    PROMETHEUS_DIR,
    RULES_FILE,
    base_queries,
    load_rules,
    panel_queries,
)
from models.data import TWITTER_FILE, load_banking77, load_twitter
from models.registry import Registry
from streams.cli.main import app as cli_app
from streams.core.records import ModelControl, encode
from streams.edges.replay import ReplayItem, customer_messages, feedback_for, news_items
from streams.runtime.metrics import Metrics
from tests.kafka_helpers import produce
from tests.model_fixtures import copy_registry
from tests.pipeline_helpers import Pipeline
from tests.record_factories import routed_ticket

pytestmark = pytest.mark.integration

NEWS = 48
MESSAGES = 48
SCORING_DEADLINE_S = 300
DATA_DEADLINE_S = 180
ALLOWED_LABELS = {
    "topic",
    "reason",
    "agent",
    "task",
    "label",
    "kind",
    "version",
    "outcome",
    "decision",
    "partition",
    "le",
    "feature",  # drift: label, confidence, length, oov
    "model",  # shadow online accuracy: production or shadow
    "metric",  # gate intervals: accuracy, macro_f1, heldout
    "bound",  # gate intervals: low, high
    "cause",  # consumer repositions: gap, unhanded, stalled, idle
    "phase",  # scorer batch phases: wait, decode, inference, emit, confirm, ack
}
UNEXERCISED = {
    "streamsense_drift_": "needs a drift reference in the registry; "
    "test_drift.py::test_a_worker_reports_the_drift_of_the_traffic_it_serves shows the worker "
    "exporting it",
    "streamsense_shadow_": "needs a version in shadow (this replay runs production only); "
    "test_hot_swap.py's shadow phase shows a worker scoring, judging and exporting it",
}
"""Metric families no panel or rule query can show in this test's replay, and why."""
MAX_SERIES_PER_METRIC = 200  # BANKING77's 77 intents + 3 sentiments is the largest label set
ID_LIKE = re.compile(r"^(?:[a-z]+\d*-\d+|cust-\d+|[0-9a-f]{16,})$")


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(
            f"'{name}' is not on PATH: run deploy/install-prometheus.sh (make test does), "
            "which installs Debian's prometheus package"
        )
    return path


# -- promtool ---------------------------------------------------------------------------------


@pytest.mark.parametrize("config", ["prometheus.yml", "prometheus-compose.yml"])
def test_promtool_accepts_the_prometheus_configs(config: str) -> None:
    result = subprocess.run(
        [_tool("promtool"), "check", "config", str(PROMETHEUS_DIR / config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_accepts_the_rules() -> None:
    result = subprocess.run(
        [_tool("promtool"), "check", "rules", str(RULES_FILE)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    alerts, _ = load_rules()
    assert f"SUCCESS: {len(alerts)} rules found" in result.stdout


def test_promtool_parses_every_panel_query(tmp_path: Path) -> None:
    """Each panel query as a recording rule: promtool's PromQL parser judges it offline."""
    queries = panel_queries(build())
    rules = {
        "groups": [
            {
                "name": "panels",
                "rules": [
                    {"record": f"panel:query:{i}", "expr": q.expr} for i, q in enumerate(queries)
                ],
            }
        ]
    }
    path = tmp_path / "panels.yml"
    path.write_text(yaml.safe_dump(rules), encoding="utf-8")
    result = subprocess.run(
        [_tool("promtool"), "check", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# -- a real Prometheus scraping a real worker ---------------------------------------------------


@dataclass
class Prometheus:
    url: str
    proc: subprocess.Popen[bytes]
    log: Path

    def query(self, expr: str) -> list[dict[str, Any]]:
        params = urllib.parse.urlencode({"query": expr})
        with urllib.request.urlopen(f"{self.url}/api/v1/query?{params}", timeout=30) as resp:
            body = json.loads(resp.read())
        assert body["status"] == "success", f"{expr}: {body}"
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(f"{self.url}{path}", timeout=30) as resp:
            return json.loads(resp.read())

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_prometheus(workdir: Path, targets: dict[str, list[str]]) -> Prometheus:
    """Prometheus with deploy/prometheus/prometheus.yml, its targets and intervals replaced."""
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text(encoding="utf-8"))
    jobs = {job["job_name"] for job in config["scrape_configs"]}
    assert jobs == set(targets), f"prometheus.yml jobs {jobs} != the test's {set(targets)}"
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    config["rule_files"] = [str(RULES_FILE)]
    for job in config["scrape_configs"]:
        job["static_configs"] = [{"targets": targets[job["job_name"]]}]
    config_path = workdir / "prometheus.yml"
    config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
    port = free_port()
    log = workdir / "prometheus.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                _tool("prometheus"),
                f"--config.file={config_path}",
                f"--storage.tsdb.path={workdir / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    prom = Prometheus(f"http://127.0.0.1:{port}", proc, log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"prometheus exited {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{prom.url}/-/ready", timeout=2) as resp:
                if resp.status == 200:
                    return prom
        except OSError:
            time.sleep(0.5)
    prom.stop()
    pytest.fail(f"prometheus did not become ready in 60 s:\n{log.read_text()[-3000:]}")


@dataclass
class SchedulerShapedExporter:
    """The scheduler's metrics (same definitions) served from this process; see the module
    docstring for why and what that does and does not check."""

    metrics: Metrics = field(default_factory=Metrics.create)
    port: int = 0

    def start(self) -> None:
        # labeled children exist (at 0) before the first run, as a scheduler should create
        # them: otherwise a counter appears at 1 and increase() never counts that first run
        for task in ("sentiment", "intent"):
            self.metrics.retrain_seconds.labels(task)
            for outcome in ("succeeded", "failed"):
                self.metrics.retrain_runs.labels(task, outcome)
            for decision in ("promoted", "rejected", "not_enough_evidence"):
                self.metrics.gate_decisions.labels(task, decision)
        server, _thread = start_http_server(0, "127.0.0.1", registry=self.metrics.registry)
        self.server = server
        self.port = server.server_port

    def record_runs(self) -> None:
        for task, seconds in (("sentiment", 95.0), ("intent", 140.0)):
            self.metrics.retrain_runs.labels(task, "succeeded").inc()
            self.metrics.retrain_seconds.labels(task).observe(seconds)
            interval = {"low": 0.02, "estimate": 0.06, "high": 0.1, "p_value": 0.004}
            self.metrics.record_gate(
                task,
                "promoted",
                {"recent_accuracy": interval, "heldout_accuracy": {**interval, "low": -0.004}},
            )
            self.metrics.retrain_runs.labels(task, "failed").inc()
            self.metrics.retrain_seconds.labels(task).observe(seconds / 3)
            self.metrics.gate_decisions.labels(task, "rejected").inc()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Observed:
    pipe: Pipeline
    prom: Prometheus
    produced_ids: set[str]
    customer_ids: set[str]
    workdir: Path
    empty: dict[str, str]
    waited_s: float


def _republish(registry: Registry, task: str) -> str:
    """Register a byte-identical copy of the production version as a new version (what a
    retrain would register), so that the worker has something to swap to."""
    current = registry.production(task)
    assert current is not None
    source = registry.version_dir(task, current)
    manifest = json.loads((source / "manifest.json").read_text(encoding="utf-8"))
    listed = set(manifest["files"])
    keep = {
        k: v
        for k, v in manifest.items()
        if k not in {"format", "task", "version", "created_at", "files", "decisions_file"}
    }
    keep["parent"] = current
    with registry.staging(task) as staging:
        for name in listed:
            target = staging / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source / name, target)
        version = registry.commit(task, staging, keep)
    registry.promote(task, version, "observability test: exercise a hot swap")
    return version


def _complaint_burst(unique: str) -> list[tuple[bytes, bytes]]:
    start = datetime.now(UTC) - timedelta(hours=1)

    def ticket(i: str, at: datetime) -> bytes:
        return encode(routed_ticket(i, at))

    records = [
        (b"card_not_working", ticket(f"base{unique}-{m}", start + timedelta(minutes=m)))
        for m in range(30)
    ]
    outage = start + timedelta(minutes=31)
    records += [
        (b"card_not_working", ticket(f"outage{unique}-{i}", outage + timedelta(seconds=4 * i)))
        for i in range(30)
    ]
    return records


def _feedback(news: list[ReplayItem], messages: list[ReplayItem]) -> list[tuple[bytes, bytes]]:
    out = [(i.item_id.encode(), feedback_for(i, "sentiment")) for i in news]
    return out + [(i.item_id.encode(), feedback_for(i, "intent")) for i in messages]


def _all_queries() -> dict[str, str]:
    """Every query to check, by a name that says where it comes from (but those of the
    :data:`UNEXERCISED` families)."""
    out = {f"panel '{q.panel}' ({q.dashboard}) {q.ref_id}": q.expr for q in panel_queries(build())}
    alerts, _ = load_rules()
    for rule in alerts:
        for i, operand in enumerate(base_queries(rule.expr)):
            out[f"rule {rule.name} operand {i}"] = operand
    return {
        name: expr
        for name, expr in out.items()
        if not any(prefix in expr for prefix in UNEXERCISED)
    }


def _wait_for(prom: Prometheus, expr: str, timeout_s: float, pipe: Pipeline) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        pipe.assert_workers_alive()
        if prom.query(expr):
            return
        time.sleep(2)
    pytest.fail(f"no data for {expr!r} after {timeout_s:.0f} s:\n{pipe.logs()[-3000:]}")


def _has_data(prom: Prometheus, expr: str) -> bool:
    """At least one series with a finite value (a quantile of nothing is NaN: no data)."""
    return any(math.isfinite(float(r["value"][1])) for r in prom.query(expr))


def _empty_queries(prom: Prometheus, queries: dict[str, str]) -> dict[str, str]:
    return {name: expr for name, expr in queries.items() if not _has_data(prom, expr)}


@pytest.fixture(scope="module")
def observed(
    kafka_bootstrap: str, trained_registry: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Observed]:
    workdir = tmp_path_factory.mktemp("observability")
    unique = uuid.uuid4().hex[:10]
    registry_dir = copy_registry(trained_registry, workdir / "registry")
    pipe = Pipeline.create(kafka_bootstrap, f"obs-{unique}", registry_dir, workdir)
    scheduler = SchedulerShapedExporter()
    scheduler.start()
    pipe.start_worker()
    prom = start_prometheus(
        workdir,
        {
            "streamsense-worker": [f"127.0.0.1:{pipe.metrics_ports[0]}"],
            "streamsense-scheduler": [f"127.0.0.1:{scheduler.port}"],
        },
    )
    try:
        s = pipe.settings
        data_dir = s.data_dir
        news = list(news_items(load_twitter(data_dir / TWITTER_FILE).subset(range(NEWS))))
        messages = list(
            customer_messages(load_banking77(data_dir).subset(range(MESSAGES)), prefix="obsm")
        )
        half_news, half_messages = NEWS // 2, MESSAGES // 2
        produce(pipe.bootstrap, s.topic_news_raw, [(i.key, i.value) for i in news[:half_news]])
        produce(
            pipe.bootstrap,
            s.topic_messages_raw,
            [(i.key, i.value) for i in messages[:half_messages]],
        )
        # undecodable input: dead letters with their reasons
        produce(
            pipe.bootstrap,
            s.topic_news_raw,
            [(b"bad-1", b"this is not json"), (b"bad-2", b'["an", "array"]')],
        )
        produce(pipe.bootstrap, s.topic_tickets_routed, _complaint_burst(unique))
        # once the worker serves (it has scored something), a new sentiment version is
        # promoted and announced on models.control: the worker hot-swaps it
        _wait_for(prom, "sum(streamsense_predictions_total)", SCORING_DEADLINE_S, pipe)
        scheduler.record_runs()
        version = _republish(Registry(registry_dir), "sentiment")
        control = ModelControl(
            task="sentiment", version=version, action="promote", at=datetime.now(UTC)
        )
        produce(pipe.bootstrap, s.topic_models_control, [(b"sentiment", encode(control))])
        # feedback on the first half (the gold labels of what was scored); then, a few
        # scrapes later, the second half of the stream and its feedback: every counter has
        # moved between two scrapes, so rate() and increase() have something to show
        produce(
            pipe.bootstrap, s.topic_feedback, _feedback(news[:half_news], messages[:half_messages])
        )
        time.sleep(5)
        produce(pipe.bootstrap, s.topic_news_raw, [(i.key, i.value) for i in news[half_news:]])
        produce(
            pipe.bootstrap,
            s.topic_messages_raw,
            [(i.key, i.value) for i in messages[half_messages:]],
        )
        produce(pipe.bootstrap, s.topic_news_raw, [(b"bad-3", b"still not json")])
        _wait_for(
            prom,
            f"sum(streamsense_predictions_total) >= {NEWS + 2 * MESSAGES}",
            SCORING_DEADLINE_S,
            pipe,
        )
        produce(
            pipe.bootstrap, s.topic_feedback, _feedback(news[half_news:], messages[half_messages:])
        )
        scheduler.record_runs()

        queries = _all_queries()
        started = time.monotonic()
        empty = queries
        while time.monotonic() - started < DATA_DEADLINE_S:
            pipe.assert_workers_alive()
            empty = _empty_queries(prom, queries)
            if not empty:
                break
            time.sleep(3)
        customer_ids = {json.loads(i.value)["customer_id"] for i in messages}
        yield Observed(
            pipe=pipe,
            prom=prom,
            produced_ids={i.item_id for i in [*news, *messages]},
            customer_ids=customer_ids,
            workdir=workdir,
            empty=_empty_queries(prom, queries),
            waited_s=time.monotonic() - started,
        )
    finally:
        pipe.stop_all()
        prom.stop()
        scheduler.stop()


def _explain(observed: Observed, empty: dict[str, str]) -> str:
    lines = [f"{name}: {expr}" for name, expr in sorted(empty.items())]
    return (
        f"{len(empty)} quer(ies) returned no data after {observed.waited_s:.0f} s:\n  "
        + "\n  ".join(lines)
        + f"\n{observed.pipe.logs()[-3000:]}"
    )


def test_every_panel_query_returns_data(observed: Observed) -> None:
    empty = {k: v for k, v in observed.empty.items() if k.startswith("panel ")}
    assert not empty, _explain(observed, empty)


def test_every_alert_rule_operand_returns_data(observed: Observed) -> None:
    empty = {k: v for k, v in observed.empty.items() if k.startswith("rule ")}
    assert not empty, _explain(observed, empty)


def test_prometheus_evaluates_every_rule_without_error(observed: Observed) -> None:
    groups = observed.prom.get("/api/v1/rules")["data"]["groups"]
    evaluated = {rule["name"]: rule for group in groups for rule in group["rules"]}
    alerts, _ = load_rules()
    assert set(evaluated) == {r.name for r in alerts}
    unhealthy = {
        name: (rule["health"], rule.get("lastError"))
        for name, rule in evaluated.items()
        if rule["health"] != "ok"
    }
    assert not unhealthy, unhealthy


def test_both_jobs_are_scraped_and_up(observed: Observed) -> None:
    up = {r["metric"]["job"]: r["value"][1] for r in observed.prom.query("up")}
    assert up == {"streamsense-worker": "1", "streamsense-scheduler": "1"}


def test_the_swap_shows_on_the_model_panels(observed: Observed) -> None:
    swaps = observed.prom.query("sum by (task) (streamsense_model_swaps_total)")
    # every task's series exists from start-up (at 0); only sentiment was swapped
    assert {r["metric"]["task"]: float(r["value"][1]) for r in swaps} == {
        "sentiment": 1.0,
        "intent": 0.0,
    }
    serving = observed.prom.query('streamsense_model_info{task="sentiment"} == 1')
    assert len(serving) == 1, serving


def test_exported_metrics_have_bounded_labels(observed: Observed) -> None:
    port = observed.pipe.metrics_ports[0]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        text = resp.read().decode("utf-8")
    forbidden_values = observed.produced_ids | observed.customer_ids
    problems: list[str] = []
    for family in text_string_to_metric_families(text):
        if not family.name.startswith("streamsense_"):
            continue
        series = {tuple(sorted(s.labels.items())) for s in family.samples}
        if len(series) > MAX_SERIES_PER_METRIC:
            problems.append(f"{family.name}: {len(series)} series")
        for sample in family.samples:
            for label, value in sample.labels.items():
                if label not in ALLOWED_LABELS:
                    problems.append(f"{sample.name}: label {label!r} not in the allow-list")
                if value in forbidden_values or ID_LIKE.match(value):
                    problems.append(f"{sample.name}: {label}={value!r} looks like an id")
    assert not problems, "\n".join(sorted(set(problems)))
    # the replay did reach the metrics (else the checks above prove nothing)
    assert "streamsense_predictions_total" in text


def test_the_dashboard_renders_from_prometheus(observed: Observed) -> None:
    out = observed.workdir / "dashboard.png"
    result = CliRunner().invoke(
        cli_app,
        ["dashboards", "render", "--prometheus", observed.prom.url, "--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert out.stat().st_size > 20_000
