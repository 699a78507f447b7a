"""What a per-op rule sees (OpNode), what it returns (OpCost), and the rule registry.

Convention, for every rule: 1 multiply-accumulate (MAC) = 2 FLOPs, and
``flops = 2 * macs + other_flops`` where ``other_flops`` are the operations that are
not multiply-accumulates (bias adds, activations, normalisation arithmetic), counted
per output element with the per-op constants each rule module documents. Bytes are
the sizes of the tensors a node reads and writes, assuming no cache reuse.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from foresize.core.registry import Registry
from foresize.graph.model import ConcreteShape, Node, TensorInfo, numel


class ShapeUnknownError(Exception):
    """A rule needs a shape that neither inference nor propagation could establish."""


@dataclass(frozen=True, slots=True)
class OpCost:
    """The cost of one node; ``out_shapes`` feeds shape propagation where inference stopped."""

    flops: int
    macs: int
    bytes_read: int
    bytes_written: int
    out_shapes: tuple[ConcreteShape | None, ...]


class OpNode:
    """A node with its input and output tensors; ``None`` marks an omitted input.

    The tensors are looked up on first use, once: the liveness pass makes one OpNode per
    kernel, and most memory rules read only the node (which of its inputs they keep).
    """

    __slots__ = ("_inputs", "_outputs", "_tensors", "constants", "node")

    def __init__(self, node: Node, tensors: Mapping[str, TensorInfo],
                 constants: Mapping[str, tuple[int, ...]]) -> None:
        self.node = node
        self.constants = constants
        self._tensors = tensors
        self._inputs: tuple[TensorInfo | None, ...] | None = None
        self._outputs: tuple[TensorInfo | None, ...] | None = None

    @property
    def inputs(self) -> tuple[TensorInfo | None, ...]:
        """The input tensors, in slot order."""
        if self._inputs is None:
            self._inputs = _resolve(self.node.inputs, self._tensors)
        return self._inputs

    @property
    def outputs(self) -> tuple[TensorInfo | None, ...]:
        """The output tensors, in slot order."""
        if self._outputs is None:
            self._outputs = _resolve(self.node.outputs, self._tensors)
        return self._outputs

    def has_input(self, index: int) -> bool:
        """True when optional input ``index`` is given."""
        return index < len(self.inputs) and self.inputs[index] is not None

    def shape(self, index: int) -> ConcreteShape:
        """Concrete shape of input ``index``; raises ShapeUnknownError otherwise."""
        tensor = self.inputs[index] if index < len(self.inputs) else None
        shape = tensor.concrete_shape if tensor is not None else None
        if shape is None:
            name = tensor.name if tensor is not None else f"input {index}"
            raise ShapeUnknownError(name)
        return shape

    def out_shape(self, index: int = 0) -> ConcreteShape | None:
        """Concrete shape of output ``index`` as inferred, or None."""
        tensor = self.outputs[index] if index < len(self.outputs) else None
        return tensor.concrete_shape if tensor is not None else None

    def attr_int(self, name: str, default: int) -> int:
        """Integer attribute ``name``."""
        value = self.node.attributes.get(name, default)
        return int(value) if isinstance(value, int | float) else default

    def attr_ints(self, name: str, default: tuple[int, ...] = ()) -> tuple[int, ...]:
        """Integer-list attribute ``name``."""
        value = self.node.attributes.get(name, default)
        return tuple(int(v) for v in value) if isinstance(value, tuple) else default

    def attr_str(self, name: str, default: str) -> str:
        """String attribute ``name``."""
        value = self.node.attributes.get(name, default)
        return value if isinstance(value, str) else default

    def const_ints(self, index: int) -> tuple[int, ...] | None:
        """Value of input ``index`` when it is a small inline integer tensor."""
        if not self.has_input(index):
            return None
        return self.constants.get(self.node.inputs[index])


def _resolve(names: tuple[str, ...], tensors: Mapping[str, TensorInfo]
             ) -> tuple[TensorInfo | None, ...]:
    """The tensors of ``names``: None where a name is omitted, a blank one where undeclared.

    The common case, every name given and declared, goes through ``map`` without a
    Python step per name.
    """
    if all(names):
        found = tuple(map(tensors.get, names))
        if all(found):
            return found
    get = tensors.get
    return tuple([(get(n) or _unknown(n)) if n else None for n in names])


def _unknown(name: str) -> TensorInfo:
    """A tensor the graph never declared: no shape, no dtype."""
    return TensorInfo(name, None, "undefined", 0)


Rule = Callable[[OpNode], OpCost]


class OpRules(Registry[Rule]):
    """The registry of per-op rules; one rule may serve several op types."""

    def register(self, name: str, *more: str) -> Callable[[Rule], Rule]:
        """Decorator registering one rule under every op type given."""

        def decorate(rule: Rule) -> Rule:
            for op_type in (name, *more):
                self.add(op_type, rule)
            return rule

        return decorate


RULES = OpRules("op rule")

ZERO_COST: frozenset[str] = frozenset({
    # views and metadata: no arithmetic, and usually no copy
    "Identity", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Shape", "Size",
    "Constant", "ConstantOfShape", "Dropout", "Cast", "CastLike", "Range", "EyeLike",
    # data movement: copies but no arithmetic; the byte traffic is left to memory analysis
    "Transpose", "Concat", "Split", "Slice", "Expand", "Tile", "Pad",
    "DepthToSpace", "SpaceToDepth", "GatherElements", "GatherND", "ScatterND",
    "ScatterElements", "Trilu", "NonZero",
})  # fmt: skip


def broadcast(*shapes: ConcreteShape) -> ConcreteShape:
    """Numpy broadcasting of concrete shapes; a mismatch is a malformed model."""
    rank = max((len(s) for s in shapes), default=0)
    out: list[int] = []
    for axis in range(rank):
        sizes = {s[axis - rank + len(s)] for s in shapes if axis - rank + len(s) >= 0}
        sizes.discard(1)
        if len(sizes) > 1:
            raise ShapeUnknownError(f"shapes {shapes} do not broadcast")
        out.append(sizes.pop() if sizes else 1)
    return tuple(out)


def cost(
    op: OpNode,
    out_shapes: Sequence[ConcreteShape | None],
    *,
    macs: int = 0,
    other_flops: int = 0,
) -> OpCost:
    """Assemble an OpCost: FLOPs from the convention, bytes from tensor sizes.

    An output's dtype falls back to the first input's when inference did not say.
    """
    bytes_read = sum(t.n_bytes or 0 for t in op.inputs if t is not None)
    fallback_bits = op.inputs[0].bits if op.inputs and op.inputs[0] is not None else 0
    bytes_written = 0
    for index, shape in enumerate(out_shapes):
        if shape is None:
            continue
        tensor = op.outputs[index] if index < len(op.outputs) else None
        bits = tensor.bits if tensor is not None and tensor.bits else fallback_bits
        bytes_written += math.ceil(numel(shape) * bits / 8)
    return OpCost(
        flops=2 * macs + other_flops,
        macs=macs,
        bytes_read=bytes_read,
        bytes_written=bytes_written,
        out_shapes=tuple(out_shapes),
    )
