"""Registry: immutable versions, integrity checks, the production alias."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from models.exceptions import RegistryError, TamperedArtifactError
from models.registry import ALIAS, Registry


def _register(registry: Registry, task: str = "sentiment", weights: bytes = b"onnx") -> str:
    with registry.staging(task) as staging:
        (staging / "model.onnx").write_bytes(weights)
        (staging / "model.int8.onnx").write_bytes(weights[::-1])
        (staging / "model.safetensors").write_bytes(b"tensors")
        (staging / "labels.json").write_text('["negative", "neutral", "positive"]')
        (staging / "vocab.txt").write_text("[PAD]\n[UNK]\n")
        return registry.commit(task, staging, {"parent": None, "labels": ["a"], "max_length": 8})


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    return Registry(tmp_path / "registry")


def test_commit_writes_manifest_with_hashes_and_verifies(registry: Registry) -> None:
    version = _register(registry)
    manifest = registry.verify("sentiment", version)
    assert manifest["version"] == version
    assert set(manifest["files"]) == {
        "model.onnx",
        "model.int8.onnx",
        "model.safetensors",
        "labels.json",
        "vocab.txt",
    }
    # no staging directory is left behind
    assert [p.name for p in (registry.root / "sentiment").iterdir()] == [version]


def test_versions_are_unique_and_ordered(registry: Registry) -> None:
    first, second = _register(registry), _register(registry, weights=b"other")
    assert first != second
    assert registry.versions("sentiment") == [first, second]
    assert first.startswith("v0001-")
    assert second.startswith("v0002-")


def test_failed_staging_leaves_nothing(registry: Registry) -> None:
    with pytest.raises(RuntimeError), registry.staging("sentiment") as staging:
        (staging / "model.onnx").write_bytes(b"half")
        raise RuntimeError("training crashed")
    assert registry.versions("sentiment") == []
    assert list((registry.root / "sentiment").iterdir()) == []


def test_tampered_file_is_refused_naming_it(registry: Registry) -> None:
    version = _register(registry)
    target = registry.version_dir("sentiment", version) / "model.int8.onnx"
    target.write_bytes(b"evil")
    with pytest.raises(TamperedArtifactError, match=r"model\.int8\.onnx") as info:
        registry.verify("sentiment", version)
    assert "sha256" in str(info.value)


def test_missing_file_is_refused_naming_it(registry: Registry) -> None:
    version = _register(registry)
    (registry.version_dir("sentiment", version) / "vocab.txt").unlink()
    with pytest.raises(TamperedArtifactError, match=r"vocab\.txt is missing"):
        registry.verify("sentiment", version)


@pytest.mark.parametrize("name", ["pytorch_model.bin", "model.pt", "head.pkl"])
def test_pickle_formats_are_refused(registry: Registry, name: str) -> None:
    version = _register(registry)
    (registry.version_dir("sentiment", version) / name).write_bytes(b"\x80\x04pickle")
    with pytest.raises(TamperedArtifactError, match=rf"{name.replace('.', '[.]')}.*not allowed"):
        registry.verify("sentiment", version)


def test_unlisted_allowed_file_is_refused(registry: Registry) -> None:
    version = _register(registry)
    (registry.version_dir("sentiment", version) / "extra.onnx").write_bytes(b"x")
    with pytest.raises(TamperedArtifactError, match=r"extra\.onnx is not listed"):
        registry.verify("sentiment", version)


def test_load_refuses_tampered_version_before_opening_it(registry: Registry) -> None:
    version = _register(registry)
    registry.promote("sentiment", version, "test")
    (registry.version_dir("sentiment", version) / "model.onnx").write_bytes(b"evil")
    with pytest.raises(TamperedArtifactError, match=r"model\.onnx"):
        registry.load("sentiment")


def test_promote_and_rollback_move_the_alias(registry: Registry) -> None:
    v1, v2, v3 = (_register(registry, weights=bytes([i])) for i in range(3))
    assert registry.production("sentiment") is None
    registry.promote("sentiment", v1, "first")
    registry.promote("sentiment", v2, "better")
    registry.promote("sentiment", v3, "best")
    assert registry.production("sentiment") == v3
    assert registry.rollback("sentiment", "v3 misbehaves") == v2
    assert registry.production("sentiment") == v2
    assert registry.rollback("sentiment", "v2 too") == v1
    with pytest.raises(RegistryError, match="no earlier production version"):
        registry.rollback("sentiment", "nothing left")
    alias = json.loads((registry.root / "sentiment" / ALIAS).read_text())
    assert [e["action"] for e in alias["history"]] == [
        "promote",
        "promote",
        "promote",
        "rollback",
        "rollback",
    ]
    assert alias["history"][3]["reason"] == "v3 misbehaves"


def test_promote_refuses_tampered_or_unknown_version(registry: Registry) -> None:
    version = _register(registry)
    (registry.version_dir("sentiment", version) / "labels.json").write_text("[]")
    with pytest.raises(TamperedArtifactError, match=r"labels\.json"):
        registry.promote("sentiment", version, "x")
    assert registry.production("sentiment") is None
    with pytest.raises(RegistryError, match="no version v0009-20260101T000000"):
        registry.promote("sentiment", "v0009-20260101T000000", "x")


def test_edited_manifest_of_production_is_refused(registry: Registry) -> None:
    version = _register(registry)
    registry.promote("sentiment", version, "x")
    path = registry.version_dir("sentiment", version) / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["metrics"] = {"accuracy": 1.0}
    path.write_text(json.dumps(manifest))
    with pytest.raises(TamperedArtifactError, match=r"manifest\.json changed after promotion"):
        registry.verify("sentiment", version)


def test_decisions_append_without_breaking_verification(registry: Registry) -> None:
    version = _register(registry)
    registry.promote("sentiment", version, "x")
    registry.record_decision("sentiment", version, {"decision": "refused", "reason": "worse"})
    registry.record_decision("sentiment", version, {"decision": "kept"})
    registry.verify("sentiment", version)
    assert [d["decision"] for d in registry.decisions("sentiment", version)] == [
        "refused",
        "kept",
    ]


def test_load_without_production_names_the_fix(registry: Registry) -> None:
    _register(registry)
    with pytest.raises(RegistryError, match="no production version"):
        registry.load("sentiment")


def test_invalid_names_are_rejected(registry: Registry) -> None:
    with pytest.raises(RegistryError, match="invalid task"):
        registry.versions("../etc")
    with pytest.raises(RegistryError, match="invalid version"):
        registry.version_dir("sentiment", "../../x")
