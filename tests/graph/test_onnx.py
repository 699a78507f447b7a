"""Reading ONNX files: whole-graph totals by hand, dims, external data and bad input."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from foresize.core.errors import InputError, InsufficientDataError, UnknownNameError
from foresize.core.parallel import default_workers
from foresize.graph.flops import analyze_flops
from foresize.graph.liveness import inference_memory
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
    assert r.n_params == 256 * 8192  # the shape vector is an initializer, not a weight
    assert len(g.parameters) == 2
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


def test_parameters_are_the_trainable_weights(tmp_path: Path) -> None:
    """Initializers that are masks, RoPE tables, running statistics, initial states or
    scalars are stored but are not parameters; a tied table is counted once."""
    nodes = [
        helper.make_node("Gather", ["table", "ids"], ["e"], name="embed"),  # table: 50 x 8
        helper.make_node("Mul", ["e", "norm_w"], ["n"], name="rmsnorm_scale"),  # 8
        helper.make_node("Mul", ["n", "half"], ["n2"], name="scale_by_const"),  # scalar
        helper.make_node("Slice", ["rope", "zero", "six"], ["cos"], name="rope_slice"),
        helper.make_node("Mul", ["n2", "cos_b"], ["r"], name="apply_rope"),
        helper.make_node("MatMul", ["r", "wt"], ["q"], name="proj"),  # wt: Transpose(w) 8x8
        helper.make_node("Transpose", ["w"], ["wt"], name="w_t", perm=[1, 0]),
        helper.make_node("Add", ["q", "bias"], ["qb"], name="proj_bias"),  # 8
        helper.make_node("MatMul", ["qb", "qb_t"], ["s"], name="scores"),
        helper.make_node("Transpose", ["qb"], ["qb_t"], name="k_t", perm=[0, 2, 1]),
        helper.make_node("Add", ["s", "mask"], ["sm"], name="mask_add"),  # 6 x 6 mask
        helper.make_node("MatMul", ["sm", "qb"], ["o"], name="mix"),
        helper.make_node("Transpose", ["table"], ["table_t"], name="head_t", perm=[1, 0]),
        helper.make_node("MatMul", ["o", "table_t"], ["logits"], name="tied_head"),
        helper.make_node("Expand", ["cos", "cos_shape"], ["cos_b"], name="rope_expand"),
    ]
    ids = helper.make_tensor_value_info("ids", TensorProto.INT64, [1, 6])
    initializers = [
        init("table", 50, 8), init("norm_w", 8), init("w", 8, 8), init("bias", 8),
        init("mask", 6, 6), init("rope", 16, 8),
        numpy_helper.from_array(np.array(0.5, dtype=np.float32), "half"),
        numpy_helper.from_array(np.array([0], dtype=np.int64), "zero"),
        numpy_helper.from_array(np.array([6], dtype=np.int64), "six"),
        numpy_helper.from_array(np.array([1, 6, 8], dtype=np.int64), "cos_shape"),
    ]
    graph = helper.make_graph(nodes, "tiny_lm", [ids],
                              [helper.make_tensor_value_info("logits", F, None)], initializers)
    g = read_onnx(save(tmp_path, graph))
    assert {t.name for t in g.weights} == {"table", "norm_w", "w", "bias"}
    assert g.n_params == 50 * 8 + 8 + 8 * 8 + 8
    assert analyze_flops(g).n_params == g.n_params
    assert len(g.parameters) == 10  # every initializer still occupies memory
    assert g.param_bytes == 4 * (50 * 8 + 8 + 64 + 8 + 36 + 128 + 1) + 8 * (1 + 1 + 3)


def test_rnn_initial_states_and_batchnorm_statistics_are_not_parameters(tmp_path: Path) -> None:
    nodes = [
        helper.make_node("BatchNormalization", ["x", "g", "b", "mean", "var"], ["bn"], name="bn"),
        helper.make_node("LSTM", ["bn", "W", "R", "B", "", "h0", "c0"], ["y"], name="lstm",
                         hidden_size=4),
    ]
    graph = helper.make_graph(
        nodes, "rnn", [helper.make_tensor_value_info("x", F, [5, 2, 3])],
        [helper.make_tensor_value_info("y", F, None)],
        [init("g", 2), init("b", 2), init("mean", 2), init("var", 2), init("W", 1, 16, 3),
         init("R", 1, 16, 4), init("B", 1, 32), init("h0", 1, 2, 4), init("c0", 1, 2, 4)])
    g = read_onnx(save(tmp_path, graph))
    assert g.n_params == 2 + 2 + 16 * 3 + 16 * 4 + 32


def test_weights_reordered_by_slice_and_concat_still_count(tmp_path: Path) -> None:
    """The torch exporter cuts an LSTM's weight into gates and concatenates them in ONNX
    order; the pieces still reach the LSTM's W slot."""
    nodes = [
        helper.make_node("Slice", ["w_ih", "s0", "s8"], ["gates_a"], name="cut_a"),
        helper.make_node("Slice", ["w_ih", "s8", "s16"], ["gates_b"], name="cut_b"),
        helper.make_node("Concat", ["gates_b", "gates_a"], ["w_onnx"], name="reorder", axis=0),
        helper.make_node("Unsqueeze", ["w_onnx", "axis0"], ["W"], name="add_dir"),
        helper.make_node("LSTM", ["x", "W", "R"], ["y"], name="lstm", hidden_size=4),
    ]
    ints = {name: numpy_helper.from_array(np.array(v, dtype=np.int64), name)
            for name, v in (("s0", [0]), ("s8", [8]), ("s16", [16]), ("axis0", [0]))}
    graph = helper.make_graph(
        nodes, "lstm", [helper.make_tensor_value_info("x", F, [5, 2, 3])],
        [helper.make_tensor_value_info("y", F, None)],
        [init("w_ih", 16, 3), init("R", 1, 16, 4), *ints.values()])
    assert read_onnx(save(tmp_path, graph)).n_params == 16 * 3 + 16 * 4


# --- sanity: sizes no device holds, shapes no op makes, loops --------------------------------


def _graph(nodes: list[onnx.NodeProto], inputs: list[onnx.ValueInfoProto],
           inits: list[onnx.TensorProto], output: list[int] | None = None) -> onnx.GraphProto:
    """A graph whose output is ``z``, of the declared shape ``output`` when given."""
    return helper.make_graph(nodes, "g", inputs, [helper.make_tensor_value_info("z", F, output)],
                             inits)


def _ints(name: str, values: list[int]) -> onnx.TensorProto:
    return numpy_helper.from_array(np.array(values, dtype=np.int64), name)


def _dims_only(name: str, dims: list[int]) -> onnx.TensorProto:
    """An fp32 initializer whose data lives in an external file never written (never read)."""
    tensor = onnx.TensorProto(name=name, dims=dims, data_type=F,
                              data_location=onnx.TensorProto.EXTERNAL)
    tensor.external_data.add(key="location", value="absent.bin")
    return tensor


SANITY = {
    "negative input dim": (
        _graph([helper.make_node("Relu", ["x"], ["z"], name="act")],
               [helper.make_tensor_value_info("x", F, [-5, 3])], []),
        "graph input 'x' has a negative dim (-5) in shape [-5, 3]"),
    "negative declared output dim": (
        _graph([helper.make_node("Relu", ["x"], ["z"], name="act")],
               [helper.make_tensor_value_info("x", F, [3])], [], output=[-2, 3]),
        "node 'act' (Relu): output 'z' has a negative dim (-2)"),
    "reshape to [2^62, 2^62]": (
        _graph([helper.make_node("Reshape", ["x", "s"], ["z"], name="r")],
               [helper.make_tensor_value_info("x", F, [4])], [_ints("s", [2**62, 2**62])]),
        "node 'r' (Reshape): shape operand 's' = [4611686018427387904, 4611686018427387904] "
        "holds more than 2^53 elements"),
    "reshape to [-3, 2]": (
        _graph([helper.make_node("Reshape", ["x", "s"], ["z"], name="r")],
               [helper.make_tensor_value_info("x", F, [6])], [_ints("s", [-3, 2])]),
        "node 'r' (Reshape): shape operand 's' = [-3, 2] is not a shape"),
    "reshape to [-1, -1]": (
        _graph([helper.make_node("Reshape", ["x", "s"], ["z"], name="r")],
               [helper.make_tensor_value_info("x", F, [6])], [_ints("s", [-1, -1])]),
        "node 'r' (Reshape): shape operand 's' = [-1, -1] is not a shape"),
    "ConstantOfShape of 2^54 elements": (
        _graph([helper.make_node("ConstantOfShape", ["s"], ["z"], name="fill")], [],
               [_ints("s", [2**27, 2**27])]),
        "node 'fill' (ConstantOfShape): output 'z' of shape [134217728, 134217728] holds "
        "1.8e+16 elements, beyond 2^53"),
    "Expand to a negative size": (
        _graph([helper.make_node("Expand", ["x", "s"], ["z"], name="grow")],
               [helper.make_tensor_value_info("x", F, [1])], [_ints("s", [-4])]),
        "node 'grow' (Expand): output 'z' has a negative dim (-4) in shape [-4]"),
    "MatMul past 64 bits": (
        _graph([helper.make_node("MatMul", ["x", "w"], ["z"], name="mm")],
               [helper.make_tensor_value_info("x", F, [2**26, 2**26]),
                helper.make_tensor_value_info("w", F, [2**26, 2**26])], []),
        "node 'mm' (MatMul) costs 6.04e+23 FLOPs, beyond a 64-bit count (inputs: 'x' "
        "[67108864, 67108864], 'w' [67108864, 67108864])"),
    "a cycle": (
        _graph([helper.make_node("Relu", ["z"], ["a"], name="first"),
                helper.make_node("Relu", ["a"], ["z"], name="second")], [], []),
        "the graph has a cycle: node 'first' (Relu) reads 'z'"),
    "a node reading its own output": (
        _graph([helper.make_node("Add", ["x", "z"], ["z"], name="self")],
               [helper.make_tensor_value_info("x", F, [2])], []),
        "the graph has a cycle: node 'self' (Add) reads 'z'"),
    "graph input of 2^53 + 1 elements": (
        _graph([helper.make_node("Relu", ["x"], ["z"], name="act")],
               [helper.make_tensor_value_info("x", F, [2**53 + 1])], []),
        "graph input 'x' of shape [9007199254740993] holds 9.01e+15 elements, beyond 2^53"),
    "initializer of 2^27 x 2^27 elements": (
        _graph([helper.make_node("Relu", ["w"], ["z"], name="act")], [],
               [_dims_only("w", [2**27, 2**27])]),
        "initializer 'w' of shape [134217728, 134217728] holds 1.8e+16 elements, beyond 2^53"),
}


@pytest.mark.parametrize("case", sorted(SANITY))
def test_insane_sizes_and_shapes_are_one_line_errors_naming_node_and_tensor(
    case: str, tmp_path: Path
) -> None:
    graph, message = SANITY[case]
    path = save(tmp_path, graph)
    with pytest.raises(InputError) as info:
        analyze_flops(read_onnx(path))
    assert str(info.value).startswith(f"{path}: ")
    assert message in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("case", sorted(SANITY))
def test_insane_graphs_exit_3_with_one_line(case: str, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """The same files through ``foresize profile model``: exit 3, the error on one line."""
    from foresize.cli.main import main

    graph, message = SANITY[case]
    path = save(tmp_path, graph)
    code = main(["profile", "model", str(path)])
    out, err = capsys.readouterr()
    assert code == 3, err
    assert out == ""
    assert err.splitlines()[0].startswith(f"Error: {path}: ")
    assert message in err.splitlines()[0]
    assert "Traceback" not in err


def test_two_to_the_53_elements_is_the_largest_tensor_accepted(tmp_path: Path) -> None:
    """At the bound the graph is priced exactly (integers, no float rounding): input and
    Relu output both live, 4 bytes each; one element more is refused (``SANITY``).
    """
    graph = _graph([helper.make_node("Relu", ["x"], ["z"], name="act")],
                   [helper.make_tensor_value_info("x", F, [2**53])], [])
    memory = inference_memory(read_onnx(save(tmp_path, graph)))
    assert memory.peak_activation_bytes == 2 * 4 * 2**53


def test_constant_of_shape_is_priced_as_the_memory_it_makes(tmp_path: Path) -> None:
    """1e15 fp32 zeros are 4e15 bytes (within 2^53 elements): made from a constant shape,
    they are still allocated at run time, not a free re-layout of a weight. At the Relu both
    the zeros and their Relu are live: 8e15 bytes.
    """
    for shape_source in ("initializer", "Constant"):
        nodes = [helper.make_node("ConstantOfShape", ["s"], ["y"], name="fill"),
                 helper.make_node("Relu", ["y"], ["z"], name="act")]
        inits = [_ints("s", [10**15])]
        if shape_source == "Constant":
            nodes.insert(0, helper.make_node("Constant", [], ["s"], name="shape",
                                             value=_ints("value", [10**15])))
            inits = []
        path = save(tmp_path, _graph(nodes, [], inits), name=f"{shape_source}.onnx")
        memory = inference_memory(read_onnx(path))
        assert memory.peak_activation_bytes == 8 * 10**15, shape_source
        assert memory.peak_node == "act"


def test_a_negative_trip_count_is_refused(tmp_path: Path) -> None:
    body = helper.make_graph(
        [helper.make_node("Relu", ["h_in"], ["h_out"], name="step"),
         helper.make_node("Identity", ["c_in"], ["c_out"], name="keep")],
        "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("c_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("h_in", F, [2, 8])],
        [helper.make_tensor_value_info("c_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("h_out", F, [2, 8])])
    graph = _graph([helper.make_node("Loop", ["trips", "", "x"], ["z"], name="loop", body=body)],
                   [helper.make_tensor_value_info("x", F, [2, 8])], [_ints("trips", [-5])])
    path = save(tmp_path, graph)
    with pytest.raises(InputError, match=r"node 'loop' \(Loop\) costs -80 FLOPs, a negative "
                                         r"count: check its dims and trip count"):
        analyze_flops(read_onnx(path))


def _read_both_ways(path: Path, monkeypatch: pytest.MonkeyPatch, **kw):
    """The graph read with inference in this process, then in a forked child."""
    from foresize.graph import onnx_reader

    monkeypatch.setattr(onnx_reader, "FORK_NODES", 10**9)
    here = read_onnx(path, **kw)
    monkeypatch.setattr(onnx_reader, "FORK_NODES", 0)
    return here, read_onnx(path, **kw)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="inference forks on Linux only")
def test_inference_in_a_child_reads_the_same_graph(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    here, child = _read_both_ways(save(tmp_path, mlp("b")), monkeypatch, dims={"b": 4})
    assert child == here
    assert child.tensors["h"].shape == (4, 16)  # from inference's value_info
    assert analyze_flops(child).macs == 4 * 8 * 16 + 4 * 16 * 2


@pytest.mark.skipif(not hasattr(os, "fork") or default_workers() < 2,
                    reason="inference forks on Linux with two cores or more only")
def test_inference_failing_in_the_child_leaves_the_model_as_read(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from onnx.onnx_cpp2py_export import shape_inference as engine

    from foresize.graph import onnx_reader

    def fail(*args: object, **kwargs: object) -> None:
        raise RuntimeError("inference failed")

    def not_here(model: object) -> None:
        raise AssertionError("inferred again in this process")

    monkeypatch.setattr(engine, "infer_shapes", fail)  # what the child calls
    monkeypatch.setattr(onnx.shape_inference, "infer_shapes", fail)
    path = save(tmp_path, mlp())
    here = read_onnx(path)
    monkeypatch.setattr(onnx_reader, "_infer", not_here)  # the child's answer is used
    monkeypatch.setattr(onnx_reader, "FORK_NODES", 0)
    child = read_onnx(path)
    assert child == here
    assert child.tensors["h"].shape == (4, 16)  # from the op rules' propagation


@pytest.mark.skipif(not hasattr(os, "fork"), reason="inference forks on Linux only")
def test_a_child_that_dies_is_replaced_by_inference_here(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from foresize.graph import onnx_reader

    def die(model: object) -> bytes:
        os.kill(os.getpid(), signal.SIGKILL)
        raise AssertionError("unreachable")

    path = save(tmp_path, mlp())
    expected = read_onnx(path)
    monkeypatch.setattr(onnx_reader, "_inferred_bytes", die)
    monkeypatch.setattr(onnx_reader, "FORK_NODES", 0)
    assert read_onnx(path) == expected


@pytest.mark.skipif(not hasattr(os, "fork") or default_workers() < 2,
                    reason="inference forks on Linux with two cores or more only")
def test_the_child_sends_back_the_inferred_model(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from foresize.graph import onnx_reader

    def not_here(model: object) -> None:
        raise AssertionError("inferred in this process")

    monkeypatch.setattr(onnx_reader, "_infer", not_here)
    monkeypatch.setattr(onnx_reader, "FORK_NODES", 0)
    model = onnx.load(str(save(tmp_path, mlp())))
    inferred, read = onnx_reader._inferred_meanwhile(model, lambda: "read meanwhile")
    assert read == "read meanwhile"
    assert inferred == onnx.shape_inference.infer_shapes(model, data_prop=True)
    assert {v.name for v in inferred.graph.value_info} == {"h", "hb", "a"}


@pytest.mark.skipif(not hasattr(os, "fork"), reason="inference forks on Linux only")
@pytest.mark.parametrize("trouble", ["no fork", "child reaped elsewhere"])
def test_inference_runs_here_when_the_child_cannot_report(
        trouble: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from foresize.graph import onnx_reader

    path = save(tmp_path, mlp())
    expected = read_onnx(path)
    monkeypatch.setattr(onnx_reader, "FORK_NODES", 0)
    if trouble == "no fork":
        def no_fork() -> int:
            raise BlockingIOError("fork: resource temporarily unavailable")

        monkeypatch.setattr(os, "fork", no_fork)
    else:
        waitpid = os.waitpid

        def reaped(pid: int, options: int) -> tuple[int, int]:
            waitpid(pid, options)
            raise ChildProcessError("no child processes")

        monkeypatch.setattr(os, "waitpid", reaped)
    graph = read_onnx(path)
    assert graph == expected
    assert graph.tensors["h"].shape == (4, 16)
