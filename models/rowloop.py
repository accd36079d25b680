"""An int8 model's per-text calls as one ONNX Runtime call: a ``Loop`` over the batch's rows.

Dynamic int8 quantization takes its activation scales from the whole input tensor, so the
int8 model scores one text per call (batch invariance, :func:`models.runtime.session_logits`).
From Python that is one ``session.run`` per text: each call takes the GIL back when it
returns, so while the event loop runs Python the inference threads queue for the GIL between
texts, and each call pays the binding's overhead again.

:func:`row_loop_model` wraps the model's graph in an ONNX ``Loop`` whose body takes one row
of the padded batch, cuts it to the row's own length (its attention mask's sum) and runs
the original graph on it: each text is still quantized and scored alone, exactly as a
call of its own would score it, and the whole share is one call that holds no GIL.

The graph wrapped is the one ONNX Runtime optimized (``ORT_ENABLE_EXTENDED``, its fused
operators): wrapping the raw graph lets the optimizer fuse differently inside the loop
body, and the logits then differ from the per-text calls (up to 0.23 measured). Wrapped
after optimization, they were bit-identical on 512 texts; :func:`open_row_loop` checks
that on probe texts every time it opens one and returns nothing when they are not, so a
caller keeps the per-text calls.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

logger = logging.getLogger(__name__)

INPUT_IDS = "input_ids"
ATTENTION_MASK = "attention_mask"
LOGITS = "logits"

PROBE_TEXTS = (
    "ok",
    "my card payment was declined twice today and I need it fixed",
    "Shares of $AAPL fell 3% after the earnings call; guidance was cut for the quarter.",
    "why",
    "I was charged a fee for a transfer I never made, please refund it " * 4,
    "x " * 300,
)
"""Texts of many lengths (a padded batch's rows differ in length): a wrapped session must
score each exactly as the per-text calls do before it serves."""

_PREFIX = "__ssrow_"


def row_loop_model(model: Any) -> Any:
    """Turn ``model`` (an ``onnx.ModelProto`` taking ``input_ids`` and ``attention_mask`` of
    shape (batch, sequence), right-padded, returning ``logits`` (batch, labels)) into one
    that scores each row alone, in place; returns it.

    The initializers stay where they are (the outer graph; the body reads them from its
    enclosing scope), so the weights are not copied.
    """
    from onnx import TensorProto, helper

    graph = model.graph
    inputs = {i.name for i in graph.input}
    if inputs != {INPUT_IDS, ATTENTION_MASK} or [o.name for o in graph.output] != [LOGITS]:
        raise ValueError(
            f"expected inputs {INPUT_IDS}, {ATTENTION_MASK} and output {LOGITS}; got "
            f"{sorted(inputs)} and {[o.name for o in graph.output]}"
        )
    p = _PREFIX
    row = {INPUT_IDS: p + "ids", ATTENTION_MASK: p + "mask"}
    body_nodes = [
        helper.make_node("Unsqueeze", [p + "i", p + "axis0"], [p + "index"]),
        helper.make_node("Gather", [INPUT_IDS, p + "index"], [p + "ids_padded"], axis=0),
        helper.make_node("Gather", [ATTENTION_MASK, p + "index"], [p + "mask_padded"], axis=0),
        helper.make_node("ReduceSum", [p + "mask_padded", p + "axis1"], [p + "len"], keepdims=0),
        helper.make_node(
            "Slice", [p + "ids_padded", p + "start", p + "len", p + "axis1"], [p + "ids"]
        ),
        helper.make_node(
            "Slice", [p + "mask_padded", p + "start", p + "len", p + "axis1"], [p + "mask"]
        ),
        helper.make_node("Identity", [p + "cond_in"], [p + "cond_out"]),
    ]
    for node in graph.node:
        copy = type(node)()
        copy.CopyFrom(node)
        for k, name in enumerate(copy.input):
            if name in row:
                copy.input[k] = row[name]
        body_nodes.append(copy)
    body_nodes.append(helper.make_node("Identity", [LOGITS], [p + "row_logits"]))
    body = helper.make_graph(
        body_nodes,
        "row",
        [
            helper.make_tensor_value_info(p + "i", TensorProto.INT64, []),
            helper.make_tensor_value_info(p + "cond_in", TensorProto.BOOL, []),
        ],
        [
            helper.make_tensor_value_info(p + "cond_out", TensorProto.BOOL, []),
            helper.make_tensor_value_info(p + "row_logits", TensorProto.FLOAT, [1, None]),
        ],
        initializer=[
            helper.make_tensor(p + "axis0", TensorProto.INT64, [1], [0]),
            helper.make_tensor(p + "axis1", TensorProto.INT64, [1], [1]),
            helper.make_tensor(p + "start", TensorProto.INT64, [1], [0]),
        ],
    )
    del graph.node[:]
    graph.node.extend(
        [
            helper.make_node("Shape", [INPUT_IDS], [p + "shape"]),
            helper.make_node("Gather", [p + "shape", p + "zero"], [p + "rows"], axis=0),
            helper.make_node("Loop", [p + "rows", p + "true"], [p + "stacked"], body=body),
            helper.make_node("Squeeze", [p + "stacked", p + "axis1_outer"], [LOGITS]),
        ]
    )
    graph.initializer.extend(
        [
            helper.make_tensor(p + "zero", TensorProto.INT64, [], [0]),
            helper.make_tensor(p + "true", TensorProto.BOOL, [], [True]),
            helper.make_tensor(p + "axis1_outer", TensorProto.INT64, [1], [1]),
        ]
    )
    del graph.value_info[:]  # shapes of the old top level: inside the body now
    return model


def open_row_loop(
    path: Path,
    make_options: Callable[[], Any],
    probe: tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]],
    expected: npt.NDArray[np.float32],
) -> Any | None:
    """A CPU session of ``path`` (an int8 model) that scores a padded batch row by row in one
    call, or None when it cannot be built or does not give ``expected`` exactly.

    ``make_options``: fresh ``SessionOptions`` as the caller opens its sessions (threads);
    ``probe``: a padded batch (ids, mask); ``expected``: its logits from one call per text.
    While it builds, one session at a time holds the weights (the throwaway one that writes
    the optimized graph, with its weights in a file beside it, then the loop's, which maps
    that file); the caller should drop its own session first.
    """
    import onnx
    import onnxruntime as ort

    try:
        with tempfile.TemporaryDirectory(prefix="ss-rowloop-") as tmp:
            optimized, rows = Path(tmp) / "optimized.onnx", Path(tmp) / "rows.onnx"
            options = make_options()
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
            options.optimized_model_filepath = str(optimized)
            # the weights go to a file beside it, so the graph is wrapped without them in memory
            options.add_session_config_entry(
                "session.optimized_model_external_initializers_file_name", "weights.bin"
            )
            ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            graph = onnx.load(str(optimized), load_external_data=False)
            onnx.save(row_loop_model(graph), str(rows))
            # from a file: a session opened from bytes keeps a second copy of the weights
            session = ort.InferenceSession(
                str(rows), make_options(), providers=["CPUExecutionProvider"]
            )
        ids, mask = probe
        got = session.run([LOGITS], {INPUT_IDS: ids, ATTENTION_MASK: mask})[0]
    except Exception as exc:  # any failure keeps the per-text calls
        logger.warning(
            "%s: no row-loop session (%s: %s); one call per text", path, type(exc).__name__, exc
        )
        return None
    if got.shape != expected.shape or not np.array_equal(got, expected):
        diff = float(np.abs(got - expected).max()) if got.shape == expected.shape else float("nan")
        logger.warning(
            "%s: the row-loop session's logits differ from one call per text (max %.3g); "
            "one call per text",
            path,
            diff,
        )
        return None
    return session
