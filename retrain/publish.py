"""Announcing a promotion to the running workers (e.g. on ``models.control``)."""

from __future__ import annotations

import logging
from collections.abc import Callable

logger = logging.getLogger(__name__)

Publish = Callable[[str, str, str], None]
"""``publish(task, version, action)``: announce a promotion (e.g. on ``models.control``)."""


def announce(publish: Publish | None, task: str, version: str) -> bool | None:
    """Publish a promotion; a failure is logged and reported, the promotion stands."""
    if publish is None:
        return None
    try:
        publish(task, version, "promote")
    except Exception as exc:
        logger.error(
            "promoted %s/%s but could not announce it (workers swap on restart): %s",
            task,
            version,
            exc,
        )
        return False
    return True
