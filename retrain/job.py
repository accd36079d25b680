"""One retrain run: new feedback → data set → fine-tune from production → evaluate → gate.

The run fine-tunes the production version's checkpoint on the labels it has not seen
(feedback ids after the one it was trained through) plus a replay sample, registers the
candidate without promoting it, scores candidate and champion with the serving runtime,
records the gate's decision on the candidate in the registry, and on promotion moves the
production alias and announces the new version through ``publish`` (or, with a shadow
period required, puts the candidate in shadow; :func:`review_shadow` decides later).
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from models.data import SPLIT_SEED, LabeledData, stratified_sample, task_split
from models.drift_reference import ensure_drift_reference
from models.exceptions import ModelsError
from models.lora import check_method
from models.pipeline import default_config, train_and_register
from models.registry import Registry
from retrain.dataset import (
    DATASET_SEED,
    REPLAY_RATIO,
    build_dataset,
    feedback_data,
    write_jsonl,
)
from retrain.evaluation import evaluate_version
from retrain.exceptions import RetrainError
from retrain.gate import DEFAULT_TOLERANCE, EvalResult, GateDecision, GatePolicy, decide
from retrain.holdout import HOLDOUT_CAP, HOLDOUT_FILE, HOLDOUT_FRACTION, FeedbackHoldout
from retrain.publish import Publish, announce
from retrain.store import FeedbackStore

logger = logging.getLogger(__name__)

# Incremental fine-tuning from a trained checkpoint: fewer epochs and a gentler encoder
# learning rate than training from the pretrained encoder (measured with retrain.demo).
RETRAIN_DEFAULTS: dict[str, Any] = {"epochs": 2, "lr": 3e-5, "head_lr": 1e-3, "max_length": 64}
# LoRA trains ~1.5 % of the weights (rank 8 on every linear layer of the encoder): the
# adapters need a larger learning rate than the full weights (measured with retrain.compare).
LORA_RETRAIN_DEFAULTS: dict[str, Any] = {"lr": 5e-4}
MIN_NEW_LABELS = 100
MAX_FEEDBACK_ROWS = 20_000


@dataclass(frozen=True)
class RetrainReport:
    """What one retrain run did (skipped, failed, refused, held or promoted) and its numbers."""

    task: str
    status: str
    message: str
    champion: str | None = None
    candidate: str | None = None
    decision: GateDecision | None = None
    champion_eval: EvalResult | None = None
    candidate_eval: EvalResult | None = None
    data: dict[str, Any] = field(default_factory=dict)
    feedback_ids: tuple[int, int] | None = None
    train_seconds: float = 0.0
    wall_seconds: float = 0.0
    announced: bool | None = None
    method: str = "full"


def run_retrain(
    task: str,
    *,
    registry_root: Path,
    data_dir: Path,
    store: FeedbackStore,
    config_overrides: Mapping[str, Any] | None = None,
    method: str = "full",
    replay_ratio: float = REPLAY_RATIO,
    holdout_fraction: float = HOLDOUT_FRACTION,
    holdout_cap: int = HOLDOUT_CAP,
    tolerance: float = DEFAULT_TOLERANCE,
    min_new_labels: int = MIN_NEW_LABELS,
    max_feedback_rows: int | None = MAX_FEEDBACK_ROWS,
    seed: int = DATASET_SEED,
    heldout_limit: int | None = None,
    eval_threads: int = 0,
    min_int8_agreement: float | None = None,
    force: bool = False,
    publish: Publish | None = None,
    show_progress: bool = True,
    policy: GatePolicy | None = None,
    drift_reference: bool = True,
    shadow_first: bool = False,
) -> RetrainReport:
    """Run one retrain of ``task``; never raises for a refusal, a skip or a failed training.

    ``method`` is ``full`` or ``lora`` (adapters merged before the export).
    ``config_overrides`` replace fields of the task's training config on top of
    :data:`RETRAIN_DEFAULTS` (and :data:`LORA_RETRAIN_DEFAULTS` for LoRA). The gate
    judges on the recorded feedback held-out slice (``retrain.holdout``: a text joins it
    with probability ``holdout_fraction`` until it holds ``holdout_cap`` texts); every
    other new label is trained on. ``heldout_limit`` scores a fixed sample of the held-out
    split (tests); ``min_int8_agreement`` relaxes the export check for briefly trained
    models (None: the pipeline's bar). Without ``force`` a run with no label newer than
    the last run's is skipped. ``policy`` (significance level, minimum slice, tolerance)
    supersedes ``tolerance``. With ``drift_reference`` the candidate's drift profile is
    written (held-out plus the judged feedback slice; see :mod:`models.drift`). With
    ``shadow_first`` a candidate the gate passes goes into shadow instead of production;
    :func:`review_shadow` promotes it after its shadow period (or ends the shadow).
    Raises :class:`RetrainError` when the task has no production version.
    """
    started = time.monotonic()
    check_method(method)
    registry = Registry(registry_root)
    champion = registry.production(task)
    if champion is None:
        raise RetrainError(
            f"task {task!r} has no production version in {registry_root}: nothing to fine-tune "
            f"from (run `streamsense train --task {task}` first)"
        )
    since = store.trained_through(task, champion)
    until = store.max_id(task)
    available = store.count_new(task, since)
    if not force and store.count_new(task, store.last_attempt(task)) == 0:
        return _skip(task, champion, started, "no new labelled texts since the last retrain run")
    if available < max(1, min_new_labels):
        return _skip(
            task,
            champion,
            started,
            f"{available} new labelled text(s) since {champion} was trained (feedback id > "
            f"{since}); a retrain needs at least {min_new_labels}",
        )
    rows = store.training_rows(task, since, until, limit=max_feedback_rows)
    original_train, heldout = task_split(task, data_dir)
    first = rows[0].id
    feedback, dropped = feedback_data(
        rows, original_train.label_names, source=f"{task} feedback ids {first}..{until}"
    )
    if len(feedback) < max(4, min_new_labels // 2):  # most were duplicates or bad labels
        why = f"only {len(feedback)} usable label(s) of {len(rows)} new (dropped: {dropped})"
        return _skip(task, champion, started, why)
    holdout = FeedbackHoldout.load(
        registry.task_dir(task) / HOLDOUT_FILE, fraction=holdout_fraction, cap=holdout_cap
    )
    earlier, _ = feedback_data(
        store.training_rows(task, 0, since, limit=max_feedback_rows) if since > 0 else [],
        original_train.label_names,
    )
    dataset = build_dataset(
        feedback,
        original_train,
        replay_ratio=replay_ratio,
        seed=seed,
        dropped=dropped,
        holdout=holdout,
        earlier=earlier,
    )
    holdout.save()  # chosen once: later runs judge on the same texts
    store.mark_attempt(task, until)
    if heldout_limit is not None:
        heldout = stratified_sample(heldout, heldout_limit, seed=SPLIT_SEED)
    config = default_config(task, **_config_values(method, config_overrides))
    logger.info("retraining %s from %s on feedback ids %s..%s", task, champion, first, until)
    agreement: dict[str, Any] = (
        {} if min_int8_agreement is None else {"min_int8_agreement": min_int8_agreement}
    )
    with tempfile.TemporaryDirectory(prefix=f"retrain-{task}-") as tmp:
        data_file = write_jsonl(dataset.train, Path(tmp) / f"{task}-feedback-{first}-{until}.jsonl")
        train_started = time.monotonic()
        try:
            outcome = train_and_register(
                task,
                registry_root,
                data_dir,
                config,
                data_file=data_file,
                init_from=champion,
                promote=False,
                show_progress=show_progress,
                # all of dataset.train is trained on; the epochs and the export checks are
                # judged on the task's fixed held-out split, as the gate judges forgetting
                heldout_data=heldout,
                **agreement,
            )
        except ModelsError as exc:
            logger.error("retrain of %s from %s failed: %s", task, champion, exc)
            return RetrainReport(
                task=task,
                status="failed",
                message=f"training failed, nothing registered: {exc}",
                champion=champion,
                data=dataset.summary(),
                feedback_ids=(first, until),
                wall_seconds=round(time.monotonic() - started, 1),
            )
        train_seconds = round(time.monotonic() - train_started, 1)
    candidate = outcome.version
    store.mark_trained(task, candidate, until)
    champ = evaluate_version(
        registry, task, champion, dataset.recent, heldout, threads=eval_threads
    )
    cand = evaluate_version(
        registry, task, candidate, dataset.recent, heldout, threads=eval_threads
    )
    decision = decide(cand, champ, tolerance, policy=policy)
    registry.record_decision(
        task,
        candidate,
        {
            **decision.as_dict(),
            "gate": "retrain",
            "champion": champion,
            "candidate": candidate,
            "feedback_ids": [first, until],
            "data": dataset.summary(),
            "config": config.as_dict(),
            "method": config.method,
            "train_seconds": train_seconds,
        },
    )
    logger.info(
        "gate: %s/%s over %s: %s; %s",
        task,
        candidate,
        champion,
        decision.summary(),
        decision.reasons,
    )
    if drift_reference:
        _write_drift_reference(
            registry, task, candidate, data_dir, dataset.recent, feedback.texts, eval_threads
        )
    announced: bool | None = None
    if decision.promote and shadow_first:
        registry.set_shadow(task, candidate, reason=_promotion_reason(decision))
        message = (
            f"{candidate} passed the gate: in shadow beside {champion} until the shadow "
            "review promotes it or ends its shadow"
        )
    elif decision.promote:
        registry.promote(task, candidate, reason=_promotion_reason(decision))
        announced = announce(publish, task, candidate)
        message = f"promoted {candidate} over {champion}"
        if announced is False:
            message += " (NOT announced to the workers: see the log; they load it on restart)"
    elif decision.outcome == "not_enough_evidence":
        held = [r for r in decision.reasons if r.startswith("NOT ENOUGH")]
        message = f"held back {candidate} (not enough evidence); {champion} stays in production: "
        message += "; ".join(held)
    else:
        failed = [r for r in decision.reasons if r.startswith("FAILED")]
        message = f"refused {candidate}; {champion} stays in production: " + "; ".join(failed)
    return RetrainReport(
        task=task,
        status="shadow"
        if decision.promote and shadow_first
        else {"promote": "promoted", "refuse": "refused"}.get(decision.outcome, "held"),
        message=message,
        champion=champion,
        candidate=candidate,
        decision=decision,
        champion_eval=champ,
        candidate_eval=cand,
        data=dataset.summary(),
        feedback_ids=(first, until),
        train_seconds=train_seconds,
        wall_seconds=round(time.monotonic() - started, 1),
        announced=announced,
        method=config.method,
    )


def _config_values(method: str, overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """Training-config fields of a retrain: retrain defaults, LoRA's, then the caller's."""
    values = {**RETRAIN_DEFAULTS, "method": check_method(method)}
    if method == "lora":
        values.update(LORA_RETRAIN_DEFAULTS)
    values.update(overrides or {})
    return values


def _skip(task: str, champion: str, started: float, why: str) -> RetrainReport:
    logger.info("retrain of %s skipped: %s", task, why)
    return RetrainReport(
        task=task,
        status="skipped",
        message=why,
        champion=champion,
        wall_seconds=round(time.monotonic() - started, 1),
    )


def _write_drift_reference(
    registry: Registry,
    task: str,
    version: str,
    data_dir: Path,
    recent: LabeledData,
    feedback_texts: list[str],
    threads: int,
) -> None:
    """The candidate's drift profile; a failure is logged, the run's outcome stands."""
    try:
        ensure_drift_reference(
            registry,
            task,
            version,
            data_dir,
            extra=recent,
            extra_vocabulary=feedback_texts,
            threads=threads,
        )
    except (ModelsError, OSError, ValueError) as exc:
        logger.error("no drift reference for %s/%s: %s", task, version, exc)


def _promotion_reason(decision: GateDecision) -> str:
    n = decision.numbers
    return (
        f"retrain gate: recent accuracy {n['candidate_recent_accuracy']:.4f} vs "
        f"{n['champion_recent_accuracy']:.4f}, held-out accuracy "
        f"{n['candidate_heldout_accuracy']:.4f} vs {n['champion_heldout_accuracy']:.4f}; "
        f"{decision.summary()}"
    )
