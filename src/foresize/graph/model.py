"""ModelGraph: the reader-independent view of a model that every analysis works on.

A graph holds nodes, tensors and parameters by shape and dtype only. Weight data is
never loaded, so a 70B-parameter checkpoint is analysed in the memory its metadata
takes. Shapes keep symbolic dims (``"batch"``) as strings until the caller binds them;
a dim nobody can name (an anonymous ONNX dim) is ``None``.
"""

from __future__ import annotations

import ast
import contextlib
import gc
import heapq
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TypeGuard, TypeVar

Dim = int | str | None
Shape = tuple[Dim, ...]
ConcreteShape = tuple[int, ...]
AttrValue = int | float | str | tuple[int, ...] | tuple[float, ...] | tuple[str, ...]
NAME_SCOPES = "pkg.torch.onnx.name_scopes"  # the torch exporter's module path of each node
# graphs from this many nodes share their longest passes with a forked child (ONNX's
# shape inference while the nodes are read; liveness while FLOPs are counted): below it
# the passes take less than a fork costs to pay back
FORK_NODES = 20_000

# ONNX TensorProto element types -> (name, bits). Bits rather than bytes because the
# 4-bit types pack two elements per byte.
DTYPES: Mapping[int, tuple[str, int]] = {
    1: ("float32", 32),
    2: ("uint8", 8),
    3: ("int8", 8),
    4: ("uint16", 16),
    5: ("int16", 16),
    6: ("int32", 32),
    7: ("int64", 64),
    8: ("string", 0),
    9: ("bool", 8),
    10: ("float16", 16),
    11: ("float64", 64),
    12: ("uint32", 32),
    13: ("uint64", 64),
    14: ("complex64", 64),
    15: ("complex128", 128),
    16: ("bfloat16", 16),
    17: ("float8e4m3fn", 8),
    18: ("float8e4m3fnuz", 8),
    19: ("float8e5m2", 8),
    20: ("float8e5m2fnuz", 8),
    21: ("uint4", 4),
    22: ("int4", 4),
    23: ("float4e2m1", 4),
}
UNKNOWN_DTYPE = ("undefined", 0)


# Where an op reads trainable weights: its input slots (None: any input). Biases and the
# scale/shift of decomposed norms reach Add/Mul/Sub; a learned token (a ViT's class token)
# reaches Concat. Not listed, so never weights: BatchNormalization's running statistics
# (slots 3, 4), an RNN's initial states (5, 6), tables read by Slice, Trilu or Where
# (RoPE caches, masks).
WEIGHT_SLOTS: Mapping[str, tuple[int, ...] | None] = {
    "MatMul": None, "Gemm": None, "Einsum": None, "MatMulInteger": (1,),
    "Conv": (1, 2), "ConvTranspose": (1, 2), "ConvInteger": (1,),
    "BatchNormalization": (1, 2), "LayerNormalization": (1, 2),
    "InstanceNormalization": (1, 2), "GroupNormalization": (1, 2), "RMSNormalization": (1,),
    "SimplifiedLayerNormalization": (1,), "Gather": (0,),
    "LSTM": (1, 2, 3), "GRU": (1, 2, 3), "RNN": (1, 2, 3), "PRelu": (1,),
    "Add": None, "Mul": None, "Sub": None, "Concat": None,
}  # fmt: skip
ELEMENTWISE_SLOTS = frozenset({"Add", "Mul", "Sub", "Concat"})
# Ops a weight passes through unchanged on its way to the op that uses it.
WEIGHT_VIEWS = frozenset(
    {"Transpose", "Reshape", "Cast", "Identity", "Squeeze", "Unsqueeze", "Flatten",
     "DequantizeLinear"}
)  # fmt: skip
# Ops that cut a weight into pieces or put pieces together: an exporter reorders an LSTM's
# gates with Slice and Concat. Through them only a matmul-like slot (not Add/Mul/Sub/
# Concat) makes a weight, so that a RoPE table sliced to the sequence stays a constant.
WEIGHT_PIECES = frozenset({"Slice", "Split", "Concat"})
FLOAT_WEIGHT_DTYPES = frozenset({"float32", "float16", "bfloat16", "float64"})


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while a large graph is built or walked.

    A graph of 200k nodes is millions of small objects that form no reference cycle, yet
    the collector, run every few hundred allocations, rescanned the growing heap again
    and again: 40 % of reading and pricing such a graph. Reference counting still frees
    every object as before; the collector resumes (if it ran before) on the way out.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def numel(shape: ConcreteShape) -> int:
    """Number of elements of a concrete shape (1 for a scalar)."""
    return math.prod(shape)


_IS_INT = int.__instancecheck__  # isinstance(d, int) without a generator frame per call


def is_concrete(shape: Shape | None) -> TypeGuard[ConcreteShape]:
    """True when every dim of ``shape`` is a known integer.

    Asked of every tensor of the graph when it is built: ``all(map(...))`` takes 40 %
    less time than the generator expression it replaced.
    """
    return shape is not None and all(map(_IS_INT, shape))


@dataclass(slots=True)
class TensorInfo:
    """One value flowing through the graph; ``shape`` is None when even the rank is unknown.

    The concrete shape and the byte size are computed once, at construction: every pass
    (pricing, fusion, liveness) asks for them several times per node, and on a graph of
    200k nodes recomputing them was a quarter of the analysis.

    Treated as immutable (change one with ``dataclasses.replace``), but not frozen: a
    frozen dataclass sets each field through ``object.__setattr__``, and building the
    200k tensors of a large graph took four times as long.
    """

    name: str
    shape: Shape | None
    dtype: str
    bits: int
    producer: str | None = None
    consumers: tuple[str, ...] = ()
    is_param: bool = False
    _concrete: ConcreteShape | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        shape = self.shape
        self._concrete = shape if is_concrete(shape) else None

    @property
    def concrete_shape(self) -> ConcreteShape | None:
        """The shape as integers, or None while any dim is symbolic or unknown."""
        return self._concrete

    @property
    def symbolic_dims(self) -> frozenset[str]:
        """Names of the dims that still wait for a value."""
        if self.shape is None:
            return frozenset()
        return frozenset(d for d in self.shape if isinstance(d, str))

    @property
    def n_bytes(self) -> int | None:
        """Storage size, rounded up to whole bytes; None while the shape is not concrete.

        Integer arithmetic throughout: a float product loses whole bytes past 2^53 bits.
        """
        shape = self._concrete
        if shape is None:
            return None
        return -(-math.prod(shape) * self.bits // 8)


@dataclass(slots=True)
class Node:
    """One operator; ``inputs`` keeps ``""`` where an optional input is omitted.

    Treated as immutable, but not frozen, for the reason :class:`TensorInfo` gives.
    """

    name: str
    op_type: str
    domain: str = ""
    attributes: Mapping[str, AttrValue] = field(default_factory=dict)
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    subgraphs: Mapping[str, ModelGraph] = field(default_factory=dict)  # If/Loop/Scan bodies
    metadata: Mapping[str, str] = field(default_factory=dict)  # exporter's, e.g. scopes

    @property
    def key(self) -> str:
        """Registry key: the bare op type in the default domain, ``domain::op`` elsewhere."""
        if self.domain in ("", "ai.onnx"):
            return self.op_type
        return f"{self.domain}::{self.op_type}"


def module_path(node: Node) -> tuple[str, ...] | None:
    """The module calls enclosing ``node``, outermost (the model, ``""``) first.

    From the torch exporter's ``pkg.torch.onnx.name_scopes`` metadata, whose last entry
    names the op itself; None for a node without it (other exporters, hand-built graphs).
    """
    raw = node.metadata.get(NAME_SCOPES)
    if raw is None:
        return None
    try:
        scopes = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        return None
    if not isinstance(scopes, list) or len(scopes) < 2:
        return None
    return tuple(str(s) for s in scopes[:-1])


@dataclass(frozen=True, slots=True)
class ModelGraph:
    """Nodes in topological order, every named tensor, and the parameters among them.

    ``constants`` holds the values of small integer tensors stored inline in the model
    (shape vectors, axes, resize sizes): rules need them to derive shapes, and they
    cost nothing to keep.
    """

    name: str
    nodes: tuple[Node, ...]
    tensors: Mapping[str, TensorInfo]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    constants: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    source: str | None = None
    # the kernels eager runs (:func:`~foresize.graph.ops.fusion.fuse`) where a reader found
    # them already: fusion reads only the nodes, the parameters and the graph's inputs and
    # outputs, none of which shape inference or propagation changes
    kernels: tuple[Node, ...] | None = field(default=None, compare=False, repr=False)

    @property
    def parameters(self) -> tuple[TensorInfo, ...]:
        """Initializers (weights, biases, constants stored as initializers)."""
        return tuple(t for t in self.tensors.values() if t.is_param)

    @property
    def weights(self) -> tuple[TensorInfo, ...]:
        """The trainable weights among the initializers (see :func:`is_weight`).

        Each initializer's uses are walked lazily: ``is_weight`` stops at the first that
        makes it a weight, where a weight shared by 25k blocks has 25k uses.
        """
        params = self.parameters
        readers = _param_readers(self, params)
        return tuple(t for t in params if is_weight(t, _uses(t.name, readers)))

    @property
    def n_params(self) -> int:
        """Trainable weight elements, each stored weight once (shared ones too).

        Masks, RoPE tables, an RNN's initial states and scalar constants are initializers
        too, but not parameters: they are in ``parameters`` (and in the weight bytes a
        device holds), not here.
        """
        return sum(numel(t.concrete_shape or ()) for t in self.weights)

    @property
    def param_bytes(self) -> int:
        """Total parameter storage in bytes."""
        return sum(t.n_bytes or 0 for t in self.parameters)

    @property
    def symbolic_dims(self) -> frozenset[str]:
        """Every dim name still unbound anywhere in the graph."""
        names: set[str] = set()
        for tensor in self.tensors.values():
            names |= tensor.symbolic_dims
        return frozenset(names)


K = TypeVar("K")
V = TypeVar("V")


class Scope(Mapping[K, V]):
    """A control-flow body's names: its own, then those of the scopes around it.

    A body reads outer values by name, so lookups fall through to ``outer``; iteration
    and ``len`` cover the body's own names only, the values it defines. Copying the outer
    graph's tensors into each body instead made a graph of many ``If`` nodes quadratic,
    and every pass that walks a body's tensors would have walked the whole graph again.
    """

    __slots__ = ("_outer", "_own")

    def __init__(self, own: Mapping[K, V], outer: Mapping[K, V]) -> None:
        self._own = own
        self._outer = outer

    def __getitem__(self, key: K) -> V:
        try:
            return self._own[key]
        except KeyError:
            return self._outer[key]

    def __contains__(self, key: object) -> bool:
        return key in self._own or key in self._outer

    def __iter__(self) -> Iterator[K]:
        return iter(self._own)

    def __len__(self) -> int:
        return len(self._own)

    def merged(self, changes: Mapping[K, V]) -> Scope[K, V]:
        """The same scope with ``changes`` among its own names."""
        return Scope({**self._own, **changes}, self._outer)


def with_changes(mapping: Mapping[K, V], changes: Mapping[K, V]) -> Mapping[K, V]:
    """``mapping`` updated by ``changes``, keeping a :class:`Scope` a scope."""
    if not changes:
        return mapping
    if isinstance(mapping, Scope):
        return mapping.merged(changes)
    return {**mapping, **changes}


def topological_order(nodes: tuple[Node, ...]) -> tuple[Node, ...]:
    """Kahn's sort, stable on the file order so that valid files keep their order.

    Values no node produces (graph inputs, initializers) never block a node. Nodes
    left in a cycle are appended in file order: the analysis stays possible and their
    shapes stay unknown rather than the read failing.
    """
    producers = {out: i for i, node in enumerate(nodes) for out in node.outputs if out}
    waiting: list[set[int]] = []
    dependants: dict[int, list[int]] = {i: [] for i in range(len(nodes))}
    for i, node in enumerate(nodes):
        deps = {producers[name] for name in node.inputs if name in producers} - {i}
        waiting.append(deps)
        for dep in deps:
            dependants[dep].append(i)
    ready = [i for i, deps in enumerate(waiting) if not deps]
    heapq.heapify(ready)
    order: list[int] = []
    while ready:
        i = heapq.heappop(ready)
        order.append(i)
        for j in dependants[i]:
            waiting[j].discard(i)
            if not waiting[j]:
                heapq.heappush(ready, j)
    placed = set(order)
    order.extend(i for i in range(len(nodes)) if i not in placed)
    return tuple(nodes[i] for i in order)


Use = tuple[str, int, bool]  # (op, input slot, reached through a Slice/Split/Concat)


def is_weight(tensor: TensorInfo, uses: Iterable[Use]) -> bool:
    """Whether an initializer is a trainable weight, from the ``(op, slot, cut)`` it feeds.

    A float tensor of two or more elements that reaches a weight slot of ``WEIGHT_SLOTS``
    is one. Into Add/Mul/Sub/Concat, only directly (not cut by Slice/Split/Concat) and
    only when it is not a square block (``[..., s, s]``, an attention mask): biases, norm
    scales, learned position tables and tokens.
    """
    shape = tensor.concrete_shape
    if tensor.dtype not in FLOAT_WEIGHT_DTYPES or shape is None or numel(shape) < 2:
        return False
    square = len(shape) >= 2 and shape[-1] == shape[-2]
    for op, slot, cut in uses:
        slots = WEIGHT_SLOTS.get(op, ())
        if slots is not None and slot not in slots:
            continue
        if op not in ELEMENTWISE_SLOTS or not (square or cut):
            return True
    return False


def _param_readers(graph: ModelGraph, params: tuple[TensorInfo, ...]
                   ) -> dict[str, list[tuple[Node, int]]]:
    """The (node, input slot) reading each name an initializer can reach through views and
    cuts, in graph order.

    Only those names are indexed: they are found first, over the view and cut nodes alone
    (twice on a graph in topological order), and a node that reads none of them is passed
    over with one set test.
    """
    reachable = {t.name for t in params}
    carriers = [n for n in graph.nodes if n.op_type in WEIGHT_VIEWS or n.op_type in WEIGHT_PIECES]
    while True:
        before = len(reachable)
        for node in carriers:
            carried = node.inputs if node.op_type == "Concat" else node.inputs[:1]
            if not reachable.isdisjoint(carried):
                reachable.update(node.outputs)
        if len(reachable) == before:
            break
    readers: dict[str, list[tuple[Node, int]]] = {}
    for node in graph.nodes:
        if reachable.isdisjoint(node.inputs):
            continue
        for slot, name in enumerate(node.inputs):
            if name in reachable:
                readers.setdefault(name, []).append((node, slot))
    return readers


def _uses(param: str, readers: Mapping[str, list[tuple[Node, int]]]) -> Iterator[Use]:
    """The ``(op, slot, cut)`` an initializer reaches through views and cuts, depth first."""
    frontier: list[tuple[str, bool]] = [(param, False)]
    seen = {param}
    while frontier:
        name, cut = frontier.pop()
        for node, slot in readers.get(name, ()):
            passes = node.op_type in WEIGHT_VIEWS and slot == 0
            pieces = node.op_type in WEIGHT_PIECES and (slot == 0 or node.op_type == "Concat")
            if passes or pieces:
                fresh = [out for out in node.outputs if out and out not in seen]
                seen.update(fresh)
                frontier.extend((out, cut or pieces) for out in fresh)
            if not passes:
                yield node.op_type, slot, cut
