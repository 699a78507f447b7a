"""Rules for control flow: ONNX ``If``, ``Loop`` and ``Scan`` price their subgraphs.

- ``If``: the branch is chosen at run time, so the node is priced as its costlier branch
  (by FLOPs; bytes from that same branch): an upper bound, never a guess of which runs.
- ``Loop``: the body times the trip count ``M`` when ``M`` is a constant (an initializer
  or ``Constant``); otherwise the body once, with a :class:`ControlFlowWarning` naming the
  unbound trip count (a loop ended by its condition alone is the same case).
- ``Scan``: the body times the scan length, the first scan input's size along its scan
  axis (``scan_input_axes``, default 0).

Bodies read outer-scope values by name; the reader resolves them
(:func:`foresize.graph.onnx_reader.read_onnx`). A body that cannot be priced (an unbound
dim inside it) leaves the node unresolved, as any rule with unknown shapes does.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

from foresize.core.errors import InputError
from foresize.graph.model import ConcreteShape, ModelGraph
from foresize.graph.ops.base import RULES, OpCost, OpNode, ShapeUnknownError
from foresize.graph.ops.pricing import gaps, price_nodes


class ControlFlowWarning(UserWarning):
    """A control-flow node was priced under an assumption the user should know about."""


def body_cost(graph: ModelGraph) -> OpCost:
    """FLOPs, MACs and bytes of one execution of a subgraph."""
    try:
        priced = price_nodes(graph)
    except InputError as exc:
        raise ShapeUnknownError(str(exc)) from None
    unsupported, unresolved = gaps(priced)
    missing = {**unsupported, **unresolved}
    if missing:
        listed = ", ".join(f"{op} x{n}" for op, n in sorted(missing.items()))
        warnings.warn(
            f"subgraph {graph.name}: not counted: {listed}", ControlFlowWarning, stacklevel=2
        )
    costs = [cost for _, _, cost in priced]
    return OpCost(
        sum(c.flops for c in costs),
        sum(c.macs for c in costs),
        sum(c.bytes_read for c in costs),
        sum(c.bytes_written for c in costs),
        (),
    )


def _repeat(op: OpNode, body: OpCost, times: int) -> OpCost:
    """``body`` run ``times`` times; output shapes as inference gave them."""
    outs: Sequence[ConcreteShape | None] = [op.out_shape(i) for i in range(len(op.outputs))]
    return OpCost(
        body.flops * times,
        body.macs * times,
        body.bytes_read * times,
        body.bytes_written * times,
        tuple(outs),
    )


def _body(op: OpNode, name: str) -> ModelGraph:
    """The subgraph attribute ``name``, or ShapeUnknownError when the reader found none."""
    graph = op.node.subgraphs.get(name)
    if graph is None:
        raise ShapeUnknownError(f"{op.node.op_type} {op.node.name}: no {name} subgraph")
    return graph


@RULES.register("If")
def if_(op: OpNode, /) -> OpCost:
    """The costlier branch; output shapes from inference, else from that branch."""
    branches = [body_cost(_body(op, name)) for name in ("then_branch", "else_branch")]
    graphs = [_body(op, name) for name in ("then_branch", "else_branch")]
    index = 0 if branches[0].flops >= branches[1].flops else 1
    chosen, graph = branches[index], graphs[index]
    outs: list[ConcreteShape | None] = []
    for i in range(len(op.outputs)):
        shape = op.out_shape(i)
        if shape is None and i < len(graph.outputs):
            shape = graph.tensors[graph.outputs[i]].concrete_shape
        outs.append(shape)
    return OpCost(chosen.flops, chosen.macs, chosen.bytes_read, chosen.bytes_written, tuple(outs))


@RULES.register("Loop")
def loop(op: OpNode, /) -> OpCost:
    """Body x trip count when it is constant; body once, with a warning, when it is not."""
    body = body_cost(_body(op, "body"))
    trips = op.const_ints(0) if op.has_input(0) else None
    if trips is None or len(trips) != 1:
        what = op.node.inputs[0] if op.has_input(0) else "(none: the condition ends it)"
        warnings.warn(
            f"Loop {op.node.name}: trip count {what} is not a constant; its body is counted once",
            ControlFlowWarning,
            stacklevel=2,
        )
        return _repeat(op, body, 1)
    return _repeat(op, body, trips[0])


@RULES.register("Scan")
def scan(op: OpNode, /) -> OpCost:
    """Body x scan length (the first scan input's size along its scan axis)."""
    body = body_cost(_body(op, "body"))
    n_scan = op.attr_int("num_scan_inputs", 1)
    first = len(op.inputs) - n_scan
    axis = (op.attr_ints("scan_input_axes") or (0,))[0]
    shape = op.shape(first)
    return _repeat(op, body, shape[axis % len(shape)])
