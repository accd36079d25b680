"""Learning curve: how many Twitter labels a retrain needs, full vs LoRA, random vs chosen.

    python -m retrain.curve --registry registry --data-dir ../shared/data \\
        --counts 250 500 1000 2000 --methods full lora --selections random uncertainty

Every point starts from a fresh copy of the registry's sentiment task and a fresh feedback
store, feeds ``n`` Twitter labels as feedback (a seeded random sample of the feedback pool,
or the ``n`` the production model is least sure of, by the rule of ``retrain.active``),
runs one retrain through the gate, and measures the candidate on a Twitter held-out part
that no feedback touches, its PhraseBank held-out accuracy (forgetting), the training
time and the peak memory of the process. Each point runs in its own process, so the
peak memory is its own. Writes ``curve.json``, ``curve.md`` (a table) and ``curve.png``.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from models.data import TWITTER_FILE, LabeledData, load_twitter
from models.registry import Registry
from retrain.active import labelling_order
from retrain.demo import TASK, copy_task, twitter_parts
from retrain.evaluation import report
from retrain.job import run_retrain
from retrain.store import FeedbackRow, FeedbackStore

logger = logging.getLogger(__name__)

POOL_ROWS = 4000
HELDOUT_ROWS = 1500
SEED = 13


def _pool_and_heldout(data_dir: Path) -> tuple[LabeledData, list[int], list[int]]:
    data = load_twitter(data_dir / TWITTER_FILE)
    pool, heldout = twitter_parts(data, POOL_ROWS, HELDOUT_ROWS, SEED)
    return data, pool, heldout


def method_overrides(method: str, threads: int) -> tuple[str, dict[str, Any]]:
    """A curve's method name as (retrain method, config overrides).

    ``full`` and ``lora`` are the retrain's methods; ``lora-top<N>`` is LoRA with adapters
    in the encoder's top N layers only (``--lora-layers``).
    """
    overrides: dict[str, Any] = {"threads": threads} if threads else {}
    if method.startswith("lora-top"):
        layers = method.removeprefix("lora-top")
        if not layers.isdigit():
            raise ValueError(f"unknown curve method {method!r}: expected lora-top<N>")
        return "lora", {**overrides, "lora_layers": int(layers)}
    return method, overrides


def choose(
    selection: str, count: int, pool: Sequence[int], scores: dict[int, list[float]] | None
) -> list[int]:
    """``count`` pool rows: a seeded random sample, or the least confident first."""
    if selection == "random":
        return random.Random(SEED).sample(list(pool), min(count, len(pool)))
    if scores is None:
        raise ValueError("uncertainty selection needs the production model's scores")
    import numpy as np

    probs = np.asarray([scores[i] for i in pool], dtype=np.float64)
    return [pool[i] for i in labelling_order(probs)[:count]]


def production_scores(
    registry_dir: Path, data: LabeledData, pool: Sequence[int]
) -> dict[int, list[float]]:
    """The production model's probabilities of every pool row (the stream's scores)."""
    classifier = Registry(registry_dir).load(TASK)
    predictions = classifier.predict([data.texts[i] for i in pool])
    return {
        i: [p.probs[name] for name in classifier.labels]
        for i, p in zip(pool, predictions, strict=True)
    }


def run_point(
    registry_dir: Path,
    data_dir: Path,
    work_dir: Path,
    *,
    count: int,
    method: str,
    selection: str,
    scores_file: Path | None,
    threads: int,
    min_int8_agreement: float | None = None,
) -> dict[str, Any]:
    """One retrain on ``count`` labels; the numbers of one row of the curve."""
    data, pool, heldout_idx = _pool_and_heldout(data_dir)
    scores = None
    if scores_file is not None:
        scores = {int(k): v for k, v in json.loads(scores_file.read_text("utf-8")).items()}
    chosen = choose(selection, count, pool, scores)
    root = copy_task(registry_dir, work_dir / "registry")
    db = work_dir / "feedback.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    heldout = data.subset(heldout_idx)
    registry = Registry(root)
    with FeedbackStore.open(f"sqlite:///{db}") as store:
        now = datetime.now(UTC)
        for i in chosen:
            store.add_feedback(
                FeedbackRow(f"tw-{i}", TASK, data.labels[i], "curve", now, text=data.texts[i])
            )
        before = report(registry.load(TASK), heldout)
        started = time.monotonic()
        retrain_method, overrides = method_overrides(method, threads)
        result = run_retrain(
            TASK,
            registry_root=root,
            data_dir=data_dir,
            store=store,
            method=retrain_method,
            config_overrides=overrides or None,
            min_new_labels=1,
            force=True,
            min_int8_agreement=min_int8_agreement,
            show_progress=False,
        )
        wall = time.monotonic() - started
    if result.candidate is None or result.candidate_eval is None or result.champion_eval is None:
        return {
            "count": count,
            "method": method,
            "selection": selection,
            "status": result.status,
            "message": result.message,
        }
    after = report(registry.load(TASK, result.candidate), heldout)
    history = registry.verify(TASK, result.candidate)["training"]["history"]
    return {
        "count": count,
        "method": method,
        "selection": selection,
        "status": result.status,
        "feedback_train_rows": result.data.get("feedback_train_rows"),
        "twitter_heldout_n": after["n"],
        "twitter_accuracy_before": before["accuracy"],
        "twitter_accuracy_after": after["accuracy"],
        "twitter_macro_f1_after": after["macro_f1"],
        "phrasebank_accuracy_before": result.champion_eval.heldout_accuracy,
        "phrasebank_accuracy_after": result.candidate_eval.heldout_accuracy,
        "train_seconds": result.train_seconds,
        "epochs_seconds": round(sum(e.get("seconds", 0.0) for e in history), 1),
        "epochs_cpu_seconds": round(sum(e.get("cpu_seconds", 0.0) for e in history), 1),
        "retrain_wall_seconds": round(wall, 1),
        # Linux reports ru_maxrss in KiB
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def write_outputs(rows: list[dict[str, Any]], out_dir: Path) -> None:
    """``curve.json``, a markdown table and a PNG of Twitter accuracy against labels."""
    (out_dir / "curve.json").write_text(json.dumps(rows, indent=2), "utf-8")
    lines = [
        "| labels | method | chosen | Twitter held-out acc. (before → after) | PhraseBank "
        "held-out acc. (before → after) | training + export | peak RSS |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "twitter_accuracy_after" not in r:
            lines.append(
                f"| {r['count']} | {r['method']} | {r['selection']} | {r['status']} | | | |"
            )
            continue
        gain = (r["twitter_accuracy_after"] - r["twitter_accuracy_before"]) * 100
        drop = (r["phrasebank_accuracy_after"] - r["phrasebank_accuracy_before"]) * 100
        lines.append(
            f"| {r['count']} | {r['method']} | {r['selection']} | "
            f"{r['twitter_accuracy_before']:.3f} → {r['twitter_accuracy_after']:.3f} "
            f"({gain:+.1f}) | {r['phrasebank_accuracy_before']:.3f} → "
            f"{r['phrasebank_accuracy_after']:.3f} ({drop:+.1f}) | {r['train_seconds']:.0f} s | "
            f"{r['peak_rss_mib']:.0f} MiB |"
        )
    (out_dir / "curve.md").write_text("\n".join(lines) + "\n", "utf-8")
    _plot(rows, out_dir / "curve.png")


def _plot(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    series: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        if "twitter_accuracy_after" in r:
            series.setdefault((r["method"], r["selection"]), []).append(r)
    for (method, selection), points in sorted(series.items()):
        points.sort(key=lambda r: r["count"])
        ax.plot(
            [p["count"] for p in points],
            [p["twitter_accuracy_after"] for p in points],
            marker="o",
            linestyle="-" if selection == "random" else "--",
            label=f"{method}, {selection}",
        )
    if rows and "twitter_accuracy_before" in rows[0]:
        ax.axhline(rows[0]["twitter_accuracy_before"], color="grey", lw=1, label="before")
    ax.set_xscale("log")
    ax.set_xlabel("Twitter labels fed back")
    ax.set_ylabel("Twitter held-out accuracy")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m retrain.curve", description=__doc__)
    parser.add_argument("--registry", type=Path, required=True)
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/data"))
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "retrain-curve")
    parser.add_argument("--counts", type=int, nargs="+", default=[250, 500, 1000, 2000])
    parser.add_argument(
        "--methods",
        nargs="+",
        default=["full", "lora"],
        help="full, lora, or lora-top<N> (adapters in the top N encoder layers only)",
    )
    parser.add_argument("--selections", nargs="+", default=["random", "uncertainty"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--min-int8-agreement",
        type=float,
        default=None,
        help="Relax the export's int8 check (briefly trained champions have many near-ties).",
    )
    parser.add_argument("--point", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--scores", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if Registry(args.registry).production(TASK) is None:
        print(f"no production {TASK} version in {args.registry}: train one first", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    if args.point:  # one point, in its own process (its peak memory is its own)
        (count,), (method,), (selection,) = args.counts, args.methods, args.selections
        row = run_point(
            args.registry,
            args.data_dir,
            args.out,
            count=count,
            method=method,
            selection=selection,
            scores_file=args.scores,
            threads=args.threads,
            min_int8_agreement=args.min_int8_agreement,
        )
        (args.out / "point.json").write_text(json.dumps(row), "utf-8")
        return 0
    scores_file = None
    if "uncertainty" in args.selections:
        data, pool, _ = _pool_and_heldout(args.data_dir)
        scores_file = args.out / "pool-scores.json"
        if not scores_file.is_file():
            scores = production_scores(args.registry, data, pool)
            scores_file.write_text(json.dumps(scores), "utf-8")
    rows: list[dict[str, Any]] = []
    for count in sorted(args.counts):
        for selection in args.selections:  # full and LoRA side by side on the same labels
            for method in args.methods:
                point_dir = args.out / f"{count}-{method}-{selection}"
                command = [
                    sys.executable,
                    "-m",
                    "retrain.curve",
                    "--point",
                    *("--registry", str(args.registry), "--data-dir", str(args.data_dir)),
                    *("--out", str(point_dir), "--counts", str(count), "--methods", method),
                    *("--selections", selection, "--threads", str(args.threads)),
                    *(("--scores", str(scores_file)) if scores_file else ()),
                    *(
                        ("--min-int8-agreement", str(args.min_int8_agreement))
                        if args.min_int8_agreement is not None
                        else ()
                    ),
                ]
                subprocess.run(command, check=True)
                rows.append(json.loads((point_dir / "point.json").read_text("utf-8")))
                write_outputs(rows, args.out)  # after every point: a partial curve survives
                print(json.dumps(rows[-1]), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
