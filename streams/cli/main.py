"""The ``streamsense`` console script: one entry point, one subcommand per capability."""

from __future__ import annotations

import functools
import logging
import signal

import typer
from rich.console import Console

from deploy.broker import BrokerError, broker_answers
from streams.cli.errors import EXIT_ERROR, report
from streams.cli.logconfig import configure_logging
from streams.edges.bootstrap import local_broker
from streams.settings import Settings
from streamsense.errors import StreamsenseError

logger = logging.getLogger(__name__)
console = Console(stderr=True)

app = typer.Typer(
    name="streamsense",
    help="Streaming NLP monitor: Kafka in, ONNX classifiers, alerts and routing out.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
broker_app = typer.Typer(
    help="The local Apache Kafka broker (KRaft, 127.0.0.1).", no_args_is_help=True
)
app.add_typer(broker_app, name="broker")


@functools.cache
def get_settings() -> Settings:
    """The process's settings, read once from the environment."""
    return Settings()


@app.callback()
def _main(
    log_level: str = typer.Option(None, "--log-level", help="Override STREAMSENSE_LOG_LEVEL."),
) -> None:
    configure_logging(log_level or get_settings().log_level)


@broker_app.command("start")
def broker_start() -> None:
    """Start the local broker (or report the running one) and print its bootstrap address."""
    settings = get_settings()
    if settings.kafka_bootstrap:
        raise BrokerError(
            f"STREAMSENSE_KAFKA_BOOTSTRAP is set ({settings.kafka_bootstrap}): "
            "streamsense uses that cluster and starts no local broker."
        )
    info = local_broker(settings).start()
    console.print(f"Kafka broker running: pid {info.pid}, log {info.log_file}")
    print(info.bootstrap)


@broker_app.command("stop")
def broker_stop() -> None:
    """Stop the local broker by its recorded PID."""
    stopped = local_broker(get_settings()).stop()
    console.print("Kafka broker stopped." if stopped else "No local Kafka broker was running.")


@broker_app.command("status")
def broker_status() -> None:
    """Say whether the local broker runs and answers; exit 1 when it does not."""
    info = local_broker(get_settings()).status()
    if info is None:
        console.print("No local Kafka broker is running.")
        raise typer.Exit(1)
    answers = broker_answers(info.bootstrap)
    console.print(
        f"Kafka broker pid {info.pid} on {info.bootstrap}: "
        f"{'answers' if answers else 'does NOT answer'} (log {info.log_file})"
    )
    print(info.bootstrap)
    if not answers:
        raise typer.Exit(1)


def _register_commands() -> None:
    from streams.cli import models, retrain, stream, tools

    for module in (stream, models, retrain, tools):
        module.register(app, get_settings)


_register_commands()


def main() -> None:
    """Console-script entry point: run the CLI, turning our errors into one clear line."""
    # a process started in the background of a shell (`cmd &`) inherits SIGINT ignored, and
    # Python then raises no KeyboardInterrupt: the commands that stop on Ctrl-C (`run`,
    # `scheduler`) would never stop (the worker installs its own handlers)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        app()
    except StreamsenseError as exc:
        report(exc)
        raise SystemExit(EXIT_ERROR) from exc


if __name__ == "__main__":
    main()
