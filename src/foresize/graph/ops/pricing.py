"""Pricing nodes through the op rules: the piece the FLOP count and control flow share.

:mod:`foresize.graph.flops` counts a whole graph; the ``If``/``Loop``/``Scan`` rules
(:mod:`foresize.graph.ops.control_flow`) price their bodies with the same loop. Both import
it from here, below the rules, so neither has to import the other.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Mapping
from operator import itemgetter

from foresize.core.errors import InputError
from foresize.graph.model import ModelGraph, Node, TensorInfo
from foresize.graph.ops.base import RULES, ZERO_COST, OpCost, OpNode, ShapeUnknownError

NOTHING = OpCost(0, 0, 0, 0, ())
_GAP_STATUSES = frozenset({"unsupported", "unresolved"})


def op_node(node: Node, tensors: Mapping[str, TensorInfo], graph: ModelGraph) -> OpNode:
    """The view a rule receives of ``node``, its tensors looked up in ``tensors``."""
    return OpNode(node, tensors, graph.constants)


def unbound_dims(graph: ModelGraph) -> list[str]:
    """Dims the user must bind: symbolic dims of the graph's inputs that a FLOP count needs.

    Dims that shape inference invents inside the graph (``unk__3``) cannot be bound with
    ``--dim``; the nodes that need them are reported as unresolved instead. With every
    input dim bound (the usual run) there is nothing to look for in the nodes.
    """
    bindable: set[str] = set()
    for name in graph.inputs:
        tensor = graph.tensors.get(name)
        if tensor is not None:
            bindable |= tensor.symbolic_dims
    if not bindable:
        return []
    names: set[str] = set()
    for node in graph.nodes:
        if node.key not in RULES:
            continue
        for name in (*node.inputs, *node.outputs):
            tensor = graph.tensors.get(name)
            if tensor is not None and tensor.concrete_shape is None:
                names |= tensor.symbolic_dims & bindable
    return sorted(names)


def price_node(node: Node, graph: ModelGraph) -> tuple[str, OpCost]:
    """The status (counted, zero_cost, unsupported, unresolved) and cost of one node."""
    key = node.key
    if key in ZERO_COST:
        return "zero_cost", NOTHING
    if key not in RULES:
        return "unsupported", NOTHING
    try:
        return "counted", RULES.get(key)(op_node(node, graph.tensors, graph))
    except ShapeUnknownError:
        return "unresolved", NOTHING


def price_nodes(graph: ModelGraph) -> list[tuple[Node, str, OpCost]]:
    """Every node with its status and cost; InputError when input dims are unbound.

    A rule reads a node's op type, attributes, the types of its tensors (shape, dtype,
    width, whether a parameter) and the values of its constant inputs, never the tensors'
    names: nodes alike in all of these cost the same, and a graph of 200k nodes repeats a
    few dozen such signatures. Each signature is priced once. Control-flow nodes price
    their bodies, which no signature describes: they are priced one by one.
    """
    unbound = unbound_dims(graph)
    if unbound:
        where = graph.source or graph.name
        msg = (
            f"{where}: symbolic dims not bound: {', '.join(unbound)}; "
            f"give each with --dim NAME=VALUE (e.g. --dim {unbound[0]}=1)"
        )
        raise InputError(msg)
    type_of = _TypeOf(graph.tensors).__getitem__
    constant = graph.constants.get
    priced: dict[Hashable, tuple[str, OpCost]] = {}
    out: list[tuple[Node, str, OpCost]] = []
    for node in graph.nodes:
        key = node.key
        if key in ZERO_COST:
            out.append((node, "zero_cost", NOTHING))
        elif node.subgraphs:
            out.append((node, *price_node(node, graph)))
        else:
            inputs = node.inputs
            signature = (key, tuple(node.attributes.items()), tuple(map(type_of, inputs)),
                         tuple(map(type_of, node.outputs)), tuple(map(constant, inputs)))
            found = priced.get(signature)
            if found is None:
                found = priced[signature] = price_node(node, graph)
            out.append((node, *found))
    return out


class _TypeOf(dict[str, int | None]):
    """Tensor name -> a number for what a rule may read of the tensor.

    Equal numbers for equal (shape, dtype, width, is a parameter); ``None`` for an omitted
    input (``""``); a number of its own for names the graph never declared (a rule sees an
    unknown tensor there, not an omitted one). Numbers hash faster than the tuples they
    stand for. The graph's own tensors are numbered up front in one comprehension; names
    from enclosing scopes and undeclared ones on first use, through ``__missing__``.
    """

    def __init__(self, tensors: Mapping[str, TensorInfo]) -> None:
        self._tensors = tensors
        numbers: dict[Hashable, int] = {}
        self._numbers = numbers
        super().__init__({
            name: numbers.setdefault((t.shape, t.dtype, t.bits, t.is_param), len(numbers))
            for name, t in tensors.items() if name
        })

    def __missing__(self, name: str) -> int | None:
        if not name:
            self[name] = None
            return None
        tensor = self._tensors.get(name)
        kind = (None if tensor is None
                else (tensor.shape, tensor.dtype, tensor.bits, tensor.is_param))
        number = self[name] = self._numbers.setdefault(kind, len(self._numbers))
        return number


def gaps(priced: list[tuple[Node, str, OpCost]]) -> tuple[Counter[str], Counter[str]]:
    """Node counts by op type: those without a rule, and those a rule could not price."""
    unsupported: Counter[str] = Counter()
    unresolved: Counter[str] = Counter()
    # the usual graph has neither: one C-level pass over the statuses says so
    if _GAP_STATUSES.isdisjoint(map(itemgetter(1), priced)):
        return unsupported, unresolved
    for node, status, _ in priced:
        if status == "unsupported":
            unsupported[node.key] += 1
        elif status == "unresolved":
            unresolved[node.key] += 1
    return unsupported, unresolved
