"""The Grafana dashboards of streamsense, built as plain dicts and written as JSON files.

``streamsense dashboards write`` rewrites ``deploy/grafana/dashboards/*.json``;
``streamsense dashboards check`` exits 1 when a file on disk differs from what this module
builds (the unit tests check the same, so the JSON cannot drift from the code).

Queries use fixed windows (``[1m]``, ``[5m]``, ``[1h]``) rather than Grafana's
``$__rate_interval`` so that each one is plain PromQL the tests can send to Prometheus as is.
Labels are the bounded ones of ``streams/runtime/metrics.py`` only.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

DATASOURCE_UID = "streamsense-prometheus"
DATASOURCE = {"type": "prometheus", "uid": DATASOURCE_UID}
OUT_DIR = Path(__file__).resolve().parent / "dashboards"
SCHEMA_VERSION = 39
WIDTH = 24


def target(expr: str, legend: str = "", ref_id: str = "A", **extra: Any) -> dict[str, Any]:
    """One Prometheus query of a panel."""
    return {
        "datasource": DATASOURCE,
        "expr": expr,
        "legendFormat": legend or "__auto",
        "range": True,
        "refId": ref_id,
        **extra,
    }


def _targets(queries: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
    return [target(expr, legend, chr(ord("A") + i)) for i, (expr, legend) in enumerate(queries)]


def timeseries(
    title: str,
    queries: Sequence[tuple[str, str]],
    unit: str = "short",
    description: str = "",
    stack: bool = False,
    bars: bool = False,
) -> dict[str, Any]:
    """A time-series panel (position filled in by :func:`layout`)."""
    custom: dict[str, Any] = {"drawStyle": "bars" if bars else "line", "fillOpacity": 10}
    if stack:
        custom["stacking"] = {"mode": "normal", "group": "A"}
    return {
        "type": "timeseries",
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "fieldConfig": {"defaults": {"unit": unit, "custom": custom}, "overrides": []},
        "options": {
            "legend": {"displayMode": "table", "placement": "right", "calcs": ["lastNotNull"]},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
        "targets": _targets(queries),
    }


def stat(
    title: str, queries: Sequence[tuple[str, str]], unit: str = "short", description: str = ""
) -> dict[str, Any]:
    """A single-value panel showing each series' last value."""
    return {
        "type": "stat",
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "textMode": "value_and_name",
            "colorMode": "none",
        },
        "targets": _targets(queries),
    }


def distribution(title: str, expr: str, description: str = "") -> dict[str, Any]:
    """A bar gauge of a histogram's buckets (cumulative buckets shown per bucket)."""
    return {
        "type": "bargauge",
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "fieldConfig": {"defaults": {"unit": "short"}, "overrides": []},
        "options": {
            "displayMode": "gradient",
            "orientation": "vertical",
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        },
        "targets": [target(expr, "{{le}}", "A", format="heatmap", instant=True, range=False)],
    }


def row(title: str) -> dict[str, Any]:
    return {"type": "row", "title": title, "collapsed": False, "panels": []}


def layout(items: Sequence[dict[str, Any] | tuple[dict[str, Any], ...]]) -> list[dict[str, Any]]:
    """Give every panel an id and a grid position: a row panel spans the width, a tuple of
    panels shares one line of the grid."""
    out: list[dict[str, Any]] = []
    y = 0
    next_id = 1
    for item in items:
        line = item if isinstance(item, tuple) else (item,)
        if len(line) == 1 and line[0]["type"] == "row":
            out.append({**line[0], "id": next_id, "gridPos": {"h": 1, "w": WIDTH, "x": 0, "y": y}})
            next_id += 1
            y += 1
            continue
        width = WIDTH // len(line)
        height = 4 if all(p["type"] == "stat" for p in line) else 8
        for i, panel in enumerate(line):
            grid = {"h": height, "w": width, "x": i * width, "y": y}
            out.append({**panel, "id": next_id, "gridPos": grid})
            next_id += 1
        y += height
    return out


def dashboard(uid: str, title: str, description: str, items: list[Any]) -> dict[str, Any]:
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["streamsense"],
        "timezone": "utc",
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "editable": True,
        "graphTooltip": 1,
        "refresh": "30s",
        "time": {"from": "now-1h", "to": "now"},
        "templating": {"list": []},
        "annotations": {"list": []},
        "links": [
            {
                "type": "dashboards",
                "tags": ["streamsense"],
                "title": "streamsense",
                "asDropdown": True,
            }
        ],
        "panels": layout(items),
    }


def _quantiles(
    metric: str, by: str, qs: Sequence[float], window: str = "5m"
) -> list[tuple[str, str]]:
    return [
        (
            f"histogram_quantile({q}, sum by (le, {by}) (rate({metric}_bucket[{window}])))",
            f"p{round(q * 100)} {{{{{by}}}}}",
        )
        for q in qs
    ]


SCORER_AGENTS = ("message-scorer", "news-scorer")
"""The ``agent`` values of ``streamsense_batch_phase_seconds`` (``streams.runtime.metrics.SCORERS``:
deploy does not import streams; a unit test holds the two equal)."""


def _phase_panel(agent: str) -> dict[str, Any]:
    """Where one scorer's time goes: the share of it in each batch phase (they add up to
    the agent's whole time, one batch after another; summed over workers)."""
    return timeseries(
        f"Where the {agent}'s time goes",
        [
            (
                "sum by (phase) "
                f'(rate(streamsense_batch_phase_seconds_sum{{agent="{agent}"}}[1m]))',
                "{{phase}}",
            )
        ],
        unit="percentunit",
        stack=True,
        description="Share of the agent's time per batch phase: wait (for a batch to "
        "close), decode, inference, emit (score, route, queue the records), confirm (the "
        "broker's acks, the served predictions, state rows), ack. Inference near 100 % "
        "means the models are the bottleneck; a large confirm share, the broker.",
    )


def pipeline() -> dict[str, Any]:
    """Throughput, dead letters, batching, latency, lag and the models in service."""
    return dashboard(
        "streamsense-pipeline",
        "streamsense — pipeline",
        "Records in and out of every topic, dead letters, micro-batching, inference and "
        "end-to-end latency, consumer lag and the model versions the workers serve.",
        [
            (
                stat(
                    "Processes reporting",
                    [("count by (version) (streamsense_build_info)", "{{version}}")],
                    description="streamsense processes Prometheus scrapes (workers, scheduler).",
                ),
                stat(
                    "Input records / s",
                    [('sum(rate(streamsense_batch_size_sum{agent=~".+-scorer"}[5m]))', "scorers")],
                    unit="reqps",
                    description="Records the scorers took in micro-batches.",
                ),
                stat(
                    "Dead letters / s",
                    [
                        (
                            "sum(rate(streamsense_records_dead_lettered_total[5m])) or vector(0)",
                            "dlq",
                        )
                    ],
                    unit="reqps",
                ),
                stat(
                    "Max partition lag",
                    [("max(streamsense_consumer_lag)", "records")],
                    description="Largest lag of any input partition of the consumer group.",
                ),
            ),
            row("Throughput"),
            (
                timeseries(
                    "Records consumed / s by topic",
                    [
                        (
                            "sum by (topic) (rate(streamsense_records_consumed_total[1m]))",
                            "{{topic}}",
                        )
                    ],
                    unit="reqps",
                ),
                timeseries(
                    "Records produced / s by topic",
                    [
                        (
                            "sum by (topic) (rate(streamsense_records_produced_total[1m]))",
                            "{{topic}}",
                        )
                    ],
                    unit="reqps",
                    description="Confirmed sends, dead letters included (topic *.dlq).",
                ),
            ),
            (
                timeseries(
                    "Dead-lettered / s by topic and reason",
                    [
                        (
                            "sum by (topic, reason) "
                            "(rate(streamsense_records_dead_lettered_total[1m]))",
                            "{{topic}} {{reason}}",
                        )
                    ],
                    unit="reqps",
                    stack=True,
                ),
                timeseries(
                    "Scorer batch size",
                    [
                        *_quantiles("streamsense_batch_size", "agent", (0.5, 0.95), "1m"),
                        (
                            "sum by (agent) (rate(streamsense_batch_size_sum[1m])) / "
                            "sum by (agent) (rate(streamsense_batch_size_count[1m]))",
                            "mean {{agent}}",
                        ),
                    ],
                    description="Records per micro-batch; small batches at high input rate "
                    "mean the wait bound is too short.",
                ),
            ),
            row("Latency"),
            (
                timeseries(
                    "Inference seconds per batch (p50, p95)",
                    _quantiles("streamsense_inference_seconds", "task", (0.5, 0.95), "1m"),
                    unit="s",
                ),
                timeseries(
                    "End-to-end latency (p50, p95, p99)",
                    _quantiles("streamsense_end_to_end_seconds", "topic", (0.5, 0.95, 0.99), "1m"),
                    unit="s",
                    description="Event time of the input to the output confirmed by the broker.",
                ),
                timeseries(
                    "Event-loop heartbeat age by worker",
                    [
                        (
                            "max by (instance) (streamsense_event_loop_heartbeat_age_seconds)",
                            "{{instance}}",
                        )
                    ],
                    unit="s",
                    description="About 1 s while a worker's event loop runs; /healthz fails "
                    "(and Kubernetes restarts the worker) past STREAMSENSE_LIVENESS_MAX_AGE_S.",
                ),
            ),
            tuple(_phase_panel(agent) for agent in SCORER_AGENTS),
            row("Consumer group and models"),
            (
                timeseries(
                    "Consumer lag by partition",
                    [
                        (
                            "max by (topic, partition) (streamsense_consumer_lag)",
                            "{{topic}}/{{partition}}",
                        )
                    ],
                    description="Every worker reports the whole group's lag; max de-duplicates.",
                ),
                timeseries(
                    "Failed broker connections / s by worker",
                    [
                        (
                            "sum by (instance) "
                            "(rate(streamsense_broker_connect_failures_total[1m]))",
                            "{{instance}}",
                        )
                    ],
                    unit="reqps",
                    description="Zero while the brokers answer. During an outage a worker "
                    "backs off (at most one attempt per broker every 2 s) and resumes alone.",
                ),
                timeseries(
                    "Partitions sought back by the faust guard (per 10 min)",
                    [
                        (
                            "sum by (cause) "
                            "(increase(streamsense_consumer_repositions_total[10m]))",
                            "{{cause}}",
                        )
                    ],
                    description="gap: faust skipped offsets; unhanded: fetched records faust "
                    "dropped; stalled: the position watch re-read a stuck partition; idle: it "
                    "restarted the fetch of a partition that fetched nothing with records "
                    "waiting. A few "
                    "around a rebalance are normal (duplicates, never a loss).",
                ),
                timeseries(
                    "Workers per model version in service",
                    [
                        (
                            "count by (task, version) (streamsense_model_info == 1)",
                            "{{task}} {{version}}",
                        )
                    ],
                    description="Two versions of one task at once: a swap is rolling out.",
                ),
                timeseries(
                    "Model swaps (per hour)",
                    [("sum by (task) (increase(streamsense_model_swaps_total[1h]))", "{{task}}")],
                ),
            ),
            (
                timeseries(
                    "Workers not on the alias's version",
                    [("sum by (task) (streamsense_model_alias_mismatch)", "{{task}}")],
                    description="Workers retry a failed load with backoff; above 0 for long: "
                    "look for load or verification errors in their logs.",
                ),
                timeseries(
                    "Failed model loads and refused control records (per hour)",
                    [
                        (
                            "sum by (task) (increase(streamsense_model_swap_failures_total[1h]))",
                            "{{task}} failed loads",
                        ),
                        (
                            "sum by (task) (increase(streamsense_model_control_refused_total[1h]))",
                            "{{task}} refused records",
                        ),
                    ],
                    description="A refused record named a version the registry alias does not.",
                ),
            ),
        ],
    )


def models_and_alerts() -> dict[str, Any]:
    """What the models predict, how sure and how right they are, alerts and retraining."""
    conf = "streamsense_prediction_confidence"
    return dashboard(
        "streamsense-models",
        "streamsense — models & alerts",
        "Predictions by label, confidence, alerts by kind, online accuracy from feedback, "
        "and the retrain job with its gate.",
        [
            row("Predictions"),
            (
                timeseries(
                    "Sentiment predictions / s by label",
                    [
                        (
                            'sum by (label) (rate(streamsense_predictions_total{task="sentiment"}'
                            "[1m]))",
                            "{{label}}",
                        )
                    ],
                    unit="reqps",
                    stack=True,
                ),
                timeseries(
                    "Intent predictions / s, top 10 labels",
                    [
                        (
                            "topk(10, sum by (label) "
                            '(rate(streamsense_predictions_total{task="intent"}[5m])))',
                            "{{label}}",
                        )
                    ],
                    unit="reqps",
                ),
            ),
            (
                timeseries(
                    "Confidence (p10, p50) by task",
                    _quantiles(conf, "task", (0.1, 0.5)),
                    unit="percentunit",
                ),
                timeseries(
                    "Share of predictions below 0.5 confidence",
                    [
                        (
                            f'sum by (task) (rate({conf}_bucket{{le="0.5"}}[5m])) / '
                            f"sum by (task) (rate({conf}_count[5m]))",
                            "{{task}}",
                        )
                    ],
                    unit="percentunit",
                ),
                distribution(
                    "Confidence distribution (last hour)",
                    f"sum by (le) (increase({conf}_bucket[1h]))",
                    description="Predictions per confidence bucket, both tasks.",
                ),
            ),
            row("Alerts and online accuracy"),
            (
                timeseries(
                    "Alerts raised by kind (per hour)",
                    [
                        ("sum by (kind) (increase(streamsense_alerts_total[1h]))", "{{kind}}"),
                        (
                            "sum by (agent) (increase(streamsense_late_items_total[1h]))",
                            "late, ignored by {{agent}}",
                        ),
                    ],
                    description="Late items arrived older than their monitor's window: "
                    "a replay, a stalled producer or a clock far behind.",
                ),
                timeseries(
                    "Online accuracy by task",
                    [
                        (
                            "sum by (task) (increase(streamsense_online_correct_total[1h])) / "
                            "sum by (task) (increase(streamsense_online_judged_total[1h]))",
                            "{{task}} (1h, all workers)",
                        ),
                        ("avg by (task) (streamsense_online_accuracy)", "{{task}} (gauge)"),
                    ],
                    unit="percentunit",
                    description="Feedback that agrees with the prediction that was served.",
                ),
                timeseries(
                    "Feedback / min by task",
                    [
                        (
                            "sum by (task) (rate(streamsense_feedback_received_total[5m])) * 60",
                            "{{task}} received",
                        ),
                        (
                            "sum by (task) (rate(streamsense_online_judged_total[5m])) * 60",
                            "{{task}} joined to a prediction",
                        ),
                    ],
                ),
            ),
            row("Retraining"),
            (
                timeseries(
                    "Retrain runs by outcome (last 24 h)",
                    [
                        (
                            "sum by (task, outcome) (increase(streamsense_retrain_runs_total[1d]))",
                            "{{task}} {{outcome}}",
                        )
                    ],
                ),
                timeseries(
                    "Retrain duration",
                    [
                        (
                            "sum by (task) (increase(streamsense_retrain_seconds_sum[1d])) / "
                            "sum by (task) (increase(streamsense_retrain_seconds_count[1d]))",
                            "mean {{task}}",
                        ),
                        *_quantiles("streamsense_retrain_seconds", "task", (0.95,), "1d"),
                    ],
                    unit="s",
                ),
                timeseries(
                    "Gate decisions (last 24 h)",
                    [
                        (
                            "sum by (task, decision) "
                            "(increase(streamsense_gate_decisions_total[1d]))",
                            "{{task}} {{decision}}",
                        )
                    ],
                ),
            ),
            (
                timeseries(
                    "Last gate decision: recent-feedback accuracy gain with its interval",
                    [
                        (
                            "max by (task, bound) "
                            '(streamsense_gate_interval{metric="recent_accuracy"})',
                            "{{task}} {{bound}}",
                        ),
                        (
                            "max by (task, bound) "
                            '(streamsense_gate_interval{metric="heldout_accuracy"})',
                            "{{task}} held-out {{bound}}",
                        ),
                    ],
                    unit="percentunit",
                    description="Candidate minus champion on the same items, with the bootstrap "
                    "interval (1 - STREAMSENSE_GATE_ALPHA). Promotion needs a significant "
                    "recent gain and a held-out low bound above -STREAMSENSE_GATE_TOLERANCE.",
                ),
                timeseries(
                    "Last gate decision: McNemar p-value",
                    [("max by (task) (streamsense_gate_p_value)", "{{task}}")],
                    description="Mid-p of the recent-feedback accuracy difference; a gain "
                    "counts when it is below STREAMSENSE_GATE_ALPHA (0.05 by default).",
                ),
            ),
            row("Drift"),
            (
                timeseries(
                    "Drift score by task (largest PSI vs the training reference)",
                    [
                        ("max by (task) (streamsense_drift_score)", "{{task}}"),
                    ],
                    description="Population stability index of the last STREAMSENSE_DRIFT_WINDOW "
                    "scored items against the served version's reference: 0.1 moderate, "
                    "0.25 major (the alert and the retrain trigger).",
                ),
                timeseries(
                    "Drift PSI by feature",
                    [
                        (
                            "max by (task, feature) (streamsense_drift_psi)",
                            "{{task}} {{feature}}",
                        ),
                    ],
                    description="label and confidence: what the model says; length and oov "
                    "(share of words outside the training vocabulary): what comes in.",
                ),
                timeseries(
                    "Items in the drift window",
                    [("max by (task) (streamsense_drift_window_items)", "{{task}}")],
                ),
            ),
            row("Shadow (a candidate scored beside production, not served)"),
            (
                timeseries(
                    "Shadow agreement with production",
                    [
                        (
                            "sum by (task) (increase(streamsense_shadow_agreements_total[1h])) / "
                            "sum by (task) (increase(streamsense_shadow_items_total[1h]))",
                            "{{task}}",
                        )
                    ],
                    unit="percentunit",
                    description="Share of the last hour's items on which the version in shadow "
                    "(streamsense models shadow) predicted production's label.",
                ),
                timeseries(
                    "Shadow confidence shift",
                    [("avg by (task) (streamsense_shadow_confidence_shift)", "{{task}}")],
                    description="Mean confidence of the shadow version minus production's.",
                ),
                timeseries(
                    "Online accuracy on items both scored",
                    [
                        (
                            "sum by (task, model) "
                            "(increase(streamsense_shadow_online_correct_total[1d])) / "
                            "ignoring(model) group_left "
                            "sum by (task) (increase(streamsense_shadow_online_judged_total[1d]))",
                            "{{task}} {{model}}",
                        )
                    ],
                    unit="percentunit",
                    description="Feedback on the same items: production's and the shadow "
                    "version's accuracy, side by side.",
                ),
                timeseries(
                    "Shadow reviews",
                    [
                        (
                            "sum by (task, outcome) "
                            "(increase(streamsense_shadow_reviews_total[1d]))",
                            "{{task}} {{outcome}}",
                        )
                    ],
                    description="The retrain scheduler's reviews of a shadow period: wait (too "
                    "few labels or too soon), promote (not worse online, with confidence) or "
                    "end (significantly worse, or no verdict by "
                    "STREAMSENSE_SHADOW_MAX_DURATION_S).",
                ),
            ),
        ],
    )


def build() -> dict[str, dict[str, Any]]:
    """Every dashboard, by file name."""
    return {
        "streamsense-pipeline.json": pipeline(),
        "streamsense-models.json": models_and_alerts(),
    }


def render_json(board: dict[str, Any]) -> str:
    return json.dumps(board, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def stale_files(out_dir: Path = OUT_DIR) -> list[str]:
    """Dashboard files that are missing, differ from :func:`build`, or are not built by it."""
    built = build()
    stale = [
        name
        for name, board in built.items()
        if not (out_dir / name).is_file()
        or (out_dir / name).read_text(encoding="utf-8") != render_json(board)
    ]
    stale += [p.name for p in sorted(out_dir.glob("*.json")) if p.name not in built]
    return stale


def write(out_dir: Path = OUT_DIR) -> list[Path]:
    """Write every dashboard; remove JSON files this module no longer builds."""
    out_dir.mkdir(parents=True, exist_ok=True)
    built = build()
    for path in out_dir.glob("*.json"):
        if path.name not in built:
            path.unlink()
    paths = []
    for name, board in built.items():
        path = out_dir / name
        path.write_text(render_json(board), encoding="utf-8")
        paths.append(path)
    return paths
