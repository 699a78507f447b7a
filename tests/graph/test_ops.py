"""Each op family on a tiny ONNX graph with a hand-computed count (1 MAC = 2 FLOPs)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from foresize.graph.flops import FlopReport, analyze_flops
from foresize.graph.onnx_reader import read_onnx
from foresize.graph.ops import RULES, ZERO_COST

F = TensorProto.FLOAT


def build(
    tmp_path: Path,
    nodes: list[onnx.NodeProto],
    inputs: dict[str, list[int | str]],
    output: str = "y",
    inits: dict[str, np.ndarray] | None = None,
    opset: int = 17,
) -> Path:
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info(n, F, s) for n, s in inputs.items()],
        [helper.make_tensor_value_info(output, F, None)],
        initializer=[numpy_helper.from_array(v, n) for n, v in (inits or {}).items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    path = tmp_path / "m.onnx"
    onnx.save_model(model, str(path))
    return path


def one(
    tmp_path: Path, node: onnx.NodeProto, inputs: dict[str, list[int | str]], **kw
) -> FlopReport:
    return analyze_flops(read_onnx(build(tmp_path, [node], inputs, **kw)))


def w(*shape: int) -> np.ndarray:
    return np.zeros(shape, dtype=np.float32)


def test_matmul_2x3_by_3x4(tmp_path: Path) -> None:
    r = one(tmp_path, helper.make_node("MatMul", ["a", "b"], ["y"]), {"a": [2, 3], "b": [3, 4]})
    assert (r.macs, r.flops) == (24, 48)
    assert r.bytes_read == (6 + 12) * 4
    assert r.bytes_written == 8 * 4


def test_matmul_batched_broadcast_and_vector(tmp_path: Path) -> None:
    r = one(tmp_path, helper.make_node("MatMul", ["a", "b"], ["y"]), {"a": [5, 2, 3], "b": [3, 4]})
    assert r.macs == 5 * 2 * 3 * 4
    r = one(tmp_path, helper.make_node("MatMul", ["a", "b"], ["y"]), {"a": [3], "b": [3, 4]})
    assert r.macs == 12


def test_gemm_with_bias_and_transpose(tmp_path: Path) -> None:
    node = helper.make_node("Gemm", ["a", "b", "c"], ["y"], transB=1)
    r = one(tmp_path, node, {"a": [2, 3]}, inits={"b": w(4, 3), "c": w(4)})
    assert r.macs == 24
    assert r.flops == 48 + 8  # bias add: one per output element
    assert r.n_params == 12 + 4
    assert r.rows["params"].to_list() == [16]


def test_conv_with_groups_and_bias(tmp_path: Path) -> None:
    # x (1, 4, 5, 5), W (6, 2, 3, 3), group 2, pad 1 -> y (1, 6, 5, 5)
    node = helper.make_node("Conv", ["x", "w", "b"], ["y"], group=2, pads=[1, 1, 1, 1])
    r = one(tmp_path, node, {"x": [1, 4, 5, 5]}, inits={"w": w(6, 2, 3, 3), "b": w(6)})
    out = 1 * 6 * 5 * 5
    assert r.macs == out * 2 * 9
    assert r.flops == 2 * out * 18 + out


def test_conv_strided_output_shape_feeds_next_node(tmp_path: Path) -> None:
    conv = helper.make_node("Conv", ["x", "w"], ["c"], strides=[2, 2])
    relu = helper.make_node("Relu", ["c"], ["y"])
    path = build(tmp_path, [conv, relu], {"x": [1, 1, 7, 7]}, inits={"w": w(2, 1, 3, 3)})
    r = analyze_flops(read_onnx(path))
    assert r.rows["flops"].to_list() == [2 * (2 * 3 * 3) * 9, 2 * 3 * 3]


def test_conv_transpose(tmp_path: Path) -> None:
    # x (1, 2, 3, 3), W (2, 3, 2, 2), stride 2 -> y (1, 3, 6, 6); MACs = numel(x) * 3 * 4
    node = helper.make_node("ConvTranspose", ["x", "w"], ["y"], strides=[2, 2])
    r = one(tmp_path, node, {"x": [1, 2, 3, 3]}, inits={"w": w(2, 3, 2, 2)})
    assert r.macs == 18 * 12
    assert r.bytes_written == 1 * 3 * 6 * 6 * 4


@pytest.mark.parametrize(
    ("op", "per"), [("Relu", 1), ("Sigmoid", 3), ("Tanh", 1), ("Gelu", 5), ("Erf", 1)]
)
def test_activations(tmp_path: Path, op: str, per: int) -> None:
    opset = 20 if op == "Gelu" else 17
    r = one(tmp_path, helper.make_node(op, ["x"], ["y"]), {"x": [2, 5]}, opset=opset)
    assert (r.flops, r.macs) == (10 * per, 0)


def test_softmax(tmp_path: Path) -> None:
    r = one(tmp_path, helper.make_node("Softmax", ["x"], ["y"], axis=-1), {"x": [2, 8]})
    assert r.flops == 16 * 5


def test_elementwise_broadcast_and_nary(tmp_path: Path) -> None:
    r = one(tmp_path, helper.make_node("Add", ["a", "b"], ["y"]), {"a": [4, 3], "b": [3]})
    assert r.flops == 12
    r = one(
        tmp_path, helper.make_node("Sum", ["a", "b", "c"], ["y"]), {"a": [4], "b": [4], "c": [4]}
    )
    assert r.flops == 8


def test_normalisations(tmp_path: Path) -> None:
    ln = helper.make_node("LayerNormalization", ["x", "g", "b"], ["y"], axis=-1)
    r = one(tmp_path, ln, {"x": [2, 4]}, inits={"g": w(4), "b": w(4)})
    assert r.flops == 8 * (5 + 2)
    bn = helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"])
    stats = {k: w(3) for k in "sbmv"}
    assert one(tmp_path, bn, {"x": [1, 3, 2, 2]}, inits=stats).flops == 12 * 2
    inorm = helper.make_node("InstanceNormalization", ["x", "s", "b"], ["y"])
    assert one(tmp_path, inorm, {"x": [1, 3, 2, 2]}, inits={"s": w(3), "b": w(3)}).flops == 12 * 7


def test_rms_norm_from_primitives(tmp_path: Path) -> None:
    nodes = [
        helper.make_node("Mul", ["x", "x"], ["sq"]),
        helper.make_node("ReduceMean", ["sq"], ["ms"], axes=[-1]),
        helper.make_node("Sqrt", ["ms"], ["rms"]),
        helper.make_node("Div", ["x", "rms"], ["y"]),
    ]
    r = analyze_flops(read_onnx(build(tmp_path, nodes, {"x": [2, 4]})))
    assert r.rows["flops"].to_list() == [8, 8, 2, 8]


def test_pooling(tmp_path: Path) -> None:
    mp = helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[2, 2], strides=[2, 2])
    assert one(tmp_path, mp, {"x": [1, 2, 4, 4]}).flops == (2 * 2 * 2) * 4
    gap = helper.make_node("GlobalAveragePool", ["x"], ["y"])
    assert one(tmp_path, gap, {"x": [1, 2, 4, 4]}).flops == 32


def test_reductions_with_axes_input(tmp_path: Path) -> None:
    node = helper.make_node("ReduceSum", ["x", "axes"], ["y"], keepdims=0)
    r = one(tmp_path, node, {"x": [3, 5]}, inits={"axes": np.array([1], dtype=np.int64)}, opset=18)
    assert r.flops == 15
    assert r.bytes_written == 3 * 4


def test_gather_reads_rows_not_table(tmp_path: Path) -> None:
    node = helper.make_node("Gather", ["emb", "ids"], ["y"])
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, [2, 3])],
        [helper.make_tensor_value_info("y", F, None)],
        initializer=[numpy_helper.from_array(w(100, 8), "emb")],
    )
    path = tmp_path / "g.onnx"
    onnx.save_model(helper.make_model(graph), str(path))
    r = analyze_flops(read_onnx(path))
    assert r.flops == 0
    assert r.n_params == 800
    assert r.bytes_written == 6 * 8 * 4
    assert r.bytes_read == 6 * 8 + 6 * 8 * 4  # int64 indices + gathered rows


def test_lstm_and_gru(tmp_path: Path) -> None:
    seq, batch, inp, hid = 5, 2, 3, 4
    lstm = helper.make_node("LSTM", ["x", "w", "r"], ["y"], hidden_size=hid)
    r = one(
        tmp_path, lstm, {"x": [seq, batch, inp]}, inits={"w": w(1, 16, inp), "r": w(1, 16, hid)}
    )
    steps = seq * batch
    assert r.macs == steps * 4 * hid * (inp + hid)
    assert r.flops == 2 * r.macs + steps * hid * (4 + 15)
    gru = helper.make_node("GRU", ["x", "w", "r", "b"], ["y"], hidden_size=hid)
    inits = {"w": w(1, 12, inp), "r": w(1, 12, hid), "b": w(1, 24)}
    r = one(tmp_path, gru, {"x": [seq, batch, inp]}, inits=inits)
    assert r.flops == 2 * steps * 3 * hid * (inp + hid) + steps * hid * (3 + 12 + 6)


def test_resize_linear(tmp_path: Path) -> None:
    node = helper.make_node("Resize", ["x", "", "scales"], ["y"], mode="linear")
    scales = np.array([1, 1, 2, 2], dtype=np.float32)
    r = one(tmp_path, node, {"x": [1, 1, 2, 2]}, inits={"scales": scales})
    assert r.flops == 3 * 2 * 16


def test_einsum_batched_matmul(tmp_path: Path) -> None:
    node = helper.make_node("Einsum", ["a", "b"], ["y"], equation="bij,bjk->bik")
    r = one(tmp_path, node, {"a": [2, 3, 4], "b": [2, 4, 5]})
    assert r.macs == 2 * 3 * 4 * 5


def test_zero_cost_and_registry_are_disjoint() -> None:
    assert not ZERO_COST & set(RULES)
    with pytest.raises(ValueError, match="registered twice"):
        RULES.register("MatMul")(lambda op: RULES.get("Gemm")(op))


def test_zero_cost_ops_are_counted_as_covered(tmp_path: Path) -> None:
    node = helper.make_node("Transpose", ["x"], ["y"], perm=[1, 0])
    r = one(tmp_path, node, {"x": [2, 3]})
    assert (r.flops, r.coverage_pct) == (0, 100.0)
    assert r.rows["status"].to_list() == ["zero_cost"]


def test_nodes_alike_are_priced_once_and_as_each_alone() -> None:
    """price_nodes prices a signature once; every node must still get its own rule's cost.

    The pairs differ only in what a signature must tell apart: an attribute, a constant
    input's value, an omitted input against one the graph never declared, a parameter
    against an activation, a dtype.
    """
    from foresize.graph.model import ModelGraph, Node, TensorInfo
    from foresize.graph.ops.pricing import price_node, price_nodes

    def t(name: str, *shape: int, dtype: str = "float32", bits: int = 32,
          param: bool = False) -> TensorInfo:
        return TensorInfo(name, shape, dtype, bits, is_param=param)

    tensors = {x.name: x for x in (
        t("a", 4, 8), t("b", 8, 8), t("c", 8, 8, param=True),
        t("h", 4, 8, dtype="float16", bits=16), t("bias", 8), t("r0", 4, 1), t("r1", 1, 8),
        t("axes0", 1, dtype="int64", bits=64), t("axes1", 1, dtype="int64", bits=64))}
    nodes = (
        Node("m0", "MatMul", inputs=("a", "b"), outputs=("y0",)),
        Node("m1", "MatMul", inputs=("a", "b"), outputs=("y1",)),
        Node("m2", "MatMul", inputs=("a", "c"), outputs=("y2",)),
        Node("m3", "MatMul", inputs=("h", "b"), outputs=("y3",)),
        Node("g0", "Gemm", inputs=("a", "b", ""), outputs=("y4",)),
        Node("g1", "Gemm", inputs=("a", "b", "nowhere"), outputs=("y5",)),
        Node("g2", "Gemm", attributes={"transA": 1}, inputs=("a", "b", "bias"), outputs=("y6",)),
        Node("g3", "Gemm", attributes={"transA": 0}, inputs=("a", "b", "bias"), outputs=("y7",)),
        Node("s0", "ReduceSum", inputs=("a", "axes0"), outputs=("r0",)),
        Node("s1", "ReduceSum", inputs=("a", "axes1"), outputs=("r1",)),
        Node("u0", "Frobnicate", inputs=("a",), outputs=("y8",)),
        Node("z0", "Reshape", inputs=("a", "axes0"), outputs=("y9",)),
    )
    graph = ModelGraph("g", nodes, tensors, ("a", "b", "h"), ("y0",),
                       constants={"axes0": (1,), "axes1": (0,)})
    priced = price_nodes(graph)
    assert [(n, *price_node(n, graph)) for n in nodes] == priced
    costs = {node.name: cost for node, _, cost in priced}
    for a, b in (("g0", "g1"), ("g2", "g3"), ("s0", "s1"), ("m0", "m3")):
        assert costs[a] != costs[b], (a, b)
    assert [status for _, status, _ in priced][-2:] == ["unsupported", "zero_cost"]
