"""Recognise exporter decompositions of single eager kernels, for the memory model.

An exporter writes some one-kernel PyTorch ops as several ONNX nodes. FLOPs do not care,
but memory does: the decomposition's intermediates never exist in eager PyTorch, and
each piece would be charged its own saved tensors. :func:`fuse` returns the node order
with each recognised group replaced by one synthetic node:

- **bias add**: ``MatMul``/``Gemm``/``Conv``/``ConvTranspose`` whose only consumer is an
  ``Add`` of a rank-1 parameter: ``nn.Linear`` on a 3-D input exports as MatMul + Add,
  while eager adds the bias in place (``addmm``, or ``matmul`` then ``add_``);
- **GELU**: ``Div``/``Mul`` by a constant -> ``Erf`` -> ``Add`` 1 -> ``Mul`` x -> ``Mul``
  0.5 (any order of the last three), exported from one ``aten::gelu``; becomes ``Gelu``;
- **SDPA**: ``MatMul(Mul(Q, c), Mul(K^T, c))`` [-> ``Add`` mask] -> ``Softmax`` -> ``MatMul``
  with V, where both operands are scaled by the *same* constant ``c = scale**0.5`` (the same
  computation of constants and static shapes, up to dtype casts): the
  signature of ``torch.nn.functional.scaled_dot_product_attention``'s decomposition
  (explicit attention written by hand divides the scores instead, and stays as it is).
  The view chains feeding Q, K and V are absorbed; the group becomes ``Attention``, which
  eager runs as one flash kernel that never stores the score matrix.

A group is fused only when none of its intermediates is used outside it.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable

from foresize.graph.model import ModelGraph, Node

VIEW_CHAIN = frozenset({"Reshape", "Transpose", "Flatten", "Squeeze", "Unsqueeze", "Identity"})
BIASED = frozenset({"MatMul", "Gemm", "Conv", "ConvTranspose"})
GELU_TAIL = frozenset({"Add", "Mul"})
# ops whose output is known before the graph runs, and the arithmetic that keeps it so
CONST_OPS = frozenset({"Constant", "Shape", "Size"})
CONST_FOLDABLE = frozenset({
    "Cast", "CastLike", "Sqrt", "Reciprocal", "Div", "Mul", "Add", "Sub", "Pow", "Neg",
    "Gather", "Slice", "Squeeze", "Unsqueeze", "Reshape", "Concat", "Identity",
})  # fmt: skip


class _Index:
    """Producers, consumers and constness of the graph's tensors."""

    def __init__(self, graph: ModelGraph) -> None:
        self.graph = graph
        # omitted names ("") are indexed too, and dropped after: one test fewer per name;
        # the producers in a comprehension, 20 % faster than stores in the loop
        self.producer: dict[str, Node] = {
            name: node for node in graph.nodes for name in node.outputs
        }
        self.consumers: dict[str, list[Node]] = {}
        producer, consumers = self.producer, self.consumers
        for node in graph.nodes:
            for name in node.inputs:
                readers = consumers.get(name)
                if readers is None:
                    consumers[name] = [node]
                else:
                    readers.append(node)
        producer.pop("", None)
        consumers.pop("", None)
        self.outputs = set(graph.outputs)
        self._const: dict[str, bool] = {}

    def is_const(self, name: str) -> bool:
        """A parameter, a Constant's output, a value nobody computes, or one computed from these.

        ``Shape`` and ``Size`` outputs are constant too (shapes are static once bound), and
        ``CastLike`` reads its second input only for its dtype: the exporter computes SDPA's
        scale as ``CastLike(1 / Sqrt(CastLike(Shape(q)[-1])))``.
        """
        if name not in self._const:
            self._const[name] = self._compute_const(name)
        return self._const[name]

    def value_of(self, name: str) -> Hashable:
        """A constant's computation as a nested tuple: equal tuples are equal values.

        Dtype casts are looked through, so ``Sqrt(c)`` and ``CastLike(Sqrt(c), k)`` match
        (the exporter computes the same SDPA scale twice, once per operand).
        """
        node = self.producer.get(name)
        if node is None or node.op_type in CONST_OPS:
            return name
        if node.op_type in ("Cast", "CastLike", "Identity"):
            return self.value_of(node.inputs[0])
        return (node.op_type, *(self.value_of(n) for n in node.inputs if n))

    def _compute_const(self, name: str) -> bool:
        tensor = self.graph.tensors.get(name)
        if tensor is not None and tensor.is_param:
            return True
        node = self.producer.get(name)
        if node is None:
            return name not in self.graph.inputs
        if node.op_type in CONST_OPS:
            return True
        read = node.inputs[:1] if node.op_type == "CastLike" else node.inputs
        return node.op_type in CONST_FOLDABLE and all(self.is_const(n) for n in read if n)

    def sole(self, name: str) -> Node | None:
        """The only consumer of an intermediate ``name`` (None for outputs and forks)."""
        users = self.consumers.get(name, [])
        return users[0] if len(users) == 1 and name not in self.outputs else None

    def made_by(self, name: str, op_types: frozenset[str] | set[str]) -> Node | None:
        """The producer of ``name`` when its type is one of ``op_types``."""
        node = self.producer.get(name)
        return node if node is not None and node.op_type in op_types else None


Group = tuple[Node, list[Node]]  # (synthetic node, members)


def _bias_add(ix: _Index, add: Node) -> Group | None:
    if add.op_type != "Add" or len(add.inputs) != 2:
        return None
    for i in (0, 1):
        main, bias = add.inputs[i], add.inputs[1 - i]
        producer = ix.made_by(main, BIASED)
        if producer is None:  # the usual miss (a residual add), found first
            continue
        tensor = ix.graph.tensors.get(bias)
        shape = tensor.concrete_shape if tensor is not None else None
        if (
            tensor is not None
            and tensor.is_param
            and shape is not None
            and len(shape) <= 1
            and ix.sole(main) is add
        ):
            node = Node(
                producer.name,
                producer.op_type,
                producer.domain,
                producer.attributes,
                (*producer.inputs, bias),
                add.outputs,
                metadata=producer.metadata,
            )
            return node, [producer, add]
    return None


def _gelu(ix: _Index, erf: Node) -> Group | None:
    if erf.op_type != "Erf":
        return None
    scale = ix.made_by(erf.inputs[0], {"Div", "Mul"})
    if scale is None or ix.sole(scale.outputs[0]) is not erf:
        return None
    consts = [n for n in scale.inputs if ix.is_const(n)]
    xs = [n for n in scale.inputs if not ix.is_const(n)]
    if len(consts) != 1 or len(xs) != 1:
        return None
    x = xs[0]
    members, tail = [scale, erf], erf
    while len(members) < 5:
        nxt = ix.sole(tail.outputs[0])
        if nxt is None or nxt.op_type not in GELU_TAIL:
            break
        others = [n for n in nxt.inputs if n != tail.outputs[0]]
        if not all(n == x or ix.is_const(n) for n in others):
            break
        members.append(nxt)
        tail = nxt
    if len(members) < 5:
        return None
    return Node(tail.name, "Gelu", "", {}, (x,), tail.outputs, metadata=tail.metadata), members


def _view_source(ix: _Index, name: str, members: list[Node]) -> str:
    """Walk back through single-use view ops, absorbing them; the tensor eager passes in."""
    while (node := ix.made_by(name, VIEW_CHAIN)) is not None and ix.sole(name) is not None:
        members.append(node)
        name = node.inputs[0]
    return name


def _sdpa(ix: _Index, softmax: Node) -> Group | None:
    if softmax.op_type != "Softmax":
        return None
    members = [softmax]
    scores, mask = softmax.inputs[0], None
    if (add := ix.made_by(scores, {"Add"})) is not None and ix.sole(scores) is softmax:
        members.append(add)
        scores, mask = add.inputs[0], add.inputs[1]
    qk = ix.made_by(scores, {"MatMul"})
    out = ix.sole(softmax.outputs[0])
    if qk is None or ix.sole(scores) is None or out is None or out.op_type != "MatMul":
        return None
    if out.inputs[0] != softmax.outputs[0]:
        return None
    muls = [ix.made_by(n, {"Mul"}) for n in qk.inputs]
    if any(m is None or ix.sole(m.outputs[0]) is not qk for m in muls):
        return None
    scaled: list[str] = []
    consts: set[Hashable] = set()
    for mul in muls:
        assert mul is not None
        members.append(mul)
        const = [n for n in mul.inputs if ix.is_const(n)]
        other = [n for n in mul.inputs if not ix.is_const(n)]
        if len(const) != 1 or len(other) != 1:
            return None
        consts.add(ix.value_of(const[0]))
        scaled.append(other[0])
    if len(consts) != 1:
        return None
    members += [qk, out]
    q = _view_source(ix, scaled[0], members)
    k = _view_source(ix, scaled[1], members)
    v = _view_source(ix, out.inputs[1], members)
    inputs = (q, k, v) if mask is None else (q, k, v, mask)
    node = Node(out.name, "Attention", "", {}, inputs, out.outputs, metadata=out.metadata)
    return node, members


# each pattern with the op type its group ends in (the node it is tried on), in the order
# they claim nodes: an SDPA's Softmax before anything else, a bias add last
PATTERNS: tuple[tuple[str, Callable[[_Index, Node], Group | None]], ...] = (
    ("Softmax", _sdpa), ("Erf", _gelu), ("Add", _bias_add),
)


def fuse(graph: ModelGraph) -> tuple[Node, ...]:
    """The graph's nodes with each recognised group replaced by its synthetic node.

    A synthetic node takes the place of the group's last member, after every value the
    group reads from outside, so the order stays topological. Each pattern is tried only
    on the nodes of its anchor type, so the cost is one pass over the graph plus the
    candidates, not one pass per pattern. A graph whose reader fused it already
    (``ModelGraph.kernels``) gives its kernels as they are.
    """
    if graph.kernels is not None:
        return graph.kernels
    ix = _Index(graph)
    anchors: dict[str, list[Node]] = {op: [] for op, _ in PATTERNS}
    for node in graph.nodes:
        if node.op_type in anchors:
            anchors[node.op_type].append(node)
    taken: set[str] = set()
    replace_at: dict[str, Node] = {}
    position: dict[str, int] = {}
    for anchor, pattern in PATTERNS:
        for node in anchors[anchor]:
            if node.name in taken:
                continue
            group = pattern(ix, node)
            if group is None or any(m.name in taken for m in group[1]):
                continue
            synthetic, members = group
            if not _closed(ix, members, synthetic):
                continue
            taken.update(m.name for m in members)
            if not position:
                position = {n.name: i for i, n in enumerate(graph.nodes)}
            last = max(members, key=lambda m: position[m.name])
            replace_at[last.name] = synthetic
    if not taken:
        return graph.nodes
    return tuple([
        replace_at.get(n.name, n)
        for n in graph.nodes
        if n.name not in taken or n.name in replace_at
    ])


def _closed(ix: _Index, members: list[Node], synthetic: Node) -> bool:
    """No intermediate of the group is read outside it or is a graph output."""
    names = {m.name for m in members}
    kept = set(synthetic.outputs)
    for member in members:
        for out in member.outputs:
            if not out or out in kept:
                continue
            if out in ix.outputs or any(c.name not in names for c in ix.consumers.get(out, [])):
                return False
    return True
