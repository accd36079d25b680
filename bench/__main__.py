"""``python -m bench [--quick] [--out DIR] [--registry DIR] [--no-profile]``."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from rich.console import Console

from bench.config import FULL, QUICK
from bench.report import print_report, write_json, write_plot
from bench.run import run_bench
from streams.cli.logconfig import configure_logging
from streams.settings import Settings

logger = logging.getLogger("bench")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Throughput, latency and memory of the pipeline against the models' "
        "ceiling and the naive recipe.",
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one sweep point")
    parser.add_argument("--out", type=Path, default=Path("bench-results"), help="results folder")
    parser.add_argument(
        "--registry",
        type=Path,
        default=None,
        help="model registry (default: STREAMSENSE_REGISTRY_DIR, i.e. registry/)",
    )
    parser.add_argument("--no-profile", action="store_true", help="skip the py-spy profile")
    args = parser.parse_args(argv)
    settings = Settings()
    configure_logging("INFO")
    # new topics' leaders settle a moment after creation; the producer retries, quietly
    logging.getLogger("kafka.producer.sender").setLevel(logging.ERROR)
    config = QUICK if args.quick else FULL
    results, json_path = run_bench(
        config,
        settings,
        args.registry or settings.registry_dir,
        args.out,
        profile=not args.no_profile,
    )
    write_json(results, json_path)
    write_plot(results, Path(results["files"]["plot"]))
    print_report(results, Console(width=140))
    logger.info("wrote %s and %s", json_path, results["files"]["plot"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
