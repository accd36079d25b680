"""Inference: a verified registry version as tokenizer + ONNX Runtime session.

``Classifier.predict`` is safe to call from worker threads (e.g. ``loop.run_in_executor``)
while an asyncio loop runs: the ONNX Runtime session's ``run`` is thread-safe and the
tokenizer is guarded by a lock.
"""

from __future__ import annotations

import ctypes.util
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from models.exceptions import ModelsError
from models.prediction import Prediction
from models.tokenizer import TextEncoder

logger = logging.getLogger(__name__)

FP32_FILE = "model.onnx"
INT8_FILE = "model.int8.onnx"
PRECISIONS = ("auto", "fp32", "int8")
CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"


def softmax(logits: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    """Row-wise softmax in float64."""
    shifted = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    result: npt.NDArray[np.float64] = exp / exp.sum(axis=1, keepdims=True)
    return result


class Classifier:
    """A loaded model version. Build it with :meth:`models.registry.Registry.load`."""

    def __init__(
        self,
        directory: Path,
        manifest: dict[str, Any],
        *,
        threads: int = 0,
        precision: str = "auto",
        max_batch: int = 64,
        row_loop: bool = True,
    ) -> None:
        if precision not in PRECISIONS:
            raise ModelsError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        self.task: str = manifest["task"]
        self.version: str = manifest["version"]
        self.labels: list[str] = json.loads((directory / "labels.json").read_text("utf-8"))
        self.max_length = int(manifest["max_length"])
        self.max_batch = max_batch
        self._encoder = TextEncoder(directory / "tokenizer.json", self.max_length)
        self.model_dir = directory
        self.session, self.provider, self.model_file = _open_session(directory, precision, threads)
        # no NodeArg kept: one keeps its session alive, which the row loop below replaces
        width = self.session.get_outputs()[0].shape[-1]
        if int(width) != len(self.labels):
            raise ModelsError(
                f"{directory / self.model_file}: {width} outputs for "
                f"{len(self.labels)} labels in labels.json"
            )
        self.row_loop = False
        """Whether the int8 model scores a batch in one call (:mod:`models.rowloop`)."""
        if row_loop and self.model_file == INT8_FILE:
            self._open_row_loop(threads)
        logger.info(
            "loaded %s/%s from %s on %s (threads %s%s)",
            self.task,
            self.version,
            self.model_file,
            self.provider,
            threads or "auto",
            ", int8 texts looped in one call" if self.row_loop else "",
        )

    def _open_row_loop(self, threads: int) -> None:
        """Serve the int8 model through a row-loop session when it scores the probe texts
        exactly as one call per text does; else keep the per-text calls."""
        from models.rowloop import PROBE_TEXTS, open_row_loop

        probe = self._encoder.encode(PROBE_TEXTS)
        expected = self.logits(PROBE_TEXTS)
        self.session = None  # one session at a time holds the weights while the loop is built
        rows = open_row_loop(
            self.model_dir / INT8_FILE, lambda: session_options(threads), probe, expected
        )
        if rows is None:
            self.session = _cpu_session(self.model_dir / INT8_FILE, threads)
            return
        self.session, self.row_loop = rows, True

    def logits(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Raw logits (batch, labels), in the order of ``texts``."""
        # the row loop takes padded batches and cuts each row to its length itself
        return session_logits(
            self.session,
            self._encoder,
            texts,
            n_labels=len(self.labels),
            per_text=self.model_file == INT8_FILE and not self.row_loop,
            max_batch=self.max_batch,
        )

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        """Label and per-label probabilities of every text, in order."""
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise ModelsError(f"text {i} is a {type(text).__name__}, not a string")
        probs = softmax(self.logits(texts))
        best = probs.argmax(axis=1)
        return [
            Prediction(
                label=self.labels[int(best[row])],
                probs={name: float(p) for name, p in zip(self.labels, probs[row], strict=True)},
            )
            for row in range(probs.shape[0])
        ]

    def warmup(self) -> None:
        """Run a short and a long batch so the first real batch does not pay for allocation."""
        self.predict(["warm up", "a somewhat longer warm-up text " * 8])

    def __repr__(self) -> str:
        return f"Classifier({self.task}/{self.version}, {self.model_file} on {self.provider})"


def session_logits(
    session: Any,
    encoder: TextEncoder,
    texts: Sequence[str],
    *,
    n_labels: int,
    per_text: bool,
    max_batch: int = 64,
) -> npt.NDArray[np.float32]:
    """Run a session over ``texts``: padded batches, or one text per call when ``per_text``.

    Dynamic int8 quantization derives activation scales from the whole input tensor, so
    in a batch a text's result would depend on its batch-mates and their padding (label
    flips measured at 3% of texts). Running int8 one text at a time makes every result a
    function of its text alone; on CPU it is as fast as or faster than padded batches
    (nothing is padded). fp32 results are batch-invariant (to ~1e-6) and run batched.
    """
    out = np.zeros((len(texts), n_labels), dtype=np.float32)
    if not texts:
        return out
    if per_text:
        # one tokenizer call for the batch; each text then runs unpadded, exactly as if
        # it had been encoded alone (its first ``length`` tokens)
        ids, mask = encoder.encode(texts)
        for row, length in enumerate(mask.sum(axis=1).tolist()):
            feed = {
                "input_ids": ids[row : row + 1, :length],
                "attention_mask": mask[row : row + 1, :length],
            }
            out[row] = session.run(["logits"], feed)[0][0]
        return out
    for start in range(0, len(texts), max_batch):
        ids, mask = encoder.encode(texts[start : start + max_batch])
        logits = session.run(["logits"], {"input_ids": ids, "attention_mask": mask})[0]
        out[start : start + max_batch] = logits
    return out


def nvidia_driver_present() -> bool:
    """Whether an NVIDIA kernel driver is loaded (else trying CUDA only prints load errors)."""
    if Path("/proc/driver/nvidia/version").exists():
        return True
    try:
        return ctypes.util.find_library("cuda") is not None
    except OSError:  # it runs the linker in a temp directory, which may be missing
        return False


def _open_session(directory: Path, precision: str, threads: int) -> tuple[Any, str, str]:
    """Open the session; return it with the provider really in use and the file served.

    CUDA is tried first when onnxruntime offers it; whether it is really used is read from
    ``session.get_providers()`` (ONNX Runtime falls back to CPU when no usable GPU
    exists; ``get_device()`` only says what the package was built for).
    ``auto`` serves fp32 on CUDA and the int8 model on CPU.
    """
    import onnxruntime as ort

    options = session_options(threads)
    offered = CUDA in ort.get_available_providers()
    if offered and precision in ("auto", "fp32") and not nvidia_driver_present():
        logger.info("onnxruntime offers CUDA but this machine has no NVIDIA driver; using CPU")
    elif offered and precision in ("auto", "fp32"):
        session = ort.InferenceSession(str(directory / FP32_FILE), options, providers=[CUDA, CPU])
        if session.get_providers()[0] == CUDA:
            return session, CUDA, FP32_FILE
        logger.info("CUDA provider offered but not usable here; serving on CPU")
        if precision == "fp32":
            return session, CPU, FP32_FILE
    filename = FP32_FILE if precision == "fp32" else INT8_FILE
    session = _cpu_session(directory / filename, threads)
    return session, session.get_providers()[0], filename


def session_options(threads: int) -> Any:
    """Options of every serving session: ``threads`` intra-op threads (0: ONNX Runtime's
    choice), all graph optimizations, warnings and errors logged only."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return options


def _cpu_session(path: Path, threads: int) -> Any:
    import onnxruntime as ort

    return ort.InferenceSession(str(path), session_options(threads), providers=[CPU])
