"""A live terminal view of a running pipeline: models, throughput, alerts, routing decisions.

The models table says, per task, the version the outputs carry (what the workers really
serve), the version the registry alias names, the version in shadow, the last gate
decision with its interval, and the drift score, so a promotion, a refusal, a hold-back
or a swap that has not arrived yet is visible at once.

Shows ids, labels, queues and headlines of public news; never customer message text.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from kafka import KafkaConsumer
from rich.console import Group
from rich.table import Table

from models.registry import Registry
from streams.cli.model_status import DriftSource, decision_text, drift_text, model_status
from streams.edges.security import kafka_python_config
from streams.settings import Settings

TASKS = ("sentiment", "intent")
REGISTRY_REFRESH_S = 5.0


def latest_decision(registry: Registry, task: str) -> dict[str, Any] | None:
    """The newest gate decision recorded about any version of ``task`` (with its version)."""
    return registry.last_decision(task)


class LiveState:
    """What the view shows, fed by a consumer thread (and the registry, every few seconds)."""

    def __init__(
        self,
        settings: Settings,
        registry: Registry | None = None,
        drift: DriftSource | None = None,
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.drift = drift
        self.serving: dict[str, str] = {}
        self._models: list[tuple[str, str, str, str, str]] = []
        self._models_at = -REGISTRY_REFRESH_S
        self.counts: dict[str, int] = {}
        self.window: deque[tuple[float, str]] = deque()
        self.alerts: deque[dict[str, Any]] = deque(maxlen=8)
        self.tickets: deque[dict[str, Any]] = deque(maxlen=10)
        self.lock = threading.Lock()

    def add(self, topic: str, record: dict[str, Any]) -> None:
        now = time.monotonic()
        with self.lock:
            self.counts[topic] = self.counts.get(topic, 0) + 1
            self.window.append((now, topic))
            while self.window and self.window[0][0] < now - 10:
                self.window.popleft()
            if topic == self.settings.topic_alerts:
                self.alerts.appendleft(record)
            elif topic == self.settings.topic_tickets_routed:
                self.tickets.appendleft(record)
                self._served("intent", record.get("model_version"))
                self._served("sentiment", record.get("sentiment_model_version"))
            elif topic == self.settings.topic_news_scored:
                self._served("sentiment", record.get("model_version"))

    def _served(self, task: str, version: Any) -> None:
        if isinstance(version, str) and version:
            self.serving[task] = version

    def models(self) -> list[tuple[str, str, str, str, str]]:
        """Per task: production alias, shadow, last gate decision and drift score (read at
        most every 5 s)."""
        now = time.monotonic()
        if self.registry is not None and now - self._models_at >= REGISTRY_REFRESH_S:
            self._models_at = now
            rows = []
            for task in TASKS:
                try:
                    status = model_status(self.registry, task, self.drift)
                    rows.append(
                        (
                            task,
                            status.production or "-",
                            status.shadow or "-",
                            decision_text(status.decision),
                            drift_text(status),
                        )
                    )
                except Exception as exc:  # a registry being written: show it, try again
                    rows.append((task, "?", "?", f"unreadable: {type(exc).__name__}", "-"))
            self._models = rows
        return self._models

    def rate(self, topic: str) -> float:
        with self.lock:
            return sum(1 for _, t in self.window if t == topic) / 10.0

    def render(self) -> Group:
        s = self.settings
        models = Table(title="models", expand=True)
        for column in (
            "task",
            "in service (outputs)",
            "registry alias",
            "shadow",
            "last gate decision",
            "drift (PSI)",
        ):
            models.add_column(column)
        registry_rows = {row[0]: row[1:] for row in self.models()}
        with self.lock:
            serving = dict(self.serving)
        for task in TASKS:
            alias, shadow, decision, drift = registry_rows.get(task, ("-", "-", "-", "-"))
            models.add_row(task, serving.get(task, "-"), alias, shadow, decision, drift)
        flow = Table(title="throughput (last 10 s)", expand=True)
        for column in ("topic", "records/s", "total"):
            flow.add_column(column)
        for topic in (
            s.topic_news_scored,
            s.topic_tickets_routed,
            s.topic_recommendations,
            s.topic_alerts,
            s.dlq_topic(s.topic_news_raw),
            s.dlq_topic(s.topic_messages_raw),
        ):
            flow.add_row(topic, f"{self.rate(topic):.1f}", str(self.counts.get(topic, 0)))
        alerts = Table(title="latest alerts", expand=True)
        for column in ("kind", "subject", "value", "baseline", "evidence", "alert_id"):
            alerts.add_column(column)
        with self.lock:
            for a in list(self.alerts):
                alerts.add_row(
                    a["kind"],
                    a["subject"],
                    f"{a['value']:.2f}",
                    f"{a['baseline']:.2f}",
                    str(len(a["evidence_ids"])),
                    a["alert_id"][:12],
                )
            tickets = list(self.tickets)
        routing = Table(title="latest routing decisions", expand=True)
        for column in ("message", "intent", "conf", "queue", "prio", "reasons"):
            routing.add_column(column)
        for t in tickets:
            routing.add_row(
                t["id"],
                t["intent"],
                f"{t['confidence']:.2f}",
                t["queue"],
                str(t["priority"]),
                ",".join(t["reasons"]),
            )
        return Group(models, flow, alerts, routing)


def follow(bootstrap: str, settings: Settings, state: LiveState, stop: threading.Event) -> None:
    """Feed ``state`` from the output topics (from their end) until ``stop`` is set."""
    s = settings
    consumer = KafkaConsumer(
        s.topic_news_scored,
        s.topic_tickets_routed,
        s.topic_recommendations,
        s.topic_alerts,
        s.dlq_topic(s.topic_news_raw),
        s.dlq_topic(s.topic_messages_raw),
        bootstrap_servers=bootstrap,
        auto_offset_reset="latest",
        enable_auto_commit=False,
        **kafka_python_config(settings),
    )
    try:
        while not stop.is_set():
            for tp, messages in consumer.poll(timeout_ms=500).items():
                for message in messages:
                    try:
                        state.add(tp.topic, json.loads(message.value))
                    except ValueError:
                        continue
    finally:
        consumer.close()


def start_thread(target: Callable[[], Any], name: str) -> threading.Thread:
    """Start a daemon thread running ``target``."""
    thread = threading.Thread(target=target, name=name, daemon=True)
    thread.start()
    return thread
