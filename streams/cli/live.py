"""A live terminal view of a running pipeline: models, throughput, alerts, routing decisions.

The models table says, per task, the version the outputs carry (what the workers really
serve), the version the registry alias names, and the last gate decision with its first
reason, so a promotion, a refusal or a swap that has not arrived yet is visible at once.

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
from streams.edges.security import kafka_python_config
from streams.settings import Settings

TASKS = ("sentiment", "intent")
REGISTRY_REFRESH_S = 5.0


def latest_decision(registry: Registry, task: str) -> dict[str, Any] | None:
    """The newest gate decision recorded about any version of ``task`` (with its version)."""
    newest: dict[str, Any] | None = None
    for version in registry.versions(task):
        for decision in registry.decisions(task, version):
            if newest is None or str(decision.get("at", "")) >= str(newest.get("at", "")):
                newest = {"version": version, **decision}
    return newest


def _decision_text(decision: dict[str, Any] | None) -> str:
    if decision is None:
        return "-"
    reasons = decision.get("reasons") or []
    first = f": {reasons[0]}" if reasons else ""
    return (
        f"{decision.get('decision', '?')} {decision['version']} ({decision.get('at', '?')}){first}"
    )


class LiveState:
    """What the view shows, fed by a consumer thread (and the registry, every few seconds)."""

    def __init__(self, settings: Settings, registry: Registry | None = None) -> None:
        self.settings = settings
        self.registry = registry
        self.serving: dict[str, str] = {}
        self._models: list[tuple[str, str, str]] = []
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

    def models(self) -> list[tuple[str, str, str]]:
        """Per task: production alias and last gate decision (read at most every 5 s)."""
        now = time.monotonic()
        if self.registry is not None and now - self._models_at >= REGISTRY_REFRESH_S:
            self._models_at = now
            rows = []
            for task in TASKS:
                try:
                    alias = self.registry.production(task) or "-"
                    decision = _decision_text(latest_decision(self.registry, task))
                except Exception as exc:  # a registry being written: show it, try again
                    alias, decision = "?", f"registry unreadable: {type(exc).__name__}"
                rows.append((task, alias, decision))
            self._models = rows
        return self._models

    def rate(self, topic: str) -> float:
        with self.lock:
            return sum(1 for _, t in self.window if t == topic) / 10.0

    def render(self) -> Group:
        s = self.settings
        models = Table(title="models", expand=True)
        for column in ("task", "in service (outputs)", "registry alias", "last gate decision"):
            models.add_column(column)
        registry_rows = {task: (alias, decision) for task, alias, decision in self.models()}
        with self.lock:
            serving = dict(self.serving)
        for task in TASKS:
            alias, decision = registry_rows.get(task, ("-", "-"))
            models.add_row(task, serving.get(task, "-"), alias, decision)
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
