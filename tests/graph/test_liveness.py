"""Liveness memory and per-op roofline: tiny graphs with hand-computed live sets and peaks."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import onnx
import polars as pl
import pytest
from onnx import TensorProto, helper, numpy_helper

from foresize.cli.main import main
from foresize.core.errors import InputError, UnknownNameError
from foresize.core.parallel import default_workers
from foresize.graph.devices import Device
from foresize.graph.flops import analyze_flops, layer_of_node, roofline_rows
from foresize.graph.liveness import inference_memory, saved_tensors, training_memory
from foresize.graph.model import NAME_SCOPES, ModelGraph, Node, TensorInfo
from foresize.graph.onnx_reader import read_onnx

F = TensorProto.FLOAT
EXAMPLE_MODEL = Path(__file__).resolve().parents[2] / "examples" / "model.onnx"


def write(
    tmp_path: Path,
    nodes: list[onnx.NodeProto],
    inputs: dict[str, list[int | str]],
    outputs: dict[str, list[int | str]],
    inits: dict[str, tuple[int, ...]] | None = None,
) -> Path:
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info(n, F, s) for n, s in inputs.items()],
        [helper.make_tensor_value_info(n, F, s) for n, s in outputs.items()],
        [
            numpy_helper.from_array(np.ones(s, dtype=np.float32), n)
            for n, s in (inits or {}).items()
        ],
    )
    path = tmp_path / "g.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def read(
    tmp_path: Path,
    nodes: list[onnx.NodeProto],
    inputs: dict[str, list[int | str]],
    outputs: dict[str, list[int | str]],
    inits: dict[str, tuple[int, ...]] | None = None,
) -> ModelGraph:
    return read_onnx(write(tmp_path, nodes, inputs, outputs, inits))


def mlp_path(tmp_path: Path, batch: int | str = 1) -> Path:
    """x[1,4] 16 B -> fc1 -> h[1,8] 32 B -> relu -> r[1,8] 32 B -> fc2 -> y[1,2] 8 B."""
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["h"], name="fc1"),
        helper.make_node("Relu", ["h"], ["r"], name="relu"),
        helper.make_node("MatMul", ["r", "w2"], ["y"], name="fc2"),
    ]
    return write(
        tmp_path, nodes, {"x": [batch, 4]}, {"y": [batch, 2]}, {"w1": (4, 8), "w2": (8, 2)}
    )


def mlp(tmp_path: Path, batch: int | str = 1) -> ModelGraph:
    return read_onnx(mlp_path(tmp_path, batch))


def test_chain_peak_by_hand(tmp_path: Path) -> None:
    memory = inference_memory(mlp(tmp_path))
    # the input x (16 B) is the caller's and stays live; fc1: x + h = 48;
    # relu: x + h + r = 80; fc2: x + r + y = 56 (h is dead)
    assert memory.live_bytes == (48, 80, 56)
    assert memory.peak_activation_bytes == 80
    assert memory.peak_node == "relu"
    assert memory.weight_bytes == (32 + 16) * 4
    assert memory.total_bytes == 192 + 80
    assert memory.unsized == ()


def test_dtype_override_reprices_floats(tmp_path: Path) -> None:
    memory = inference_memory(mlp(tmp_path), dtype="fp16")
    assert memory.live_bytes == (24, 40, 28)
    assert memory.weight_bytes == 96


def test_skip_connection_keeps_input_alive(tmp_path: Path) -> None:
    # every tensor is [1,4] fp32 = 16 B; x lives until the Add at step 2
    nodes = [
        helper.make_node("Relu", ["x"], ["a"], name="A"),
        helper.make_node("Sigmoid", ["a"], ["b"], name="B"),
        helper.make_node("Add", ["x", "b"], ["y"], name="C"),
    ]
    memory = inference_memory(read(tmp_path, nodes, {"x": [1, 4]}, {"y": [1, 4]}))
    assert memory.live_bytes == (32, 48, 48)
    assert memory.peak_node == "B"


def test_outputs_live_to_the_end_and_dead_ends_free_at_once(tmp_path: Path) -> None:
    nodes = [
        helper.make_node("Relu", ["x"], ["y1"], name="A"),
        helper.make_node("Tanh", ["x"], ["unused"], name="B"),
        helper.make_node("Sigmoid", ["x"], ["y2"], name="C"),
    ]
    memory = inference_memory(read(tmp_path, nodes, {"x": [2, 2]}, {"y1": [2, 2], "y2": [2, 2]}))
    # A: x + y1; B: x + y1 + unused; C: x + y1 + y2 (unused died after B)
    assert memory.live_bytes == (32, 48, 48)


def test_training_breakdown_by_hand(tmp_path: Path) -> None:
    graph = mlp(tmp_path)
    assert saved_tensors(graph) == ("x", "r")  # fc1 saves x; relu and fc2 both save r
    # timeline: forward fc1 relu fc2 (t0-2), backward fc2 relu fc1 (t3-5), optimizer (t6).
    # AdamW peaks in its step: all grads (128 + 64), the state (2 x 48 fp32), the output
    # y (8) and input x (16) still held, and 2 fp32 temporaries of w1 (2 x 128)
    step = training_memory(graph, optimizer="adamw")
    assert dict(step.components) == {
        "weights": 192,
        "gradients": 192,
        "master_weights": 0,
        "optimizer_state": 48 * 4 * 2,
        "saved_activations": 0,
        "workspace": 8 + 16 + 256,
    }
    assert step.total_bytes == 1048
    assert step.precision == "fp32"
    assert step.peak_at == "optimizer"
    assert training_memory(graph, optimizer="adamw", first_step=True).total_bytes == 1048
    # SGD has no state or temporaries: the peak is fc1's backward (t5): grads 192, x still
    # saved (16), y held (8) and h's gradient (32)
    sgd = training_memory(graph, optimizer="sgd")
    assert dict(sgd.components) == {
        "weights": 192,
        "gradients": 192,
        "master_weights": 0,
        "optimizer_state": 0,
        "saved_activations": 16,
        "workspace": 40,
    }
    assert sgd.peak_at == "backward:fc1"
    mixed = training_memory(graph, optimizer="sgd_momentum", dtype="bf16")
    assert dict(mixed.components) == {
        "weights": 96,
        "gradients": 96,
        "master_weights": 48 * 4,
        "optimizer_state": 48 * 4,
        "saved_activations": 8,
        "workspace": 20,
    }


def test_saved_tensor_rules(tmp_path: Path) -> None:
    nodes = [
        helper.make_node("Mul", ["x", "w"], ["x1"], name="scale"),
        helper.make_node("Add", ["x1", "x1"], ["a"], name="add"),
        helper.make_node("Mul", ["a", "x1"], ["m"], name="mul"),
        helper.make_node("Softmax", ["m"], ["s"], name="softmax"),
        helper.make_node("Reshape", ["s", "shape"], ["v"], name="view"),
        helper.make_node("Foo", ["v"], ["y"], name="custom", domain="acme"),
    ]
    graph = read(tmp_path, nodes, {"x": [2, 3], "shape": [2]}, {"y": [3, 2]}, {"w": (2, 3)})
    # scale keeps x (w is a weight), add nothing, mul a and x1, softmax s, the view nothing;
    # the unknown op keeps its input v, a view of s: s is kept once
    assert saved_tensors(graph) == ("x", "a", "x1", "s")
    no_weights = read(tmp_path, nodes[1:], {"x1": [2, 3], "shape": [2]}, {"y": [3, 2]})
    assert saved_tensors(no_weights) == ()  # nothing depends on a weight: autograd records nothing


def test_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="--dim batch="):
        inference_memory(mlp(tmp_path, "batch"))
    graph = mlp(tmp_path)
    with pytest.raises(UnknownNameError):
        inference_memory(graph, dtype="fp8")
    with pytest.raises(UnknownNameError):
        training_memory(graph, optimizer="lion")


def test_roofline_rows(tmp_path: Path) -> None:
    report = analyze_flops(mlp(tmp_path))
    toy = Device("toy", 2**30, 1.0, {"fp32": 1.0}, "test")  # 1 FLOP/s, 1 byte/s
    rows = roofline_rows(report, toy, "fp32")
    relu = rows.row(by_predicate=pl.col("node") == "relu", named=True)
    assert relu["flops"] == 8
    assert relu["time_s"] == relu["bytes_read"] + relu["bytes_written"] == 64
    assert relu["bound"] == "memory"
    for row in rows.iter_rows(named=True):
        moved = row["bytes_read"] + row["bytes_written"]
        assert row["time_s"] == max(row["flops"], moved)
    assert rows["time_s"].sum() == pytest.approx(
        sum(
            max(f, r + w)
            for f, r, w in rows.select("flops", "bytes_read", "bytes_written").iter_rows()
        )
    )


def test_cli_memory_training_and_roofline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = mlp_path(tmp_path, "batch")
    code = main(
        [
            "profile",
            "model",
            str(path),
            "--dim",
            "batch=1",
            "--train",
            "--optimizer",
            "adam",
            "--device",
            "cpu",
            "-f",
            "json",
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    document = json.loads(out)
    report = document["model"]
    assert report["inference"] == {
        "dtype": "fp32",
        "weight_bytes": 192,
        "peak_activation_bytes": 80,
        "peak_node": "relu",
        "total_bytes": 272,
        "unsized_tensors": [],
    }
    assert report["training"]["total_bytes"] == 1048
    assert report["training"]["components_bytes"]["saved_activations"] == 0
    times = [row["time_s"] for row in document["ops"]]
    assert report["roofline"]["time_s"] == pytest.approx(sum(times))
    assert {row["bound"] for row in document["ops"]} == {"memory"}
    assert "peak activations 80" in err
    code = main(["profile", "model", str(path), "--dim", "batch=1", "--dtype", "fp16"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "time_s" not in out
    assert "memory (fp16): weights 96" in err


def test_a_view_of_a_weight_costs_no_activation_memory(tmp_path: Path) -> None:
    """GPT-2's tied head exports as Transpose(weight): a view in PyTorch, not a copy.
    x[256] + Transpose(W[256]) -> y: live activations are x and y only (2 KiB); the
    transposed weight, and a view of it, add nothing."""
    weight = numpy_helper.from_array(np.ones(256, dtype=np.float32), "w")
    nodes = [
        helper.make_node("Transpose", ["w"], ["wt"]),
        helper.make_node("Identity", ["wt"], ["wv"]),
        helper.make_node("Add", ["x", "wv"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tied",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [256])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [256])],
        [weight],
    )
    path = tmp_path / "tied.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    memory = inference_memory(read_onnx(path))
    assert memory.weight_bytes == 1024
    assert memory.peak_activation_bytes == 2 * 1024


def test_zero_shards_the_training_state_over_data_parallel_ranks(tmp_path: Path) -> None:
    graph = mlp(tmp_path)
    # by hand (see test_training_breakdown_by_hand): weights 192, grads 192, AdamW 384,
    # workspace at the optimizer step 280 (y 8, x 16, 2 fp32 temporaries of w1 256)
    one = training_memory(graph, optimizer="adamw", zero_stage=1, data_parallel=4)
    assert one.components["optimizer_state"] == 96
    assert (one.components["weights"], one.components["gradients"]) == (192, 192)
    two = training_memory(graph, optimizer="adamw", zero_stage=2, data_parallel=4)
    assert (two.components["gradients"], two.components["optimizer_state"]) == (48, 96)
    three = training_memory(graph, optimizer="adamw", zero_stage=3, data_parallel=4)
    assert dict(three.components) == {
        "weights": 48, "gradients": 48, "master_weights": 0, "optimizer_state": 96,
        "saved_activations": 0, "workspace": 280,
    }
    mixed = training_memory(graph, optimizer="adamw", dtype="bf16", zero_stage=1,
                            data_parallel=3)
    assert mixed.components["master_weights"] == 64  # 48 fp32 values over 3 ranks
    assert training_memory(graph, optimizer="adamw", zero_stage=3).total_bytes == 1048
    with pytest.raises(InputError, match="ZeRO stage must be 0-3"):
        training_memory(graph, optimizer="adamw", zero_stage=4, data_parallel=2)


@pytest.mark.parametrize(("option", "message"), [
    (["--tp", "2"], "Invalid value for --tp: needs the architecture"),
    (["--batch", "4"], "Invalid value for --batch: sizes a config.json"),
    (["--context", "512"], "Invalid value for --context: sizes a config.json"),
])
def test_config_only_options_on_a_graph_are_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], option: list[str], message: str
) -> None:
    path = mlp_path(tmp_path)
    assert main(["profile", "model", str(path), "--train", *option]) == 2
    assert message in capsys.readouterr().err


def test_cli_zero_on_a_graph(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = mlp_path(tmp_path)
    args = ["profile", "model", str(path), "--train", "--zero", "3", "--dp", "4", "-f", "json"]
    assert main(args) == 0
    training = json.loads(capsys.readouterr().out)["model"]["training"]
    assert (training["zero_stage"], training["data_parallel"]) == (3, 4)
    assert training["total_bytes"] == 48 + 48 + 96 + 280


def test_recompute_keeps_only_block_boundaries_until_each_block_s_backward(
    tmp_path: Path,
) -> None:
    # 3 blocks x -> fc1 -> h -> relu -> r -> fc2 -> o, batch 100: x, o 1600 B; h, r 3200 B
    nodes, previous, inits = [], "x", {}
    for i in range(3):
        out = f"o{i}" if i < 2 else "y"
        nodes += [
            helper.make_node("MatMul", [previous, f"a{i}"], [f"h{i}"], name=f"/layers.{i}/fc1/M"),
            helper.make_node("Relu", [f"h{i}"], [f"r{i}"], name=f"/layers.{i}/act/Relu"),
            helper.make_node("MatMul", [f"r{i}", f"b{i}"], [out], name=f"/layers.{i}/fc2/M"),
        ]
        inits |= {f"a{i}": (4, 8), f"b{i}": (8, 4)}
        previous = out
    graph = read(tmp_path, nodes, {"x": [100, 4]}, {"y": [100, 4]}, inits)
    assert saved_tensors(graph) == ("x", "r0", "o0", "r1", "o1", "r2")
    # both peak at the last block's relu backward (step 10 of 0..17): y held (1600) and
    # the gradients of r2 and h2 (2 x 3200) beside the saved tensors
    plain = training_memory(graph, optimizer="sgd")
    assert plain.components["saved_activations"] == 1600 + 3 * 3200 + 2 * 1600
    assert plain.components["workspace"] == 8000
    # recomputed: the boundaries x, o0, o1 and the last block's r2, rebuilt for its backward
    full = training_memory(graph, optimizer="sgd", recompute="full")
    assert full.components["saved_activations"] == 3 * 1600 + 3200
    assert full.components["workspace"] == 8000
    assert full.peak_at == plain.peak_at == "backward:/layers.2/act/Relu"
    with pytest.raises(InputError, match="recompute must be none or full"):
        training_memory(graph, optimizer="sgd", recompute="half")


@pytest.mark.parametrize(
    ("scopes", "name", "layer"),
    [
        ("['', 'blocks', 'blocks.3', 'blocks.3.attn', 'node_MatMul_1']", "node_MatMul_1",
         "blocks.3"),
        ("['', 'embed', 'node_Gather_0']", "node_Gather_0", "embed"),
        ("['', 'node_Add_9']", "node_Add_9", "(top)"),
        (None, "/layers.2/mlp/MatMul", "layers.2"),  # no metadata: the scoped name
        (None, "/layers.2/MatMul", "layers.2"),
        (None, "/encoder/norm/Add", "encoder"),  # no indexed module: the first scope
        (None, "/x/3/y/Add", "x/3"),  # a bare index is a block
        (None, "MatMul_7", "(top)"),
        (None, "a//b", "a"),  # empty parts are no scope
        (None, "a/b/", "a"),  # the last part is the op, even after a trailing slash
        (None, "/", "(top)"),
    ],
)
def test_layers_come_from_the_exporter_s_module_path(
    scopes: str | None, name: str, layer: str
) -> None:
    metadata = {} if scopes is None else {NAME_SCOPES: scopes}
    assert layer_of_node(Node(name, "MatMul", metadata=metadata)) == layer


def test_training_step_time_of_a_graph(tmp_path: Path) -> None:
    from foresize.graph.analysis import GraphRequest, analyze_graph
    from foresize.graph.devices import get_device

    request = GraphRequest(dims={}, dtype=None, device="h100_sxm", train=True,
                           optimizer="adamw", top=5, strict=False, data_parallel=4)  # fmt: skip
    roofline = analyze_graph(mlp(tmp_path), request).summary["roofline"]
    step = roofline["training_step"]
    h100 = get_device("h100_sxm")
    assert h100.link_bytes_per_s is not None
    # three forward passes' worth of per-op bounds, then AdamW reads and writes 7 fp32
    # words for each of the 48 parameters (not sharded without ZeRO)
    update = 48 * 4 * 7 / h100.bandwidth_bytes_per_s
    assert step["step_s"] == pytest.approx(3 * roofline["time_s"] + update)
    # 48 fp32 gradients (192 B) over 4 ranks: NCCL's latency, then 2 x 3/4 x 192 B
    expected = 8.4e-6 + 6 * 3.4e-6 + 1.5 * 192 / (h100.link_bytes_per_s / 2)
    assert step["gradient_allreduce_s"] == pytest.approx(expected)


@pytest.mark.skipif(not hasattr(os, "fork") or default_workers() < 2,
                    reason="analysis forks on Linux with two cores or more only")
@pytest.mark.parametrize("dtype", [None, "bf16"])
def test_memory_found_in_a_child_is_the_memory_found_here(
        dtype: str | None, monkeypatch: pytest.MonkeyPatch) -> None:
    from foresize.graph import analysis
    from foresize.graph.analysis import GraphRequest, analyze_graph

    graph = read_onnx(EXAMPLE_MODEL, dims={"batch": 2, "seq": 16})
    request = GraphRequest(dims={}, dtype=dtype, device="h100_sxm", train=True,
                           optimizer="adamw", top=5, strict=False)
    here = analyze_graph(graph, request)
    parent, found = os.getpid(), analysis.inference_memory

    def in_the_child_only(*args: object, **kwargs: object) -> object:
        assert os.getpid() != parent, "inference memory was found in this process"
        return found(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(analysis, "inference_memory", in_the_child_only)
    monkeypatch.setattr(analysis, "FORK_NODES", 0)
    forked = analyze_graph(graph, request)
    assert forked.summary == here.summary
    assert forked.notes == here.notes
    assert forked.rows.equals(here.rows)
    assert here.summary["inference"]["peak_activation_bytes"] > 0


@pytest.mark.skipif(not hasattr(os, "fork") or default_workers() < 2,
                    reason="analysis forks on Linux with two cores or more only")
def test_a_child_that_cannot_find_memory_leaves_the_error_to_this_process(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from foresize.graph import analysis
    from foresize.graph.analysis import GraphRequest, analyze_graph

    request = GraphRequest(dims={}, dtype="fp8", device=None, train=False,
                           optimizer="adamw", top=5, strict=False)
    monkeypatch.setattr(analysis, "FORK_NODES", 0)
    with pytest.raises(UnknownNameError, match="fp8"):  # raised in the child, then here
        analyze_graph(mlp(tmp_path), request)


def _chain_with_a_view(dim: int) -> ModelGraph:
    """x -> Relu a -> Reshape v (a view of a) -> Sigmoid b -> Add(b, x) y, all [1, dim] fp32."""
    shape = (1, dim)
    tensors = {name: TensorInfo(name, shape, "float32", 32) for name in "xavby"}
    tensors["s"] = TensorInfo("s", (2,), "int64", 64, is_param=True)
    nodes = (
        Node("relu", "Relu", inputs=("x",), outputs=("a",)),
        Node("view", "Reshape", inputs=("a", "s"), outputs=("v",)),
        Node("sigmoid", "Sigmoid", inputs=("v",), outputs=("b",)),
        Node("add", "Add", inputs=("b", "x"), outputs=("y",)),
    )
    return ModelGraph("g", nodes, tensors, ("x",), ("y",), {"s": (1, dim)})


def test_spans_and_peaks_of_a_view_by_hand() -> None:
    # x (16 B) is the caller's; a lives until the Sigmoid reads its view v (0 B);
    # relu: x + a; view: x + a; sigmoid: x + a + b; add: x + b + y
    memory = inference_memory(_chain_with_a_view(4))
    assert memory.live_bytes == (32, 32, 48, 48)
    assert memory.peak_activation_bytes == 48
    assert memory.peak_node == "sigmoid"


def test_live_bytes_beyond_64_bits_are_summed_exactly() -> None:
    # each tensor is 2^62 elements of 4 B: 2^64 B, past int64, so Python's integers sum
    memory = inference_memory(_chain_with_a_view(2**62))
    b = 2**64
    assert memory.live_bytes == (2 * b, 2 * b, 3 * b, 3 * b)
    assert memory.peak_node == "sigmoid"


def test_numpy_and_python_sums_agree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import foresize.graph.liveness as liveness

    graph = mlp(tmp_path)
    fast = inference_memory(graph).live_bytes
    monkeypatch.setattr(liveness, "INT64_MAX", -1)  # every sum past the bound: Python's path
    assert inference_memory(graph).live_bytes == fast == (48, 80, 56)
    view = _chain_with_a_view(4)
    assert inference_memory(view).live_bytes == (32, 32, 48, 48)
