"""The loop on real data: PhraseBank sentiment learns the Twitter domain from feedback.

    streamsense retrain-demo --registry registry --data-dir ../shared/data

Copies the registry's sentiment task to ``work_dir`` (the source is never changed),
splits the Twitter Financial News set with a seed into a feedback part and a disjoint
held-out part, serves the feedback items with the production model (predictions into a
fresh feedback store), stores their gold labels as feedback with text, runs one retrain
through the gate, and prints Twitter and PhraseBank held-out numbers before and after.
"""

from __future__ import annotations

import json
import logging
import random
import shutil
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from models.data import TWITTER_FILE, LabeledData, load_twitter
from models.registry import COPY_IGNORE, Registry
from retrain.evaluation import report
from retrain.gate import DEFAULT_TOLERANCE
from retrain.job import RetrainReport, run_retrain
from retrain.store import FeedbackRow, FeedbackStore, PredictionRow

logger = logging.getLogger(__name__)
TASK = "sentiment"


def twitter_parts(
    data: LabeledData, feedback_rows: int, heldout_rows: int, seed: int
) -> tuple[list[int], list[int]]:
    """Seeded, disjoint row indices: a feedback part and a held-out part with no shared text."""
    order = list(range(len(data)))
    random.Random(seed).shuffle(order)
    feedback = order[:feedback_rows]
    seen = {" ".join(data.texts[i].split()).lower() for i in feedback}
    heldout = [
        i for i in order[feedback_rows:] if " ".join(data.texts[i].split()).lower() not in seen
    ]
    return feedback, heldout[:heldout_rows]


def copy_task(source: Path, target: Path) -> Path:
    """A fresh private copy of the source registry's sentiment task."""
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source / TASK, target / TASK, ignore=shutil.ignore_patterns(*COPY_IGNORE))
    return target


def serve_and_label(
    registry: Registry, store: FeedbackStore, data: LabeledData, rows: Sequence[int]
) -> float | None:
    """Score the feedback items with production (as the worker would), then label them."""
    classifier = registry.load(TASK)
    texts = [data.texts[i] for i in rows]
    now = datetime.now(UTC)
    predictions = classifier.predict(texts)
    store.record_predictions(
        [
            PredictionRow(f"tw-{i}", TASK, classifier.version, p.label, p.confidence, now)
            for i, p in zip(rows, predictions, strict=True)
        ]
    )
    for i in rows:
        store.add_feedback(
            FeedbackRow(f"tw-{i}", TASK, data.labels[i], "twitter-gold", now, text=data.texts[i])
        )
    return store.online_accuracy(TASK, last_n=len(rows))


def _row(name: str, before: float, after: float | None) -> list[str]:
    if after is None:
        return [name, f"{before:.4f}", "-", "-"]
    return [name, f"{before:.4f}", f"{after:.4f}", f"{(after - before) * 100:+.2f} pts"]


def print_table(
    console: Console,
    result: RetrainReport,
    twitter: dict[str, dict[str, Any]],
    online: float | None,
) -> None:
    champ, cand = result.champion_eval, result.candidate_eval
    table = Table(
        "metric",
        "before",
        "after",
        "change",
        title=f"sentiment {result.champion} (before) → {result.candidate or '-'} (after)",
    )
    after = twitter.get("after")
    n_tw = twitter["before"]["n"]
    for key, label in (("accuracy", "accuracy"), ("macro_f1", "macro-F1")):
        table.add_row(
            *_row(
                f"Twitter held-out {label} (n={n_tw})",
                twitter["before"][key],
                None if after is None else after[key],
            )
        )
    if champ is not None and cand is not None:
        table.add_row(
            *_row(
                f"recent-feedback slice accuracy (n={champ.recent_n})",
                champ.recent_accuracy,
                cand.recent_accuracy,
            )
        )
        table.add_row(
            *_row(
                f"PhraseBank held-out accuracy (n={champ.heldout_n})",
                champ.heldout_accuracy,
                cand.heldout_accuracy,
            )
        )
        table.add_row(
            *_row("PhraseBank held-out macro-F1", champ.heldout_macro_f1, cand.heldout_macro_f1)
        )
    console.print(table)
    if online is not None:
        console.print(f"online accuracy of production on the feedback stream: {online:.4f}")
    console.print(
        f"data: {result.data}; training + export + registration {result.train_seconds:.0f}s, "
        f"whole run {result.wall_seconds:.0f}s",
        highlight=False,
    )
    console.print(f"gate: [bold]{result.status}[/bold] — {result.message}", highlight=False)
    for reason in result.decision.reasons if result.decision else []:
        console.print(f"  {reason}", highlight=False)


def run_demo(
    registry_dir: Path,
    data_dir: Path,
    *,
    work_dir: Path = Path(tempfile.gettempdir()) / "retrain-demo",
    feedback_rows: int = 3000,
    heldout_rows: int = 2000,
    seed: int = 13,
    replay_ratio: float = 1.0,
    tolerance: float = DEFAULT_TOLERANCE,
    overrides: dict[str, float | int | None] | None = None,
    console: Console | None = None,
) -> int:
    """Serve, label, retrain and gate on real data; 0 when the gate decided, else 1 or 2.

    ``overrides`` are training-config values (epochs, lr, head_lr, batch_size, max_length,
    threads); ``None`` values keep the task's defaults.
    """
    console = console or Console()
    source = Registry(registry_dir)
    if source.production(TASK) is None:
        console.print(f"no production {TASK} version in {registry_dir}: train one first")
        return 2
    root = copy_task(registry_dir, work_dir / "registry")
    db = work_dir / "feedback.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    registry = Registry(root)
    data = load_twitter(data_dir / TWITTER_FILE)
    feedback_idx, heldout_idx = twitter_parts(data, feedback_rows, heldout_rows, seed)
    heldout = data.subset(heldout_idx)
    with FeedbackStore.open(f"sqlite:///{db}") as store:
        online = serve_and_label(registry, store, data, feedback_idx)
        twitter = {"before": report(registry.load(TASK), heldout)}
        result = run_retrain(
            TASK,
            registry_root=root,
            data_dir=data_dir,
            store=store,
            config_overrides={k: v for k, v in (overrides or {}).items() if v is not None},
            replay_ratio=replay_ratio,
            tolerance=tolerance,
            min_new_labels=1,
            force=True,
        )
    if result.candidate is not None:
        twitter["after"] = report(registry.load(TASK, result.candidate), heldout)
    print_table(console, result, twitter, online)
    summary = {
        "status": result.status,
        "champion": result.champion,
        "candidate": result.candidate,
        "twitter_heldout": {
            k: {m: v[m] for m in ("accuracy", "macro_f1", "n")} for k, v in twitter.items()
        },
        "gate": result.decision.as_dict() if result.decision else None,
        "train_seconds": result.train_seconds,
        "wall_seconds": result.wall_seconds,
        "online_accuracy_before": online,
        "data": result.data,
    }
    (work_dir / "demo-result.json").write_text(json.dumps(summary, indent=2), "utf-8")
    return 0 if result.status in ("promoted", "refused", "held") else 1
