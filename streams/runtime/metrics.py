"""Every Prometheus metric streamsense exports, defined in one place on an injected registry.

Conventions: ``streamsense_`` prefix, base units (seconds), ``_total`` counters, and labels of
bounded cardinality only (topic, task, label, kind, reason, version): never an item id,
customer id or text.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
INFERENCE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
CONFIDENCE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99)
RETRAIN_BUCKETS = (10, 30, 60, 120, 300, 600, 1200, 2400, 3600)


GATE_BOUNDS = ("low", "estimate", "high")
"""The ``bound`` label of ``gate_interval``: the interval of candidate - champion."""
DRIFT_FEATURES = ("label", "confidence", "length", "oov")
"""The ``feature`` label of ``drift_psi`` (streams.core.drift)."""

BATCH_PHASES = ("wait", "decode", "inference", "turn", "emit", "confirm", "ack")
"""The ``phase`` label of ``batch_phase_seconds``, in the order a scorer batch goes through
them: waiting for the batch to close (records arriving, or none to take), decoding and
validating it, the model calls, waiting for the batch before it to finish (its turn: a
batch taken while the last one still emitted and confirmed), scoring and routing the
results and queueing their records, waiting for the broker to confirm them (and for the
served predictions and state rows to be written), acknowledging the input. Two batches'
phases can overlap (the next batch's wait, decode and inference beside the last one's
emit and confirm), so the phases of a run can add up to more than its time."""
SCORERS = ("message-scorer", "news-scorer")
"""The agents on the produce-to-output path (the ``agent`` label of ``batch_phase_seconds``)."""

MONITORS = ("ticker-monitor", "intent-monitor")
"""The agents that keep windows (the ``agent`` label of ``late_items``)."""


@dataclass(frozen=True)
class Metrics:
    """The metric objects; build with :meth:`create` on a registry."""

    registry: CollectorRegistry
    records_in: Counter
    records_out: Counter
    records_dlq: Counter
    batch_size: Histogram
    batch_phase_seconds: Histogram
    inference_seconds: Histogram
    end_to_end_seconds: Histogram
    predictions: Counter
    confidence: Histogram
    alerts: Counter
    late_items: Counter
    broker_connect_failures: Counter
    consumer_repositions: Counter
    model_info: Gauge
    swaps: Counter
    swap_failures: Counter
    alias_mismatch: Gauge
    control_refused: Counter
    retrain_runs: Counter
    retrain_seconds: Histogram
    gate_decisions: Counter
    gate_interval: Gauge
    gate_p_value: Gauge
    drift_psi: Gauge
    drift_score: Gauge
    drift_window_items: Gauge
    shadow_items: Counter
    shadow_agreements: Counter
    shadow_confidence_shift: Gauge
    shadow_online_correct: Counter
    shadow_online_judged: Counter
    shadow_reviews: Counter
    feedback: Counter
    online_correct: Counter
    online_total: Counter
    online_accuracy: Gauge
    consumer_lag: Gauge
    event_loop_heartbeat_age: Gauge
    build_info: Info

    def prime(
        self,
        tasks: Iterable[str],
        input_topics: Iterable[str],
        reasons: Iterable[str],
        alert_kinds: Iterable[str],
        version: str,
    ) -> None:
        """Create the labelled series that start at zero, so ``increase()`` sees their first
        event, and publish the build version."""
        for task in tasks:
            for counter in (
                self.swaps,
                self.swap_failures,
                self.control_refused,
                self.feedback,
                self.online_correct,
                self.online_total,
            ):
                counter.labels(task)
            self.alias_mismatch.labels(task).set(0)
            # no drift measured yet: NaN (not 0, which would read as "no drift")
            self.drift_score.labels(task).set(float("nan"))
            for feature in DRIFT_FEATURES:
                self.drift_psi.labels(task, feature).set(float("nan"))
            self.drift_window_items.labels(task).set(0)
            for counter in (self.shadow_items, self.shadow_agreements, self.shadow_online_judged):
                counter.labels(task)
            for model in ("production", "shadow"):
                self.shadow_online_correct.labels(task, model)
            for outcome in ("wait", "promote", "end"):
                self.shadow_reviews.labels(task, outcome)
            self.shadow_confidence_shift.labels(task).set(float("nan"))
        for kind in alert_kinds:
            self.alerts.labels(kind)
        for monitor in MONITORS:
            self.late_items.labels(monitor)
        for agent in SCORERS:
            for phase in BATCH_PHASES:
                self.batch_phase_seconds.labels(agent, phase)
        topics = list(input_topics)
        for reason in reasons:
            for topic in topics:
                self.records_dlq.labels(topic, reason)
        self.build_info.info({"version": version})

    def batch_clock(self, agent: str) -> BatchClock:
        """A stopwatch for ``agent``'s batches, phase by phase."""
        return BatchClock(self.batch_phase_seconds, agent)

    def record_gate(self, task: str, decision: str, intervals: Mapping[str, Any]) -> None:
        """Count a gate decision and publish its intervals (candidate - champion, fractions)
        and the McNemar p-value of the recent slice."""
        self.gate_decisions.labels(task, decision).inc()
        for metric, interval in intervals.items():
            for bound in GATE_BOUNDS:
                if bound in interval:
                    self.gate_interval.labels(task, metric, bound).set(float(interval[bound]))
        recent = intervals.get("recent_accuracy")
        if recent and "p_value" in recent:
            self.gate_p_value.labels(task).set(float(recent["p_value"]))

    def record_shadow(
        self, task: str, items: int, agreements: int, confidence_shift: float | None
    ) -> None:
        """Count a batch scored in shadow; ``confidence_shift``: the window's mean."""
        self.shadow_items.labels(task).inc(items)
        self.shadow_agreements.labels(task).inc(agreements)
        if confidence_shift is not None:
            self.shadow_confidence_shift.labels(task).set(confidence_shift)

    def record_shadow_judged(self, task: str, production_right: bool, shadow_right: bool) -> None:
        """Feedback on an item both production and the shadow version scored."""
        self.shadow_online_judged.labels(task).inc()
        if production_right:
            self.shadow_online_correct.labels(task, "production").inc()
        if shadow_right:
            self.shadow_online_correct.labels(task, "shadow").inc()

    def record_drift(
        self, task: str, psi: Mapping[str, float], score: float, window_items: int
    ) -> None:
        """Publish one task's drift: PSI per feature, the score (largest PSI), window size."""
        for feature, value in psi.items():
            self.drift_psi.labels(task, feature).set(value)
        self.drift_score.labels(task).set(score)
        self.drift_window_items.labels(task).set(window_items)

    @classmethod
    def create(cls, registry: CollectorRegistry | None = None) -> Metrics:
        """Define every metric on ``registry`` (a fresh one by default)."""
        r = registry if registry is not None else CollectorRegistry()
        p = "streamsense"
        return cls(
            registry=r,
            records_in=Counter(f"{p}_records_consumed", "Records consumed.", ["topic"], registry=r),
            records_out=Counter(
                f"{p}_records_produced", "Records produced.", ["topic"], registry=r
            ),
            records_dlq=Counter(
                f"{p}_records_dead_lettered",
                "Records sent to a DLQ.",
                ["topic", "reason"],
                registry=r,
            ),
            batch_size=Histogram(
                f"{p}_batch_size",
                "Records per scorer micro-batch.",
                ["agent"],
                buckets=BATCH_BUCKETS,
                registry=r,
            ),
            batch_phase_seconds=Histogram(
                f"{p}_batch_phase_seconds",
                "Seconds a scorer's micro-batch spent in each phase (BATCH_PHASES); the"
                " phases of one batch add up to its agent's time from the previous batch's"
                " last ack to its own.",
                ["agent", "phase"],
                buckets=INFERENCE_BUCKETS,
                registry=r,
            ),
            inference_seconds=Histogram(
                f"{p}_inference_seconds",
                "Model time per batch.",
                ["task"],
                buckets=INFERENCE_BUCKETS,
                registry=r,
            ),
            end_to_end_seconds=Histogram(
                f"{p}_end_to_end_seconds",
                "Event time to output produced.",
                ["topic"],
                buckets=LATENCY_BUCKETS,
                registry=r,
            ),
            predictions=Counter(
                f"{p}_predictions", "Predictions by task and label.", ["task", "label"], registry=r
            ),
            confidence=Histogram(
                f"{p}_prediction_confidence",
                "Probability of the predicted label.",
                ["task"],
                buckets=CONFIDENCE_BUCKETS,
                registry=r,
            ),
            alerts=Counter(f"{p}_alerts", "Alerts raised.", ["kind"], registry=r),
            late_items=Counter(
                f"{p}_late_items",
                "Items a monitor ignored: older than its window when they arrived.",
                ["agent"],
                registry=r,
            ),
            broker_connect_failures=Counter(
                f"{p}_broker_connect_failures",
                "Failed connections to a Kafka broker (each followed by a backoff of up to "
                "2 s to that broker).",
                registry=r,
            ),
            consumer_repositions=Counter(
                f"{p}_consumer_repositions",
                "Partitions the faust guard sought back so that no record goes unread: "
                "cause gap (faust skipped offsets), unhanded (fetched records faust dropped), "
                "stalled (the position watch found a partition stuck past unread records), "
                "idle (records waited on the broker for a partition that fetched none for 30 s).",
                ["cause"],
                registry=r,
            ),
            model_info=Gauge(
                f"{p}_model_info",
                "1 for the model version in service.",
                ["task", "version"],
                registry=r,
            ),
            swaps=Counter(
                f"{p}_model_swaps", "Hot swaps of a serving model.", ["task"], registry=r
            ),
            swap_failures=Counter(
                f"{p}_model_swap_failures",
                "Loads of the alias's version that failed (retried with backoff).",
                ["task"],
                registry=r,
            ),
            alias_mismatch=Gauge(
                f"{p}_model_alias_mismatch",
                "1 while the served version differs from the registry alias's.",
                ["task"],
                registry=r,
            ),
            control_refused=Counter(
                f"{p}_model_control_refused",
                "models.control records refused: the version is not the alias's.",
                ["task"],
                registry=r,
            ),
            retrain_runs=Counter(
                f"{p}_retrain_runs", "Retrain runs by outcome.", ["task", "outcome"], registry=r
            ),
            retrain_seconds=Histogram(
                f"{p}_retrain_seconds",
                "Duration of a retrain run.",
                ["task"],
                buckets=RETRAIN_BUCKETS,
                registry=r,
            ),
            gate_decisions=Counter(
                f"{p}_gate_decisions", "Gate decisions.", ["task", "decision"], registry=r
            ),
            gate_interval=Gauge(
                f"{p}_gate_interval",
                "Last gate decision: candidate minus champion (fraction), interval bound.",
                ["task", "metric", "bound"],
                registry=r,
            ),
            gate_p_value=Gauge(
                f"{p}_gate_p_value",
                "Last gate decision: McNemar mid-p of the recent-feedback accuracy difference.",
                ["task"],
                registry=r,
            ),
            drift_psi=Gauge(
                f"{p}_drift_psi",
                "Population stability index of a feature: drift window vs training reference.",
                ["task", "feature"],
                registry=r,
            ),
            drift_score=Gauge(
                f"{p}_drift_score",
                "Largest drift PSI of a task over its features (0.1 moderate, 0.25 major).",
                ["task"],
                registry=r,
            ),
            drift_window_items=Gauge(
                f"{p}_drift_window_items",
                "Scored items in a task's drift window.",
                ["task"],
                registry=r,
            ),
            shadow_items=Counter(
                f"{p}_shadow_items",
                "Items scored by both production and the version in shadow.",
                ["task"],
                registry=r,
            ),
            shadow_agreements=Counter(
                f"{p}_shadow_agreements",
                "Items on which the version in shadow predicted production's label.",
                ["task"],
                registry=r,
            ),
            shadow_confidence_shift=Gauge(
                f"{p}_shadow_confidence_shift",
                "Mean confidence of the shadow version minus production's, recent items.",
                ["task"],
                registry=r,
            ),
            shadow_online_correct=Counter(
                f"{p}_shadow_online_correct",
                "Feedback on items both scored that agrees with a model (production|shadow).",
                ["task", "model"],
                registry=r,
            ),
            shadow_online_judged=Counter(
                f"{p}_shadow_online_judged",
                "Feedback on items both production and the shadow version scored.",
                ["task"],
                registry=r,
            ),
            shadow_reviews=Counter(
                f"{p}_shadow_reviews",
                "Reviews of a shadow period by outcome: wait, promote or end.",
                ["task", "outcome"],
                registry=r,
            ),
            feedback=Counter(
                f"{p}_feedback_received", "Feedback labels stored.", ["task"], registry=r
            ),
            online_correct=Counter(
                f"{p}_online_correct",
                "Feedback that agrees with the served prediction.",
                ["task"],
                registry=r,
            ),
            online_total=Counter(
                f"{p}_online_judged",
                "Feedback joined to a served prediction.",
                ["task"],
                registry=r,
            ),
            online_accuracy=Gauge(
                f"{p}_online_accuracy",
                "Accuracy of served predictions over recent feedback.",
                ["task"],
                registry=r,
            ),
            consumer_lag=Gauge(
                f"{p}_consumer_lag",
                "Records behind the end of a partition.",
                ["topic", "partition"],
                registry=r,
            ),
            event_loop_heartbeat_age=Gauge(
                f"{p}_event_loop_heartbeat_age_seconds",
                "Seconds since the worker's event loop last ran its heartbeat (~1 when healthy).",
                registry=r,
            ),
            build_info=Info(f"{p}_build", "streamsense version.", registry=r),
        )


class BatchClock:
    """Times an agent's batches phase by phase: each :meth:`lap` observes the seconds since
    the previous lap (or since the clock was started) as that phase."""

    def __init__(self, histogram: Histogram, agent: str) -> None:
        self._histogram = histogram
        self._agent = agent
        self._last = time.perf_counter()

    def lap(self, phase: str) -> None:
        """Observe the time since the last lap as ``phase``."""
        now = time.perf_counter()
        self._histogram.labels(self._agent, phase).observe(max(0.0, now - self._last))
        self._last = now

    def restart(self) -> None:
        """Start the next lap now, observing nothing."""
        self._last = time.perf_counter()


def phase_totals(families: Iterable[Any], agent: str) -> dict[str, tuple[float, float]]:
    """(batches, seconds) per phase of ``agent``'s batches so far, from metric families: a
    registry's ``collect()`` or a ``/metrics`` page parsed by prometheus_client."""
    out: dict[str, list[float]] = {}
    for family in families:
        if family.name != "streamsense_batch_phase_seconds":
            continue
        for sample in family.samples:
            if sample.labels.get("agent") == agent and sample.name.endswith(("_count", "_sum")):
                row = out.setdefault(sample.labels["phase"], [0.0, 0.0])
                row[sample.name.endswith("_sum")] = sample.value
    return {phase: (count, seconds) for phase, (count, seconds) in out.items()}
