"""Distillation end to end on real data: `streamsense teacher`, then `train --teacher`.

A small stand-in teacher (the MiniLM base, briefly trained) keeps this inside `make test`;
the all-mpnet-base-v2 teacher runs the same code (`make distill`, figures in the README).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from models.data import stratified_sample, task_split
from models.export import export_onnx, onnx_logits
from models.network import METRICS_FILE, MeanPoolClassifier, base_model_dir
from models.registry import Registry
from models.runtime import FP32_FILE
from models.teacher import SOFT_LABELS_DIR, TEACHER_FILE
from models.tokenizer import TextEncoder
from streams.cli import models as cli_models
from streams.settings import Settings
from tests.model_fixtures import fixture_data_dir

pytestmark = pytest.mark.slow

SMALL = ("--epochs", "1", "--threads", "1", "--max-length", "48", "--eval-limit", "60")


def _app(settings: Settings) -> typer.Typer:
    app = typer.Typer()
    cli_models.register(app, lambda: settings)
    return app


def test_a_student_distils_from_a_trained_teacher_and_serves_like_any_version(
    tmp_path: Path,
) -> None:
    data_dir = fixture_data_dir()
    settings = Settings(registry_dir=tmp_path / "registry", data_dir=data_dir)
    app = _app(settings)
    teacher_dir = tmp_path / "teacher"

    taught = CliRunner().invoke(
        app,
        [
            *("teacher", "--task", "sentiment", "--base", str(base_model_dir())),
            *("--out", str(teacher_dir), "--limit", "160", *SMALL),
        ],
    )

    assert taught.exit_code == 0, taught.output
    assert f"teacher for sentiment written to {teacher_dir}" in " ".join(taught.output.split())
    record = json.loads((teacher_dir / TEACHER_FILE).read_text())
    assert record["train_data"]["rows"] == 160 and record["heldout_data"]["rows"] == 60
    assert len(record["history"]) == 1
    assert (teacher_dir / "curves.png").is_file()
    assert list((teacher_dir / "runs").glob("events.out.tfevents.*"))  # TensorBoard
    assert json.loads((teacher_dir / METRICS_FILE).read_text())["accuracy"] == pytest.approx(
        record["heldout"]["accuracy"]
    )

    # unlabelled transfer texts: two new ones, one duplicate, and two held-out sentences
    # that must never reach the student (that would leak the held-out split)
    _, heldout = task_split("sentiment", data_dir)
    sample = stratified_sample(heldout, 60, seed=13)
    transfer = tmp_path / "transfer.txt"
    transfer.write_text(
        "\n".join(
            [
                "$XYZ guidance cut, shares slide",
                "Board approves a record buyback",
                "$XYZ guidance cut, shares slide",
                sample.texts[0],
                sample.texts[1],
            ]
        ),
        encoding="utf-8",
    )

    distilled = CliRunner().invoke(
        app,
        [
            *("train", "--task", "sentiment", "--teacher", str(teacher_dir)),
            *("--transfer", str(transfer), "--limit", "100", *SMALL),
            *("--distill-alpha", "0.7", "--distill-temperature", "3", "--no-promote"),
        ],
    )

    assert distilled.exit_code == 0, distilled.output
    assert "teacher " in distilled.output and "held-out accuracy" in distilled.output
    registry = Registry(settings.registry_dir)
    (version,) = registry.versions("sentiment")
    assert registry.production("sentiment") is None  # --no-promote
    manifest = registry.verify("sentiment", version)
    distillation = manifest["training"]["distillation"]
    assert (distillation["alpha"], distillation["temperature"]) == (0.7, 3.0)
    assert distillation["labelled_rows"] == manifest["training"]["train_data"]["rows"] in (99, 100)
    assert distillation["transfer_rows"] == 2
    assert distillation["teacher"]["base_model"] == str(base_model_dir())
    assert distillation["teacher"]["parameters"] > 20_000_000

    # the teacher's figures in the manifest are its real score on the student's held-out
    # split, read here from its own fp32 ONNX graph, not from the training code
    teacher_heldout = distillation["teacher_heldout"]
    assert teacher_heldout["rows"] == 60
    encoder = TextEncoder(teacher_dir / "tokenizer.json", 48)
    export_onnx(MeanPoolClassifier.from_checkpoint(teacher_dir), encoder, tmp_path / "t.onnx")
    labels = onnx_logits(tmp_path / "t.onnx", encoder, sample.texts, 1).argmax(axis=1)
    accuracy = float(np.mean(labels == np.asarray(sample.label_ids())))
    assert teacher_heldout["accuracy"] == pytest.approx(accuracy, abs=1 / 60 + 1e-9)
    assert list((teacher_dir / SOFT_LABELS_DIR).glob("*.npy"))  # the next student reuses them

    # the student is an ordinary version: exported, checked, scorable by the serving graph
    version_dir = registry.version_dir("sentiment", version)
    assert (version_dir / FP32_FILE).is_file()
    assert manifest["agreement"]["max_abs_logit_diff"] < 1e-3


def test_transfer_texts_without_a_teacher_are_refused(tmp_path: Path) -> None:
    settings = Settings(registry_dir=tmp_path / "registry", data_dir=fixture_data_dir())
    transfer = tmp_path / "t.txt"
    transfer.write_text("x\n", encoding="utf-8")

    result = CliRunner().invoke(
        _app(settings), ["train", "--task", "sentiment", "--transfer", str(transfer)]
    )

    assert result.exit_code != 0
    assert "--transfer needs --teacher" in " ".join(result.output.split())
    assert not (tmp_path / "registry").exists()


def test_a_directory_that_is_no_teacher_is_one_clear_error(tmp_path: Path) -> None:
    settings = Settings(registry_dir=tmp_path / "registry", data_dir=fixture_data_dir())
    (tmp_path / "empty").mkdir()

    result = CliRunner().invoke(
        _app(settings),
        ["train", "--task", "sentiment", "--teacher", str(tmp_path / "empty"), "--limit", "20"],
    )

    assert result.exit_code == 2
    assert "not a teacher directory" in " ".join(result.output.split())
