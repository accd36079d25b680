"""The Faust worker that runs a composed app, with the log privacy policy kept in force."""

from __future__ import annotations

import logging
from typing import Any

from faust.worker import Worker

from streams.runtime.logpolicy import protect


class PrivateLogWorker(Worker):
    """A faust ``Worker`` that re-applies :func:`protect` after it configures logging.

    faust's worker replaces the root handlers when it starts; without this, its own DEBUG
    lines (every sent key and value) would reach the log at ``STREAMSENSE_LOG_LEVEL=DEBUG``.
    """

    def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
        super().on_setup_root_logger(logger, level)
        protect(logger)


def run(app: Any, log_level: str) -> None:
    """Run ``app`` in this process until it is stopped (SIGTERM, SIGINT)."""
    worker = PrivateLogWorker(app, loglevel=log_level, quiet=True, redirect_stdouts=False)
    worker.execute_from_commandline()
