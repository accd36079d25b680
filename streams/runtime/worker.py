"""The Faust worker that runs a composed app: the log privacy policy kept in force, and a
shutdown that always ends."""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from faust.worker import Worker

from streams.runtime.logpolicy import protect

logger = logging.getLogger(__name__)

SHUTDOWN_TIMEOUT_EXIT = 143
"""Exit status of a worker whose clean shutdown overran (128 + SIGTERM, as if killed by it)."""


class PrivateLogWorker(Worker):
    """A faust ``Worker`` that re-applies :func:`protect` after it configures logging, and
    exits without committing when a clean shutdown takes longer than ``shutdown_timeout_s``.

    faust's worker replaces the root handlers when it starts; without this, its own DEBUG
    lines (every sent key and value) would reach the log at ``STREAMSENSE_LOG_LEVEL=DEBUG``.
    A clean shutdown flushes the producer and commits offsets; with the broker unreachable
    both wait for it, and the worker ignored SIGTERM for a minute. Exiting instead is safe:
    the worker acknowledges a record only after its outputs were confirmed, so whatever it
    had not committed is delivered again.
    """

    def __init__(self, *args: Any, shutdown_timeout_s: float = 10.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._shutdown_timeout_s = shutdown_timeout_s
        self._deadline: threading.Timer | None = None

    def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
        super().on_setup_root_logger(logger, level)
        protect(logger)

    def _on_sigterm(self) -> None:
        self._arm_deadline("SIGTERM")
        super()._on_sigterm()

    def _on_sigint(self) -> None:
        self._arm_deadline("SIGINT")
        super()._on_sigint()

    def _arm_deadline(self, reason: str) -> None:
        if self._deadline is not None:
            return
        timeout = self._shutdown_timeout_s
        self._deadline = threading.Timer(timeout, _overran, args=(reason, timeout))
        self._deadline.daemon = True
        self._deadline.start()


def _overran(reason: str, timeout: float) -> None:
    logger.warning(
        "Clean shutdown after %s took longer than %.0f s (STREAMSENSE_SHUTDOWN_TIMEOUT_S; "
        "broker unreachable?): exiting without committing; uncommitted records will be "
        "delivered again",
        reason,
        timeout,
    )
    for handler in logging.getLogger().handlers:
        handler.flush()
    os._exit(SHUTDOWN_TIMEOUT_EXIT)


def run(app: Any, log_level: str, shutdown_timeout_s: float = 10.0) -> None:
    """Run ``app`` in this process until it is stopped (SIGTERM, SIGINT)."""
    worker = PrivateLogWorker(
        app,
        loglevel=log_level,
        quiet=True,
        redirect_stdouts=False,
        shutdown_timeout_s=shutdown_timeout_s,
    )
    worker.execute_from_commandline()
