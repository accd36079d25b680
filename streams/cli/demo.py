"""``streamsense run``: broker, models, worker, a replay of real data, and the live view."""

from __future__ import annotations

import logging
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from rich.console import Console
from rich.live import Live

from models.data import LabeledData, load_banking77, load_twitter
from models.drift_reference import ensure_drift_reference
from models.pipeline import ensure_models
from models.registry import Registry
from streams.cli.live import LiveState, follow, start_thread
from streams.edges.bootstrap import local_broker, resolve_bootstrap
from streams.edges.replay import customer_messages, news_items, produce_items
from streams.edges.security import kafka_python_config
from streams.edges.topics import ensure_topics
from streams.runtime.agents import FATAL_EXIT
from streams.settings import Settings

logger = logging.getLogger(__name__)

TWITTER_FILE = Path("twitter_financial_news") / "sent_train.csv"
CRASH_ONLY_EXITS = (FATAL_EXIT,)


def _shuffled(data: LabeledData, seed: int) -> LabeledData:
    order = list(range(len(data)))
    random.Random(seed).shuffle(order)
    return data.subset(order)


def _scenario(bootstrap: str, settings: Settings, rate: float, stop: threading.Event) -> None:
    """Mixed real news and messages, then an outage (a burst of real card_not_working
    messages) and a shock (real bearish headlines about one ticker)."""
    news = _shuffled(load_twitter(settings.data_dir / TWITTER_FILE), 11)
    messages = _shuffled(load_banking77(settings.data_dir), 12)
    security = kafka_python_config(settings)
    threads = [
        start_thread(
            lambda: produce_items(
                bootstrap,
                settings.topic_news_raw,
                news_items(news),
                security=security,
                rate=rate,
                stop=stop,
                feedback_topic=settings.topic_feedback,
                feedback_task="sentiment",
                feedback_every=3,
            ),
            "replay-news",
        ),
        start_thread(
            lambda: produce_items(
                bootstrap,
                settings.topic_messages_raw,
                customer_messages(messages),
                security=security,
                rate=rate,
                stop=stop,
            ),
            "replay-messages",
        ),
    ]
    if stop.wait(180):
        return
    outage = messages.subset(
        [i for i, lab in enumerate(messages.labels) if lab == "card_not_working"][:40]
    )
    produce_items(
        bootstrap,
        settings.topic_messages_raw,
        customer_messages(outage, prefix="outage"),
        security=security,
        rate=10,
        stop=stop,
    )
    bearish = news.subset([i for i, lab in enumerate(news.labels) if lab == "negative"][:15])
    produce_items(
        bootstrap,
        settings.topic_news_raw,
        news_items(bearish, prefix="shock", tickers=["ACME"]),
        security=security,
        rate=2,
        stop=stop,
    )
    for thread in threads:
        thread.join()


def _spawn(settings: Settings, command: str) -> tuple[subprocess.Popen[bytes], Path]:
    """Start ``streamsense COMMAND`` in its own session, logging to the state directory."""
    log_path = settings.resolved_state_dir() / f"{command}.log"
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streams.cli", command],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return proc, log_path


def run_demo(settings: Settings, console: Console, rate: float = 15.0) -> None:
    """Bring everything up, show the live view, and stop it all on Ctrl-C."""
    broker = None
    bootstrap = resolve_bootstrap(settings) if settings.kafka_bootstrap else ""
    if not bootstrap:
        broker = local_broker(settings)
        started = broker.status() is None
        bootstrap = broker.start().bootstrap
        if not started:
            broker = None  # someone else's broker: leave it running
    console.print(f"Kafka: {bootstrap}")
    versions = ensure_models(settings.registry_dir, settings.data_dir)
    console.print(f"models in production: {versions}")
    registry = Registry(settings.registry_dir)
    for task, version in versions.items():  # the workers measure drift against these
        ensure_drift_reference(registry, task, version, settings.data_dir)
    ensure_topics(settings, bootstrap)
    worker, log_path = _spawn(settings, "worker")
    scheduler, scheduler_log = _spawn(settings, "scheduler")
    console.print(
        f"worker pid {worker.pid} (log {log_path}), retrain scheduler pid {scheduler.pid} "
        f"(log {scheduler_log}); a third of the news arrives with its label as feedback, and "
        f"every {settings.retrain_min_new_labels} new labels trigger a retrain. "
        "Ctrl-C stops everything"
    )
    stop = threading.Event()
    state = LiveState(settings, Registry(settings.registry_dir))
    start_thread(lambda: follow(bootstrap, settings, state, stop), "live-follow")
    start_thread(lambda: _scenario(bootstrap, settings, rate, stop), "scenario")
    try:
        with Live(state.render(), console=console, refresh_per_second=2) as live:
            while True:
                if worker.poll() is not None:
                    if worker.returncode not in CRASH_ONLY_EXITS:
                        break
                    # a crash-only exit committed nothing: restart, as a supervisor would
                    worker, log_path = _spawn(settings, "worker")
                live.update(state.render())
                time.sleep(0.5)
        console.print(f"[red]the worker exited ({worker.returncode}); see {log_path}")
    except KeyboardInterrupt:
        console.print("stopping...")
    finally:
        stop.set()
        for proc in (scheduler, worker):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in (scheduler, worker):
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
        if broker is not None:
            broker.stop()
        console.print("stopped.")
