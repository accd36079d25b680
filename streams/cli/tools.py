"""The tool commands of the ``streamsense`` script: bench, the retrain demo, dashboards."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import typer
from rich.console import Console

from streams.errors import ConfigurationError
from streams.settings import Settings

console = Console(stderr=True)

dashboards_app = typer.Typer(
    help="The Grafana dashboards: write or check the JSON files, draw one to a PNG.",
    no_args_is_help=True,
)


def register(app: typer.Typer, get_settings: Callable[[], Settings]) -> None:
    """Add the tool commands to ``app``."""

    @app.command("bench")
    def bench(
        quick: bool = typer.Option(False, "--quick", help="Tiny sizes, one sweep point"),
        out: Path = typer.Option(Path("bench-results"), "--out", help="Results folder"),
        registry: Path | None = typer.Option(
            None, "--registry", help="Model registry (default: STREAMSENSE_REGISTRY_DIR)"
        ),
        profile: bool = typer.Option(True, "--profile/--no-profile", help="py-spy profile"),
    ) -> None:
        """Throughput, latency and memory against the models' ceiling and the naive recipe."""
        from bench.main import run_and_report

        run_and_report(get_settings(), quick=quick, out=out, registry=registry, profile=profile)

    @app.command("retrain-demo")
    def retrain_demo(
        registry: Path | None = typer.Option(
            None,
            "--registry",
            help="Source registry, read only (default: STREAMSENSE_REGISTRY_DIR)",
        ),
        work_dir: Path = typer.Option(
            Path(tempfile.gettempdir()) / "retrain-demo", "--work-dir", help="Scratch folder"
        ),
        feedback_rows: int = typer.Option(3000, "--feedback-rows"),
        heldout_rows: int = typer.Option(2000, "--heldout-rows"),
        seed: int = typer.Option(13, "--seed"),
        replay_ratio: float = typer.Option(1.0, "--replay-ratio"),
        tolerance: float | None = typer.Option(
            None, "--tolerance", help="Held-out tolerance (default: STREAMSENSE_GATE_TOLERANCE)"
        ),
        epochs: int | None = typer.Option(None, "--epochs"),
        lr: float | None = typer.Option(None, "--lr"),
        head_lr: float | None = typer.Option(None, "--head-lr"),
        batch_size: int | None = typer.Option(None, "--batch-size"),
        max_length: int | None = typer.Option(None, "--max-length"),
        threads: int = typer.Option(0, "--threads", help="torch threads; 0 = all cores"),
    ) -> None:
        """PhraseBank sentiment learns the Twitter domain from feedback: before/after table."""
        from retrain.demo import run_demo

        settings = get_settings()
        code = run_demo(
            registry or settings.registry_dir,
            settings.data_dir,
            work_dir=work_dir,
            feedback_rows=feedback_rows,
            heldout_rows=heldout_rows,
            seed=seed,
            replay_ratio=replay_ratio,
            tolerance=settings.gate_tolerance if tolerance is None else tolerance,
            overrides={
                "epochs": epochs,
                "lr": lr,
                "head_lr": head_lr,
                "batch_size": batch_size,
                "max_length": max_length,
                "threads": threads,
            },
            console=Console(),
        )
        if code:
            raise typer.Exit(code)

    app.add_typer(dashboards_app, name="dashboards")


@dashboards_app.command("write")
def dashboards_write(
    out: Path | None = typer.Option(None, "--out", help="Folder (default: deploy's)"),
) -> None:
    """Write the dashboards' JSON files from the code that builds them."""
    from deploy.grafana.dashboards import OUT_DIR, write

    for path in write(out or OUT_DIR):
        print(path)


@dashboards_app.command("check")
def dashboards_check(
    out: Path | None = typer.Option(None, "--out", help="Folder (default: deploy's)"),
) -> None:
    """Exit 1 when a dashboard file differs from what the code builds."""
    from deploy.grafana.dashboards import OUT_DIR, stale_files

    folder = out or OUT_DIR
    stale = stale_files(folder)
    if stale:
        console.print(
            f"stale dashboards in {folder}: {', '.join(stale)}; run: streamsense dashboards write"
        )
        raise typer.Exit(1)


@dashboards_app.command("render")
def dashboards_render(
    prometheus: str = typer.Option(..., "--prometheus", help="Prometheus base URL"),
    out: Path = typer.Option(..., "--out", help="PNG file to write"),
    dashboard: str = typer.Option("streamsense-pipeline", "--dashboard", help="Dashboard uid"),
    minutes: float = typer.Option(15, "--minutes", help="Time range to show"),
) -> None:
    """Draw a dashboard to a PNG from a live Prometheus, without Grafana."""
    from deploy.grafana.dashboards import build
    from deploy.grafana.render import render

    boards = {board["uid"]: board for board in build().values()}
    if dashboard not in boards:
        raise ConfigurationError(f"unknown dashboard {dashboard!r}; known: {', '.join(boards)}")
    count = render(boards[dashboard], prometheus, out, minutes)
    print(f"wrote {out} ({count} panel(s) with data)")
