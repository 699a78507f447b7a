"""FLOP, MAC and byte counts of a ModelGraph, node by node, through the op rules.

Every node ends in exactly one status, so nothing is zeroed silently:

- ``counted``: a rule priced it;
- ``zero_cost``: listed in ZERO_COST (views, copies, metadata);
- ``unsupported``: no rule; counted by op type in ``FlopReport.unsupported``;
- ``unresolved``: a rule exists but an input shape stayed unknown (``unresolved``).

Coverage is the share of nodes that are counted or zero-cost. Unbound symbolic dims
are an error, never a guess: a count with ``batch`` silently set to 1 would look exact.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import lru_cache
from itertools import repeat
from operator import attrgetter
from typing import TYPE_CHECKING, Any

from foresize.core.errors import InputError, InsufficientDataError
from foresize.graph.devices import Device, roofline_time
from foresize.graph.model import (
    NAME_SCOPES,
    ModelGraph,
    Node,
    Scope,
    TensorInfo,
    module_path,
    numel,
    with_changes,
)
from foresize.graph.ops import RULES, ShapeUnknownError
from foresize.graph.ops.base import OpCost
from foresize.graph.ops.pricing import gaps, op_node, price_nodes

if TYPE_CHECKING:  # polars loads where the rows are made: reading a graph needs none
    import polars as pl

# the rows' columns, by polars dtype name
ROW_SCHEMA: Mapping[str, str] = {
    "node": "String",
    "layer": "String",
    "op": "String",
    "status": "String",
    "flops": "Int64",
    "macs": "Int64",
    "bytes_read": "Int64",
    "bytes_written": "Int64",
    "params": "Int64",
}


@dataclass(frozen=True, slots=True)
class FlopReport:
    """Per-node rows (ROW_SCHEMA, topological order) and their totals."""

    rows: pl.DataFrame
    flops: int
    macs: int
    bytes_read: int
    bytes_written: int
    n_params: int
    unsupported: dict[str, int]
    unresolved: dict[str, int]
    coverage_pct: float


def propagate_shapes(graph: ModelGraph) -> ModelGraph:
    """Fill output shapes that inference left open, using the rules' ``out_shapes``.

    Runs in topological order so that one filled shape lets the next node resolve.
    Zero-cost ops have no shape rule: a chain broken there stays unknown downstream.
    Only the filled tensors are new: the graph's mapping is not copied per call.
    """
    filled: dict[str, TensorInfo] = {}
    tensors = Scope(filled, graph.tensors)
    known = graph.tensors.get
    # the graph's own names of concrete shape, kept in step with ``filled``: a node whose
    # outputs are all among them (most nodes) is passed over with one C-level test; the
    # rest (names of enclosing scopes, unsized ones) take the loop below, as before
    sized = {name for name, tensor in graph.tensors.items() if tensor.concrete_shape is not None}
    sized.add("")  # an omitted output is skipped
    all_sized = sized.issuperset
    for node in graph.nodes:
        if all_sized(node.outputs):
            continue
        for name in node.outputs:  # inlined: asked of every node, and most are sized
            if name:
                tensor = filled.get(name) or known(name)
                if tensor is None or tensor.concrete_shape is None:
                    break
        else:
            continue
        if node.key not in RULES:
            continue
        op = op_node(node, tensors, graph)
        try:
            result = RULES.get(node.key)(op)
        except ShapeUnknownError:
            continue
        fallback = op.inputs[0] if op.inputs else None
        for name, tensor, shape in zip(node.outputs, op.outputs, result.out_shapes, strict=False):
            if not name or shape is None or tensor is None or tensor.concrete_shape is not None:
                continue
            dtype, bits = tensor.dtype, tensor.bits
            if not bits and fallback is not None:
                dtype, bits = fallback.dtype, fallback.bits
            filled[name] = made = replace(tensor, shape=shape, dtype=dtype, bits=bits)
            if made.concrete_shape is None:
                sized.discard(name)
            else:
                sized.add(name)
    return replace(graph, tensors=with_changes(graph.tensors, filled)) if filled else graph


def analyze_flops(graph: ModelGraph, *, strict: bool = False) -> FlopReport:
    """Price every node; raise InputError on unbound dims, and under ``strict`` on gaps.

    ``strict`` turns unsupported or unresolved nodes into InsufficientDataError, for
    callers that would rather fail than report a partial total.
    """
    priced = price_nodes(graph)
    unsupported, unresolved = gaps(priced)
    weights = {t.name: numel(t.concrete_shape or ()) for t in graph.weights}
    # column by column, in ROW_SCHEMA's order: a comprehension per column is cheaper than
    # one loop appending to nine lists, on graphs of 200k nodes
    nodes, statuses, costs = zip(*priced, strict=True) if priced else ((), (), ())
    zeros = repeat(0)
    unweighted = weights.keys().isdisjoint
    columns: dict[str, list[Any]] = {
        "node": [node.name for node in nodes],
        # layer_of_node, its test and layer_of inlined: two Python calls fewer per node
        "layer": [layer_of_node(node) if NAME_SCOPES in node.metadata
                  else _layer_of_scope(node.name.rstrip("/").rpartition("/")[0])
                  for node in nodes],
        "op": [node.key for node in nodes],
        "status": list(statuses),
        "flops": list(map(attrgetter("flops"), costs)),
        "macs": list(map(attrgetter("macs"), costs)),
        "bytes_read": list(map(attrgetter("bytes_read"), costs)),
        "bytes_written": list(map(attrgetter("bytes_written"), costs)),
        # most nodes read no weight: one C-level set test says so, before a sum per node
        "params": ([0 if unweighted(node.inputs) else sum(map(weights.get, node.inputs, zeros))
                    for node in nodes] if weights else [0] * len(nodes)),
    }
    flops, macs = columns["flops"], columns["macs"]
    reads, writes = columns["bytes_read"], columns["bytes_written"]
    if strict and (unsupported or unresolved):
        missing = {**unsupported, **unresolved}
        listed = ", ".join(f"{op} x{n}" for op, n in sorted(missing.items()))
        msg = f"{graph.source or graph.name}: nodes not counted under --strict: {listed}"
        raise InsufficientDataError(msg)
    _check_counts(priced, graph, (flops, macs, reads, writes))
    import polars as pl

    frame = pl.DataFrame(columns, schema={k: getattr(pl, v) for k, v in ROW_SCHEMA.items()})
    n_nodes = len(graph.nodes)
    covered = n_nodes - sum(unsupported.values()) - sum(unresolved.values())
    return FlopReport(
        rows=frame,
        flops=sum(flops),
        macs=sum(macs),
        bytes_read=sum(reads),
        bytes_written=sum(writes),
        n_params=sum(weights.values()),
        unsupported=dict(unsupported),
        unresolved=dict(unresolved),
        coverage_pct=100.0 * covered / n_nodes if n_nodes else 100.0,
    )


INT64_MAX = 2**63 - 1  # the cost columns are Int64
_COUNTS = ("FLOPs", "MACs", "bytes read", "bytes written")


def _check_counts(priced: list[tuple[Node, str, OpCost]], graph: ModelGraph,
                  columns: tuple[list[int], ...]) -> None:
    """Refuse a count that is negative or beyond 64 bits, naming the node and its inputs.

    Tensors within 2^53 elements can still multiply past 2^63 (a MatMul of two
    [2^26, 2^26]), and a Loop's negative trip count makes a negative count; either
    would end in a polars overflow or a negative total. A ``min`` and a ``sum`` per
    column find whether any is wrong; only then are the nodes searched.
    """
    where = graph.source or graph.name
    for what, values in zip(_COUNTS, columns, strict=True):
        if not values or (min(values) >= 0 and sum(values) <= INT64_MAX):
            continue
        index = next((i for i, v in enumerate(values) if not 0 <= v <= INT64_MAX), None)
        if index is None:
            raise InputError(f"{where}: the nodes cost {sum(values):.3g} {what} in all, "
                             "beyond a 64-bit count; not a model that fits any device")
        node, value = priced[index][0], values[index]
        inputs = ", ".join(f"{name!r} {_shape_text(graph, name)}" for name in node.inputs
                           if name)
        reason = ("a negative count: check its dims and trip count" if value < 0
                  else "beyond a 64-bit count")
        raise InputError(f"{where}: node {node.name!r} ({node.op_type}) costs {value:.3g} "
                         f"{what}, {reason} (inputs: {inputs or 'none'})")


def _shape_text(graph: ModelGraph, name: str) -> str:
    tensor = graph.tensors.get(name)
    return str(list(tensor.shape)) if tensor is not None and tensor.shape is not None else "?"


def roofline_rows(report: FlopReport, device: str | Device, dtype: str) -> pl.DataFrame:
    """The report's rows with each op's roofline lower bound: ``time_s`` and ``bound``.

    An op moves ``bytes_read + bytes_written``; it is priced as if run alone at peak, so
    the column's sum is a lower bound on the whole graph (no overlap between ops, no
    launch overhead). Ops that were not counted get no bound, since their zero is not a
    measurement.
    """
    import polars as pl

    times: list[float] = []
    bounds: list[str | None] = []
    for status, flops, moved in zip(
        report.rows["status"],
        report.rows["flops"],
        report.rows["bytes_read"] + report.rows["bytes_written"],
        strict=True,
    ):
        time_s, bound = roofline_time(flops, moved, device, dtype)
        times.append(time_s)
        bounds.append(bound if status == "counted" else None)
    return report.rows.with_columns(
        pl.Series("time_s", times, dtype=pl.Float64), pl.Series("bound", bounds, dtype=pl.String)
    )


def is_indexed(scope: str) -> bool:
    """Whether a module scope is an entry of a container (``layers.3``, ``3``): a block."""
    return any(piece.isdigit() for piece in scope.split("."))


def layer_of(node_name: str) -> str:
    """The layer a node belongs to, from the exporter's scoped name.

    ``/layers.3/self_attn/q_proj/MatMul`` -> ``layers.3``: the path up to the first
    indexed module (a repeated block); names without one use their first scope, and
    unscoped names are ``(top)``. Only the scope (the name less its last part) matters,
    and the nodes of one module share it: it is looked up once per scope.
    """
    return _layer_of_scope(node_name.rstrip("/").rpartition("/")[0])


@lru_cache(maxsize=4096)
def _layer_of_scope(scope: str) -> str:
    scopes = [part for part in scope.split("/") if part]
    if not scopes:
        return "(top)"
    for depth, part in enumerate(scopes):
        if is_indexed(part):
            return "/".join(scopes[: depth + 1])
    return scopes[0]


def layer_of_node(node: Node) -> str:
    """The layer of a node: from its module path when the exporter recorded one.

    The torch dynamo exporter names nodes ``node_MatMul_12`` but records each node's
    module path (:func:`~foresize.graph.model.module_path`): the layer is the first
    indexed module on it (``blocks.3``), else the first module under the model. Other
    graphs fall back to the scoped node name (:func:`layer_of`).
    """
    path = module_path(node)
    if not path:
        return layer_of(node.name)
    for entry in path:
        if is_indexed(entry):
            return entry
    return path[1] if len(path) > 1 else "(top)"


def by_layer(report: FlopReport) -> pl.DataFrame:
    """Costs summed per layer, in the order layers first appear in the graph."""
    import polars as pl

    return (
        report.rows.group_by("layer", maintain_order=True)
        .agg(pl.len().alias("n_ops"), pl.col("flops").sum(), pl.col("macs").sum(),
             pl.col("bytes_read").sum(), pl.col("bytes_written").sum(), pl.col("params").sum())
    )
