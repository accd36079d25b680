"""ONNX export (fp32 reference), int8 dynamic quantization, and the agreement checks."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from models.exceptions import AgreementError
from models.network import MeanPoolClassifier
from models.runtime import INT8_FILE, session_logits
from models.tokenizer import TextEncoder

logger = logging.getLogger(__name__)

OPSET = 17
INPUT_NAMES = ("input_ids", "attention_mask")
OUTPUT_NAME = "logits"
# fp32 ONNX Runtime vs torch on CPU differ by float rounding only (~1e-6); 1e-3 leaves room
# for kernel differences across machines while still catching a wrong graph.
LOGIT_TOLERANCE = 1e-3
# int8 dynamic quantization flips the label of near-tie texts. Measured on the held-out
# splits of the trained models: 0.985-0.995 (see the README); 0.97 catches a broken
# quantization (typically < 0.9) without failing on legitimate near-ties.
MIN_INT8_AGREEMENT = 0.97


def export_onnx(model: MeanPoolClassifier, encoder: TextEncoder, path: Path) -> None:
    """Export ``model`` to ONNX with dynamic batch and sequence axes.

    The trace example is padded on purpose: transformers skips the attention mask when a
    traced batch has none, which would bake "no padding" into the graph.
    """
    model.eval()
    ids, mask = encoder.encode(["a short text", "a longer example text that forces padding here"])
    if mask.all():
        raise AgreementError("export example must contain padding")
    sequence = {0: "batch", 1: "sequence"}
    with warnings.catch_warnings():
        # The TorchScript exporter is deprecated in favour of torch.export (which needs the
        # onnxscript package); its tracer warnings are about shape checks that the dynamic
        # axes and the agreement check below cover.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (torch.from_numpy(ids), torch.from_numpy(mask)),
            str(path),
            input_names=list(INPUT_NAMES),
            output_names=[OUTPUT_NAME],
            dynamic_axes={
                "input_ids": sequence,
                "attention_mask": sequence,
                "logits": {0: "batch"},
            },
            opset_version=OPSET,
            do_constant_folding=True,
            dynamo=False,
        )
    import onnx

    onnx.checker.check_model(str(path))


def quantize_int8(source: Path, target: Path) -> None:
    """Dynamic int8 quantization of MatMul/Gemm weights; activations are quantized per batch."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # The quantizer logs a line per tensor through the root logger; keep those out.
    root = logging.getLogger()
    quiet = _DropModule("onnxruntime")
    root.addFilter(quiet)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            quantize_dynamic(
                str(source),
                str(target),
                weight_type=QuantType.QInt8,
                op_types_to_quantize=["MatMul", "Gemm"],
                # Per-channel weight scales: label agreement with fp32 0.98 vs 0.95 per-tensor
                # on a briefly trained sentiment model. 7-bit weights avoid the u8s8
                # saturation of CPUs without VNNI.
                per_channel=True,
                reduce_range=True,
            )
    finally:
        root.removeFilter(quiet)


class _DropModule(logging.Filter):
    """Drops records emitted from files of one package (used around the quantizer)."""

    def __init__(self, package: str) -> None:
        super().__init__()
        self.package = package

    def filter(self, record: logging.LogRecord) -> bool:
        return self.package not in record.pathname


def onnx_logits(
    path: Path, encoder: TextEncoder, texts: Sequence[str], threads: int = 0
) -> npt.NDArray[np.float32]:
    """Logits of an ONNX file on the CPU provider, computed the way the runtime serves it."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    n_labels = int(session.get_outputs()[0].shape[-1])
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # less padding
    logits = session_logits(
        session,
        encoder,
        [texts[i] for i in order],
        n_labels=n_labels,
        per_text=path.name == INT8_FILE,
    )
    out = np.empty_like(logits)
    out[order] = logits
    return out


@dataclass(frozen=True)
class AgreementReport:
    """How closely the exported models follow the torch model on held-out texts."""

    n: int
    max_abs_logit_diff: float
    logit_tolerance: float
    fp32_label_agreement: float
    int8_label_agreement: float
    min_int8_agreement: float
    int8_max_abs_prob_diff: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _softmax(logits: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    shifted = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    result: npt.NDArray[np.float64] = exp / exp.sum(axis=1, keepdims=True)
    return result


def check_agreement(
    torch_logits: npt.NDArray[np.float32],
    fp32_logits: npt.NDArray[np.float32],
    int8_logits: npt.NDArray[np.float32],
    *,
    logit_tolerance: float = LOGIT_TOLERANCE,
    min_int8_agreement: float = MIN_INT8_AGREEMENT,
) -> AgreementReport:
    """Compare the three sets of logits; raise :class:`AgreementError` when off."""
    report = AgreementReport(
        n=int(torch_logits.shape[0]),
        max_abs_logit_diff=float(np.abs(fp32_logits - torch_logits).max()),
        logit_tolerance=logit_tolerance,
        fp32_label_agreement=float(
            (fp32_logits.argmax(axis=1) == torch_logits.argmax(axis=1)).mean()
        ),
        int8_label_agreement=float(
            (int8_logits.argmax(axis=1) == fp32_logits.argmax(axis=1)).mean()
        ),
        min_int8_agreement=min_int8_agreement,
        int8_max_abs_prob_diff=float(np.abs(_softmax(int8_logits) - _softmax(fp32_logits)).max()),
    )
    logger.info(
        "agreement on %s held-out texts: max |logit diff| fp32 vs torch %.2e, "
        "int8 vs fp32 label agreement %.4f",
        report.n,
        report.max_abs_logit_diff,
        report.int8_label_agreement,
    )
    if report.max_abs_logit_diff > logit_tolerance:
        raise AgreementError(
            f"ONNX fp32 logits differ from torch by {report.max_abs_logit_diff:.2e} "
            f"(tolerance {logit_tolerance:.0e}) on {report.n} held-out texts; export is wrong"
        )
    if report.int8_label_agreement < min_int8_agreement:
        raise AgreementError(
            f"int8 model agrees with fp32 on {report.int8_label_agreement:.4f} of "
            f"{report.n} held-out labels, below the required {min_int8_agreement}"
        )
    return report
