"""Contract every registered model must meet, checked on really trained (small) models."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from models.data import SENTIMENT_LABELS, banking77_labels, stratified_sample, task_split
from models.exceptions import TamperedArtifactError
from models.export import LOGIT_TOLERANCE
from models.network import MeanPoolClassifier
from models.pipeline import ensure_models
from models.pool import InferencePool
from models.registry import Registry
from models.rowloop import PROBE_TEXTS, open_row_loop
from models.runtime import Classifier, session_options
from models.tokenizer import TextEncoder
from models.training import predict_logits
from tests.model_fixtures import (
    FIXTURE_MIN_INT8_AGREEMENT,
    copy_registry,
    fixture_data_dir,
)

TASKS = ("sentiment", "intent")
REPO = Path(__file__).resolve().parents[2]


def heldout_texts(task: str, n: int) -> list[str]:
    _, heldout = task_split(task, fixture_data_dir())
    return stratified_sample(heldout, n, seed=5).texts


@pytest.fixture(scope="module", params=TASKS)
def task(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def classifier(trained_registry: Path, task: str) -> Classifier:
    model = Registry(trained_registry).load(task, threads=1)
    model.warmup()
    return model


def test_labels_are_the_tasks_labels(
    trained_registry: Path, classifier: Classifier, task: str
) -> None:
    expected = (
        list(SENTIMENT_LABELS) if task == "sentiment" else banking77_labels(fixture_data_dir())
    )
    assert classifier.labels == expected
    assert classifier.task == task
    assert classifier.version == Registry(trained_registry).production(task)


def test_output_shape_and_probabilities(classifier: Classifier, task: str) -> None:
    texts = heldout_texts(task, 40)
    predictions = classifier.predict(texts)
    assert len(predictions) == len(texts)
    for prediction in predictions:
        assert list(prediction.probs) == classifier.labels
        assert sum(prediction.probs.values()) == pytest.approx(1.0, abs=1e-6)
        assert all(0.0 <= p <= 1.0 for p in prediction.probs.values())
        assert prediction.label == max(prediction.probs, key=prediction.probs.__getitem__)
        assert prediction.confidence == prediction.probs[prediction.label]
    assert classifier.predict([]) == []


def test_model_beats_the_majority_baseline(classifier: Classifier, task: str) -> None:
    _, heldout = task_split(task, fixture_data_dir())
    sample = stratified_sample(heldout, 200, seed=5)
    predicted = [p.label for p in classifier.predict(sample.texts)]
    accuracy = np.mean([p == t for p, t in zip(predicted, sample.labels, strict=True)])
    majority = max(sample.label_counts().values()) / len(sample)
    assert accuracy > majority + 0.05, (accuracy, majority)


def test_onnx_fp32_matches_torch_within_tolerance(trained_registry: Path, task: str) -> None:
    registry = Registry(trained_registry)
    version = registry.production(task)
    assert version is not None
    directory = registry.version_dir(task, version)
    onnx_model = registry.load(task, threads=1, precision="fp32")
    torch_model = MeanPoolClassifier.from_checkpoint(directory)
    encoder = TextEncoder(directory / "tokenizer.json", onnx_model.max_length)
    texts = heldout_texts(task, 64)
    reference = predict_logits(torch_model, encoder, texts)
    diff = np.abs(onnx_model.logits(texts) - reference).max()
    assert diff < LOGIT_TOLERANCE
    recorded = registry.verify(task, version)["agreement"]
    assert recorded["max_abs_logit_diff"] < LOGIT_TOLERANCE


def test_int8_agrees_with_fp32(trained_registry: Path, classifier: Classifier, task: str) -> None:
    fp32 = Registry(trained_registry).load(task, threads=1, precision="fp32")
    assert classifier.model_file == "model.int8.onnx"  # the CPU default
    texts = heldout_texts(task, 150)
    same = [
        a.label == b.label
        for a, b in zip(classifier.predict(texts), fp32.predict(texts), strict=True)
    ]
    assert np.mean(same) >= FIXTURE_MIN_INT8_AGREEMENT


def test_same_input_twice_gives_identical_output(classifier: Classifier, task: str) -> None:
    texts = heldout_texts(task, 16)
    assert classifier.predict(texts) == classifier.predict(texts)


@pytest.mark.parametrize("precision", ["int8", "fp32"])
def test_batch_and_single_agree_despite_padding(
    trained_registry: Path, task: str, precision: str
) -> None:
    model = Registry(trained_registry).load(task, threads=1, precision=precision)
    texts = heldout_texts(task, 12)
    texts.append("ok")  # much shorter than the rest: heavily padded in the batch
    batched = model.predict(texts)
    for text, in_batch in zip(texts, batched, strict=True):
        alone = model.predict([text])[0]
        assert alone.label == in_batch.label
        for label in model.labels:
            assert alone.probs[label] == pytest.approx(in_batch.probs[label], abs=1e-4)


def test_attention_mask_is_honoured(trained_registry: Path, task: str) -> None:
    # Same ids, but the mask hides the tail: the result must equal the unpadded text's.
    model = Registry(trained_registry).load(task, threads=1, precision="fp32")
    encoder = TextEncoder(model.model_dir / "tokenizer.json", model.max_length)
    ids, mask = encoder.encode(["the short one", "a considerably longer text to pad against"])
    padded = model.session.run(["logits"], {"input_ids": ids[:1], "attention_mask": mask[:1]})
    garbage = ids[:1].copy()
    garbage[0, int(mask[0].sum()) :] = 1000  # tokens that must be ignored
    masked = model.session.run(["logits"], {"input_ids": garbage, "attention_mask": mask[:1]})
    np.testing.assert_allclose(masked[0], padded[0], atol=1e-4)


def test_predict_is_thread_safe(classifier: Classifier, task: str) -> None:
    texts = heldout_texts(task, 32)
    chunks = [texts[i : i + 4] for i in range(0, len(texts), 4)]
    expected = [classifier.predict(chunk) for chunk in chunks]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(classifier.predict, chunks))
    assert results == expected


def test_provider_is_reported_from_the_session(classifier: Classifier) -> None:
    assert classifier.provider in classifier.session.get_providers()
    assert classifier.provider in {"CPUExecutionProvider", "CUDAExecutionProvider"}


@pytest.mark.gpu
def test_gpu_serves_fp32_on_cuda(trained_registry: Path) -> None:
    model = Registry(trained_registry).load("sentiment")
    assert model.provider == "CUDAExecutionProvider"
    assert model.model_file == "model.onnx"


def test_tampered_artifact_is_refused(trained_registry: Path, tmp_path: Path, task: str) -> None:
    root = copy_registry(trained_registry, tmp_path / "registry")
    registry = Registry(root)
    version = registry.production(task)
    assert version is not None
    weights = registry.version_dir(task, version) / "model.int8.onnx"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(TamperedArtifactError, match=r"model\.int8\.onnx"):
        registry.load(task)


def test_manifest_describes_the_version(trained_registry: Path, task: str) -> None:
    registry = Registry(trained_registry)
    version = registry.production(task)
    assert version is not None
    manifest = registry.verify(task, version)
    for name in (
        "model.onnx",
        "model.int8.onnx",
        "model.safetensors",
        "config.json",
        "labels.json",
        "tokenizer.json",
        "vocab.txt",
        "curves.png",
        "metrics.json",
    ):
        assert name in manifest["files"]
    assert manifest["parent"] is None
    assert manifest["training"]["train_data"]["rows"] > 0
    assert (
        sum(manifest["training"]["train_data"]["label_counts"].values())
        == (manifest["training"]["train_data"]["rows"])
    )
    assert 0.0 < manifest["metrics"]["heldout"]["accuracy"] <= 1.0
    assert manifest["libraries"]["onnxruntime"]


def test_ensure_models_keeps_existing_production(trained_registry: Path) -> None:
    registry = Registry(trained_registry)
    before = {task: registry.production(task) for task in TASKS}
    assert ensure_models(trained_registry, fixture_data_dir(), show_progress=False) == before
    assert {task: registry.versions(task) for task in TASKS} == {
        task: [before[task]] for task in TASKS
    }


def _run_cli(registry: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "STREAMSENSE_REGISTRY_DIR": str(registry), "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "streams.cli", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_score_csv_and_jsonl_with_bad_rows(trained_registry: Path, tmp_path: Path) -> None:
    version = Registry(trained_registry).production("sentiment")
    csv_in = tmp_path / "news.csv"
    csv_in.write_text(
        'id,text\nn1,"Operating profit rose to EUR 13.1 mn, up from EUR 8.7 mn"\n'
        "n2,\nn3,The company cut 500 jobs after sales collapsed\n",
        encoding="utf-8",
    )
    jsonl_in = tmp_path / "news.jsonl"
    jsonl_in.write_text(
        '{"id": 1, "text": "Net sales increased by 10 %"}\n'
        '{"id": 2, "text": 42}\n'
        "this is not json\n"
        '{"id": 4}\n'
        '{"text": "Shares fell"}\n',
        encoding="utf-8",
    )
    for source, expected in (
        (csv_in, [("n1", True), ("n2", False), ("n3", True)]),
        (jsonl_in, [(1, True), (2, False), (None, False), (4, False), (None, True)]),
    ):
        out = tmp_path / f"{source.stem}-{source.suffix[1:]}.jsonl"
        result = _run_cli(
            trained_registry,
            "score",
            "--task",
            "sentiment",
            "--input",
            str(source),
            "--output",
            str(out),
        )
        assert result.returncode == 0, result.stderr
        lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
        assert len(lines) == len(expected)
        for line, (record_id, ok) in zip(lines, expected, strict=True):
            assert line.get("id") == record_id
            assert line["model_version"] == version
            if ok:
                assert line["label"] in SENTIMENT_LABELS
                assert sum(line["probs"].values()) == pytest.approx(1.0, abs=1e-6)
                assert "error" not in line
            else:
                assert line["error"]
                assert "label" not in line


def test_score_refuses_tampered_model_with_one_line(trained_registry: Path, tmp_path: Path) -> None:
    root = copy_registry(trained_registry, tmp_path / "registry")
    registry = Registry(root)
    version = registry.production("intent")
    assert version is not None
    (registry.version_dir("intent", version) / "labels.json").write_text("[]")
    source = tmp_path / "in.jsonl"
    source.write_text('{"text": "where is my card"}\n')
    result = _run_cli(
        root,
        "score",
        "--task",
        "intent",
        "--input",
        str(source),
        "--output",
        str(tmp_path / "out.jsonl"),
    )
    assert result.returncode != 0
    assert "labels.json" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_inference_pool_scores_a_batch_as_one_call_does(trained_registry: Path) -> None:
    """Both models of a batch, each split over two parallel calls: the same predictions, in
    the same order, as one call per model (the int8 model scores each text alone)."""
    registry = Registry(trained_registry)
    models = [registry.load(task, threads=1) for task in ("intent", "sentiment")]
    texts = [*heldout_texts("intent", 24), "", "x" * 3000, *heldout_texts("sentiment", 13)]
    pool = InferencePool(2)
    try:
        assert pool.predict(models, texts) == [model.predict(texts) for model in models]
    finally:
        pool.shutdown()


def test_int8_loops_a_batch_in_one_call_with_the_logits_of_one_call_per_text(
    trained_registry: Path, task: str
) -> None:
    """The served int8 model scores a batch share in one ONNX Runtime call (models.rowloop):
    bit for bit the logits of one call per text, whatever the batch around a text."""
    registry = Registry(trained_registry)
    looped = registry.load(task, threads=1)
    per_text = registry.load(task, threads=1, row_loop=False)
    assert looped.row_loop and not per_text.row_loop
    texts = [*heldout_texts(task, 150), "", "ok", "x " * 400]  # the last one truncated
    expected = per_text.logits(texts)
    np.testing.assert_array_equal(looped.logits(texts), expected)
    backwards = texts[::-1]  # other batch-mates and other padding for every text
    in_sevens = np.concatenate(
        [looped.logits(backwards[i : i + 7]) for i in range(0, len(texts), 7)]
    )
    np.testing.assert_array_equal(in_sevens[::-1], expected)


def test_a_row_loop_that_differs_from_one_call_per_text_is_not_served(
    trained_registry: Path, caplog: pytest.LogCaptureFixture
) -> None:
    registry = Registry(trained_registry)
    per_text = registry.load("sentiment", threads=1, row_loop=False)
    probe = TextEncoder(per_text.model_dir / "tokenizer.json", per_text.max_length).encode(
        PROBE_TEXTS
    )
    expected = per_text.logits(PROBE_TEXTS)
    path = per_text.model_dir / per_text.model_file
    assert open_row_loop(path, lambda: session_options(1), probe, expected) is not None
    expected[3, 1] = np.nextafter(expected[3, 1], np.float32(np.inf))  # one ulp off
    with caplog.at_level(logging.WARNING, logger="models.rowloop"):
        assert open_row_loop(path, lambda: session_options(1), probe, expected) is None
    assert "differ from one call per text" in caplog.text


def test_without_a_writable_temp_directory_the_int8_model_scores_one_call_per_text(
    trained_registry: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The row loop writes the optimized graph to a temp directory; a worker without one
    (a read-only container, a full disk) still serves, one call per text, and says why."""
    registry = Registry(trained_registry)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "no-such-directory"))
    with caplog.at_level(logging.WARNING, logger="models.rowloop"):
        refused = registry.load("intent", threads=1)
    monkeypatch.undo()
    assert not refused.row_loop
    assert "no row-loop session" in caplog.text
    texts = heldout_texts("intent", 40)
    assert refused.predict(texts) == registry.load("intent", threads=1).predict(texts)


PEAK_SCRIPT = """
import sys
from pathlib import Path
import streams.runtime.app  # the worker's imports first, as in a worker
from models.registry import Registry
registry = Registry(Path(sys.argv[1]))
models = [registry.load(t, threads=1, row_loop=sys.argv[2] == "1") for t in ("sentiment", "intent")]
status = open("/proc/self/status").read()
print(int(status.split("VmHWM:")[1].split()[0]) // 1024)
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmHWM from /proc")
def test_the_row_loop_does_not_raise_the_peak_memory_of_loading_the_models(
    trained_registry: Path,
) -> None:
    """Building the row loop opens more sessions than one call per text does; they must not
    be alive at once (a kept reference to the first session once raised a worker's peak
    by 57 MiB)."""

    def peak(row_loop: bool) -> int:
        result = subprocess.run(
            [sys.executable, "-c", PEAK_SCRIPT, str(trained_registry), "1" if row_loop else "0"],
            capture_output=True,
            text=True,
            check=True,
            cwd=REPO,
        )
        return int(result.stdout.split()[-1])

    per_text, looped = peak(False), peak(True)
    assert looped <= per_text + 16, f"peak RSS {looped} MiB with the row loop, {per_text} without"
