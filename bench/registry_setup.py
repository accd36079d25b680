"""The models the bench measures: production models, trained first when a task has none."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from models.pipeline import QUICK_CONFIGS, QUICK_MIN_INT8_AGREEMENT, ensure_models
from models.registry import COPY_IGNORE, Registry

logger = logging.getLogger(__name__)

TASKS = ("sentiment", "intent")


def missing_tasks(root: Path) -> list[str]:
    registry = Registry(root)
    return [task for task in TASKS if registry.production(task) is None]


def prepare_registry(root: Path, data_dir: Path, *, quick: bool, scratch: Path) -> Path:
    """The registry to measure, with a production model per task.

    A full run trains any missing task into ``root`` with the production recipe
    (``models.pipeline.ensure_models``). A quick run never writes small models into a
    real registry: when a task is missing it trains small ones into ``scratch``.
    """
    missing = missing_tasks(root)
    if not missing:
        return root
    if quick:
        logger.warning(
            "no production model for %s in %s: training small ones into %s (quick mode)",
            ", ".join(missing),
            root,
            scratch,
        )
        ensure_models(
            scratch,
            data_dir,
            configs=QUICK_CONFIGS,
            show_progress=False,
            min_int8_agreement=QUICK_MIN_INT8_AGREEMENT,
        )
        return scratch
    logger.warning(
        "no production model for %s in %s: training it now (full recipe, this takes long)",
        ", ".join(missing),
        root,
    )
    ensure_models(root, data_dir, tasks=missing, show_progress=True)
    return root


def _link_or_copy(src: str, dst: str) -> str:
    """Hard-link a model file (versions are never written after their commit); copy the
    JSON files, which the registry rewrites or appends to."""
    if src.endswith((".json", ".jsonl")):
        return str(shutil.copy2(src, dst))
    try:
        os.link(src, dst)
    except OSError:  # another file system
        shutil.copy2(src, dst)
    return dst


def shadow_registry(source: Path, target: Path) -> dict[str, str]:
    """A registry in ``target`` that serves ``source``'s production versions and holds a
    byte-identical copy of each in shadow: what a shadow period costs, nothing written to
    ``source``. Returns the version in shadow per task."""
    shutil.copytree(
        source,
        target,
        copy_function=_link_or_copy,
        ignore=shutil.ignore_patterns(*COPY_IGNORE),
    )
    registry = Registry(target)
    shadows = {}
    for task in TASKS:
        current = registry.production(task)
        if current is None:
            continue
        version = registry.register_copy(task, current, copy=_link_or_copy)
        registry.set_shadow(task, version, "bench: the cost of a shadow period")
        shadows[task] = version
    return shadows
