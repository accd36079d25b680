"""Dashboards and alert rules, read as data: no drift, only defined metrics, bounded labels."""

from __future__ import annotations

import dataclasses
import re

import pytest

from deploy.grafana import dashboards
from deploy.observability import (
    DASHBOARDS_DIR,
    PanelQuery,
    base_queries,
    label_names,
    load_dashboards,
    load_rules,
    metric_names,
    panel_queries,
    panels,
)
from streams.runtime.metrics import SCORERS, Metrics

# Prometheus's own series that rules may use besides ours.
PROMETHEUS_SERIES = {"up"}
# Labels Prometheus adds at scrape time.
TARGET_LABELS = {"job", "instance"}
FORBIDDEN_LABELS = {"id", "item_id", "customer_id", "customer", "text", "message", "headline"}


def _exported() -> dict[str, set[str]]:
    from deploy.observability import exported_series

    metrics = Metrics.create()
    return exported_series(getattr(metrics, f.name) for f in dataclasses.fields(metrics))


EXPORTED = _exported()
DECLARED_LABELS = set().union(*EXPORTED.values())
QUERIES = panel_queries(dashboards.build())
ALERTS, RECORDINGS = load_rules()


def test_the_dashboard_files_are_what_the_code_generates() -> None:
    assert dashboards.stale_files() == [], "run: streamsense dashboards write"
    assert load_dashboards() == dashboards.build()


def test_the_required_dashboards_exist() -> None:
    titles = {board["title"] for board in load_dashboards().values()}
    assert titles == {"streamsense — pipeline", "streamsense — models & alerts"}
    assert {path.name for path in DASHBOARDS_DIR.glob("*.json")} == set(dashboards.build())


def test_every_panel_has_a_query_and_a_unique_id_and_place() -> None:
    for board in dashboards.build().values():
        ids = []
        for panel in panels(board):
            assert panel["targets"], f"{board['title']}: panel {panel['title']!r} has no query"
            assert all(t["expr"].strip() for t in panel["targets"]), panel["title"]
            assert panel["datasource"]["uid"] == dashboards.DATASOURCE_UID
            ids.append(panel["id"])
            grid = panel["gridPos"]
            assert grid["x"] + grid["w"] <= dashboards.WIDTH
        assert len(ids) == len(set(ids)), board["title"]
        ref_ids = [[t["refId"] for t in p["targets"]] for p in panels(board)]
        assert all(len(r) == len(set(r)) for r in ref_ids)


@pytest.mark.parametrize("query", QUERIES, ids=lambda q: f"{q.panel}-{q.ref_id}")
def test_panel_queries_use_only_defined_metrics(query: PanelQuery) -> None:
    names = metric_names(query.expr)
    assert names, f"no metric in {query.expr!r}"
    unknown = names - set(EXPORTED)
    assert not unknown, (
        f"{query.panel}: {sorted(unknown)} are not exported by streams/runtime/metrics.py"
    )


@pytest.mark.parametrize("query", QUERIES, ids=lambda q: f"{q.panel}-{q.ref_id}")
def test_panel_queries_use_only_bounded_labels(query: PanelQuery) -> None:
    used = label_names(query.expr) | set(re.findall(r"\{\{\s*(\w+)\s*\}\}", query.legend))
    assert not used & FORBIDDEN_LABELS, f"{query.panel}: unbounded label in {query.expr!r}"
    # every label a query names is one the metrics of that query declare (or le/job/instance)
    declared = set().union(*(EXPORTED.get(name, set()) for name in metric_names(query.expr)))
    undeclared = used - declared - TARGET_LABELS - {"le"}
    if "streamsense_build_info" in metric_names(query.expr):
        undeclared -= {"version"}  # Info labels come from the .info() call
    assert not undeclared, f"{query.panel}: labels {sorted(undeclared)} are not declared"


def test_every_panel_query_is_plain_promql_without_grafana_variables() -> None:
    for query in QUERIES:
        assert "$" not in query.expr, f"{query.panel}: Grafana variable in {query.expr!r}"


def test_the_pipeline_and_models_dashboards_cover_every_metric_family() -> None:
    used = set().union(*(metric_names(q.expr) for q in QUERIES))
    families = {re.sub(r"_(total|bucket|count|sum|created)$", "", name) for name in EXPORTED}
    covered = {re.sub(r"_(total|bucket|count|sum|created)$", "", name) for name in used}
    assert families - covered == set()


def test_a_panel_shows_each_scorers_batch_phases() -> None:
    agents = {
        m.group(1)
        for q in panel_queries(dashboards.build())
        for m in re.finditer(r'batch_phase_seconds_sum\{agent="([^"]+)"\}', q.expr)
    }
    assert agents == set(dashboards.SCORER_AGENTS) == set(SCORERS)


@pytest.mark.parametrize("rule", ALERTS, ids=lambda r: r.name)
def test_alert_rules_are_complete(rule: object) -> None:
    from deploy.observability import AlertRule

    assert isinstance(rule, AlertRule)
    assert re.fullmatch(r"\d+[smh]", rule.for_), f"{rule.name}: needs for:"
    assert rule.labels.get("severity") in {"warning", "critical"}
    assert rule.annotations.get("summary") and rule.annotations.get("description")
    names = metric_names(rule.expr)
    unknown = names - set(EXPORTED) - PROMETHEUS_SERIES
    assert not unknown, f"{rule.name}: {sorted(unknown)} not exported"
    used = label_names(rule.expr)
    assert not used & FORBIDDEN_LABELS
    assert used <= DECLARED_LABELS | TARGET_LABELS, f"{rule.name}: {used - DECLARED_LABELS}"
    operands = base_queries(rule.expr)
    assert operands and all(metric_names(op) for op in operands), (
        f"{rule.name}: every operand must be a query (thresholds are dropped): {operands}"
    )


def test_the_required_alerts_are_there() -> None:
    names = {rule.name for rule in ALERTS}
    assert {
        "StreamsenseConsumerLagGrowing",
        "StreamsenseDeadLetterRateHigh",
        "StreamsenseNoOutputWhileInputFlows",
        "StreamsenseOnlineAccuracyLow",
        "StreamsenseOnlineAccuracyDropped",
        "StreamsenseRetrainFailing",
    } <= names
    assert RECORDINGS == []
