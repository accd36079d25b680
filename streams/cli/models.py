"""The model commands of the ``streamsense`` console script: train, score, models ..."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from kafka.errors import KafkaError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from models.data import TASKS
from models.exceptions import ModelsError
from models.registry import Registry
from streams.cli.errors import one_line_errors
from streams.cli.model_status import model_status, status_lines
from streams.settings import Settings

console = Console()
errors = Console(stderr=True)


def _task(value: str) -> str:
    if value not in TASKS:
        raise typer.BadParameter(f"expected one of {', '.join(TASKS)}")
    return value


TaskOption = Annotated[str, typer.Option("--task", help="sentiment or intent", callback=_task)]
TaskArg = Annotated[str, typer.Argument(help="sentiment or intent", callback=_task)]
EpochsOption = Annotated[int | None, typer.Option(min=1, help="Epochs.")]
MaxLengthOption = Annotated[int | None, typer.Option(min=8, help="Max tokens per text.")]
LrOption = Annotated[float | None, typer.Option(help="Encoder learning rate.")]
LimitOption = Annotated[
    int | None, typer.Option(min=10, help="Train on a stratified sample of N rows.")
]
EvalLimitOption = Annotated[
    int | None, typer.Option(min=10, help="Evaluate on a fixed sample of the held-out.")
]
ThreadsOption = Annotated[
    int | None, typer.Option(min=0, help="CPU threads for training; 0 = all cores.")
]


def register(app: typer.Typer, get_settings: Callable[[], Settings]) -> None:
    """Add ``train``, ``score`` and the ``models`` group to ``app``."""
    models_app = typer.Typer(help="Inspect and move the model registry's production aliases.")
    app.add_typer(models_app, name="models")

    @app.command()
    def train(
        task: TaskOption,
        epochs: EpochsOption = None,
        max_length: MaxLengthOption = None,
        batch_size: Annotated[int | None, typer.Option(min=1, help="Training batch size.")] = None,
        lr: LrOption = None,
        head_lr: Annotated[float | None, typer.Option(help="Head learning rate.")] = None,
        limit: LimitOption = None,
        eval_limit: EvalLimitOption = None,
        seed: Annotated[int | None, typer.Option(help="Training seed.")] = None,
        threads: ThreadsOption = None,
        data: Annotated[
            Path | None, typer.Option(help="Your own CSV/JSONL with text,label instead.")
        ] = None,
        from_version: Annotated[
            str | None, typer.Option(help="Fine-tune from this registry version.")
        ] = None,
        promote: Annotated[
            bool | None,
            typer.Option(
                "--promote/--no-promote", help="Default: promote only a task's first version."
            ),
        ] = None,
        teacher: Annotated[
            Path | None,
            typer.Option(
                help="Distil from this teacher directory (`streamsense teacher`, or any "
                "registry version)."
            ),
        ] = None,
        distill_alpha: Annotated[
            float, typer.Option(min=0.0, max=1.0, help="Weight of the teacher's soft labels.")
        ] = 0.5,
        distill_temperature: Annotated[
            float, typer.Option(min=0.1, help="Softmax temperature of the soft labels.")
        ] = 2.0,
        transfer: Annotated[
            Path | None,
            typer.Option(
                help="Unlabelled texts (.txt, or .csv/.jsonl with 'text') the teacher labels "
                "for the student too."
            ),
        ] = None,
    ) -> None:
        """Fine-tune (or distil from a teacher), export to ONNX (fp32 + int8), check, register."""
        from models.pipeline import default_config, train_and_register
        from models.teacher import Teacher
        from models.training import DistillSpec
        from retrain.labelled_file import read_texts

        settings = get_settings()
        if transfer is not None and teacher is None:
            raise typer.BadParameter("--transfer needs --teacher", param_hint="--transfer")
        config = default_config(
            task,
            epochs=epochs,
            max_length=max_length,
            batch_size=batch_size,
            lr=lr,
            head_lr=head_lr,
            limit=limit,
            eval_limit=eval_limit,
            seed=seed,
            threads=threads,
        )
        with one_line_errors():
            outcome = train_and_register(
                task,
                settings.registry_dir,
                settings.data_dir,
                config,
                data_file=data,
                init_from=from_version,
                promote=promote,
                show_progress=console.is_terminal,
                teacher=None if teacher is None else Teacher(teacher, config.threads),
                distill=DistillSpec(distill_alpha, distill_temperature),
                transfer_texts=() if transfer is None else read_texts(transfer),
            )
        heldout = outcome.metrics["heldout"]
        if outcome.distillation is not None:
            figures = outcome.distillation["teacher_heldout"]
            console.print(
                f"teacher {teacher}: held-out accuracy {figures['accuracy']:.4f}, "
                f"macro-F1 {figures['macro_f1']:.4f} "
                f"({outcome.distillation['teacher'].get('parameters', 0) / 1e6:.0f} M parameters)"
            )
        console.print(
            f"registered [bold]{task}/{outcome.version}[/bold]"
            f"{' (promoted to production)' if outcome.promoted else ''} in "
            f"{outcome.wall_seconds:.0f}s: held-out accuracy {heldout['accuracy']:.4f}, "
            f"macro-F1 {heldout['macro_f1']:.4f}, int8 agreement "
            f"{outcome.agreement['int8_label_agreement']:.4f}, max |logit diff| "
            f"{outcome.agreement['max_abs_logit_diff']:.1e}"
        )

    @app.command("teacher")
    def train_teacher_command(
        task: TaskOption,
        out: Annotated[
            Path | None,
            typer.Option(help="Where to write it (default <registry>/<task>/teachers/<base>)."),
        ] = None,
        base: Annotated[
            Path | None,
            typer.Option(
                help="A pretrained encoder directory (default all-mpnet-base-v2 from PyPI)."
            ),
        ] = None,
        epochs: EpochsOption = None,
        max_length: MaxLengthOption = None,
        lr: LrOption = None,
        limit: LimitOption = None,
        eval_limit: EvalLimitOption = None,
        threads: ThreadsOption = None,
    ) -> None:
        """Fine-tune a larger encoder once as the teacher that `train --teacher` distils from."""
        from models.teacher import TEACHER_CONFIG, TEACHER_NAME, teacher_base_dir, train_teacher

        settings = get_settings()
        config = TEACHER_CONFIG.replaced(
            epochs=epochs,
            max_length=max_length,
            lr=lr,
            limit=limit,
            eval_limit=eval_limit,
            threads=threads,
        )
        with one_line_errors():
            base_dir = base if base is not None else teacher_base_dir(settings.cache_dir)
            name = TEACHER_NAME if base is None else base.name
            target = out or settings.registry_dir / task / "teachers" / name
            record = train_teacher(
                task,
                settings.data_dir,
                target,
                base_dir,
                config,
                base_model=str(base) if base is not None else None,
                show_progress=console.is_terminal,
            )
        heldout = record["heldout"]
        console.print(
            f"teacher for {task} written to [bold]{target}[/bold] in "
            f"{record['wall_seconds']:.0f}s: held-out accuracy {heldout['accuracy']:.4f}, "
            f"macro-F1 {heldout['macro_f1']:.4f}"
        )
        console.print(f"distil a student: streamsense train --task {task} --teacher {target}")

    @app.command()
    def score(
        task: TaskOption,
        input_file: Annotated[Path, typer.Option("--input", help=".csv or .jsonl with 'text'")],
        output: Annotated[Path, typer.Option(help="JSON lines output file")],
        version: Annotated[str | None, typer.Option(help="Default: production.")] = None,
        batch_size: Annotated[int, typer.Option(min=1)] = 64,
        precision: Annotated[str, typer.Option(help="auto, fp32 or int8")] = "auto",
    ) -> None:
        """Score a file: one JSON line per input record, in order."""
        from models.scoring import score_file

        settings = get_settings()
        with one_line_errors():
            classifier = Registry(settings.registry_dir).load(
                task,
                version,
                threads=settings.session_threads(),
                precision=precision,
                row_loop=settings.int8_row_loop,
            )
            columns = (TextColumn("scoring"), BarColumn(), MofNCompleteColumn())
            with Progress(*columns, console=errors, disable=not errors.is_terminal) as progress:
                bar = progress.add_task("scoring", total=None)
                summary = score_file(
                    classifier,
                    input_file,
                    output,
                    batch_size=batch_size,
                    on_batch=lambda n: progress.update(bar, advance=n),
                )
        errors.print(
            f"scored {summary.scored} of {summary.records} records with {task}/"
            f"{classifier.version} ({summary.errors} errors) into {output}",
            highlight=False,
        )

    @models_app.command("list")
    def list_versions(
        task: Annotated[str | None, typer.Option(help="Only this task.")] = None,
    ) -> None:
        """Versions per task, with held-out metrics; * marks production."""
        registry = Registry(get_settings().registry_dir)
        table = Table("task", "prod", "parent", "rows", "accuracy", "macro-F1")
        table.add_column("version", no_wrap=True)
        with one_line_errors():
            for name in [task] if task else registry.tasks():
                production = registry.production(name)
                for version in registry.versions(name):
                    manifest = _read_manifest(registry, name, version)
                    metrics = manifest.get("metrics", {}).get("heldout", {})
                    table.add_row(
                        name,
                        "*" if version == production else "",
                        str(manifest.get("parent") or ""),
                        str(manifest.get("training", {}).get("train_data", {}).get("rows", "?")),
                        _fmt(metrics.get("accuracy")),
                        _fmt(metrics.get("macro_f1")),
                        version,
                    )
        console.print(table)

    @models_app.command()
    def show(
        task: TaskArg,
        version: Annotated[str | None, typer.Argument(help="Default: production.")] = None,
    ) -> None:
        """Production, shadow, the last gate decision with its interval, drift; then a
        version's manifest summary and per-class report."""
        settings = get_settings()
        registry = Registry(settings.registry_dir)
        with one_line_errors():
            version = version or registry.production(task)
            if version is None:
                raise ModelsError(f"task {task!r} has no production version; name a version")
            manifest = registry.verify(task, version)
            decisions = registry.decisions(task, version)
            status = model_status(registry, task, _served_drift(settings, registry))
        for line in status_lines(status):
            console.print(line, highlight=False, soft_wrap=True)
        heldout = manifest["metrics"]["heldout"]
        console.print(
            f"[bold]{task}/{version}[/bold] verified ({len(manifest['files'])} files); "
            f"production: {registry.production(task)}; parent: {manifest.get('parent')}; "
            f"created {manifest.get('created_at')}"
        )
        console.print_json(
            json.dumps(
                {
                    "train_data": manifest["training"]["train_data"],
                    "config": manifest["training"]["config"],
                    "accuracy": heldout["accuracy"],
                    "macro_f1": heldout["macro_f1"],
                    "int8": manifest["metrics"].get("heldout_int8"),
                    "agreement": manifest.get("agreement"),
                    "decisions": decisions,
                }
            )
        )
        table = Table("label", "precision", "recall", "F1", "support")
        for label, row in heldout["per_class"].items():
            table.add_row(
                label,
                _fmt(row["precision"]),
                _fmt(row["recall"]),
                _fmt(row["f1"]),
                str(row["support"]),
            )
        console.print(table)

    @models_app.command("promote")
    def promote_version(
        task: TaskArg,
        version: Annotated[str, typer.Argument(help="Version to make production.")],
        reason: Annotated[str, typer.Option(help="Why (kept in the alias history).")] = "manual",
    ) -> None:
        """Verify a version and make it the task's production version."""
        settings = get_settings()
        with one_line_errors():
            Registry(settings.registry_dir).promote(task, version, reason)
        console.print(f"{task}: production is now {version}")
        _announce(settings, task, version, "promote")

    @models_app.command()
    def rollback(
        task: TaskArg,
        reason: Annotated[str, typer.Option(help="Why (kept in the alias history).")] = "manual",
    ) -> None:
        """Move production back to the previous production version."""
        settings = get_settings()
        with one_line_errors():
            version = Registry(settings.registry_dir).rollback(task, reason)
        console.print(f"{task}: rolled back, production is now {version}")
        _announce(settings, task, version, "rollback")

    @models_app.command()
    def shadow(
        task: TaskArg,
        version: Annotated[
            str | None, typer.Argument(help="Candidate to score beside production.")
        ] = None,
        clear: Annotated[bool, typer.Option("--clear", help="End the shadow period.")] = False,
        reason: Annotated[str, typer.Option(help="Why (kept in shadow.json).")] = "manual",
    ) -> None:
        """Put a candidate in shadow (scored beside production, never served), or end it."""
        registry = Registry(get_settings().registry_dir)
        with one_line_errors():
            if clear:
                ended = registry.clear_shadow(task)
                console.print(f"{task}: shadow {'of ' + ended + ' ' if ended else ''}ended")
                return
            if version is None:
                raise ModelsError("name the version to put in shadow, or pass --clear")
            registry.set_shadow(task, version, reason)
        console.print(f"{task}: {version} in shadow beside production {registry.production(task)}")

    @models_app.command("shadow-review")
    def shadow_review(
        task: TaskArg,
        min_items: Annotated[
            int | None, typer.Option(min=1, help="Default: STREAMSENSE_SHADOW_MIN_ITEMS.")
        ] = None,
        min_duration_s: Annotated[
            float | None,
            typer.Option(min=0.0, help="Default: STREAMSENSE_SHADOW_MIN_DURATION_S."),
        ] = None,
    ) -> None:
        """Judge the version in shadow on its labelled live items: promote it, end its shadow,
        or leave it running (what the retrain scheduler does every few minutes)."""
        from retrain.shadow_job import review_shadow
        from retrain.store import FeedbackStore
        from streams.cli.retrain import shadow_review_policy

        settings = get_settings()
        with one_line_errors():
            store = FeedbackStore.open(settings.feedback_db_url)
            try:
                result = review_shadow(
                    task,
                    registry_root=settings.registry_dir,
                    store=store,
                    policy=shadow_review_policy(
                        settings, min_items=min_items, min_duration_s=min_duration_s
                    ),
                    publish=lambda t, v, action: _announce(settings, t, v, action),
                )
            finally:
                store.close()
        if result is None:
            console.print(f"{task}: no version in shadow")
            return
        console.print(f"{task}: {result.summary()}", highlight=False)
        for line in result.reasons:
            console.print(f"  {line}", highlight=False)

    @models_app.command("drift-reference")
    def drift_reference(
        task: TaskArg,
        version: Annotated[str | None, typer.Argument(help="Default: production.")] = None,
        rebuild: Annotated[bool, typer.Option(help="Recompute an existing reference.")] = False,
    ) -> None:
        """Compute a version's drift reference from the held-out split (once per version)."""
        from models.drift_reference import ensure_drift_reference

        settings = get_settings()
        registry = Registry(settings.registry_dir)
        with one_line_errors():
            version = version or registry.production(task)
            if version is None:
                raise ModelsError(f"task {task!r} has no production version; name a version")
            reference = ensure_drift_reference(
                registry,
                task,
                version,
                settings.data_dir,
                threads=settings.session_threads(),
                rebuild=rebuild,
            )
        control = reference.control or {}
        console.print(
            f"{task}/{version}: drift reference of {reference.n} items ({reference.source}); "
            f"control sample of {control.get('n', '?')}: score {control.get('score', '?')}",
            highlight=False,
        )

    @models_app.command()
    def ensure() -> None:
        """Train and promote every task that has no production version yet."""
        from models.pipeline import ensure_models

        settings = get_settings()
        with one_line_errors():
            versions = ensure_models(
                settings.registry_dir, settings.data_dir, show_progress=console.is_terminal
            )
        for task, version in versions.items():
            console.print(f"{task}: production {version}")


def _announce(settings: Settings, task: str, version: str, action: str) -> None:
    """Tell running workers (``models.control``); they load, verify, warm up and swap."""
    from deploy.broker import BrokerError
    from streams.edges.control import publish_control

    try:
        publish_control(settings, task, version, action)
    except (BrokerError, OSError, KafkaError) as exc:
        console.print(
            f"[yellow]warning:[/yellow] running workers were not told ({exc}); "
            "they serve the new production version from their next start"
        )
        return
    console.print(
        f"announced on {settings.topic_models_control}: running workers swap to {version}"
    )


def _served_drift(settings: Settings, registry: Registry) -> Callable[[str], float | None]:
    """The drift score of a task from the served predictions in the feedback store."""
    from retrain.drift_source import served_drift
    from retrain.exceptions import StoreError
    from retrain.store import FeedbackStore

    def score(task: str) -> float | None:
        try:
            with FeedbackStore.open(settings.feedback_db_url) as store:
                return served_drift(
                    store,
                    registry,
                    task,
                    window=settings.drift_window,
                    min_items=settings.drift_min_items,
                )
        except StoreError:
            return None

    return score


def _read_manifest(registry: Registry, task: str, version: str) -> dict[str, Any]:
    path = registry.version_dir(task, version) / "manifest.json"
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}
    return data


def _fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else "-"
