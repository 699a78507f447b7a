"""Memory of a ModelGraph from tensor lifetimes: inference peak and one training step.

Where :mod:`foresize.graph.memory` estimates a transformer from its config, this module
measures whatever graph it is given, so CNNs and custom blocks get a figure too.

**Liveness.** Nodes run one at a time in the graph's topological order. A tensor is live
from the step of the node that produces it (step 0 for a graph input) through the step of
its last consumer; a graph output stays live to the end. While a node runs, its inputs and
outputs are live together, so the footprint at step ``i`` is the sum of the bytes of every
tensor whose lifetime covers ``i``. The inference peak is the parameters (initializers,
resident throughout) plus the largest such sum. This is the footprint of an allocator that
frees each tensor right after its last use and never aliases an output onto an input, so
in-place kernels and memory planners can do better; kernel scratch space is not modelled.

**Saved activations.** Backward needs some forward tensors; which ones is fixed per op
family by its derivative (the choices follow PyTorch's ``derivatives.yaml``):

- ``MatMul``/``Gemm``/``Conv``/``ConvTranspose``/``Einsum``: the non-parameter inputs,
  since the weight gradient is ``input^T x grad``; the weights are resident anyway;
- normalisations: the input ``X`` (the mean and inverse-std statistics are per row and
  neglected);
- ``Relu``/``Sigmoid``/``Tanh``/``Softmax``/``LogSoftmax``/``Exp``/``Sqrt``/``Reciprocal``:
  the output, since their derivative is a function of it;
- other unary activations (``Gelu``, ``Erf``, ``Softplus``, ...), ``Mul``, ``Div``, ``Pow``,
  ``MaxPool``, ``Gather``, ``Where``: their non-parameter inputs;
- views, copies, ``Add``/``Sub``, concatenation, slicing, sums and average pools: nothing,
  their gradient needs only shapes;
- an op not listed: all its non-parameter inputs, so an unknown op costs too much rather
  than nothing.

Each saved tensor counts once however many nodes save it. The training step adds the
forward peak on top as workspace, because the forward pass reaches it while the saved set
is still growing: that makes the total an upper bound for the step.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from foresize.core.errors import InputError, UnknownNameError
from foresize.graph.memory import DTYPE_BYTES, FP32_BYTES, OPTIMIZER_MOMENTS
from foresize.graph.model import ModelGraph, Node, TensorInfo, numel
from foresize.graph.ops import ZERO_COST

# Graph dtype names that are floating point: the ones --dtype re-prices and that train.
FLOAT_DTYPES = frozenset({"float16", "bfloat16", "float32", "float64"})
# Graph dtype -> the name devices and --dtype use.
PRECISION_OF: Mapping[str, str] = {"float32": "fp32", "float16": "fp16", "bfloat16": "bf16",
                                   "float64": "fp32"}
PRECISIONS = ("fp32", "bf16", "fp16")

# Ops not in SAVES_OUTPUTS or SAVES_NOTHING keep their non-parameter inputs (the default),
# except Gather and Where, special-cased in _saved_by.
SAVES_OUTPUTS = frozenset({
    "Relu", "Sigmoid", "Tanh", "Softmax", "LogSoftmax", "Exp", "Sqrt", "Reciprocal",
})
SAVES_NOTHING = ZERO_COST | frozenset({
    "Add", "Sub", "Neg", "Concat", "Split", "Slice", "Pad", "Tile", "Transpose", "Expand",
    "ReduceSum", "ReduceMean", "AveragePool", "GlobalAveragePool", "Equal", "Less",
    "Greater", "Not", "And", "Or",
})


@dataclass(frozen=True, slots=True)
class InferenceMemory:
    """Forward-pass memory in bytes; ``live_bytes[i]`` is the activation footprint at step i."""

    weight_bytes: int
    peak_activation_bytes: int
    peak_node: str | None
    live_bytes: tuple[int, ...]
    unsized: tuple[str, ...]

    @property
    def total_bytes(self) -> int:
        """Weights plus the activation peak: what a device must hold to run the graph."""
        return self.weight_bytes + self.peak_activation_bytes


@dataclass(frozen=True, slots=True)
class TrainingMemory:
    """One training step's memory in bytes by component, and the tensors saved for backward."""

    components: Mapping[str, int]
    saved: tuple[str, ...]
    precision: str
    optimizer: str

    @property
    def total_bytes(self) -> int:
        """Sum of the components."""
        return sum(self.components.values())


def tensor_bytes(tensor: TensorInfo, dtype: str | None = None) -> int | None:
    """Bytes of ``tensor``, with floating-point tensors re-priced in ``dtype`` when given."""
    shape = tensor.concrete_shape
    if shape is None:
        return None
    if dtype is not None and tensor.dtype in FLOAT_DTYPES:
        return math.ceil(numel(shape) * DTYPE_BYTES[dtype])
    return tensor.n_bytes


def inference_memory(graph: ModelGraph, *, dtype: str | None = None) -> InferenceMemory:
    """Parameters plus the peak of live activation bytes over the graph's node order.

    ``dtype`` (fp32, bf16, fp16) re-prices every floating-point tensor, weights included,
    as when a model exported in fp32 is served in bf16. Tensors whose shape stayed unknown
    count as zero and are named in ``unsized``; unbound input dims are an error.
    """
    _check(graph, dtype)
    sizes, unsized = _activation_sizes(graph, dtype)
    live = _live_bytes(graph, sizes)
    peak = max(live, default=0)
    peak_node = graph.nodes[live.index(peak)].name if graph.nodes else None
    return InferenceMemory(
        weight_bytes=_param_bytes(graph, dtype),
        peak_activation_bytes=peak,
        peak_node=peak_node,
        live_bytes=live,
        unsized=unsized,
    )


def saved_tensors(graph: ModelGraph) -> tuple[str, ...]:
    """Names of the activations kept for backward, by the per-op rule in the module doc."""
    saved: dict[str, None] = {}
    for node in graph.nodes:
        for name in _saved_by(node):
            tensor = graph.tensors.get(name)
            if name and tensor is not None and not tensor.is_param:
                saved[name] = None
    return tuple(saved)


def training_memory(
    graph: ModelGraph, *, optimizer: str = "adamw", dtype: str | None = None
) -> TrainingMemory:
    """Weights, gradients, master weights, optimizer state, saved activations, workspace.

    Trainable parameters are the floating-point initializers; gradients take their bytes.
    Training in bf16 or fp16 (``dtype``, else the graph's own weight dtype) is taken as
    mixed precision and keeps an fp32 master copy; SGD keeps no moment, SGD with momentum
    one and Adam/AdamW two, all fp32 (Rajbhandari et al. 2020, section 3.1).
    """
    if optimizer not in OPTIMIZER_MOMENTS:
        raise UnknownNameError("optimizer", optimizer, list(OPTIMIZER_MOMENTS))
    forward = inference_memory(graph, dtype=dtype)
    precision = dtype or graph_precision(graph)
    trainable = [t for t in graph.parameters if t.dtype in FLOAT_DTYPES]
    n_trainable = sum(numel(t.concrete_shape or ()) for t in trainable)
    sizes, _ = _activation_sizes(graph, dtype)
    saved = saved_tensors(graph)
    components = {
        "weights": forward.weight_bytes,
        "gradients": sum(tensor_bytes(t, dtype) or 0 for t in trainable),
        "master_weights": n_trainable * FP32_BYTES if precision != "fp32" else 0,
        "optimizer_state": n_trainable * FP32_BYTES * OPTIMIZER_MOMENTS[optimizer],
        "saved_activations": sum(sizes.get(name, 0) for name in saved),
        "workspace": forward.peak_activation_bytes,
    }
    return TrainingMemory(components, saved, precision, optimizer)


def _check(graph: ModelGraph, dtype: str | None) -> None:
    """Reject an unknown dtype and unbound input dims (a guess would look exact).

    Only dims of the graph inputs can be bound; a dim shape inference invented inside
    the graph (``unk__3``) leaves its tensor unsized instead.
    """
    if dtype is not None and dtype not in PRECISIONS:
        raise UnknownNameError("dtype", dtype, list(PRECISIONS))
    unbound = sorted({d for name in graph.inputs for d in graph.tensors[name].symbolic_dims})
    if unbound:
        raise InputError(
            f"{graph.source or graph.name}: symbolic dims not bound: {', '.join(unbound)}; "
            f"give each with --dim NAME=VALUE (e.g. --dim {unbound[0]}=1)"
        )


# ops whose output shares its input's storage in PyTorch (the exporter's source): a view
# costs no bytes of its own, and keeps the tensor it views alive while it is in use
VIEW_OPS = frozenset({"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Transpose"})


def view_roots(graph: ModelGraph) -> dict[str, str]:
    """For every tensor that is a view, the tensor whose storage it shares."""
    roots: dict[str, str] = {}
    for node in graph.nodes:
        if node.op_type in VIEW_OPS and node.inputs and node.inputs[0]:
            source = node.inputs[0]
            for name in node.outputs:
                roots[name] = roots.get(source, source)
    return roots


def _activation_sizes(
    graph: ModelGraph, dtype: str | None
) -> tuple[dict[str, int], tuple[str, ...]]:
    """Bytes of every non-parameter tensor (views cost none), and the names of those
    without a known shape.
    """
    sizes: dict[str, int] = {}
    unsized: list[str] = []
    views = view_roots(graph)
    for name, tensor in graph.tensors.items():
        if tensor.is_param:
            continue
        if name in views:
            sizes[name] = 0
            continue
        n_bytes = tensor_bytes(tensor, dtype)
        if n_bytes is None:
            unsized.append(name)
        sizes[name] = n_bytes or 0
    return sizes, tuple(unsized)


def _live_bytes(graph: ModelGraph, sizes: Mapping[str, int]) -> tuple[int, ...]:
    """Footprint at each step: the bytes of every tensor whose lifetime covers it."""
    n_steps = len(graph.nodes)
    roots = view_roots(graph)
    born: dict[str, int] = dict.fromkeys(graph.inputs, 0)
    last: dict[str, int] = {}
    for step, node in enumerate(graph.nodes):
        for name in node.outputs:
            if name in sizes:
                born.setdefault(name, step)
                last.setdefault(name, step)
        for name in node.inputs:
            for used in (name, roots.get(name)):  # using a view uses what it views
                if used is not None and used in sizes:
                    last[used] = step
    for name in graph.outputs:
        for kept in (name, roots.get(name)):
            if kept is not None and kept in sizes:
                last[kept] = n_steps - 1
    # a difference array: +size at birth, -size after death, then a running sum
    delta = [0] * (n_steps + 1)
    for name, start in born.items():
        end = last.get(name, start)
        delta[start] += sizes.get(name, 0)
        delta[end + 1] -= sizes.get(name, 0)
    live: list[int] = []
    running = 0
    for step in range(n_steps):
        running += delta[step]
        live.append(running)
    return tuple(live)


def _param_bytes(graph: ModelGraph, dtype: str | None) -> int:
    """Bytes of every initializer, floating-point ones re-priced in ``dtype`` when given."""
    return sum(tensor_bytes(t, dtype) or 0 for t in graph.parameters)


def graph_precision(graph: ModelGraph) -> str:
    """The precision most parameter bytes are stored in (fp32 for a graph without weights)."""
    by_dtype: dict[str, int] = {}
    for tensor in graph.parameters:
        if tensor.dtype in FLOAT_DTYPES:
            by_dtype[tensor.dtype] = by_dtype.get(tensor.dtype, 0) + (tensor.n_bytes or 0)
    if not by_dtype:
        return "fp32"
    return PRECISION_OF[max(by_dtype, key=lambda name: by_dtype[name])]


def _saved_by(node: Node) -> tuple[str, ...]:
    """The tensors one node keeps for its backward pass."""
    if node.op_type in SAVES_OUTPUTS:
        return node.outputs[:1]
    if node.op_type in SAVES_NOTHING:
        return ()
    if node.op_type == "Gather":
        return node.inputs[1:2]  # the indices; the gathered table is a weight or recomputable
    if node.op_type == "Where":
        return node.inputs[:1]  # the condition selects where each gradient goes
    return node.inputs
