"""The last line of defence against a record that kills the worker itself.

A record that makes native code crash (a segfault in a tokenizer or ONNX Runtime) or the
kernel's OOM killer strike cannot be caught as an exception: the worker dies, restarts,
reads the same record and dies again. To break that loop a worker notes, before each model
call, which records it is working on (:class:`InFlight`, a small file per agent that
survives the process), and a supervisor (``streamsense worker --supervise``) reads the
notes after every abnormal exit (:class:`Quarantine`):

- every record in flight at a death becomes a *suspect*; the restarted worker scores each
  suspect in a model call of its own, so the next death names one record;
- a record in flight alone at ``poison_deaths`` deaths is *quarantined*: the worker
  dead-letters it (reason ``quarantined``) instead of scoring it again.

So a record that kills the worker costs ``poison_deaths`` restarts and then becomes one dead
letter; the records that shared its batch are scored normally.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

RecordRef = tuple[str, int, int]
"""(topic, partition, offset) of a consumed record."""

MAX_TRACKED = 10_000
"""Suspects kept at most (the oldest are forgotten): a bound on the quarantine file."""


def _key(ref: RecordRef) -> str:
    topic, partition, offset = ref
    return f"{topic}|{partition}|{offset}"


def _ref(key: str) -> RecordRef:
    topic, partition, offset = key.rsplit("|", 2)
    return topic, int(partition), int(offset)


class InFlight:
    """Notes, per agent, the records a model call is working on, in ``directory``.

    Writing is a few microseconds (one small file rewritten in place, no fsync: it only has
    to outlive the process, not the machine). Without a directory nothing is written.
    """

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory
        self._fds: dict[str, int] = {}
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)

    def _fd(self, agent: str) -> int:
        fd = self._fds.get(agent)
        if fd is None:
            assert self.directory is not None
            fd = os.open(self.directory / f"{agent}.json", os.O_RDWR | os.O_CREAT, 0o600)
            self._fds[agent] = fd
        return fd

    def _write(self, agent: str, data: bytes) -> None:
        fd = self._fd(agent)
        os.pwrite(fd, data, 0)
        os.ftruncate(fd, len(data))

    @contextmanager
    def working_on(self, agent: str, records: Sequence[RecordRef]) -> Iterator[None]:
        """Note ``records`` as in flight for ``agent`` while the block runs."""
        if self.directory is None or not records:
            yield
            return
        self._write(agent, json.dumps([list(r) for r in records]).encode())
        try:
            yield
        finally:  # an exception is not a death: the records are not in flight any more
            self._write(agent, b"[]")

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()


def read_in_flight(directory: Path) -> list[list[RecordRef]]:
    """Every agent's records in flight when its worker died (one list per agent)."""
    markers = []
    for path in sorted(directory.glob("*.json")):
        try:
            refs = json.loads(path.read_bytes() or b"[]")
            markers.append([(str(t), int(p), int(o)) for t, p, o in refs])
        except (OSError, ValueError, TypeError):
            logger.warning("unreadable in-flight note %s ignored", path.name)
    return [m for m in markers if m]


def clear_in_flight(directory: Path) -> None:
    for path in directory.glob("*.json"):
        path.unlink(missing_ok=True)


@dataclass
class Quarantine:
    """Deaths per record and the records quarantined, kept by the supervisor in a file."""

    deaths: dict[str, int] = field(default_factory=dict)
    quarantined: set[str] = field(default_factory=set)

    @classmethod
    def load(cls, path: Path | None) -> Quarantine:
        if path is None or not path.exists():
            return cls()
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(
                {str(k): int(v) for k, v in data.get("deaths", {}).items()},
                {str(k) for k in data.get("quarantined", [])},
            )
        except (OSError, ValueError, TypeError, AttributeError):
            logger.warning("unreadable quarantine file %s: starting afresh", path)
            return cls()

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        data = {"deaths": self.deaths, "quarantined": sorted(self.quarantined)}
        tmp.write_text(json.dumps(data), encoding="utf-8")
        tmp.replace(path)

    def record_death(self, in_flight: Iterable[Sequence[RecordRef]], limit: int) -> list[RecordRef]:
        """Count a death against every record in flight; return the ones newly quarantined
        (in flight alone, at ``limit`` deaths or more)."""
        newly = []
        for marker in in_flight:
            for ref in marker:
                key = _key(ref)
                self.deaths[key] = self.deaths.get(key, 0) + 1
                if len(marker) == 1 and self.deaths[key] >= limit and key not in self.quarantined:
                    self.quarantined.add(key)
                    newly.append(ref)
        while len(self.deaths) > MAX_TRACKED:
            self.deaths.pop(next(iter(self.deaths)))
        return newly

    def is_quarantined(self, ref: RecordRef) -> bool:
        return _key(ref) in self.quarantined

    def is_suspect(self, ref: RecordRef) -> bool:
        key = _key(ref)
        return key in self.deaths and key not in self.quarantined

    def groups(self, refs: Sequence[RecordRef]) -> list[list[int]]:
        """Indices of ``refs`` in the model calls to make: the unsuspected together, then each
        suspect alone (so a death while scoring it names it)."""
        suspects = [i for i, ref in enumerate(refs) if self.is_suspect(ref)]
        if not suspects:
            return [list(range(len(refs)))]
        chosen = set(suspects)
        rest = [i for i in range(len(refs)) if i not in chosen]
        return ([rest] if rest else []) + [[i] for i in suspects]

    def refs(self) -> list[RecordRef]:
        return [_ref(k) for k in sorted(self.quarantined)]


def record_ref(message: Any) -> RecordRef:
    """(topic, partition, offset) of a consumed Kafka message (faust's ``event.message``)."""
    return str(message.topic), int(message.partition), int(message.offset)


@dataclass
class PoisonGuard:
    """What a worker under ``worker --supervise`` uses: its in-flight notes and the
    quarantine the supervisor kept (read once, at start). Inert without a supervisor."""

    in_flight: InFlight = field(default_factory=lambda: InFlight(None))
    quarantine: Quarantine = field(default_factory=Quarantine)
    deaths: int = 0
    """``poison_deaths``: named in the dead letter of a quarantined record."""

    @property
    def active(self) -> bool:
        return self.in_flight.directory is not None

    @classmethod
    def from_paths(
        cls, in_flight_dir: Path | None, quarantine_file: Path | None, deaths: int
    ) -> PoisonGuard:
        quarantine = Quarantine.load(quarantine_file)
        if quarantine.quarantined:
            logger.warning(
                "%d record(s) quarantined by the supervisor will be dead-lettered unscored",
                len(quarantine.quarantined),
            )
        return cls(InFlight(in_flight_dir), quarantine, deaths)
