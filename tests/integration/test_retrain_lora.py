"""LoRA retrain on a real (small) registry: adapters merged, exported, and scored alike."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from safetensors.torch import load_file

from models.data import TWITTER_FILE, load_twitter
from models.export import onnx_logits
from models.network import WEIGHTS_FILE, MeanPoolClassifier
from models.registry import Registry
from models.runtime import FP32_FILE
from models.tokenizer import TextEncoder
from models.training import predict_logits
from retrain.holdout import HOLDOUT_FILE
from retrain.job import run_retrain
from retrain.store import FeedbackRow, FeedbackStore
from tests.model_fixtures import FIXTURE_MIN_INT8_AGREEMENT, copy_registry, fixture_data_dir

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
FAST = {"epochs": 2, "batch_size": 16, "eval_limit": 100, "threads": 1}
QUERY = "encoder.encoder.layer.0.attention.self.query.weight"
EMBEDDINGS = "encoder.embeddings.word_embeddings.weight"


@pytest.mark.slow
def test_lora_retrain_serves_a_merged_model_that_scores_like_torch(
    trained_registry: Path, tmp_path: Path
) -> None:
    root = copy_registry(trained_registry, tmp_path / "registry")
    registry = Registry(root)
    champion = registry.production("sentiment")
    assert champion is not None
    data_dir = fixture_data_dir()
    tweets = load_twitter(data_dir / TWITTER_FILE)
    order = random.Random(3).sample(range(len(tweets)), 220)
    fed, unseen = order[:160], order[160:]
    store = FeedbackStore.open(f"sqlite:///{tmp_path}/feedback.db")
    for i in fed:
        store.add_feedback(
            FeedbackRow(f"tw-{i}", "sentiment", tweets.labels[i], "desk", T0, text=tweets.texts[i])
        )

    report = run_retrain(
        "sentiment",
        registry_root=root,
        data_dir=data_dir,
        store=store,
        method="lora",
        config_overrides=FAST,
        min_new_labels=100,
        heldout_limit=200,
        min_int8_agreement=FIXTURE_MIN_INT8_AGREEMENT,
        show_progress=False,
    )

    assert report.status != "failed", report.message
    assert report.method == "lora" and report.candidate is not None
    manifest = registry.verify("sentiment", report.candidate)
    assert manifest["parent"] == champion
    training = manifest["training"]
    assert training["method"] == "lora"
    # every labelled text outside the recorded slice is trained on (with the replay rows):
    # nothing of the retrain's data is split off again for the epochs' evaluation
    assert training["train_data"]["rows"] == report.data["train_rows"]
    assert report.data["feedback_train_rows"] + report.data["recent_rows"] == 160
    assert training["split"]["heldout"] == "given"
    assert training["heldout_data"]["source"].endswith("Sentences_50Agree.txt")
    adaptation = training["adaptation"]
    assert (adaptation["rank"], adaptation["alpha"]) == (8, 16)
    assert adaptation["target_modules"] == ["query", "key", "value", "dense"]
    assert 0 < adaptation["trainable_parameters"] < 0.02 * adaptation["total_parameters"]
    assert adaptation["merge_max_abs_logit_diff"] < 1e-3
    assert training["config"]["lr"] == 5e-4  # the LoRA default, not the full one

    # the version is a plain checkpoint with the adapters folded in, and its ONNX graph
    # scores unseen tweets as the merged torch model does
    version_dir = registry.version_dir("sentiment", report.candidate)
    model = MeanPoolClassifier.from_checkpoint(version_dir)
    encoder = TextEncoder(version_dir / "tokenizer.json", 64)
    texts = [tweets.texts[i] for i in unseen]
    torch_scores = predict_logits(model, encoder, texts)
    onnx_scores = onnx_logits(version_dir / FP32_FILE, encoder, texts, threads=1)
    assert float(np.abs(torch_scores - onnx_scores).max()) < 1e-3
    parent = load_file(str(registry.version_dir("sentiment", champion) / WEIGHTS_FILE))
    merged = load_file(str(version_dir / WEIGHTS_FILE))
    assert set(merged) == set(parent)
    assert not np.allclose(merged[QUERY].numpy(), parent[QUERY].numpy())
    assert np.array_equal(merged[EMBEDDINGS].numpy(), parent[EMBEDDINGS].numpy())
    served = registry.load("sentiment", report.candidate)
    assert served.version == report.candidate
    served_labels = [p.label for p in served.predict(texts)]
    torch_labels = [model.labels[i] for i in torch_scores.argmax(axis=1)]
    same = sum(a == b for a, b in zip(served_labels, torch_labels, strict=True))
    assert same >= FIXTURE_MIN_INT8_AGREEMENT * len(texts)  # int8 serving, near-ties aside

    # every fed label was trained on except the recorded held-out slice, which the gate used
    data = report.data
    assert (root / "sentiment" / HOLDOUT_FILE).is_file()
    assert data["feedback_heldout"]["heldout_texts"] == data["recent_rows"] > 0
    assert data["feedback_train_rows"] + data["recent_rows"] == len(fed)
