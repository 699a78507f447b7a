"""Reading ONNX files: whole-graph totals by hand, dims, external data and bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from foresize.core.errors import InputError, InsufficientDataError, UnknownNameError
from foresize.graph.flops import analyze_flops
from foresize.graph.onnx_reader import read_onnx

F = TensorProto.FLOAT


def save(tmp_path: Path, graph: onnx.GraphProto, name: str = "m.onnx", **kw) -> Path:
    path = tmp_path / name
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save_model(model, str(path), **kw)
    return path


def init(name: str, *shape: int) -> onnx.TensorProto:
    return numpy_helper.from_array(np.ones(shape, dtype=np.float32), name)


def mlp(batch: int | str = 4) -> onnx.GraphProto:
    """x (batch, 8) -> Linear 8->16 -> Relu -> Linear 16->2."""
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["h"], name="fc1"),
        helper.make_node("Add", ["h", "b1"], ["hb"], name="bias1"),
        helper.make_node("Relu", ["hb"], ["a"], name="act"),
        helper.make_node("Gemm", ["a", "w2", "b2"], ["y"], name="fc2"),
    ]
    return helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("x", F, [batch, 8])],
        [helper.make_tensor_value_info("y", F, [batch, 2])],
        initializer=[init("w1", 8, 16), init("b1", 16), init("w2", 16, 2), init("b2", 2)],
    )


def test_mlp_totals_by_hand(tmp_path: Path) -> None:
    g = read_onnx(save(tmp_path, mlp()))
    r = analyze_flops(g)
    b = 4
    macs = b * 8 * 16 + b * 16 * 2
    assert r.macs == macs
    assert r.flops == 2 * macs + b * 16 + b * 16 + b * 2  # bias add, relu, gemm bias
    assert r.n_params == g.n_params == 8 * 16 + 16 + 16 * 2 + 2
    assert g.param_bytes == 4 * g.n_params
    assert r.coverage_pct == 100.0
    assert r.rows["node"].to_list() == ["fc1", "bias1", "act", "fc2"]
    assert r.rows["params"].to_list() == [128, 16, 0, 34]
    assert g.tensors["h"].producer == "fc1"
    assert g.tensors["h"].consumers == ("bias1",)


def transformer_block(seq: int | str = "seq", d: int = 8) -> onnx.GraphProto:
    """Single-head self-attention through MatMul + Softmax, then a 2-layer FFN."""
    nodes = [
        helper.make_node("MatMul", ["x", "wq"], ["q"]),
        helper.make_node("MatMul", ["x", "wk"], ["k"]),
        helper.make_node("MatMul", ["x", "wv"], ["v"]),
        helper.make_node("Transpose", ["k"], ["kt"], perm=[0, 2, 1]),
        helper.make_node("MatMul", ["q", "kt"], ["s"]),
        helper.make_node("Div", ["s", "scale"], ["ss"]),
        helper.make_node("Softmax", ["ss"], ["p"], axis=-1),
        helper.make_node("MatMul", ["p", "v"], ["att"]),
        helper.make_node("MatMul", ["att", "wo"], ["o"]),
        helper.make_node("Add", ["x", "o"], ["r"]),
        helper.make_node("LayerNormalization", ["r", "g", "b"], ["n"], axis=-1),
        helper.make_node("MatMul", ["n", "w1"], ["f"]),
        helper.make_node("Relu", ["f"], ["fa"]),
        helper.make_node("MatMul", ["fa", "w2"], ["y"]),
    ]
    inits = [init(n, d, d) for n in ("wq", "wk", "wv", "wo")]
    inits += [init("scale"), init("g", d), init("b", d), init("w1", d, 4 * d), init("w2", 4 * d, d)]
    return helper.make_graph(
        nodes,
        "block",
        [helper.make_tensor_value_info("x", F, ["batch", seq, d])],
        [helper.make_tensor_value_info("y", F, ["batch", seq, d])],
        initializer=inits,
    )


def test_transformer_block_totals_with_bound_dims(tmp_path: Path) -> None:
    path = save(tmp_path, transformer_block())
    r = analyze_flops(read_onnx(path, dims={"batch": 2, "seq": 5}))
    b, s, d = 2, 5, 8
    macs = 4 * b * s * d * d + 2 * b * s * s * d + 2 * b * s * d * 4 * d
    other = b * s * s + 5 * b * s * s + b * s * d + 7 * b * s * d + b * s * 4 * d
    assert r.macs == macs
    assert r.flops == 2 * macs + other
    assert r.coverage_pct == 100.0


def test_unbound_dims_are_all_listed(tmp_path: Path) -> None:
    g = read_onnx(save(tmp_path, transformer_block()))
    assert g.symbolic_dims == {"batch", "seq"}
    with pytest.raises(InputError, match=r"batch, seq; .*--dim NAME=VALUE") as info:
        analyze_flops(g)
    assert "m.onnx" in str(info.value)
    with pytest.raises(InputError, match="seq;"):
        analyze_flops(read_onnx(save(tmp_path, transformer_block()), dims={"batch": 1}))


def test_dim_typo_and_bad_value(tmp_path: Path) -> None:
    path = save(tmp_path, transformer_block())
    with pytest.raises(UnknownNameError, match="Did you mean 'batch'"):
        read_onnx(path, dims={"bacth": 2})
    with pytest.raises(InputError, match="positive integer"):
        read_onnx(path, dims={"batch": 0})
    with pytest.raises(InputError, match="no symbolic dims"):
        read_onnx(save(tmp_path, mlp(), "fixed.onnx"), dims={"batch": 2})


def test_external_data_is_never_read(tmp_path: Path) -> None:
    path = save(
        tmp_path,
        mlp(),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location="weights.bin",
        size_threshold=0,
    )
    (tmp_path / "weights.bin").unlink()
    r = analyze_flops(read_onnx(path))
    assert r.n_params == 8 * 16 + 16 + 16 * 2 + 2
    assert r.macs == 4 * 8 * 16 + 4 * 16 * 2


def test_nodes_out_of_file_order_are_sorted_and_propagated(tmp_path: Path) -> None:
    nodes = [
        helper.make_node("Relu", ["h"], ["y"], name="act"),
        helper.make_node("MatMul", ["x", "w"], ["h"], name="fc"),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", F, [2, 3])],
        [helper.make_tensor_value_info("y", F, None)],
        initializer=[init("w", 3, 4)],
    )
    r = analyze_flops(read_onnx(save(tmp_path, graph)))
    assert r.rows["node"].to_list() == ["fc", "act"]
    assert r.flops == 48 + 8


def test_unknown_op_is_counted_not_crashing(tmp_path: Path) -> None:
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["h"]),
        helper.make_node("FancyOp", ["h"], ["z"], domain="com.example"),
        helper.make_node("Relu", ["z"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", F, [2, 3])],
        [helper.make_tensor_value_info("y", F, None)],
        initializer=[init("w", 3, 4)],
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.example", 1)],
    )
    path = tmp_path / "custom.onnx"
    onnx.save_model(model, str(path))
    r = analyze_flops(read_onnx(path))
    assert r.unsupported == {"com.example::FancyOp": 1}
    assert r.unresolved == {"Relu": 1}  # its input shape died with the unknown op
    assert r.flops == 48
    assert r.coverage_pct == pytest.approx(100 / 3)
    with pytest.raises(InsufficientDataError, match=r"Relu x1, com\.example::FancyOp x1"):
        analyze_flops(read_onnx(path), strict=True)


def test_truncated_file(tmp_path: Path) -> None:
    path = save(tmp_path, mlp())
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=r"m\.onnx") as info:
        read_onnx(path)
    assert "\n" not in str(info.value)


def test_protobuf_that_is_not_a_model(tmp_path: Path) -> None:
    path = tmp_path / "tensor.pb"
    path.write_bytes(init("w", 3, 4).SerializeToString())
    with pytest.raises(InputError, match=r"tensor\.pb"):
        read_onnx(path)


@pytest.mark.parametrize("content", [b"", b"hello, not protobuf at all"])
def test_empty_or_garbage_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.onnx"
    path.write_bytes(content)
    with pytest.raises(InputError, match=r"bad\.onnx"):
        read_onnx(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        read_onnx(tmp_path / "absent.onnx")


def test_dims_bound_before_inference_resolve_reshape_chains(tmp_path: Path) -> None:
    # Shape -> Gather -> Unsqueeze -> Concat -> Reshape: only data propagation with a
    # concrete batch lets the MatMul after it see a concrete shape.
    nodes = [
        helper.make_node("Shape", ["x"], ["shp"]),
        helper.make_node("Gather", ["shp", "zero"], ["n"], axis=0),
        helper.make_node("Unsqueeze", ["n", "zero_axes"], ["n1"]),
        helper.make_node("Concat", ["n1", "eight"], ["target"], axis=0),
        helper.make_node("Reshape", ["x", "target"], ["flat"]),
        helper.make_node("MatMul", ["flat", "w"], ["y"]),
    ]
    ints = {"zero": 0, "zero_axes": [0], "eight": [8]}
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", F, ["batch", 4, 2])],
        [helper.make_tensor_value_info("y", F, None)],
        initializer=[
            init("w", 8, 3),
            *(numpy_helper.from_array(np.array(v, dtype=np.int64), k) for k, v in ints.items()),
        ],
    )
    r = analyze_flops(read_onnx(save(tmp_path, graph), dims={"batch": 6}))
    assert r.macs == 6 * 8 * 3
    assert r.unresolved == {}


def test_large_inline_weights_counted_from_dims_and_small_constants_kept(tmp_path: Path) -> None:
    """Inline weights over KEEP_DATA elements lose their data before inference, which
    neither the totals nor a small shape constant (a Reshape target) notice."""
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["h"], name="fc"),
        helper.make_node("Reshape", ["h", "shape"], ["r"], name="view"),
        helper.make_node("Relu", ["r"], ["y"], name="act"),
    ]
    shape = numpy_helper.from_array(np.array([4, 64, 128], dtype=np.int64), "shape")
    graph = helper.make_graph(
        nodes, "big", [helper.make_tensor_value_info("x", F, [4, 256])],
        [helper.make_tensor_value_info("y", F, None)],
        initializer=[init("w", 256, 8192), shape],
    )  # fmt: skip
    g = read_onnx(save(tmp_path, graph))
    r = analyze_flops(g)
    assert r.macs == 4 * 256 * 8192
    assert r.n_params == 256 * 8192 + 3
    assert g.tensors["y"].concrete_shape == (4, 64, 128)
    assert r.flops == 2 * r.macs + 4 * 8192  # the Relu, priced through the inferred shape
    assert g.constants["shape"] == (4, 64, 128)


def test_dims_invented_by_inference_leave_nodes_unresolved(tmp_path: Path) -> None:
    """A fully concrete input, but an intermediate whose length only exists at run time
    (NonZero): the MatMul after it cannot be priced, which is reported, not an error."""
    weight = numpy_helper.from_array(np.ones((1, 4), dtype=np.float32), "w")
    nodes = [helper.make_node("NonZero", ["x"], ["idx"]),
             helper.make_node("Cast", ["idx"], ["f"], to=TensorProto.FLOAT),
             helper.make_node("Transpose", ["f"], ["ft"]),
             helper.make_node("MatMul", ["ft", "w"], ["y"])]
    graph = helper.make_graph(nodes, "dynamic",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              [weight])
    path = tmp_path / "dynamic.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    report = analyze_flops(read_onnx(path))
    assert report.unresolved == {"MatMul": 1}
    assert report.coverage_pct < 100
    with pytest.raises(InsufficientDataError, match="MatMul x1"):
        analyze_flops(read_onnx(path), strict=True)
