"""The poison quarantine: in-flight notes that outlive a killed process, suspects scored
alone, and a supervisor that restarts a dying worker until the record that kills it is
quarantined. Real child processes; no broker."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from streams.runtime.inflight import InFlight, Quarantine, read_in_flight
from streams.runtime.supervisor import Supervisor

REF = ("messages.raw", 2, 41)


def test_a_note_outlives_a_killed_process_and_is_cleared_after_a_normal_call(
    tmp_path: Path,
) -> None:
    script = textwrap.dedent(
        f"""
        import os, signal
        from pathlib import Path
        from streams.runtime.inflight import InFlight
        notes = InFlight(Path({str(tmp_path)!r}))
        with notes.working_on("news-scorer", [("news.raw", 0, 7)]):
            pass
        with notes.working_on("message-scorer", [("messages.raw", 2, 41), ("messages.raw", 2, 42)]):
            os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], check=False)
    assert proc.returncode == -signal.SIGKILL
    assert read_in_flight(tmp_path) == [[("messages.raw", 2, 41), ("messages.raw", 2, 42)]]


def test_without_a_directory_nothing_is_written(tmp_path: Path) -> None:
    notes = InFlight(None)
    with notes.working_on("news-scorer", [REF]):
        pass
    assert list(tmp_path.iterdir()) == []


def test_a_record_is_quarantined_only_when_alone_at_the_limit() -> None:
    q = Quarantine()
    batch = [("messages.raw", 2, n) for n in range(40, 44)]
    assert q.record_death([batch], limit=3) == []
    assert all(q.is_suspect(r) for r in batch)
    # suspects are scored alone after a restart: the unsuspected together, then one by one
    refs = [("messages.raw", 2, 39), *batch, ("messages.raw", 2, 44)]
    assert q.groups(refs) == [[0, 5], [1], [2], [3], [4]]
    assert q.record_death([[REF]], limit=3) == []
    assert q.record_death([[REF]], limit=3) == [REF]
    assert q.is_quarantined(REF) and not q.is_suspect(REF)
    assert not q.is_quarantined(("messages.raw", 2, 40))


def test_the_quarantine_survives_a_save_and_an_unreadable_file_starts_afresh(
    tmp_path: Path,
) -> None:
    path = tmp_path / "q.json"
    q = Quarantine()
    q.record_death([[REF]], limit=2)
    q.record_death([[REF]], limit=2)
    q.save(path)
    assert Quarantine.load(path).refs() == [REF]
    path.write_text("{not json")
    assert Quarantine.load(path).refs() == []


FAKE_WORKER = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    from streams.runtime.inflight import InFlight, Quarantine
    quarantine = Quarantine.load(Path(os.environ["STREAMSENSE_QUARANTINE_FILE"]))
    notes = InFlight(Path(os.environ["STREAMSENSE_IN_FLIGHT_DIR"]))
    batch = [("messages.raw", 2, n) for n in range(40, 44)]
    poison = ("messages.raw", 2, 41)
    with open(os.environ["RUNS_LOG"], "a") as log:
        log.write("run\\n")
    for group in quarantine.groups([r for r in batch if not quarantine.is_quarantined(r)]):
        refs = [r for r in batch if not quarantine.is_quarantined(r)]
        with notes.working_on("message-scorer", [refs[i] for i in group]):
            if poison in [refs[i] for i in group]:
                os.kill(os.getpid(), signal.SIGSEGV)  # what a native crash looks like
    sys.exit(0)  # the batch is done: the worker stops cleanly
    """
)


def test_the_supervisor_restarts_a_dying_worker_until_the_killer_is_quarantined(
    tmp_path: Path,
) -> None:
    runs = tmp_path / "runs.log"
    env = {**os.environ, "RUNS_LOG": str(runs)}
    supervisor = Supervisor(
        [sys.executable, "-c", FAKE_WORKER], env, tmp_path / "sup", 3, max_backoff_s=0.1
    )
    status = supervisor.run()
    assert status == 0
    # death 1: the whole batch in flight; deaths 2 and 3: the poison alone -> quarantined
    assert runs.read_text().count("run") == 4
    saved = json.loads((tmp_path / "sup" / "quarantine.json").read_text())
    assert saved["quarantined"] == ["messages.raw|2|41"]
