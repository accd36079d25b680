"""CLI commands of the streaming pipeline: topics, worker, replay."""

from __future__ import annotations

import logging
from collections.abc import Callable
from enum import StrEnum
from itertools import islice
from pathlib import Path

import typer
from rich.console import Console

from models.data import load_banking77, load_twitter, load_user_file, task_labels
from streams.edges.bootstrap import resolve_bootstrap
from streams.edges.replay import customer_messages, news_items, produce_items
from streams.edges.security import kafka_python_config
from streams.edges.topics import ensure_topics
from streams.settings import Settings

logger = logging.getLogger(__name__)
console = Console(stderr=True)

TWITTER_FILE = Path("twitter_financial_news") / "sent_train.csv"


class StreamKind(StrEnum):
    """Which input stream a replay feeds."""

    news = "news"
    messages = "messages"


def register(app: typer.Typer, get_settings: Callable[[], Settings]) -> None:
    """Add the streaming commands to ``app``."""

    @app.command("topics")
    def topics() -> None:
        """Create every pipeline topic that is missing (partitions from settings)."""
        settings = get_settings()
        created = ensure_topics(settings, resolve_bootstrap(settings))
        console.print(f"created {len(created)} topic(s): {', '.join(created) or '-'}")

    @app.command("run")
    def run(
        rate: float = typer.Option(15.0, "--rate", help="Records per second per input stream"),
    ) -> None:
        """Broker, models (trained if missing), worker, a replay of real data, live view."""
        from streams.cli.demo import run_demo

        run_demo(get_settings(), Console(), rate=rate)

    @app.command("worker")
    def worker(
        supervise: bool = typer.Option(
            False,
            "--supervise",
            help="Run the worker as a child, restart it when it dies, and quarantine a "
            "record that keeps killing it (STREAMSENSE_POISON_DEATHS)",
        ),
    ) -> None:
        """Run one worker; several workers share the partitions as one consumer group."""
        settings = get_settings()
        if supervise:
            import os
            import socket
            import sys

            from streams.runtime.supervisor import Supervisor

            state = settings.resolved_state_dir() / "supervisor"
            supervisor = Supervisor(
                [sys.executable, "-m", "streams.cli", "worker"],
                os.environ,
                state / f"{socket.gethostname()}-{os.getpid()}",
                settings.poison_deaths,
            )
            raise typer.Exit(supervisor.run())
        from streams.compose import run_worker

        run_worker(settings)

    @app.command("replay")
    def replay(
        topic: StreamKind = typer.Option(..., "--topic", help="news or messages"),
        input_file: Path | None = typer.Option(
            None, "--input", help="CSV/JSONL with text,label (default: the shared data set)"
        ),
        rate: float = typer.Option(
            0.0, "--rate", help="Records per second; 0 = as fast as possible"
        ),
        limit: int = typer.Option(0, "--limit", help="Stop after this many records; 0 = all"),
        labels: bool = typer.Option(
            False, "--labels", help="Also send each gold label as feedback"
        ),
    ) -> None:
        """Produce real labeled data as the live stream (Twitter news; BANKING77 messages)."""
        settings = get_settings()
        data_dir = settings.data_dir
        if topic is StreamKind.news:
            task = "sentiment"
            if input_file is None:
                data = load_twitter(data_dir / TWITTER_FILE)
            else:
                data = load_user_file(input_file, task_labels(task, data_dir))
            items = news_items(data)
            target = settings.topic_news_raw
        else:
            task = "intent"
            data = (
                load_banking77(data_dir)
                if input_file is None
                else load_user_file(input_file, task_labels(task, data_dir))
            )
            items = customer_messages(data)
            target = settings.topic_messages_raw
        bootstrap = resolve_bootstrap(settings)
        ensure_topics(settings, bootstrap)
        count = produce_items(
            bootstrap,
            target,
            islice(items, limit or None),
            security=kafka_python_config(settings),
            rate=rate,
            feedback_topic=settings.topic_feedback if labels else None,
            feedback_task=task,
        )
        console.print(f"produced {count} record(s) to {target}")
