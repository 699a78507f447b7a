"""Control flow: If, Loop and Scan price their subgraphs (tiny graphs, FLOPs by hand)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from foresize.graph.flops import analyze_flops
from foresize.graph.liveness import inference_memory
from foresize.graph.onnx_reader import read_onnx
from foresize.graph.ops.control_flow import ControlFlowWarning

F = TensorProto.FLOAT


def value(name: str, shape: list[int], dtype: int = F) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, dtype, shape)


def save(tmp_path: Path, graph: onnx.GraphProto) -> Path:
    path = tmp_path / "cf.onnx"
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, path)
    return path


def weight(name: str, shape: tuple[int, ...]) -> onnx.TensorProto:
    return numpy_helper.from_array(np.ones(shape, dtype=np.float32), name)


def if_model(tmp_path: Path) -> Path:
    """then: x[4,8] @ w[8,16] (4*8*16 = 512 MACs = 1024 FLOPs); else: Relu(x) (32 FLOPs).

    Both branches read x and w from the outer scope and give y[4,16] / y[4,8]: the else
    branch pads nothing, so the If output's shape is left to the chosen branch.
    """
    then = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["t"], name="mm")],
        "then",
        [],
        [value("t", [4, 16])],
    )
    other = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["e"], name="relu")], "else", [], [value("e", [4, 8])]
    )
    nodes = [
        helper.make_node("If", ["cond"], ["y"], name="if", then_branch=then, else_branch=other)
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [value("cond", [], TensorProto.BOOL), value("x", [4, 8])],
        [value("y", [4, 16])],
        [weight("w", (8, 16))],
    )
    return save(tmp_path, graph)


def loop_model(tmp_path: Path, trips: int | None) -> Path:
    """Body: h[2,8] @ w[8,8] (2*8*8 = 128 MACs = 256 FLOPs) carried through ``trips`` steps."""
    body = helper.make_graph(
        [
            helper.make_node("MatMul", ["h_in", "w"], ["h_out"], name="step"),
            helper.make_node("Identity", ["c_in"], ["c_out"], name="keep"),
        ],
        "body",
        [
            value("i", [], TensorProto.INT64),
            value("c_in", [], TensorProto.BOOL),
            value("h_in", [2, 8]),
        ],
        [value("c_out", [], TensorProto.BOOL), value("h_out", [2, 8])],
    )
    inits = [weight("w", (8, 8))]
    inputs = [value("h0", [2, 8]), value("cond", [], TensorProto.BOOL)]
    if trips is None:
        inputs.append(value("m", [], TensorProto.INT64))
    else:
        inits.append(numpy_helper.from_array(np.array(trips, dtype=np.int64), "m"))
    nodes = [helper.make_node("Loop", ["m", "cond", "h0"], ["h"], name="loop", body=body)]
    return save(tmp_path, helper.make_graph(nodes, "g", inputs, [value("h", [2, 8])], inits))


def test_if_counts_the_costlier_branch(tmp_path: Path) -> None:
    graph = read_onnx(if_model(tmp_path))
    report = analyze_flops(graph)
    assert report.flops == 1024
    assert report.macs == 512
    assert report.coverage_pct == 100.0
    assert graph.nodes[0].subgraphs.keys() == {"then_branch", "else_branch"}


def test_loop_with_constant_trip_count(tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", ControlFlowWarning)
        report = analyze_flops(read_onnx(loop_model(tmp_path, 5)))
    assert report.flops == 5 * 256
    assert report.macs == 5 * 128


def test_loop_with_unknown_trip_count_warns_and_counts_once(tmp_path: Path) -> None:
    graph = read_onnx(loop_model(tmp_path, None))
    with pytest.warns(ControlFlowWarning, match="trip count m is not a constant"):
        report = analyze_flops(graph)
    assert report.flops == 256
    assert report.unresolved == {}


def test_scan_multiplies_the_body_by_the_scan_length(tmp_path: Path) -> None:
    """Running sum over 6 steps: per step s[3] = s[3] + x_t[3] (3 FLOPs), y_t = 2 * s (3)."""
    body = helper.make_graph(
        [
            helper.make_node("Add", ["s_in", "x_t"], ["s_out"], name="acc"),
            helper.make_node("Mul", ["s_out", "two"], ["y_t"], name="double"),
        ],
        "body",
        [value("s_in", [3]), value("x_t", [3])],
        [value("s_out", [3]), value("y_t", [3])],
    )
    nodes = [
        helper.make_node(
            "Scan", ["s0", "xs"], ["s", "ys"], name="scan", body=body, num_scan_inputs=1
        )
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [value("s0", [3]), value("xs", [6, 3])],
        [value("s", [3]), value("ys", [6, 3])],
        [numpy_helper.from_array(np.array(2.0, dtype=np.float32), "two")],
    )
    report = analyze_flops(read_onnx(save(tmp_path, graph)))
    assert report.flops == 6 * (3 + 3)


def test_control_flow_memory_charges_the_largest_body(tmp_path: Path) -> None:
    graph = read_onnx(if_model(tmp_path))
    memory = inference_memory(graph)
    # cond 1 B + x 128 B + y 256 B live, plus the then-branch's own peak (its output t, 256 B)
    assert memory.peak_activation_bytes == 1 + 128 + 256 + 256
