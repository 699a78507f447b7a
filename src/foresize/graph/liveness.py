"""Memory of a ModelGraph from tensor lifetimes: inference peak and one training step.

Where :mod:`foresize.graph.memory` estimates a transformer from its config, this module
measures whatever graph it is given, so CNNs and custom blocks get a figure too. The
figures describe eager PyTorch (the runtime ONNX graphs are usually exported from):

**Kernels.** The graph is first brought back to the kernels eager runs
(:mod:`foresize.graph.ops.fusion`: a bias add folds into its MatMul, an exported GELU or
SDPA decomposition becomes one kernel). Each kernel's saved tensors, extra saved bytes and
scratch come from the memory rules in :mod:`foresize.graph.ops.memory`.

**Lifetimes as eager keeps them** (:mod:`foresize.graph.lifetimes`): views, cuts
(``Split``, ``Slice``, a select) among them, share their input's storage (a ``Reshape`` of
a transposed tensor, or one that reshapes the dims before a cut, is a copy, as in
``torch.reshape``);
weight re-layouts an exporter emits cost nothing; with the torch exporter's module scopes,
a module's arguments and its named locals stay live until the module returns; and under
activation checkpointing a block's saved tensors are rebuilt for its backward.

**Inference.** Kernels run one at a time in topological order. A tensor is live from its
producer's step through its last consumer's; graph inputs and outputs belong to the caller
and stay live throughout. At step ``i`` the footprint is the bytes of every live tensor plus
the kernel's scratch (workspace and any extra saved bytes, freed at once without autograd).
The peak is the largest footprint; parameters are counted apart.

**Training step** (steady state: the optimizer state exists, and gradients were released
by ``zero_grad(set_to_none=True)``): a timeline of the forward steps, the backward steps in
reverse, then the optimizer step.

- A saved tensor stays live until the backward of the earliest kernel that saved it; a
  kernel saves only when one of its inputs requires grad (depends on a parameter).
- The gradient of an activation lives from the backward of its last consumer (the start of
  backward for a graph output) to the backward of its producer.
- A parameter's gradient appears at the backward of its last user and stays to the end.
- Scratch is charged at a kernel's forward and again at its backward.
- The optimizer step holds gradients, the state (``OPTIMIZER_MOMENTS`` fp32 copies) and
  ``OPTIMIZER_TEMPORARIES`` fp32 copies of the largest parameter (PyTorch's per-tensor
  Adam computes ``exp_avg_sq.sqrt() / c`` as two new tensors before ``addcdiv_``).

``first_step=True`` prices the first step instead, where Adam's state is created lazily
in ``step()`` and so is absent during forward and backward.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from itertools import accumulate, repeat
from operator import attrgetter

import numpy as np

from foresize.core.errors import InputError, UnknownNameError
from foresize.graph.lifetimes import (
    checkpointed_blocks,
    held_by_frames,
    static_sources,
    view_roots,
)
from foresize.graph.memory import DTYPE_BYTES, FP32_BYTES, OPTIMIZER_MOMENTS
from foresize.graph.model import ModelGraph, Node, Shape, TensorInfo, numel
from foresize.graph.ops.base import OpNode
from foresize.graph.ops.fusion import fuse
from foresize.graph.ops.memory import (
    FOLD_HOSTS,
    MEMORY_RULES,
    WORKSPACE_MODES,
    MemoryEffect,
    MemoryRule,
    folds_batch_norm,
    memory_rule,
    with_batch_norm,
)

# Graph dtype names that are floating point: the ones --dtype re-prices and that train.
FLOAT_DTYPES = frozenset({"float16", "bfloat16", "float32", "float64"})
# Graph dtype -> the name devices and --dtype use.
PRECISION_OF: Mapping[str, str] = {
    "float32": "fp32",
    "float16": "fp16",
    "bfloat16": "bf16",
    "float64": "fp32",
}
PRECISIONS = ("fp32", "bf16", "fp16")
# fp32 temporaries of the largest parameter during one optimizer step (module doc)
OPTIMIZER_TEMPORARIES: Mapping[str, int] = {"sgd": 0, "sgd_momentum": 0, "adam": 2, "adamw": 2}
# kernels a train-mode BatchNorm follows when --train-bn says the graph lost it
BATCH_NORM_HOSTS = frozenset({"Conv", "ConvTranspose"})
INT64_MAX = 2**63 - 1  # numpy's sums stay exact below it
_INFERENCE_BYTES = attrgetter("inference_bytes")
_INPUTS, _OUTPUTS = attrgetter("inputs"), attrgetter("outputs")


@dataclass(frozen=True, slots=True)
class InferenceMemory:
    """Forward-pass memory in bytes; ``live_bytes[i]`` is the activation footprint at step i.

    Steps are the kernels eager runs (after fusion), so there can be fewer than nodes.
    """

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
    """One training step's peak in bytes, by component at the peak, and the saved tensors.

    ``workspace`` is everything transient at the peak: activations not kept for backward,
    activation gradients, kernel scratch and optimizer temporaries. ``peak_at`` names the
    phase and kernel (``forward:conv1``, ``backward:fc2``, ``optimizer``).
    """

    components: Mapping[str, int]
    saved: tuple[str, ...]
    precision: str
    optimizer: str
    peak_at: str = ""

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


@dataclass(frozen=True, slots=True)
class _Plan:
    """The kernels, their memory effects, and the tensors' sizes and view roots."""

    kernels: tuple[Node, ...]
    effects: tuple[MemoryEffect, ...]
    sizes: Mapping[str, int]
    roots: Mapping[str, str]
    unsized: tuple[str, ...]
    static: Mapping[str, frozenset[str]]

    def root(self, name: str) -> str:
        """The tensor whose storage ``name`` uses."""
        return self.roots.get(name, name)


def inference_memory(
    graph: ModelGraph, *, dtype: str | None = None, workspace: str = "cpu"
) -> InferenceMemory:
    """Parameters plus the peak of live activation bytes over the kernel order.

    ``dtype`` (fp32, bf16, fp16) re-prices every floating-point tensor, weights included,
    as when a model exported in fp32 is served in bf16. ``workspace`` is the execution
    mode of the kernels' scratch (``WORKSPACE_MODES``). Tensors whose shape stayed unknown
    count as zero and are named in ``unsized``; unbound input dims are an error.
    """
    _check(graph, dtype, workspace)
    plan = _plan(graph, dtype, workspace)
    scale = _scaler(dtype, graph)
    live = _inference_live(graph, plan, scale)
    peak = max(live, default=0)
    peak_node = plan.kernels[live.index(peak)].name if plan.kernels else None
    return InferenceMemory(
        weight_bytes=_param_bytes(graph, dtype),
        peak_activation_bytes=peak,
        peak_node=peak_node,
        live_bytes=live,
        unsized=plan.unsized,
    )


def saved_tensors(graph: ModelGraph, *, workspace: str = "cpu") -> tuple[str, ...]:
    """Names of the activations kept for backward (view roots), in order of first saving."""
    plan = _plan(graph, None, workspace)
    return tuple(_saved_by_kernel(graph, plan))


def training_memory(
    graph: ModelGraph,
    *,
    optimizer: str = "adamw",
    dtype: str | None = None,
    workspace: str = "cpu",
    first_step: bool = False,
    zero_stage: int = 0,
    data_parallel: int = 1,
    recompute: str = "none",
    train_bn: bool = False,
) -> TrainingMemory:
    """The peak of one training step on one device, with its breakdown at the peak.

    Trainable parameters are the floating-point initializers; gradients take their bytes.
    Training in bf16 or fp16 (``dtype``, else the graph's own weight dtype) is taken as
    mixed precision and keeps an fp32 master copy; SGD keeps no moment, SGD with momentum
    one and Adam/AdamW two, all fp32 (Rajbhandari et al. 2020, section 3.1).

    ZeRO (same paper, section 5) over ``data_parallel`` ranks: stage 1 shards the master
    weights and optimizer moments, stage 2 also the gradients, stage 3 also the weights;
    each rank holds ``1 / data_parallel`` of what is sharded, and the peak is found with
    the sharded sizes. Stage 3's transient all-gather of the parameters being computed is
    not counted; activations are per rank and unchanged (the graph is one rank's batch).

    ``recompute="full"`` checkpoints every repeated block (:func:`checkpointed_blocks`):
    the forward pass keeps only what leaves a block, and a block's own saved tensors are
    rebuilt when its backward begins and freed as that backward uses them, so at most one
    block's saved activations exist at a time (the transient peak of re-running the
    block's forward is not counted).

    BatchNorm an eval-mode export folded into a Conv is counted as the train-mode kernel
    it is (:func:`~foresize.graph.ops.memory.with_batch_norm`) where the node's metadata
    records the fold; ``train_bn`` assumes it after every Conv that no BatchNormalization
    reads, for graphs whose exporter left no record.
    """
    if optimizer not in OPTIMIZER_MOMENTS:
        raise UnknownNameError("optimizer", optimizer, list(OPTIMIZER_MOMENTS))
    if recompute not in ("none", "full"):
        raise InputError(f"recompute must be none or full, got {recompute!r}")
    if zero_stage not in (0, 1, 2, 3) or data_parallel < 1:
        raise InputError(
            f"ZeRO stage must be 0-3 and the data-parallel degree >= 1, got {zero_stage} "
            f"and {data_parallel}"
        )

    def shard(n_bytes: int, stage: int) -> int:
        """Bytes on one rank of state ZeRO shards from ``stage`` on."""
        return -(-n_bytes // data_parallel) if zero_stage >= stage else n_bytes

    _check(graph, dtype, workspace)
    plan = _plan(graph, dtype, workspace, train_bn=train_bn)
    scale = _scaler(dtype, graph)
    precision = dtype or graph_precision(graph)
    trainable = graph.weights
    n_trainable = sum(numel(t.concrete_shape or ()) for t in trainable)
    largest = max((numel(t.concrete_shape or ()) for t in trainable), default=0)
    n = len(plan.kernels)
    end = 2 * n  # forward 0..n-1, backward n..2n-1 (kernel i at 2n-1-i), optimizer 2n
    saved_delta, grad_delta, other_delta = ([0] * (end + 2) for _ in range(3))
    saved = _saved_by_kernel(graph, plan)
    grads = _requires_grad(graph, plan)
    restart, internal = (
        checkpointed_blocks(graph, plan.kernels, plan.root) if recompute == "full" else ({}, {})
    )
    for name, (start, stop) in _forward_spans(graph, plan).items():
        size = plan.sizes.get(name, 0)
        held = name in graph.outputs or name in graph.inputs  # the caller's: live to the end
        if name in saved and name in internal:  # dropped after the forward, rebuilt later
            _add(other_delta, start, stop, size)
            _add(saved_delta, internal[name], max(internal[name], 2 * n - 1 - saved[name]), size)
        elif name in saved:
            freed = max(stop, 2 * n - 1 - saved[name])
            _add(saved_delta, start, freed, size)
            if held:
                _add(other_delta, freed + 1, end, size)
        else:
            _add(other_delta, start, end if held else stop, size)
    for step, effect in enumerate(plan.effects):
        back = 2 * n - 1 - step
        recorded = any(
            plan.root(x) in grads or _is_trainable(graph, x) for x in plan.kernels[step].inputs
        )
        if recorded:
            kept_from = restart.get(step, step)  # a checkpointed kernel saves on recompute
            _add(saved_delta, kept_from, back, scale(effect.extra_saved_bytes))
            _add(other_delta, back, back, scale(effect.backward_scratch))
            _add(other_delta, step, step, scale(effect.forward_scratch))
        else:
            _add(other_delta, step, step, scale(effect.inference_bytes))
    for name, (born, died) in _gradient_spans(graph, plan, grads).items():
        _add(other_delta, born, died, plan.sizes.get(name, 0))
    for name, born in _param_grad_births(graph, plan).items():
        _add(grad_delta, born, end, shard(tensor_bytes(graph.tensors[name], dtype) or 0, 2))
    _add(other_delta, end, end, largest * FP32_BYTES * OPTIMIZER_TEMPORARIES[optimizer])
    saved_live, grad_live, other_live = (
        _running(d, end + 1) for d in (saved_delta, grad_delta, other_delta)
    )
    state = shard(n_trainable * FP32_BYTES * OPTIMIZER_MOMENTS[optimizer], 1)
    state_live = [0 if first_step and t < end else state for t in range(end + 1)]
    total = [
        sum(parts) for parts in zip(saved_live, grad_live, other_live, state_live, strict=True)
    ]
    peak = total.index(max(total))
    components = {
        "weights": shard(_param_bytes(graph, dtype), 3),
        "gradients": grad_live[peak],
        "master_weights": shard(n_trainable * FP32_BYTES, 1) if precision != "fp32" else 0,
        "optimizer_state": state_live[peak],
        "saved_activations": saved_live[peak],
        "workspace": other_live[peak],
    }
    return TrainingMemory(components, tuple(saved), precision, optimizer, _phase(plan, peak, n))


def _check(graph: ModelGraph, dtype: str | None, workspace: str) -> None:
    """Reject an unknown dtype or mode and unbound input dims (a guess would look exact).

    Only dims of the graph inputs can be bound; a dim shape inference invented inside
    the graph (``unk__3``) leaves its tensor unsized instead.
    """
    if dtype is not None and dtype not in PRECISIONS:
        raise UnknownNameError("dtype", dtype, list(PRECISIONS))
    if workspace not in WORKSPACE_MODES:
        raise UnknownNameError("workspace", workspace, list(WORKSPACE_MODES))
    unbound = sorted({d for name in graph.inputs for d in graph.tensors[name].symbolic_dims})
    if unbound:
        raise InputError(
            f"{graph.source or graph.name}: symbolic dims not bound: {', '.join(unbound)}; "
            f"give each with --dim NAME=VALUE (e.g. --dim {unbound[0]}=1)"
        )


def _plan(graph: ModelGraph, dtype: str | None, workspace: str, *, train_bn: bool = False) -> _Plan:
    """Fuse, then size every non-parameter tensor (views and static ones cost none)."""
    kernels = fuse(graph)
    roots = view_roots(graph, kernels)
    static = static_sources(graph, kernels)
    sizes: dict[str, int] = {}
    unsized: list[str] = []
    by_type: dict[tuple[Shape | None, str, int], int | None] = {}  # few types, many tensors
    for name, tensor in graph.tensors.items():
        if tensor.is_param:
            continue
        if name in roots or name in static:
            sizes[name] = 0
            continue
        kind = (tensor.shape, tensor.dtype, tensor.bits)
        if kind in by_type:
            n_bytes = by_type[kind]
        else:
            n_bytes = by_type[kind] = tensor_bytes(tensor, dtype)
        if n_bytes is None:
            unsized.append(name)
        sizes[name] = n_bytes or 0
    normalised = ({n.inputs[0] for n in kernels if n.op_type == "BatchNormalization" and n.inputs}
                  if train_bn else set())
    effects: list[MemoryEffect] = []
    # one registry look-up per op type, not per kernel: this loop runs once per kernel
    rules: dict[str, MemoryRule] = {}
    tensors, constants = graph.tensors, graph.constants
    for kernel in kernels:
        key = kernel.key
        rule = rules.get(key)
        if rule is None:
            rule = rules[key] = memory_rule(key)
        op = OpNode(kernel, tensors, constants)
        effect = rule(op, workspace)
        # the only kernels a BatchNorm follows; a fold is recorded in metadata, so a
        # kernel without any (every MatMul of most graphs) is passed over without a call
        if kernel.op_type in FOLD_HOSTS and (train_bn or kernel.metadata):
            assumed = train_bn and kernel.op_type in BATCH_NORM_HOSTS
            if folds_batch_norm(kernel) or (assumed and kernel.outputs[0] not in normalised):
                effect = with_batch_norm(effect, op)
        effects.append(effect)
    return _Plan(kernels, tuple(effects), sizes, roots, tuple(unsized), static)


def _inference_live(graph: ModelGraph, plan: _Plan, scale: Callable[[int], int]
                    ) -> tuple[int, ...]:
    """Live activation bytes at each forward step: every tensor over its forward span
    (:func:`_forward_spans`) plus each kernel's scratch at its own step.

    The spans are found over tensor numbers with numpy (a graph of 200k kernels names
    half a million tensors; a dictionary step per name was a third of the pass), and
    the sums of the difference array are done in int64: exact while the sum of every
    size and scratch, a bound on any prefix sum, stays within it. Past it (sizes a
    hostile file can declare) Python's integers do the same sums over the same spans.
    """
    kernels, sizes, roots = plan.kernels, plan.sizes, plan.roots
    n = len(kernels)
    scratch = list(map(scale, map(_INFERENCE_BYTES, plan.effects)))
    if not n or sum(map(abs, sizes.values())) + sum(map(abs, scratch)) > INT64_MAX:
        delta = [0] * (n + 1)
        for name, (start, stop) in _forward_spans(graph, plan).items():
            _add(delta, start, stop, sizes.get(name, 0))
        for step, n_bytes in enumerate(scratch):
            _add(delta, step, step, n_bytes)
        return _running(delta, n)
    m = len(sizes)
    number = dict(zip(sizes, range(m), strict=True))  # the sized tensors; others count 0
    # a read of a view is a read of what it views (-1: a view of something unsized)
    read_as = np.arange(m)
    views = [(number[view], number.get(root, -1)) for view, root in roots.items()
             if view in number]
    if views:
        view_ids, root_ids = zip(*views, strict=True)
        read_as[list(view_ids)] = root_ids
    steps = np.arange(n)
    ins = [name for node in kernels for name in node.inputs]
    in_steps = np.repeat(steps, list(map(len, map(_INPUTS, kernels))))
    in_ids = np.fromiter(map(number.get, ins, repeat(-1)), np.intp, len(ins))
    in_steps, in_ids = in_steps[in_ids >= 0], read_as[in_ids[in_ids >= 0]]
    outs = [name for node in kernels for name in node.outputs]
    out_steps = np.repeat(steps, list(map(len, map(_OUTPUTS, kernels))))
    out_ids = np.fromiter(map(number.get, outs, repeat(-1)), np.intp, len(outs))
    read = in_ids >= 0
    last_read = np.full(m, -1, dtype=np.intp)
    np.maximum.at(last_read, in_ids[read], in_steps[read])
    made_here = out_ids >= 0
    made = np.full(m, n, dtype=np.intp)  # n: made by no kernel
    np.minimum.at(made, out_ids[made_here], out_steps[made_here])
    born = made.copy()
    born[[number[name] for name in graph.inputs if name in number]] = 0
    # the last need: the last read, else the making; -1 for neither (a span of one step)
    last = np.where(last_read >= 0, last_read, np.where(made < n, made, -1))
    for name in (*graph.outputs, *graph.inputs):
        if (root := plan.root(name)) in number:
            last[number[root]] = n - 1
    for name, step in held_by_frames(kernels, plan.root, set(sizes)).items():
        if name in number:
            last[number[name]] = max(int(last[number[name]]), step)
    spanned = born < n
    size = np.fromiter(sizes.values(), np.int64, m)[spanned]
    firsts, lasts = born[spanned], np.maximum(born, last)[spanned]
    deltas = np.zeros(n + 1, dtype=np.int64)
    np.add.at(deltas, firsts, size)
    np.subtract.at(deltas, lasts + 1, size)
    kernel_scratch = np.array(scratch, dtype=np.int64)
    deltas[:n] += kernel_scratch
    deltas[1:] -= kernel_scratch
    return tuple(np.cumsum(deltas[:n]).tolist())


def _forward_spans(graph: ModelGraph, plan: _Plan) -> dict[str, tuple[int, int]]:
    """(first, last) forward step of every root tensor; inputs and outputs span the pass."""
    n = len(plan.kernels)
    sizes, roots = plan.sizes, plan.roots
    born: dict[str, int] = dict.fromkeys(graph.inputs, 0)
    last: dict[str, int] = {}
    root = roots.get
    for step, node in enumerate(plan.kernels):  # tests, not setdefault: once per tensor
        for name in node.outputs:
            if name in sizes:
                if name not in born:
                    born[name] = step
                if name not in last:
                    last[name] = step
        for name in node.inputs:
            if name in sizes:
                last[root(name, name)] = step  # using a view uses what it views
    for name in (*graph.outputs, *graph.inputs):
        if plan.root(name) in sizes:
            last[plan.root(name)] = max(n - 1, 0)
    for name, step in held_by_frames(plan.kernels, plan.root, set(sizes)).items():
        last[name] = max(last.get(name, step), step)
    return {
        name: (start, max(start, last.get(name, start)))
        for name, start in born.items()
        if name not in roots
    }


def _is_trainable(graph: ModelGraph, name: str) -> bool:
    """A floating-point parameter."""
    tensor = graph.tensors.get(name)
    return tensor is not None and tensor.is_param and tensor.dtype in FLOAT_DTYPES


def _requires_grad(graph: ModelGraph, plan: _Plan) -> set[str]:
    """Root tensors that depend on a trainable parameter (autograd tracks them)."""
    tracked: set[str] = set()
    for node in plan.kernels:
        if any(_is_trainable(graph, x) or plan.root(x) in tracked for x in node.inputs if x):
            for out in node.outputs:
                tensor = graph.tensors.get(out)
                if out and tensor is not None and tensor.dtype in FLOAT_DTYPES:
                    tracked.add(plan.root(out))
    return tracked


def _saved_by_kernel(graph: ModelGraph, plan: _Plan) -> dict[str, int]:
    """Saved root tensor -> the earliest kernel saving it (its backward frees it)."""
    tracked = _requires_grad(graph, plan)
    saved: dict[str, int] = {}
    for step, (node, effect) in enumerate(zip(plan.kernels, plan.effects, strict=True)):
        if not any(_is_trainable(graph, x) or plan.root(x) in tracked for x in node.inputs if x):
            continue
        for name in effect.saved:
            tensor = graph.tensors.get(name)
            if name and tensor is not None and not tensor.is_param:
                saved.setdefault(plan.root(name), step)
    return saved


def _gradient_spans(
    graph: ModelGraph, plan: _Plan, tracked: set[str]
) -> dict[str, tuple[int, int]]:
    """Backward lifetime of each activation gradient, by root tensor."""
    n = len(plan.kernels)
    last_use: dict[str, int] = {}
    made: dict[str, int] = {}
    for step, node in enumerate(plan.kernels):
        for name in node.inputs:
            if plan.root(name) in tracked:
                last_use[plan.root(name)] = step
        for name in node.outputs:
            if name in tracked:
                made[name] = step
    spans: dict[str, tuple[int, int]] = {}
    outputs = {plan.root(o) for o in graph.outputs}
    for name, producer in made.items():
        if name in outputs:
            born = n
        elif name in last_use:
            born = 2 * n - 1 - last_use[name]
        else:
            continue  # feeds nothing: no gradient flows into it
        spans[name] = (born, 2 * n - 1 - producer)
    return spans


def _param_grad_births(graph: ModelGraph, plan: _Plan) -> dict[str, int]:
    """Backward step at which each trainable parameter's gradient is first written."""
    n = len(plan.kernels)
    last: dict[str, int] = {}
    for step, node in enumerate(plan.kernels):
        if all(o in plan.static for o in node.outputs if o):
            continue  # a re-layout of weights: its readers use the parameter
        for name in node.inputs:
            for param in plan.static.get(name, frozenset({name})):
                if _is_trainable(graph, param):
                    last[param] = step
    return {name: 2 * n - 1 - step for name, step in last.items()}


def _phase(plan: _Plan, t: int, n: int) -> str:
    """Name the timeline position ``t``."""
    if t < n:
        return f"forward:{plan.kernels[t].name}"
    if t < 2 * n:
        return f"backward:{plan.kernels[2 * n - 1 - t].name}"
    return "optimizer"


def _scaler(dtype: str | None, graph: ModelGraph) -> Callable[[int], int]:
    """Re-price rule bytes (computed in the graph's dtype) in ``dtype``.

    The graph's own precision is found once here: it walks every parameter, and once per
    kernel made a graph of many kernels and parameters quadratic.
    """
    if dtype is None:
        return lambda n_bytes: n_bytes
    own, wanted = DTYPE_BYTES[graph_precision(graph)], DTYPE_BYTES[dtype]
    return lambda n_bytes: math.ceil(n_bytes * wanted / own) if n_bytes else n_bytes


def _add(delta: list[int], start: int, stop: int, size: int) -> None:
    """Add ``size`` over steps start..stop (inclusive) of a difference array."""
    delta[start] += size
    delta[stop + 1] -= size


def _running(delta: list[int], n: int) -> tuple[int, ...]:
    """Prefix sums of a difference array over its first ``n`` steps."""
    return tuple(accumulate(delta[:n]))


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


@MEMORY_RULES.register("If", "Loop", "Scan")
def control_flow(op: OpNode, mode: str, /) -> MemoryEffect:
    """A body's own activations are scratch of the node: the largest body's peak.

    An If runs one branch and loop iterations reuse their memory, so the peak of the
    largest subgraph bounds it. Bodies that cannot be sized add nothing. The rule lives
    here, beside the pass it runs on each body, not in ``graph.ops.memory``.
    """
    peaks = [0]
    for body in op.node.subgraphs.values():
        try:
            peaks.append(inference_memory(body, workspace=mode).peak_activation_bytes)
        except InputError:
            continue
    return MemoryEffect(tuple(n for n in op.node.inputs if n), workspace_bytes=max(peaks))
