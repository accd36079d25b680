"""The model registry: immutable version directories per task and a production alias.

Layout::

    <root>/<task>/v0001-20261128T131000/   model.onnx, model.int8.onnx, model.safetensors,
                                           config.json, labels.json, metrics.json,
                                           curves.png, tokenizer files, manifest.json,
                                           decisions.jsonl (append-only, not hashed),
                                           drift_reference.json (derived, not hashed)
    <root>/<task>/production.json          {"version", "manifest_sha256", "history": [...]}
    <root>/<task>/shadow.json              {"version", "manifest_sha256", "since", "reason"}
                                           (a candidate scored beside production, not served)
    <root>/<task>/runs/<run>/              TensorBoard event files of training runs

A version is written into a staging directory inside the task directory and renamed
into place, so a reader never sees half a version. Alias updates are atomic renames
under a file lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from models.drift import DriftReference
from models.exceptions import RegistryError, TamperedArtifactError
from models.manifest import (
    DECISIONS,
    DRIFT_REFERENCE,
    MANIFEST,
    MANIFEST_FORMAT,
    hash_files,
    sha256_file,
    verify_directory,
    write_json_atomic,
)

if TYPE_CHECKING:
    from models.runtime import Classifier

logger = logging.getLogger(__name__)

ALIAS = "production.json"
SHADOW = "shadow.json"
VERSION_PATTERN = re.compile(r"^v(\d{4,})-(\d{8}T\d{6})$")
TASK_PATTERN = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
COPY_IGNORE = ("runs", ".alias.lock", ".staging-*", "teachers")
"""What a working copy of a registry leaves out: TensorBoard runs, locks, unfinished
versions and distillation teachers (a training-time tool, hundreds of MB)."""


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class Registry:
    """A folder of immutable, verified model versions with one production alias per task."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    # -- reading ---------------------------------------------------------------------------

    def task_dir(self, task: str) -> Path:
        if not TASK_PATTERN.match(task):
            raise RegistryError(f"invalid task name {task!r}")
        return self.root / task

    def tasks(self) -> list[str]:
        """Tasks that have at least one version."""
        if not self.root.is_dir():
            return []
        return sorted(
            p.name
            for p in self.root.iterdir()
            if TASK_PATTERN.match(p.name) and self.versions(p.name)
        )

    def versions(self, task: str) -> list[str]:
        """Version ids of a task, oldest first."""
        directory = self.task_dir(task)
        if not directory.is_dir():
            return []
        return sorted(
            (p.name for p in directory.iterdir() if p.is_dir() and VERSION_PATTERN.match(p.name)),
            key=lambda name: int(name[1:].split("-", 1)[0]),
        )

    def version_dir(self, task: str, version: str) -> Path:
        """Directory of an existing version; raises when there is none."""
        if not VERSION_PATTERN.match(version):
            raise RegistryError(
                f"invalid version id {version!r} (expected like v0001-20261128T131000)"
            )
        path = self.task_dir(task) / version
        if not path.is_dir():
            known = ", ".join(self.versions(task)) or "none"
            raise RegistryError(
                f"no version {version} of task {task!r} in {self.root} (known: {known})"
            )
        return path

    def alias(self, task: str) -> dict[str, Any]:
        """The production alias of a task (empty history when there is none)."""
        path = self.task_dir(task) / ALIAS
        if not path.is_file():
            return {"task": task, "version": None, "history": []}
        try:
            data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise RegistryError(f"alias file {path} is not valid JSON: {exc}") from exc
        return data

    def production(self, task: str) -> str | None:
        """The production version of a task, or None when nothing was promoted."""
        version = self.alias(task).get("version")
        return str(version) if version else None

    def shadow(self, task: str) -> str | None:
        """The version in shadow for a task (scored beside production, never served)."""
        record = self.shadow_record(task)
        return str(record["version"]) if record else None

    def shadow_record(self, task: str) -> dict[str, Any] | None:
        """The shadow alias as written (``version``, ``since``, ``reason``), or None."""
        path = self.task_dir(task) / SHADOW
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise RegistryError(f"shadow alias {path} is not valid JSON: {exc}") from exc
        if not isinstance(data, dict) or not data.get("version"):
            return None
        return data

    def verify(self, task: str, version: str) -> dict[str, Any]:
        """Check every file of a version against its manifest; return the manifest.

        Raises :class:`TamperedArtifactError` naming the file on a hash mismatch, a missing
        or unlisted file, or a disallowed format (pickle-based weights and the like). For
        the production version the manifest's own hash must match the alias as well.
        """
        directory = self.version_dir(task, version)
        manifest = verify_directory(directory, task, version)
        alias = self.alias(task)
        if alias.get("version") == version and alias.get("manifest_sha256"):
            actual = sha256_file(directory / MANIFEST)
            if actual != alias["manifest_sha256"]:
                raise TamperedArtifactError(
                    f"refusing {task}/{version}: {directory / MANIFEST} changed after promotion "
                    f"(sha256 {actual[:12]}..., alias says {alias['manifest_sha256'][:12]}...)"
                )
        return manifest

    def load(
        self,
        task: str,
        version: str | None = None,
        *,
        threads: int = 0,
        precision: str = "auto",
        row_loop: bool = True,
    ) -> Classifier:
        """Verify a version (default: production) and load it for inference.

        ``row_loop``: an int8 model scores a batch in one call (:mod:`models.rowloop`)."""
        from models.runtime import Classifier

        if version is None:
            version = self.production(task)
            if version is None:
                raise RegistryError(
                    f"task {task!r} has no production version in {self.root}; "
                    "run `streamsense train --task "
                    f"{task}` or `streamsense models promote {task} VERSION`"
                )
        manifest = self.verify(task, version)
        return Classifier(
            self.version_dir(task, version),
            manifest,
            threads=threads,
            precision=precision,
            row_loop=row_loop,
        )

    def history(self, task: str) -> list[dict[str, Any]]:
        return list(self.alias(task).get("history", []))

    def decisions(self, task: str, version: str) -> list[dict[str, Any]]:
        """Gate decisions recorded about a version, oldest first."""
        path = self.version_dir(task, version) / DECISIONS
        if not path.is_file():
            return []
        lines = path.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    def last_decision(
        self, task: str, where: Callable[[dict[str, Any]], bool] | None = None
    ) -> dict[str, Any] | None:
        """The newest decision recorded about any version of ``task`` (of those ``where``
        accepts), with its version."""
        newest: dict[str, Any] | None = None
        for version in self.versions(task):
            for decision in self.decisions(task, version):
                if where is not None and not where(decision):
                    continue
                if newest is None or str(decision.get("at", "")) >= str(newest.get("at", "")):
                    newest = {"version": version, **decision}
        return newest

    def drift_reference(self, task: str, version: str) -> DriftReference | None:
        """The drift profile of a version (:mod:`models.drift`), None when none was written."""
        path = self.version_dir(task, version) / DRIFT_REFERENCE
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise RegistryError(f"drift reference {path} is not readable JSON: {exc}") from exc
        reference = DriftReference.from_dict(data, str(path))
        if (reference.task, reference.version) != (task, version):
            raise RegistryError(
                f"drift reference {path} describes {reference.task}/{reference.version}, "
                f"not {task}/{version}"
            )
        return reference

    # -- writing ---------------------------------------------------------------------------

    def write_drift_reference(self, reference: DriftReference) -> Path:
        """Store a version's drift profile beside it (atomic; replaces an older one)."""
        path = self.version_dir(reference.task, reference.version) / DRIFT_REFERENCE
        write_json_atomic(path, reference.as_dict())
        logger.info(
            "drift reference of %s/%s written (%s items)",
            reference.task,
            reference.version,
            reference.n,
        )
        return path

    @contextlib.contextmanager
    def staging(self, task: str) -> Iterator[Path]:
        """A fresh staging directory inside the task directory, removed unless committed."""
        task_dir = self.task_dir(task)
        task_dir.mkdir(parents=True, exist_ok=True)
        path = task_dir / f".staging-{uuid.uuid4().hex}"
        path.mkdir()
        try:
            yield path
        finally:
            if path.exists():
                shutil.rmtree(path, ignore_errors=True)

    def commit(self, task: str, staging: Path, manifest: Mapping[str, Any]) -> str:
        """Hash the staged files, write the manifest and rename the directory into place."""
        if staging.parent != self.task_dir(task):
            raise RegistryError(f"{staging} is not a staging directory of task {task!r}")
        files = hash_files(staging)
        for _attempt in range(20):
            number = max([int(v[1:].split("-", 1)[0]) for v in self.versions(task)] or [0]) + 1
            version = f"v{number:04d}-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S')}"
            body = {
                "format": MANIFEST_FORMAT,
                "task": task,
                "version": version,
                "created_at": utc_now(),
                **manifest,
                "files": files,
                "decisions_file": DECISIONS,
            }
            write_json_atomic(staging / MANIFEST, body)
            try:
                staging.rename(self.task_dir(task) / version)
            except OSError:  # another writer took this number: take the next
                continue
            logger.info("registered %s/%s in %s", task, version, self.root)
            return version
        raise RegistryError(f"could not allocate a version id for task {task!r} in {self.root}")

    def register_copy(
        self, task: str, version: str, *, copy: Callable[[str, str], object] = shutil.copy2
    ) -> str:
        """Register a byte-identical copy of ``version`` as a new version whose parent it is:
        a candidate that scores exactly like it. ``copy(src, dst)`` copies each file
        (``os.link`` shares the bytes; a committed version is never written again)."""
        manifest = self.verify(task, version)
        generated = {"format", "task", "version", "created_at", "files", "decisions_file"}
        with self.staging(task) as staging:
            for name in manifest["files"]:
                copy(str(self.version_dir(task, version) / name), str(staging / name))
            keep = {k: v for k, v in manifest.items() if k not in generated}
            return self.commit(task, staging, {**keep, "parent": version})

    @contextlib.contextmanager
    def _alias_lock(self, task: str) -> Iterator[None]:
        task_dir = self.task_dir(task)
        task_dir.mkdir(parents=True, exist_ok=True)
        with (task_dir / ".alias.lock").open("a") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def _move_alias(self, task: str, version: str, action: str, reason: str) -> None:
        self.verify(task, version)
        alias = self.alias(task)
        entry = {
            "action": action,
            "version": version,
            "previous": alias.get("version"),
            "manifest_sha256": sha256_file(self.version_dir(task, version) / MANIFEST),
            "at": utc_now(),
            "reason": reason,
        }
        history = [*alias.get("history", []), entry]
        write_json_atomic(
            self.task_dir(task) / ALIAS,
            {
                "task": task,
                "version": version,
                "manifest_sha256": entry["manifest_sha256"],
                "updated_at": entry["at"],
                "history": history,
            },
        )
        logger.info("%s %s/%s (was %s): %s", action, task, version, entry["previous"], reason)

    def promote(self, task: str, version: str, reason: str) -> None:
        """Make a verified version the production version of its task (ending its shadow)."""
        with self._alias_lock(task):
            self._move_alias(task, version, "promote", reason)
            if self.shadow(task) == version:
                (self.task_dir(task) / SHADOW).unlink(missing_ok=True)

    def rollback(self, task: str, reason: str) -> str:
        """Move the alias back to the version that was production before the current one."""
        with self._alias_lock(task):
            stack = production_stack(self.history(task))
            if len(stack) < 2:
                raise RegistryError(
                    f"task {task!r} has no earlier production version to roll back to"
                )
            target = stack[-2]
            self._move_alias(task, target, "rollback", reason)
            return target

    def set_shadow(self, task: str, version: str, reason: str) -> None:
        """Put a verified version in shadow (replacing any other); production is unchanged."""
        with self._alias_lock(task):
            if version == self.production(task):
                raise RegistryError(
                    f"{task}/{version} is the production version; only a candidate can be "
                    "put in shadow"
                )
            self.verify(task, version)
            write_json_atomic(
                self.task_dir(task) / SHADOW,
                {
                    "task": task,
                    "version": version,
                    "manifest_sha256": sha256_file(self.version_dir(task, version) / MANIFEST),
                    "since": utc_now(),
                    "reason": reason,
                },
            )
        logger.info("shadow %s/%s: %s", task, version, reason)

    def clear_shadow(self, task: str) -> str | None:
        """End a task's shadow period; return the version that was in shadow."""
        with self._alias_lock(task):
            version = self.shadow(task)
            (self.task_dir(task) / SHADOW).unlink(missing_ok=True)
        if version is not None:
            logger.info("shadow of %s/%s ended", task, version)
        return version

    def record_decision(self, task: str, version: str, decision: Mapping[str, Any]) -> None:
        """Append a gate decision to the version's ``decisions.jsonl`` (not hashed)."""
        path = self.version_dir(task, version) / DECISIONS
        line = json.dumps({"at": utc_now(), **decision}, sort_keys=True)
        with path.open("a", encoding="utf-8") as handle:
            handle.write(line + "\n")
            handle.flush()
            os.fsync(handle.fileno())


def production_stack(history: list[dict[str, Any]]) -> list[str]:
    """Replay the alias history: a promotion pushes a version, a rollback pops one."""
    stack: list[str] = []
    for entry in history:
        if entry.get("action") == "rollback":
            if stack:
                stack.pop()
        elif not stack or stack[-1] != entry.get("version"):
            stack.append(str(entry.get("version")))
    return stack
