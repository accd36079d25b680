"""The closing-the-loop commands of the ``streamsense`` script: feedback, retrain, scheduler."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, get_args

import typer
from rich.console import Console
from rich.table import Table

from models.data import TASKS, task_labels
from retrain.exceptions import RetrainError
from retrain.gate import METRIC_LABELS as GATE_METRIC_LABELS
from retrain.gate import SHADOWED, GatePolicy
from retrain.store import FeedbackStore
from streams.cli.errors import one_line_errors
from streams.errors import ConfigurationError
from streams.runtime.metrics import Metrics
from streams.settings import Settings

if TYPE_CHECKING:  # the job imports torch: load it only when a command needs it
    from retrain.job import RetrainReport
    from retrain.publish import Publish
    from retrain.shadow_review import ShadowPolicy

logger = logging.getLogger(__name__)
console = Console()
errors = Console(stderr=True)

ID_PREFIX = {"sentiment": "tw", "intent": "b77"}  # the ids `streamsense replay` gives


def _task(value: str) -> str:
    if value not in TASKS:
        raise typer.BadParameter(f"expected one of {', '.join(TASKS)}")
    return value


METHODS: tuple[str, ...] = get_args(Settings.model_fields["retrain_method"].annotation)


def _method(value: str | None) -> str | None:
    if value is not None and value not in METHODS:
        raise typer.BadParameter(f"expected one of {', '.join(METHODS)}")
    return value


TaskOption = Annotated[str, typer.Option("--task", help="sentiment or intent", callback=_task)]


def lora_overrides(settings: Settings) -> dict[str, Any] | None:
    """The scheduler's training-config overrides: the LoRA depth setting, when set."""
    if settings.retrain_lora_layers is None:
        return None
    return {"lora_layers": settings.retrain_lora_layers}


def make_publisher(settings: Settings) -> Publish:
    """``publish(task, version, action)``: one ModelControl record on the control topic."""
    from streams.edges.control import publish_control

    def publish(task: str, version: str, action: str) -> None:
        publish_control(settings, task, version, action)

    return publish


def _serve_metrics(settings: Settings, tasks: list[str]) -> Metrics:
    """The scheduler's metrics with zeroed series, served on ``STREAMSENSE_METRICS_HOST`` and
    ``STREAMSENSE_SCHEDULER_METRICS_PORT`` (not the workers' ``STREAMSENSE_METRICS_PORT``)."""
    from prometheus_client import start_http_server

    metrics = Metrics.create()
    # a worker's event-loop heartbeat: the scheduler has none, so it would read 0 forever
    metrics.registry.unregister(metrics.event_loop_heartbeat_age)
    for task in tasks:
        for outcome in RUN_OUTCOMES:
            metrics.retrain_runs.labels(task, outcome)
        for decision in (*GATE_METRIC_LABELS.values(), SHADOWED):
            metrics.gate_decisions.labels(task, decision)
    host, port = settings.metrics_host, settings.scheduler_metrics_port
    try:
        start_http_server(port, host, registry=metrics.registry)
    except OSError as exc:
        raise ConfigurationError(
            f"cannot serve the scheduler's metrics on {host}:{port} ({exc}); "
            "set STREAMSENSE_SCHEDULER_METRICS_PORT to a free port"
        ) from exc
    logger.info("scheduler metrics on http://%s:%s/metrics", host, port)
    return metrics


RUN_OUTCOMES = ("succeeded", "failed", "skipped")


def _observe(metrics: Metrics, report: RetrainReport) -> None:
    """Count a finished run: its outcome, duration and the gate's decision."""
    outcome = {"failed": "failed", "skipped": "skipped"}.get(report.status, "succeeded")
    metrics.retrain_runs.labels(report.task, outcome).inc()
    if report.status != "skipped":
        metrics.retrain_seconds.labels(report.task).observe(report.wall_seconds)
    if report.decision is not None:
        label = SHADOWED if report.status == "shadow" else report.decision.metric_label
        metrics.record_gate(report.task, label, report.decision.intervals)


def print_report(report: RetrainReport, out: Console) -> None:
    """The gate's comparison as a table, then its reasons."""
    out.print(
        f"[bold]{report.task}[/bold] ({report.method} fine-tuning): {report.status} — "
        f"{report.message}",
        highlight=False,
    )
    champ, cand = report.champion_eval, report.candidate_eval
    if champ is None or cand is None or report.decision is None:
        return
    table = Table("metric", f"champion {champ.version}", f"candidate {cand.version}", "change")
    for label, attr in (
        ("recent-feedback accuracy", "recent_accuracy"),
        ("recent-feedback macro-F1", "recent_macro_f1"),
        ("held-out accuracy", "heldout_accuracy"),
        ("held-out macro-F1", "heldout_macro_f1"),
    ):
        a, b = getattr(champ, attr), getattr(cand, attr)
        table.add_row(label, f"{a:.4f}", f"{b:.4f}", f"{(b - a) * 100:+.2f} pts")
    out.print(table)
    data = report.data
    out.print(
        f"rows: {data.get('feedback_train_rows')} feedback + {data.get('replay_rows')} replay "
        f"trained, {cand.recent_n} recent / {cand.heldout_n} held-out judged; feedback ids "
        f"{report.feedback_ids}; training {report.train_seconds:.0f}s, run "
        f"{report.wall_seconds:.0f}s",
        highlight=False,
    )
    for reason in report.decision.reasons:
        out.print(f"  {reason}", highlight=False)


def register(app: typer.Typer, get_settings: Callable[[], Settings]) -> None:
    """Add ``feedback``, ``retrain`` and ``scheduler`` to ``app``."""

    @app.command()
    def feedback(
        task: TaskOption,
        input_file: Annotated[
            Path, typer.Option("--input", help="CSV/JSONL with text, label and optional id")
        ],
        annotator: Annotated[str, typer.Option(help="Who labelled these items.")] = "cli",
        limit: Annotated[int | None, typer.Option(min=1, help="Send at most N items.")] = None,
        skip: Annotated[int, typer.Option(min=0, help="Skip the first N data rows.")] = 0,
        id_prefix: Annotated[
            str | None, typer.Option(help="Ids of rows without one: PREFIX-<row>.")
        ] = None,
    ) -> None:
        """Send labelled items as feedback records (ids match `streamsense replay`'s)."""
        from kafka import KafkaProducer

        from retrain.labelled_file import read_labelled
        from streams.core.records import Feedback, encode
        from streams.edges.bootstrap import resolve_bootstrap
        from streams.edges.security import kafka_python_config
        from streams.edges.topics import ensure_topics

        settings = get_settings()
        with one_line_errors():
            items = list(
                read_labelled(
                    input_file,
                    task_labels(task, settings.data_dir),
                    id_prefix=id_prefix or ID_PREFIX[task],
                    skip=skip,
                    limit=limit,
                )
            )
            bootstrap = resolve_bootstrap(settings)
            ensure_topics(settings, bootstrap)
            producer = KafkaProducer(
                bootstrap_servers=bootstrap,
                acks="all",
                linger_ms=5,
                **kafka_python_config(settings),
            )
            try:
                for item in items:
                    record = Feedback.model_validate(
                        {
                            "item_id": item.item_id,
                            "task": task,
                            "label": item.label,
                            "annotator": annotator,
                            "at": datetime.now(UTC),
                            "text": item.text,
                        }
                    )
                    producer.send(
                        settings.topic_feedback, key=item.item_id.encode(), value=encode(record)
                    )
                producer.flush(timeout=60)
            finally:
                producer.close()
        console.print(f"sent {len(items)} feedback record(s) to {settings.topic_feedback}")

    @app.command()
    def retrain(
        task: TaskOption,
        now: Annotated[bool, typer.Option("--now", help="Run one retrain now.")] = False,
        epochs: Annotated[int | None, typer.Option(min=1, help="Epochs.")] = None,
        lr: Annotated[float | None, typer.Option(help="Encoder learning rate.")] = None,
        head_lr: Annotated[float | None, typer.Option(help="Head learning rate.")] = None,
        threads: Annotated[int | None, typer.Option(min=0, help="CPU threads; 0 = all.")] = None,
        replay_ratio: Annotated[
            float | None, typer.Option(min=0.0, help="Original rows replayed per new row.")
        ] = None,
        tolerance: Annotated[
            float | None, typer.Option(min=0.0, help="Held-out accuracy the gate lets go.")
        ] = None,
        min_new_labels: Annotated[
            int | None, typer.Option(min=1, help="Skip with fewer new labels.")
        ] = None,
        force: Annotated[bool, typer.Option(help="Run even if nothing is new.")] = False,
        method: Annotated[
            str | None,
            typer.Option(
                help="full or lora (adapters, merged before the export); default: "
                "STREAMSENSE_RETRAIN_METHOD.",
                callback=_method,
            ),
        ] = None,
        lora_layers: Annotated[
            int | None,
            typer.Option(
                min=1,
                help="With lora: adapters in the top N encoder layers only; default: "
                "STREAMSENSE_RETRAIN_LORA_LAYERS (unset: every layer).",
            ),
        ] = None,
        publish: Annotated[
            bool, typer.Option("--publish/--no-publish", help="Announce a promotion.")
        ] = True,
    ) -> None:
        """Without --now: where the task stands. With --now: retrain, gate, print the decision."""
        from retrain.job import run_retrain

        settings = get_settings()
        with one_line_errors():
            store = FeedbackStore.open(settings.feedback_db_url)
            if not now:
                _print_status(task, settings, store)
                return
            overrides = {
                "epochs": epochs,
                "lr": lr,
                "head_lr": head_lr,
                "threads": threads,
                "lora_layers": _or(lora_layers, settings.retrain_lora_layers),
            }
            report = run_retrain(
                task,
                registry_root=settings.registry_dir,
                data_dir=settings.data_dir,
                store=store,
                config_overrides={k: v for k, v in overrides.items() if v is not None},
                method=_or(method, settings.retrain_method),
                holdout_fraction=settings.retrain_holdout_fraction,
                holdout_cap=settings.retrain_holdout_cap,
                replay_ratio=_or(replay_ratio, settings.retrain_replay_ratio),
                tolerance=_or(tolerance, settings.gate_tolerance),
                policy=gate_policy(settings, tolerance),
                min_new_labels=_or(min_new_labels, settings.retrain_min_new_labels),
                force=force,
                publish=make_publisher(settings) if publish else None,
                show_progress=console.is_terminal,
                shadow_first=settings.shadow_before_promotion,
            )
        print_report(report, console)
        if report.status == "failed":
            raise typer.Exit(1)

    @app.command("label-candidates")
    def label_candidates(
        task: TaskOption,
        input_file: Annotated[
            Path, typer.Option("--input", help="CSV/JSONL of stream items: text, optional id.")
        ],
        out: Annotated[Path, typer.Option("--out", help="CSV or JSONL file to write.")],
        count: Annotated[int, typer.Option(min=1, help="Items to offer.")] = 200,
        candidate: Annotated[
            str | None,
            typer.Option(help="Also score with this registered version; disputes come first."),
        ] = None,
        id_prefix: Annotated[
            str | None, typer.Option(help="Ids of rows without one: PREFIX-<row>.")
        ] = None,
    ) -> None:
        """Write the items most worth labelling (disputed, then least confident) to a file."""
        from models.registry import Registry
        from retrain.active import label_requests, read_items, write_requests

        settings = get_settings()
        with one_line_errors():
            items = read_items(input_file, id_prefix or ID_PREFIX[task])
            registry = Registry(settings.registry_dir)
            champion = registry.load(task)
            texts = [item.text for item in items]
            champ_probs = _probabilities(champion, texts)
            cand_probs = None
            if candidate is not None:
                cand_probs = _probabilities(registry.load(task, candidate), texts)
            requests = label_requests(items, champion.labels, champ_probs, cand_probs, count)
            write_requests(out, requests)
        disputed = sum(r.reason == "disagreement" for r in requests)
        console.print(
            f"wrote {len(requests)} of {len(items)} item(s) to {out} ({disputed} disputed between "
            f"{champion.version} and {candidate or 'no candidate'}, the rest least confident "
            f"by {champion.version}); fill in 'label', then `streamsense feedback --task {task} "
            f"--input {out}`",
            highlight=False,
        )

    @app.command()
    def scheduler(
        tasks: Annotated[
            list[str] | None, typer.Option("--task", help="Task(s) to schedule; default all.")
        ] = None,
        cron: Annotated[str | None, typer.Option(help="Crontab (UTC); '' disables.")] = None,
        min_new_labels: Annotated[
            int | None, typer.Option(min=0, help="Labels that trigger a run; 0 disables.")
        ] = None,
    ) -> None:
        """Run the retrain scheduler in the foreground until Ctrl-C."""
        from streams.compose import require_shared_store

        settings = get_settings()
        require_shared_store(settings)  # one line and exit 2, before torch is even imported

        from apscheduler.triggers.interval import IntervalTrigger

        from models.registry import Registry
        from retrain.drift_source import served_drift
        from retrain.scheduler import RetrainScheduler
        from retrain.shadow_job import review_shadow

        logging.getLogger("apscheduler").setLevel(logging.WARNING)  # a line per job run
        chosen = [_task(t) for t in tasks] if tasks else list(TASKS)
        threshold = _or(min_new_labels, settings.retrain_min_new_labels)
        with one_line_errors():
            store = FeedbackStore.open(settings.feedback_db_url)
            publisher = make_publisher(settings)

            metrics = _serve_metrics(settings, chosen)

            def run(task: str, min_labels: int = 0) -> None:
                # torch and transformers take ~20 s to import on 2 cores: the first run
                # pays it, not the start-up (metrics, store errors and Ctrl-C come first)
                from retrain.job import run_retrain

                try:
                    report = run_retrain(
                        task,
                        registry_root=settings.registry_dir,
                        data_dir=settings.data_dir,
                        store=store,
                        method=settings.retrain_method,
                        config_overrides=lora_overrides(settings),
                        holdout_fraction=settings.retrain_holdout_fraction,
                        holdout_cap=settings.retrain_holdout_cap,
                        replay_ratio=settings.retrain_replay_ratio,
                        tolerance=settings.gate_tolerance,
                        policy=gate_policy(settings),
                        min_new_labels=min_labels or threshold or settings.retrain_min_new_labels,
                        publish=publisher,
                        show_progress=False,
                        shadow_first=settings.shadow_before_promotion,
                    )
                except RetrainError as exc:
                    logger.warning("retrain of %s not run: %s", task, exc)
                    metrics.retrain_runs.labels(task, "failed").inc()
                    return
                _observe(metrics, report)
                print_report(report, console)

            runner = RetrainScheduler(
                chosen,
                run,
                lambda task: store.count_new(task, store.last_attempt(task)),
                cron=_or(cron, settings.retrain_cron) or None,
                min_new_labels=threshold,
                check_interval_s=settings.retrain_check_interval_s,
                # served traffic drifting from production's reference: retrain at the
                # gate's minimum slice instead of the usual label count
                drift=lambda task: served_drift(
                    store,
                    Registry(settings.registry_dir),
                    task,
                    window=settings.drift_window,
                    min_items=settings.drift_min_items,
                ),
                drift_threshold=settings.drift_psi_threshold,
                drift_min_new_labels=settings.gate_min_slice,
                run_on_drift=lambda task: run(task, settings.gate_min_slice),
            )
            retention = timedelta(days=settings.feedback_retention_days)
            runner.scheduler.add_job(
                store.purge_texts,
                IntervalTrigger(hours=24, timezone="UTC"),
                args=[retention],
                id="feedback-retention",
                next_run_time=datetime.now(UTC),
            )
            policy = shadow_review_policy(settings)

            def review(task: str) -> None:
                try:
                    result = review_shadow(
                        task,
                        registry_root=settings.registry_dir,
                        store=store,
                        policy=policy,
                        publish=publisher,
                    )
                except Exception:
                    logger.exception("shadow review of %s failed", task)
                    return
                if result is not None:
                    metrics.shadow_reviews.labels(task, result.outcome).inc()

            for task in chosen:
                runner.scheduler.add_job(
                    review,
                    IntervalTrigger(seconds=settings.shadow_review_interval_s, timezone="UTC"),
                    args=[task],
                    id=f"shadow-review-{task}",
                    max_instances=1,
                    coalesce=True,
                )
            runner.start()
        console.print(f"retrain scheduler running for {', '.join(chosen)}; Ctrl-C stops it")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            console.print("stopping: a retrain in progress finishes first (Ctrl-C again aborts)")
            runner.shutdown(wait=True)


def shadow_review_policy(
    settings: Settings, *, min_items: int | None = None, min_duration_s: float | None = None
) -> ShadowPolicy:
    """The shadow review's policy from the settings (the options override the minimums)."""
    from retrain.shadow_job import shadow_policy

    return shadow_policy(
        _or(min_items, settings.shadow_min_items),
        _or(min_duration_s, settings.shadow_min_duration_s),
        settings.shadow_max_duration_s,
        settings.gate_tolerance,
        settings.gate_alpha,
    )


def gate_policy(settings: Settings, tolerance: float | None = None) -> GatePolicy:
    """The gate's policy from the settings (``--tolerance`` overrides the held-out one)."""
    return GatePolicy(
        tolerance=_or(tolerance, settings.gate_tolerance),
        alpha=settings.gate_alpha,
        min_slice=settings.gate_min_slice,
    )


def _probabilities(classifier: Any, texts: list[str]) -> Any:
    """(texts, labels) probabilities of a loaded version, in its label order."""
    import numpy as np

    rows: list[list[float]] = []
    for start in range(0, len(texts), 256):
        for p in classifier.predict(texts[start : start + 256]):
            rows.append([p.probs[name] for name in classifier.labels])
    return np.asarray(rows, dtype=np.float64).reshape(len(texts), len(classifier.labels))


def _or(value: Any, default: Any) -> Any:
    return default if value is None else value


def _print_status(task: str, settings: Settings, store: FeedbackStore) -> None:
    from models.registry import Registry

    production = Registry(settings.registry_dir).production(task)
    through = store.trained_through(task, production) if production else 0
    accuracy = store.online_accuracy(task)
    console.print(
        f"{task}: production {production or 'none'} (trained through feedback id {through}); "
        f"{store.count_new(task, through)} labelled text(s) it has not seen, "
        f"{store.count_new(task, store.last_attempt(task))} since the last retrain run "
        f"(a run needs {settings.retrain_min_new_labels}); online accuracy "
        f"{'n/a' if accuracy is None else f'{accuracy:.4f}'} over the last 500 judged labels. "
        "Run with --now to retrain.",
        highlight=False,
    )
