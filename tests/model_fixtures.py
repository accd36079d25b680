"""A session-wide registry with small but really trained models for both tasks.

Load with ``pytest_plugins = ["tests.model_fixtures"]`` (or ``-p tests.model_fixtures``).
Tests that change a registry (promote, rollback, tamper) must work on a copy
(:func:`copy_registry`), never on the shared one.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from models.data import BANKING77_FILE, PHRASEBANK_FILE
from models.pipeline import QUICK_CONFIGS, QUICK_MIN_INT8_AGREEMENT, ensure_models
from models.registry import COPY_IGNORE
from streams.settings import Settings

FIXTURE_CONFIGS = QUICK_CONFIGS
FIXTURE_MIN_INT8_AGREEMENT = QUICK_MIN_INT8_AGREEMENT


def fixture_data_dir() -> Path:
    """The configured data directory; fails (never skips) when the data is not there."""
    data_dir = Settings().data_dir
    for needed in (PHRASEBANK_FILE, BANKING77_FILE):
        if not (data_dir / needed).is_file():
            pytest.fail(
                f"training data {data_dir / needed} is missing: set STREAMSENSE_DATA_DIR "
                "to the folder holding financial_phrasebank/ and banking77/"
            )
    return data_dir


def copy_registry(source: Path, target: Path) -> Path:
    """A private copy of a registry that a test may change."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(*COPY_IGNORE))
    return target


@pytest.fixture(scope="session")
def trained_registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Registry root with a trained, exported, verified and promoted version per task."""
    root = tmp_path_factory.mktemp("registry")
    ensure_models(
        root,
        fixture_data_dir(),
        configs=FIXTURE_CONFIGS,
        show_progress=False,
        min_int8_agreement=FIXTURE_MIN_INT8_AGREEMENT,
    )
    return root
