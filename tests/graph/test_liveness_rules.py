"""Memory rules and fusion: eager kernels recovered from exported decompositions, scratch.

Every figure is computed by hand from fp32 tensor sizes (4 bytes an element).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from foresize.core.errors import UnknownNameError
from foresize.graph.liveness import _plan, inference_memory, saved_tensors, training_memory
from foresize.graph.model import ModelGraph
from foresize.graph.onnx_reader import read_onnx
from foresize.graph.ops.fusion import fuse

F = TensorProto.FLOAT


def read(
    tmp_path: Path,
    nodes: list[onnx.NodeProto],
    inputs: dict[str, list[int]],
    outputs: dict[str, list[int]],
    inits: dict[str, np.ndarray] | None = None,
) -> ModelGraph:
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info(n, F, s) for n, s in inputs.items()],
        [helper.make_tensor_value_info(n, F, s) for n, s in outputs.items()],
        [
            numpy_helper.from_array(v if v.dtype == np.int64 else v.astype(np.float32), n)
            for n, v in (inits or {}).items()
        ],
    )
    path = tmp_path / "g.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return read_onnx(path)


GELU_NODES = [
    helper.make_node("MatMul", ["x", "w"], ["h"], name="fc"),
    helper.make_node("Div", ["h", "sqrt2"], ["d"], name="div"),
    helper.make_node("Erf", ["d"], ["e"], name="erf"),
    helper.make_node("Add", ["e", "one"], ["a"], name="add"),
    helper.make_node("Mul", ["half", "a"], ["m"], name="mul"),
    helper.make_node("Mul", ["h", "m"], ["y"], name="gelu"),
]


def gelu(tmp_path: Path, nodes: list[onnx.NodeProto] = GELU_NODES) -> ModelGraph:
    """h = x @ w [1,8] 32 B, then GELU as torch exports it (Div, Erf, Add, Mul, Mul)."""
    return read(
        tmp_path,
        nodes,
        {"x": [1, 4]},
        {"y": [1, 8]},
        {
            "w": np.ones((4, 8)),
            "sqrt2": np.array(1.41),
            "one": np.array(1.0),
            "half": np.array(0.5),
        },
    )


def test_exported_gelu_is_one_kernel_that_saves_its_input(tmp_path: Path) -> None:
    graph = gelu(tmp_path)
    assert [k.op_type for k in fuse(graph)] == ["MatMul", "Gelu"]
    # fc: x 16 + h 32; gelu: x + h + y 32 (no d, e, a, m)
    assert inference_memory(graph).live_bytes == (48, 80)
    assert saved_tensors(graph) == ("x", "h")


def attention(tmp_path: Path, *, sdpa: bool) -> ModelGraph:
    """q, k, v [1,2,4,8] (256 B each); scores [1,2,4,4] (128 B)."""
    if sdpa:  # torch's SDPA decomposition: Q and K^T both scaled by sqrt(scale)
        scores = [
            helper.make_node("Mul", ["q", "c"], ["qs"], name="mq"),
            helper.make_node("Transpose", ["k"], ["kt"], name="kt", perm=[0, 1, 3, 2]),
            helper.make_node("Mul", ["kt", "c"], ["ks"], name="mk"),
            helper.make_node("MatMul", ["qs", "ks"], ["s"], name="qk"),
        ]
    else:  # hand-written attention: scores divided after the product
        scores = [
            helper.make_node("Transpose", ["k"], ["kt"], name="kt", perm=[0, 1, 3, 2]),
            helper.make_node("MatMul", ["q", "kt"], ["raw"], name="qk"),
            helper.make_node("Div", ["raw", "c"], ["s"], name="scale"),
        ]
    nodes = [
        *scores,
        helper.make_node("Softmax", ["s"], ["p"], name="softmax"),
        helper.make_node("MatMul", ["p", "v"], ["o"], name="pv"),
    ]
    shape = [1, 2, 4, 8]
    return read(
        tmp_path, nodes, {"q": shape, "k": shape, "v": shape}, {"o": shape}, {"c": np.array(0.59)}
    )


def test_sdpa_decomposition_never_materialises_scores(tmp_path: Path) -> None:
    graph = attention(tmp_path, sdpa=True)
    assert [k.op_type for k in fuse(graph)] == ["Attention"]
    # q, k, v, o and the kernel's log-sum-exp per query row (1 x 2 x 4 rows, fp32)
    assert inference_memory(graph).live_bytes == (4 * 256 + 8 * 4,)


@pytest.mark.parametrize("build", ["gelu", "sdpa", "unsorted"])
def test_kernels_fused_while_inference_runs_are_those_fused_after(
        build: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from foresize.graph import onnx_reader

    monkeypatch.setattr(onnx_reader, "FORK_NODES", 0)  # every graph is read as a large one
    if build == "unsorted":  # the file lists its nodes out of order: the reader sorts them
        graph = gelu(tmp_path, GELU_NODES[::-1])
        assert graph.kernels is None  # not the nodes fusion saw
    else:
        graph = attention(tmp_path, sdpa=True) if build == "sdpa" else gelu(tmp_path)
        assert graph.kernels is not None
        assert graph.kernels == fuse(replace(graph, kernels=None))
    assert [k.op_type for k in fuse(graph)] == (["Attention"] if build == "sdpa"
                                                else ["MatMul", "Gelu"])


def test_hand_written_attention_keeps_its_scores(tmp_path: Path) -> None:
    graph = attention(tmp_path, sdpa=False)
    assert "Attention" not in [k.op_type for k in fuse(graph)]
    # q, k, v (768) live throughout; raw, s and p scores (128 each) exist in turn
    assert inference_memory(graph).live_bytes == (768, 896, 1024, 1024, 768 + 128 + 256)


def test_bias_add_folds_into_its_matmul(tmp_path: Path) -> None:
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["h"], name="mm"),
        helper.make_node("Add", ["h", "b"], ["y"], name="bias"),
    ]
    graph = read(
        tmp_path, nodes, {"x": [2, 4]}, {"y": [2, 8]}, {"w": np.ones((4, 8)), "b": np.ones(8)}
    )
    assert [k.name for k in fuse(graph)] == ["mm"]
    assert inference_memory(graph).live_bytes == (32 + 64,)  # no separate h


def test_conv_workspace_on_cpu(tmp_path: Path) -> None:
    """x [1,2,4,4] 128 B, w [3,2,3,3] 216 B, y [1,3,4,4] 192 B: oneDNN reorders w and y."""
    nodes = [helper.make_node("Conv", ["x", "w"], ["y"], name="conv", pads=[1, 1, 1, 1])]
    graph = read(
        tmp_path, nodes, {"x": [1, 2, 4, 4]}, {"y": [1, 3, 4, 4]}, {"w": np.ones((3, 2, 3, 3))}
    )
    assert inference_memory(graph).peak_activation_bytes == 128 + 192 + 216 + 192
    assert inference_memory(graph, workspace="none").peak_activation_bytes == 128 + 192
    with pytest.raises(UnknownNameError):
        inference_memory(graph, workspace="tpu")


def test_max_pool_indices_are_int64_scratch(tmp_path: Path) -> None:
    nodes = [
        helper.make_node("MaxPool", ["x"], ["y"], name="pool", kernel_shape=[2, 2], strides=[2, 2])
    ]
    graph = read(tmp_path, nodes, {"x": [1, 1, 4, 4]}, {"y": [1, 1, 2, 2]})
    assert inference_memory(graph).peak_activation_bytes == 64 + 16 + 4 * 8


@pytest.mark.parametrize(("shape", "copied"), [([2, 3], True), ([1, 3], False)])
def test_reshape_of_a_transpose_copies_only_when_strided(
    tmp_path: Path, shape: list[int], copied: bool
) -> None:
    nodes = [
        helper.make_node("Transpose", ["x"], ["t"], name="t", perm=[1, 0]),
        helper.make_node("Reshape", ["t", "flat"], ["r"], name="r"),
        helper.make_node("Relu", ["r"], ["y"], name="relu"),
    ]
    graph = read(
        tmp_path,
        nodes,
        {"x": shape},
        {"y": [3 * shape[0]]},
        {"flat": np.array([3 * shape[0]], dtype=np.int64)},
    )
    size = 12 * shape[0]
    # x and y always; the reshaped copy r only when the transpose moved a dim > 1
    assert inference_memory(graph).peak_activation_bytes == (3 if copied else 2) * size


def test_sdpa_scale_computed_from_the_query_shape_still_fuses(tmp_path: Path) -> None:
    """The raw torch export computes sqrt(1/sqrt(d)) from Shape(q), once per operand."""
    nodes = [
        helper.make_node("Shape", ["q"], ["sh"], name="shape"),
        helper.make_node("Gather", ["sh", "last"], ["d"], name="dim"),
        helper.make_node("Cast", ["d"], ["df"], name="cast", to=F),
        helper.make_node("Sqrt", ["df"], ["rd"], name="sqrt_d"),
        helper.make_node("Div", ["one", "rd"], ["scale"], name="inv"),
        helper.make_node("Sqrt", ["scale"], ["cq"], name="sqrt_q"),
        helper.make_node("Sqrt", ["scale"], ["ck0"], name="sqrt_k"),
        helper.make_node("CastLike", ["ck0", "k"], ["ck"], name="like"),
        helper.make_node("Mul", ["q", "cq"], ["qs"], name="mq"),
        helper.make_node("Transpose", ["k"], ["kt"], name="kt", perm=[0, 1, 3, 2]),
        helper.make_node("Mul", ["kt", "ck"], ["ks"], name="mk"),
        helper.make_node("MatMul", ["qs", "ks"], ["s"], name="qk"),
        helper.make_node("Softmax", ["s"], ["p"], name="softmax"),
        helper.make_node("MatMul", ["p", "v"], ["o"], name="pv"),
    ]
    shape = [1, 2, 4, 8]
    consts = {"last": np.array(3, dtype=np.int64), "one": np.array(1.0)}
    graph = read(tmp_path, nodes, {"q": shape, "k": shape, "v": shape}, {"o": shape}, consts)
    assert "Attention" in [k.op_type for k in fuse(graph)]
    assert "Softmax" not in [k.op_type for k in fuse(graph)]
    # the scale chain is static: q, k, v, o and the log-sum-exp rows, as for a literal scale
    assert inference_memory(graph).peak_activation_bytes == 4 * 256 + 8 * 4


def lstm(tmp_path: Path) -> ModelGraph:
    """T=3 steps, batch 2, input 4, hidden 2: X 96 B, W [1,8,4] 128 B, R [1,8,2] 64 B, Y 48 B."""
    nodes = [helper.make_node("LSTM", ["x", "w", "r"], ["y"], name="lstm", hidden_size=2)]
    inits = {"w": np.zeros((1, 8, 4)), "r": np.zeros((1, 8, 2))}
    return read(tmp_path, nodes, {"x": [3, 2, 4]}, {"y": [3, 1, 2, 2]}, inits)


def test_lstm_onednn_buffers_by_mode(tmp_path: Path) -> None:
    graph = lstm(tmp_path)
    effect = _plan(graph, None, "cpu").effects[0]
    # weights W+R 192; gates 3*2*4*2 fp32 = 192; states (3+1)*2*2 fp32 = 64
    assert effect.inference_bytes == 192 + 64
    assert effect.forward_scratch == 192 + 192
    assert effect.extra_saved_bytes == 192 + 64
    assert effect.backward_scratch == 2 * 192 + 192 + 192 + 64
    assert effect.saved == ("x", "y")
    # inference: X and Y plus the reordered weights and per-step states, no workspace
    assert inference_memory(graph).peak_activation_bytes == 96 + 48 + 256
    assert inference_memory(graph, workspace="none").peak_activation_bytes == 96 + 48


def test_lstm_training_keeps_its_workspace_and_needs_backward_scratch(tmp_path: Path) -> None:
    graph = lstm(tmp_path)
    step = training_memory(graph, optimizer="sgd")
    # peak in the backward: X, Y (saved), the workspace 256, dY 48, the backward scratch
    # 832, the weight gradients 192 (and the weights 192)
    assert step.peak_at == "backward:lstm"
    assert step.components["saved_activations"] == 96 + 48 + 256
    assert step.components["gradients"] == 192
    assert step.total_bytes == 192 + 96 + 48 + 256 + 48 + 832 + 192


def test_a_weight_relayout_costs_no_activation_memory(tmp_path: Path) -> None:
    """ww = w + w is computed from a parameter only: eager reads w, a runtime folds it."""
    nodes = [
        helper.make_node("Add", ["w", "w"], ["ww"], name="relayout"),
        helper.make_node("MatMul", ["x", "ww"], ["y"], name="fc"),
    ]
    graph = read(tmp_path, nodes, {"x": [2, 4]}, {"y": [2, 8]}, {"w": np.zeros((4, 8))})
    plan = _plan(graph, None, "cpu")
    assert plan.static == {"ww": frozenset({"w"})}
    assert inference_memory(graph).live_bytes == (32, 32 + 64)
    # w's gradient is born at fc's backward (its reader), not at the re-layout's
    step = training_memory(graph, optimizer="sgd")
    assert step.components["gradients"] == 128


def scoped(node: onnx.NodeProto, *scopes: str) -> onnx.NodeProto:
    """Attach the torch exporter's module path (``name_scopes``) to ``node``."""
    node.metadata_props.add(key="pkg.torch.onnx.name_scopes", value=str([*scopes, node.name]))
    return node


def test_a_module_argument_lives_until_the_call_returns(tmp_path: Path) -> None:
    """a = relu(x) at the top, then module m: sigmoid, tanh, exp; each tensor 1 KiB."""
    nodes = [
        scoped(helper.make_node("Relu", ["x"], ["a"], name="relu"), ""),
        scoped(helper.make_node("Sigmoid", ["a"], ["b"], name="sig"), "", "m"),
        scoped(helper.make_node("Tanh", ["b"], ["c"], name="tanh"), "", "m"),
        scoped(helper.make_node("Exp", ["c"], ["d"], name="exp"), "", "m"),
        scoped(helper.make_node("Neg", ["d"], ["y"], name="neg"), ""),
    ]
    graph = read(tmp_path, nodes, {"x": [1, 256]}, {"y": [1, 256]})
    kib = 1024
    # x always; a (m's argument) until exp, m's last kernel; b, c, d in turn
    assert inference_memory(graph).live_bytes == (2 * kib, 3 * kib, 4 * kib, 4 * kib, 3 * kib)
    bare = read(tmp_path, [helper.make_node(n.op_type, n.input, n.output) for n in nodes],
                {"x": [1, 256]}, {"y": [1, 256]})  # fmt: skip
    assert inference_memory(bare).live_bytes == (2 * kib, 3 * kib, 3 * kib, 3 * kib, 3 * kib)


def test_a_tensor_read_twice_in_its_frame_lives_until_the_frame_returns(
    tmp_path: Path,
) -> None:
    """Inside m: a = relu(x), b = sigmoid(a), c = a * b, d = exp(c), e = tanh(d)."""
    nodes = [
        scoped(helper.make_node("Relu", ["x"], ["a"], name="relu"), "", "m"),
        scoped(helper.make_node("Sigmoid", ["a"], ["b"], name="sig"), "", "m"),
        scoped(helper.make_node("Mul", ["a", "b"], ["c"], name="mul"), "", "m"),
        scoped(helper.make_node("Exp", ["c"], ["d"], name="exp"), "", "m"),
        scoped(helper.make_node("Tanh", ["d"], ["e"], name="tanh"), "", "m"),
        scoped(helper.make_node("Neg", ["e"], ["y"], name="neg"), ""),
    ]
    graph = read(tmp_path, nodes, {"x": [1, 256]}, {"y": [1, 256]})
    kib = 1024
    # a is a named local of m: held through tanh (m's last kernel), freed before neg
    assert inference_memory(graph).live_bytes == tuple(k * kib for k in (2, 3, 4, 4, 4, 3))


def test_split_outputs_are_views_of_their_input(tmp_path: Path) -> None:
    """h = relu(x) [2,8] 64 B; a, b = split(h) [2,4] 32 B each; y = sigmoid(a) + tanh(b)."""
    nodes = [
        helper.make_node("Relu", ["x"], ["h"], name="relu"),
        helper.make_node("Split", ["h", "halves"], ["a", "b"], name="split", axis=1),
        helper.make_node("Sigmoid", ["a"], ["sa"], name="sig"),
        helper.make_node("Tanh", ["b"], ["tb"], name="tanh"),
        helper.make_node("Add", ["sa", "tb"], ["y"], name="add"),
    ]
    graph = read(
        tmp_path, nodes, {"x": [2, 8]}, {"y": [2, 4]}, {"halves": np.array([4, 4], np.int64)}
    )
    # a and b cost nothing; h lives until tanh reads b, its last view
    assert inference_memory(graph).live_bytes == (128, 128, 160, 192, 160)


@pytest.mark.parametrize(("axis", "expected"), [(1, (96, 96, 120, 96)), (0, (96, 96, 96, 120))])
def test_a_slice_is_a_view_and_reshaping_it_copies_only_when_strided(
    tmp_path: Path, axis: int, expected: tuple[int, ...]
) -> None:
    """h = relu(x) [2,6] 48 B; s = h[:, 3:] (axis 1, strided) or h[1:] (axis 0, contiguous),
    r = reshape(s, [6]) 24 B, y = -r 24 B."""
    starts, ends = ([3], [6]) if axis == 1 else ([1], [2])
    nodes = [
        helper.make_node("Relu", ["x"], ["h"], name="relu"),
        helper.make_node("Slice", ["h", "starts", "ends", "axes"], ["s"], name="slice"),
        helper.make_node("Reshape", ["s", "flat"], ["r"], name="reshape"),
        helper.make_node("Neg", ["r"], ["y"], name="neg"),
    ]
    consts = {
        "starts": np.array(starts, np.int64),
        "ends": np.array(ends, np.int64),
        "axes": np.array([axis], np.int64),
        "flat": np.array([6], np.int64),
    }
    graph = read(tmp_path, nodes, {"x": [2, 6]}, {"y": [6]}, consts)
    # strided: r is a copy (24 B) and h dies after it; contiguous: r is a view of h,
    # which neg still reads
    assert inference_memory(graph).live_bytes == expected


def test_selecting_one_index_is_a_view(tmp_path: Path) -> None:
    """h = relu(x) [4,8] 128 B; c = h[0] (Gather of a constant scalar) [8]; y = -c 32 B."""
    nodes = [
        helper.make_node("Relu", ["x"], ["h"], name="relu"),
        helper.make_node("Gather", ["h", "zero"], ["c"], name="select", axis=0),
        helper.make_node("Neg", ["c"], ["y"], name="neg"),
    ]
    graph = read(tmp_path, nodes, {"x": [4, 8]}, {"y": [8]}, {"zero": np.array(0, np.int64)})
    assert inference_memory(graph).live_bytes == (256, 256, 256 + 32)


def test_an_unscoped_node_runs_in_its_neighbours_module(tmp_path: Path) -> None:
    """Module m: h = sigmoid(x), n = -h (no scope: the exporter's optimiser made it),
    t = tanh(n); then y = exp(t) at the top; each tensor 1 KiB."""
    nodes = [
        scoped(helper.make_node("Sigmoid", ["x"], ["h"], name="sig"), "", "m"),
        helper.make_node("Neg", ["h"], ["n"], name="neg"),
        scoped(helper.make_node("Tanh", ["n"], ["t"], name="tanh"), "", "m"),
        scoped(helper.make_node("Exp", ["t"], ["y"], name="exp"), ""),
    ]
    graph = read(tmp_path, nodes, {"x": [1, 256]}, {"y": [1, 256]})
    kib = 1024
    # n is read once in m, so it dies at tanh; taken as made in the model's own frame,
    # it would be m's argument and live until m returns, or until the model does
    assert inference_memory(graph).live_bytes == tuple(k * kib for k in (2, 3, 3, 3))


def conv_relu(tmp_path: Path, *, folded: bool, batch_norm: bool = False) -> ModelGraph:
    """x [1,2,4,4] 128 B -> conv (w [3,2,3,3] 216 B) -> c [1,3,4,4] 192 B -> relu -> y 192 B.

    ``folded`` records onnxscript's BatchNorm fold on the conv; ``batch_norm`` puts an
    eval-mode BatchNormalization (192 B output) between conv and relu.
    """
    conv = helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1])
    if folded:
        conv.metadata_props.add(key="pkg.onnxscript.rewriter.rule_name",
                                value="FuseBatchNormIntoConv")  # fmt: skip
    nodes = [conv, helper.make_node("Relu", ["n" if batch_norm else "c"], ["y"], name="relu")]
    inits: dict[str, np.ndarray] = {"w": np.ones((3, 2, 3, 3))}
    if batch_norm:
        bn = helper.make_node("BatchNormalization", ["c", "g", "b", "m", "v"], ["n"],
                              name="batch_norm")  # fmt: skip
        nodes.insert(1, scoped(bn, "", "bn"))
        inits.update({k: np.ones(3) for k in ("g", "b", "m", "v")})
    return read(tmp_path, nodes, {"x": [1, 2, 4, 4]}, {"y": [1, 3, 4, 4]}, inits)


def test_a_folded_batch_norm_keeps_its_input_and_statistics_in_training(
    tmp_path: Path,
) -> None:
    plain = training_memory(conv_relu(tmp_path, folded=False), optimizer="sgd", workspace="none")
    # peak at conv's backward: saved x 128; y 192 (the caller's); dc 192; dw 216; w 216
    assert plain.peak_at == "backward:conv"
    assert plain.total_bytes == 216 + 128 + 192 + 192 + 216
    graph = conv_relu(tmp_path, folded=True)
    folded = training_memory(graph, optimizer="sgd", workspace="none")
    # BatchNorm's saved input c 192 and 3 channels x (mean, invstd) fp32 24, kept from
    # the forward; its backward's gradient of c (192) during the conv's backward
    assert folded.components["saved_activations"] == 128 + 192 + 24
    assert folded.total_bytes == plain.total_bytes + 192 + 24 + 192
    # inference is unchanged: eval-mode BatchNorm is what the fold computes
    assert inference_memory(graph, workspace="none").live_bytes == (320, 512)
    unmarked = conv_relu(tmp_path, folded=False)
    assumed = training_memory(unmarked, optimizer="sgd", workspace="none", train_bn=True)
    assert assumed.total_bytes == folded.total_bytes


def test_train_bn_adds_nothing_where_the_graph_keeps_its_batch_norm(tmp_path: Path) -> None:
    graph = conv_relu(tmp_path, folded=False, batch_norm=True)
    kept = training_memory(graph, optimizer="sgd", workspace="none")
    assert training_memory(graph, optimizer="sgd", workspace="none", train_bn=True) == kept


def test_cli_train_bn(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from foresize.cli.main import main

    graph = conv_relu(tmp_path, folded=False)  # written to tmp_path / "g.onnx"
    expected = training_memory(graph, optimizer="sgd", train_bn=True).total_bytes
    args = ["profile", "model", str(tmp_path / "g.onnx"), "--train", "--optimizer", "sgd"]
    assert main([*args, "--train-bn", "-f", "json"]) == 0
    training = json.loads(capsys.readouterr().out)["model"]["training"]
    assert training["train_bn"] is True
    assert training["total_bytes"] == expected
    assert expected > training_memory(graph, optimizer="sgd").total_bytes


def test_a_fold_is_read_from_the_rewrite_record_or_the_batch_norm_scope() -> None:
    from foresize.graph.model import NAME_SCOPES, Node
    from foresize.graph.ops.memory import REWRITE_RULES, folds_batch_norm

    scope = {NAME_SCOPES: "['', 'stem', 'stem.1', '_native_batch_norm_legit_no_training']"}
    assert folds_batch_norm(Node("c", "Conv", metadata=scope))
    assert folds_batch_norm(Node("c", "Conv", metadata={REWRITE_RULES: "FuseBatchNormIntoConv"}))
    assert not folds_batch_norm(Node("c", "Conv", metadata={NAME_SCOPES: "['', 'c', 'conv2d']"}))
    assert not folds_batch_norm(Node("bn", "BatchNormalization", metadata=scope))  # the kernel


@pytest.mark.parametrize(("shape", "expected"), [
    ([2, 2, 2], (128, 128, 128, 160, 192)),  # splits the cut dim: view, as q.view(b, t, h, d)
    ([4, 2], (128, 128, 160, 192, 192)),  # reshapes the dim before the cut: a copy
])  # fmt: skip
def test_a_reshape_of_a_cut_is_a_view_while_the_dims_before_the_cut_stay(
    tmp_path: Path, shape: list[int], expected: tuple[int, ...]
) -> None:
    """h = relu(x) [2,8] 64 B; a, b = split(h, axis 1) [2,4]; ra = reshape(a) 32 B if a
    copy; y = sigmoid(ra) 32 B, z = tanh(b) 32 B."""
    nodes = [
        helper.make_node("Relu", ["x"], ["h"], name="relu"),
        helper.make_node("Split", ["h", "halves"], ["a", "b"], name="split", axis=1),
        helper.make_node("Reshape", ["a", "shape"], ["ra"], name="reshape"),
        helper.make_node("Sigmoid", ["ra"], ["y"], name="sig"),
        helper.make_node("Tanh", ["b"], ["z"], name="tanh"),
    ]
    consts = {"halves": np.array([4, 4], np.int64), "shape": np.array(shape, np.int64)}
    graph = read(tmp_path, nodes, {"x": [2, 8]}, {"y": shape, "z": [2, 4]}, consts)
    assert inference_memory(graph).live_bytes == expected


def test_memory_rule_is_the_registered_rule_or_the_keep_every_input_default() -> None:
    """The liveness pass looks a rule up once per op type (memory_rule)."""
    from foresize.graph.model import Node
    from foresize.graph.ops.base import OpNode
    from foresize.graph.ops.memory import MEMORY_RULES, NO_EFFECT, default_effect, memory_rule

    assert memory_rule("Add") is MEMORY_RULES.get("Add")
    assert memory_rule("custom::Op") is default_effect
    add = OpNode(Node("a", "Add", inputs=("x", "y")), {}, {})
    assert memory_rule("Add")(add, "cpu") is NO_EFFECT
    assert memory_rule("custom::Op")(OpNode(Node("c", "Op", domain="custom", inputs=("x", "", "w")),
                                            {}, {}), "cpu").saved == ("x", "w")
