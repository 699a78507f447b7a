"""Per-op memory rules: what a kernel keeps for backward and what scratch it needs.

The liveness pass (:mod:`foresize.graph.liveness`) asks one rule per executed kernel for a
:class:`MemoryEffect`. The rules describe eager PyTorch, the runtime the exported graphs come
from and the one the benchmark measures:

**Saved tensors** follow PyTorch's ``derivatives.yaml``: a kernel keeps what its derivative
reads. ``MatMul``/``Gemm``/``Conv``: the input (the weight gradient is ``input^T x grad``);
normalisations: the input (the per-row statistics are small); ``Relu``, ``Sigmoid``,
``Tanh``, ``Softmax``, ``Exp``, ``Sqrt``, ``Reciprocal``: the output, since their derivative
is a function of it; ``If``/``Loop``/``Scan``: their inputs, with the largest body's
activation peak as scratch (that rule runs the liveness pass on the body, so
:mod:`foresize.graph.liveness` registers it); ``Gelu``, ``Erf``, ``Mul``, ``Div``,
``Pow``: their inputs; views,
copies, ``Add``/``Sub``, concatenation, slicing, sums and average pools: nothing, their
gradient needs only shapes. An op without a rule keeps all its inputs, so an unknown op
costs too much rather than nothing.

**Extra saved bytes** are tensors a kernel makes besides its outputs and keeps for backward:
``MaxPool``'s int64 argmax indices (CPU computes them even under ``no_grad``, where they
are freed at once), fused attention's per-row log-sum-exp.

**Workspace** is scratch a kernel holds only while it runs, by execution mode
(``WORKSPACE_MODES``). On ``cpu`` PyTorch runs convolutions through oneDNN, whose kernels
work in blocked layouts (``nChw16c``, ``OIhw16i16o``) while eager tensors are plain NCHW and
weights are not pre-packed: each call reorders the weight and the larger activation, which
measured (per-op peak RSS on ResNet-18 and a UNet, torch 2.13) as ``weight + max(input,
output)`` for ``Conv`` and as twice the output for ``ConvTranspose`` (oneDNN
deconvolution). ``none`` prices tensors only: the footprint of a runtime that uses kernels
on the graph's own layout (cuDNN takes NCHW as is; its algorithm workspace is not
modelled).

**Folded BatchNorm.** An exporter in eval mode folds each ``BatchNorm`` into the
``Conv`` before it (onnxscript's ``FuseBatchNormIntoConv``, the default of
``torch.onnx.export``), but a model trained with ``model.train()`` runs BatchNorm as its
own kernel, which keeps its input (the conv's output) and one fp32 mean and inverse
standard deviation per channel for backward, and whose backward makes the gradient of
that input. :func:`with_batch_norm` adds these to the conv's effect for the training
pass only; :func:`folds_batch_norm` reads the fold from the node's metadata.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

from foresize.core.registry import Registry
from foresize.graph.model import NAME_SCOPES, Node, TensorInfo, numel
from foresize.graph.ops.base import ZERO_COST, OpNode

WORKSPACE_MODES = ("cpu", "none")
INDEX_BYTES = 8  # int64, the dtype of PyTorch's pooling indices
STAT_BYTES = 4  # fp32 log-sum-exp kept per attention row, BatchNorm statistic per channel
REWRITE_RULES = "pkg.onnxscript.rewriter.rule_name"  # the rewrites that made a node
FOLD_HOSTS = frozenset({"Conv", "ConvTranspose", "Gemm", "MatMul"})  # what a BatchNorm folds into


@dataclass(frozen=True, slots=True)
class MemoryEffect:
    """Tensor names kept for backward, bytes kept besides them, and transient scratch.

    ``workspace_bytes`` is the scratch of a forward without autograd. A kernel whose
    training variant differs says so: ``train_workspace_bytes`` is its forward scratch when
    autograd records it and ``backward_workspace_bytes`` its backward's (both default to
    ``workspace_bytes``). ``extra_saved_only_for_grad`` marks extra saved bytes that a
    forward without autograd never makes (oneDNN's RNN training workspace), unlike
    MaxPool's indices, which CPU computes regardless.
    """

    saved: tuple[str, ...]
    extra_saved_bytes: int = 0
    workspace_bytes: int = 0
    train_workspace_bytes: int | None = None
    backward_workspace_bytes: int | None = None
    extra_saved_only_for_grad: bool = False

    @property
    def inference_bytes(self) -> int:
        """Transient bytes of the kernel run without autograd."""
        extra = 0 if self.extra_saved_only_for_grad else self.extra_saved_bytes
        return self.workspace_bytes + extra

    @property
    def forward_scratch(self) -> int:
        """Scratch of the forward when autograd records it."""
        if self.train_workspace_bytes is None:
            return self.workspace_bytes
        return self.train_workspace_bytes

    @property
    def backward_scratch(self) -> int:
        """Scratch of the backward."""
        if self.backward_workspace_bytes is None:
            return self.workspace_bytes
        return self.backward_workspace_bytes


MemoryRule = Callable[[OpNode, str], MemoryEffect]


class MemoryRules(Registry[MemoryRule]):
    """The registry of memory rules; one rule may serve several op types."""

    def register(self, name: str, *more: str) -> Callable[[MemoryRule], MemoryRule]:
        """Decorator registering one rule under every op type given."""

        def decorate(rule: MemoryRule) -> MemoryRule:
            for op_type in (name, *more):
                self.add(op_type, rule)
            return rule

        return decorate


MEMORY_RULES = MemoryRules("memory rule")

SAVES_OUTPUTS = frozenset({
    "Relu", "Sigmoid", "Tanh", "Softmax", "LogSoftmax", "Exp", "Sqrt", "Reciprocal",
})  # fmt: skip
SAVES_NOTHING = ZERO_COST | frozenset({
    "Add", "Sub", "Neg", "Concat", "Split", "Slice", "Pad", "Tile", "Transpose", "Expand",
    "ReduceSum", "ReduceMean", "AveragePool", "GlobalAveragePool", "Equal", "Less",
    "Greater", "Not", "And", "Or",
})  # fmt: skip


def _bytes(tensor: TensorInfo | None) -> int:
    """Bytes of a tensor with a concrete shape, else 0."""
    return (tensor.n_bytes or 0) if tensor is not None else 0


def default_effect(op: OpNode, mode: str, /) -> MemoryEffect:
    """An op without a rule keeps every input (the liveness pass drops parameters)."""
    return MemoryEffect(tuple(filter(None, op.node.inputs)))


@MEMORY_RULES.register(*SAVES_OUTPUTS)
def saves_output(op: OpNode, mode: str, /) -> MemoryEffect:
    """The derivative is a function of the output."""
    return MemoryEffect(op.node.outputs[:1])


NO_EFFECT = MemoryEffect(())  # one immutable value for the many kernels that keep nothing


@MEMORY_RULES.register(*SAVES_NOTHING)
def saves_nothing(op: OpNode, mode: str, /) -> MemoryEffect:
    """The gradient needs only shapes."""
    return NO_EFFECT


@MEMORY_RULES.register("Gather")
def gather(op: OpNode, mode: str, /) -> MemoryEffect:
    """The indices; the gathered table is a weight or recomputable."""
    return MemoryEffect(op.node.inputs[1:2])


@MEMORY_RULES.register("Where")
def where(op: OpNode, mode: str, /) -> MemoryEffect:
    """The condition selects where each gradient goes."""
    return MemoryEffect(op.node.inputs[:1])


@MEMORY_RULES.register("Conv")
def conv(op: OpNode, mode: str, /) -> MemoryEffect:
    """Saves the input; on cpu, oneDNN reorders the weight and the larger activation."""
    workspace = 0
    if mode == "cpu":
        weight = _bytes(op.inputs[1]) if op.has_input(1) else 0
        largest = max(_bytes(op.inputs[0]), max((_bytes(t) for t in op.outputs), default=0))
        workspace = weight + largest
    return MemoryEffect(op.node.inputs[:1], workspace_bytes=workspace)


@MEMORY_RULES.register("ConvTranspose")
def conv_transpose(op: OpNode, mode: str, /) -> MemoryEffect:
    """Saves the input; on cpu, oneDNN deconvolution holds twice the output as scratch."""
    workspace = 2 * sum(_bytes(t) for t in op.outputs) if mode == "cpu" else 0
    return MemoryEffect(op.node.inputs[:1], workspace_bytes=workspace)


@MEMORY_RULES.register("LSTM", "GRU", "RNN")
def recurrent(op: OpNode, mode: str, /) -> MemoryEffect:
    """Saves X, the initial and final states and Y; on cpu, oneDNN's RNN buffers.

    PyTorch runs ``nn.LSTM``/``GRU``/``RNN`` on CPU as one oneDNN RNN primitive per layer
    (``mkldnn_rnn_layer``), which works on its own weight layout and keeps per-step state.
    With ``T`` steps, batch ``B``, hidden ``H``, ``G`` gates and ``D`` directions, in the
    graph's float width, let ``W`` be the bytes of the input and recurrent weights,
    ``gates = D*T*B*G*H`` and ``states = D*(T+1)*B*H`` elements. Measured per op (peak RSS
    of each aten call, torch 2.13, T=64 B=8 H=512, input 256 and 512, within 5%):

    - inference: the reordered weights and the per-step states, ``W + states``;
    - training forward: the reordered weights and the gate pre-activations, ``W + gates``,
      and a *workspace* kept for backward: every step's gates and hidden states,
      ``gates + states`` (saved beside Y);
    - backward: the weights and their gradients in oneDNN's layout (``2 W``), the gate
      gradients (``gates``) and a working copy of the workspace (``gates + states``).
    """
    names = tuple(n for i, n in enumerate(op.node.inputs) if n and i in (0, 5, 6))
    saved = names + tuple(n for n in op.node.outputs if n)
    if mode != "cpu" or not op.has_input(0) or not op.has_input(1) or not op.has_input(2):
        return MemoryEffect(saved)
    x, w, r = op.inputs[0], op.inputs[1], op.inputs[2]
    x_shape, w_shape = x.concrete_shape if x else None, w.concrete_shape if w else None
    if x_shape is None or w_shape is None or len(x_shape) != 3 or len(w_shape) != 3:
        return MemoryEffect(saved)
    gate_count = {"LSTM": 4, "GRU": 3, "RNN": 1}[op.node.op_type]
    steps, batch = (x_shape[1], x_shape[0]) if op.attr_int("layout", 0) else x_shape[:2]
    dirs = w_shape[0]
    hidden = op.attr_int("hidden_size", w_shape[1] // gate_count)
    width = (x.bits if x is not None else 32) / 8
    weights = _bytes(w) + _bytes(r)
    gates = math.ceil(dirs * steps * batch * gate_count * hidden * width)
    states = math.ceil(dirs * (steps + 1) * batch * hidden * width)
    return MemoryEffect(
        saved,
        extra_saved_bytes=gates + states,
        workspace_bytes=weights + states,
        train_workspace_bytes=weights + gates,
        backward_workspace_bytes=2 * weights + gates + gates + states,
        extra_saved_only_for_grad=True,
    )


@MEMORY_RULES.register("MaxPool")
def max_pool(op: OpNode, mode: str, /) -> MemoryEffect:
    """Saves the input and int64 argmax indices of the output's size.

    An ONNX graph that asks for the indices as a second output already prices them.
    """
    out = op.outputs[0] if op.outputs else None
    shape = out.concrete_shape if out is not None else None
    has_indices = len(op.node.outputs) > 1 and bool(op.node.outputs[1])
    indices = 0 if shape is None or has_indices else numel(shape) * INDEX_BYTES
    return MemoryEffect(op.node.inputs[:1], extra_saved_bytes=indices)


@MEMORY_RULES.register("Attention")
def attention(op: OpNode, mode: str, /) -> MemoryEffect:
    """Fused attention (ONNX ``Attention``, or the SDPA pattern the fusion pass finds).

    Flash-style kernels never materialise the score matrix; backward recomputes it from
    Q, K, V, the output and one log-sum-exp per query row (PyTorch's CPU and CUDA flash
    kernels both save exactly these).
    """
    out = op.outputs[0] if op.outputs else None
    shape = out.concrete_shape if out is not None else None
    rows = numel(shape[:-1]) if shape else 0
    names = tuple(n for n in op.node.inputs[:3] if n) + op.node.outputs[:1]
    return MemoryEffect(names, extra_saved_bytes=math.ceil(rows * STAT_BYTES))


def folds_batch_norm(node: Node) -> bool:
    """Whether the exporter folded a BatchNorm into ``node``.

    onnxscript names the rewrite (``FuseBatchNormIntoConv``, ``...IntoGemm``) in the
    node's metadata, and the folded node keeps the BatchNorm's scope, whose last entry is
    the aten batch-norm call. A BatchNormalization node is the kernel itself, not a fold.
    """
    if node.op_type not in FOLD_HOSTS:
        return False
    if "FuseBatchNorm" in node.metadata.get(REWRITE_RULES, ""):
        return True
    return "batch_norm" in node.metadata.get(NAME_SCOPES, "").rsplit(",", 1)[-1]


def with_batch_norm(effect: MemoryEffect, op: OpNode) -> MemoryEffect:
    """``effect`` of a kernel followed by a train-mode BatchNorm folded into it.

    Training keeps the kernel's output as BatchNorm's saved input, with a mean and an
    inverse standard deviation per channel (dim 1), and the backward holds that input's
    gradient while the kernel's own backward runs. A forward without autograd is
    unchanged: an eval-mode BatchNorm is what the fold reproduces.
    """
    shape = op.out_shape()
    if shape is None or len(shape) < 2:
        return effect
    out = sum(_bytes(t) for t in op.outputs[:1])
    return replace(
        effect,
        extra_saved_bytes=effect.extra_saved_bytes + out + 2 * shape[1] * STAT_BYTES,
        backward_workspace_bytes=effect.backward_scratch + out,
        extra_saved_only_for_grad=True,
    )


def memory_rule(key: str) -> MemoryRule:
    """The rule for an op's registry key, or the keep-every-input default."""
    return MEMORY_RULES.get(key) if key in MEMORY_RULES else default_effect
