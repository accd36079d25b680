"""The row loop's graph surgery on a small hand-built model, run by ONNX Runtime."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from models.rowloop import row_loop_model

VOCAB, LABELS = 50, 3


def _model(scale_by_tensor: bool) -> bytes:
    """logits = (mean over the tokens of embedding[ids] * mask) / s, where s is 1, or with
    ``scale_by_tensor`` the largest absolute value of the whole ids tensor, as dynamic
    quantization's scale is: a result that depends on the batch-mates and the padding."""
    rng = np.random.default_rng(3)
    table = numpy_helper.from_array(rng.normal(size=(VOCAB, LABELS)).astype(np.float32), "table")
    nodes = [
        helper.make_node("Gather", ["table", "input_ids"], ["emb"], axis=0),
        helper.make_node("Cast", ["attention_mask"], ["maskf"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["maskf", "axis2"], ["mask3"]),
        helper.make_node("Mul", ["emb", "mask3"], ["masked"]),
        helper.make_node("ReduceSum", ["masked", "axis1"], ["summed"], keepdims=0),
        helper.make_node("ReduceSum", ["maskf", "axis1"], ["count"], keepdims=1),
        helper.make_node("Div", ["summed", "count"], ["mean"]),
    ]
    if scale_by_tensor:
        nodes += [
            helper.make_node("Cast", ["input_ids"], ["idsf"], to=TensorProto.FLOAT),
            helper.make_node("ReduceMax", ["idsf"], ["scale"], keepdims=0),
            helper.make_node("Div", ["mean", "scale"], ["logits"]),
        ]
    else:
        nodes.append(helper.make_node("Identity", ["mean"], ["logits"]))
    graph = helper.make_graph(
        nodes,
        "tiny",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "sequence"]),
            helper.make_tensor_value_info(
                "attention_mask", TensorProto.INT64, ["batch", "sequence"]
            ),
        ],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", LABELS])],
        initializer=[
            table,
            helper.make_tensor("axis1", TensorProto.INT64, [1], [1]),
            helper.make_tensor("axis2", TensorProto.INT64, [1], [2]),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    return model.SerializeToString()


def _session(model: bytes) -> ort.InferenceSession:
    return ort.InferenceSession(model, providers=["CPUExecutionProvider"])


def _padded(rows: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    longest = max(len(r) for r in rows)
    ids = np.zeros((len(rows), longest), dtype=np.int64)
    mask = np.zeros_like(ids)
    for i, row in enumerate(rows):
        ids[i, : len(row)], mask[i, : len(row)] = row, 1
    return ids, mask


ROWS = [[3, 9, 4], [7], [12, 49, 5, 31, 2, 8], [1, 1]]


def test_each_row_is_scored_as_a_call_of_its_own() -> None:
    import onnx

    source = _model(scale_by_tensor=True)
    direct = _session(source)
    looped = _session(row_loop_model(onnx.load_from_string(source)).SerializeToString())
    ids, mask = _padded(ROWS)
    alone = np.concatenate(
        [
            direct.run(
                ["logits"], {"input_ids": ids[i : i + 1, :n], "attention_mask": mask[i : i + 1, :n]}
            )[0]
            for i, n in enumerate(len(r) for r in ROWS)
        ]
    )
    batched = direct.run(["logits"], {"input_ids": ids, "attention_mask": mask})[0]
    assert not np.allclose(batched, alone)  # the model really depends on its batch-mates
    got = looped.run(["logits"], {"input_ids": ids, "attention_mask": mask})[0]
    np.testing.assert_array_equal(got, alone)
    assert got.shape == (len(ROWS), LABELS)


def test_a_batch_of_one_and_an_empty_batch() -> None:
    import onnx

    source = _model(scale_by_tensor=False)
    looped = _session(row_loop_model(onnx.load_from_string(source)).SerializeToString())
    ids, mask = _padded([[4, 5]])
    one = looped.run(["logits"], {"input_ids": ids, "attention_mask": mask})[0]
    assert one.shape == (1, LABELS)
    empty = looped.run(
        ["logits"],
        {"input_ids": np.zeros((0, 3), np.int64), "attention_mask": np.zeros((0, 3), np.int64)},
    )[0]
    assert empty.shape[0] == 0


def test_a_model_with_other_inputs_is_refused() -> None:
    import onnx

    model = onnx.load_from_string(_model(scale_by_tensor=False))
    model.graph.input[1].name = "token_type_ids"
    with pytest.raises(ValueError, match="expected inputs"):
        row_loop_model(model)
