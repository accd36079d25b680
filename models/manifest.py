"""Version directory contents: hashing, the manifest, and the integrity check.

A version directory holds only files of allowed formats. ``manifest.json`` lists the
sha256 of every other file except ``decisions.jsonl``, the append-only log of gate
decisions about the version (deliberately outside the hashed set so the hashed content
stays immutable), and ``drift_reference.json``, the version's drift profile
(:mod:`models.drift`), which is derived data written after registration and can always
be recomputed from the model and its validation data. The manifest's own sha256 is
recorded in the alias file when the version is promoted, so a promoted manifest cannot be
edited unnoticed either.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from models.exceptions import TamperedArtifactError

MANIFEST = "manifest.json"
DECISIONS = "decisions.jsonl"
DRIFT_REFERENCE = "drift_reference.json"
MANIFEST_FORMAT = 1
# ONNX graphs, safetensors weights, JSON metadata and tokenizer files, the curves image.
# Never pickle-based formats (.bin, .pt, .pth, .pkl, .ckpt): loading them can run code.
ALLOWED_SUFFIXES = frozenset({".onnx", ".safetensors", ".json", ".txt", ".png"})
UNHASHED = frozenset({MANIFEST, DECISIONS, DRIFT_REFERENCE})


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_formats(directory: Path) -> list[Path]:
    """The hashed files of a version directory; refuses subdirectories and other formats."""
    files: list[Path] = []
    for path in sorted(directory.iterdir()):
        if path.name in UNHASHED:
            continue
        if path.is_symlink() or not path.is_file():
            raise TamperedArtifactError(
                f"refusing {path}: a version directory holds only plain files"
            )
        if path.suffix.lower() not in ALLOWED_SUFFIXES:
            raise TamperedArtifactError(
                f"refusing {path}: format {path.suffix or '(none)'!r} is not allowed; only "
                "ONNX, safetensors, JSON, txt tokenizer files and PNG (never pickle formats)"
            )
        files.append(path)
    return files


def hash_files(directory: Path) -> dict[str, str]:
    """sha256 of every hashed file in ``directory``, by file name."""
    return {path.name: sha256_file(path) for path in check_formats(directory)}


def read_manifest(directory: Path) -> dict[str, Any]:
    path = directory / MANIFEST
    if not path.is_file():
        raise TamperedArtifactError(f"refusing {directory}: {MANIFEST} is missing")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise TamperedArtifactError(f"refusing {path}: not valid JSON ({exc})") from exc
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise TamperedArtifactError(f"refusing {path}: no 'files' table")
    return manifest


def verify_directory(directory: Path, task: str, version: str) -> dict[str, Any]:
    """Check every file against the manifest; return the manifest or raise naming the file."""
    manifest = read_manifest(directory)
    if manifest.get("task") != task or manifest.get("version") != version:
        raise TamperedArtifactError(
            f"refusing {directory / MANIFEST}: it describes {manifest.get('task')}/"
            f"{manifest.get('version')}, not {task}/{version}"
        )
    expected: dict[str, str] = manifest["files"]
    for name in sorted(expected):
        path = directory / name
        if not path.is_file():
            raise TamperedArtifactError(f"refusing {task}/{version}: {path} is missing")
    present = check_formats(directory)
    for path in present:
        if path.name not in expected:
            raise TamperedArtifactError(
                f"refusing {task}/{version}: {path} is not listed in {MANIFEST}"
            )
        actual = sha256_file(path)
        if actual != expected[path.name]:
            raise TamperedArtifactError(
                f"refusing {task}/{version}: sha256 of {path} is {actual[:12]}..., "
                f"{MANIFEST} says {expected[path.name][:12]}... (file changed after registration)"
            )
    return manifest


def write_json_atomic(path: Path, payload: Any) -> None:
    """Write JSON to a temp file beside ``path``, fsync, and rename over it."""
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(payload, handle, indent=2)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(name, path)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
