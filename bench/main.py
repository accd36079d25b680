"""``streamsense bench``: run the benchmark, write its JSON and plot, print the report."""

from __future__ import annotations

import logging
from pathlib import Path

from rich.console import Console

from bench.config import FULL, QUICK
from bench.report import print_report, write_json, write_plot
from bench.run import run_bench
from streams.settings import Settings

logger = logging.getLogger("bench")


def run_and_report(
    settings: Settings,
    *,
    quick: bool = False,
    out: Path = Path("bench-results"),
    registry: Path | None = None,
    profile: bool = True,
) -> Path:
    """Run the bench (``quick``: tiny sizes, one sweep point); the JSON file's path."""
    # new topics' leaders settle a moment after creation; the producer retries, quietly
    logging.getLogger("kafka.producer.sender").setLevel(logging.ERROR)
    config = QUICK if quick else FULL
    results, json_path = run_bench(
        config, settings, registry or settings.registry_dir, out, profile=profile
    )
    write_json(results, json_path)
    write_plot(results, Path(results["files"]["plot"]))
    print_report(results, Console(width=140))
    logger.info("wrote %s and %s", json_path, results["files"]["plot"])
    return json_path
