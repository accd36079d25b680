"""A live terminal view of a running pipeline: throughput, latest alerts, routing decisions.

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

from streams.edges.security import kafka_python_config
from streams.settings import Settings


class LiveState:
    """What the view shows, fed by a consumer thread."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
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

    def rate(self, topic: str) -> float:
        with self.lock:
            return sum(1 for _, t in self.window if t == topic) / 10.0

    def render(self) -> Group:
        s = self.settings
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
        return Group(flow, alerts, routing)


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
