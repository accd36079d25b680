"""Logging set-up, done once at a command's entry point."""

from __future__ import annotations

import logging

from rich.logging import RichHandler

from streams.runtime.logpolicy import protect


def configure_logging(level: str) -> None:
    """Send log records to stderr through rich, at ``level``; libraries never below INFO."""
    logging.basicConfig(
        level=level.upper(),
        format="%(name)s: %(message)s",
        datefmt="[%X]",
        handlers=[RichHandler(rich_tracebacks=False, show_path=False)],
        force=True,
    )
    protect()
