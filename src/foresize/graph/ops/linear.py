"""Rules for the ops that do multiply-accumulates: MatMul, Gemm, Einsum, Conv, ConvTranspose.

Attention has no rule of its own: exported as MatMul(Q, K^T) -> Softmax -> MatMul(P, V)
it is counted through those nodes. A bias add is 1 FLOP per output element.
"""

from __future__ import annotations

import math

from foresize.graph.model import ConcreteShape, numel
from foresize.graph.ops.base import RULES, OpCost, OpNode, ShapeUnknownError, broadcast, cost


@RULES.register("MatMul", "MatMulInteger")
def matmul(op: OpNode, /) -> OpCost:
    """numpy.matmul semantics: MACs = elements of the output x the contracted dim."""
    a, b = op.shape(0), op.shape(1)
    a2 = (1, *a) if len(a) == 1 else a
    b2 = (*b, 1) if len(b) == 1 else b
    if a2[-1] != b2[-2]:
        raise ShapeUnknownError(f"MatMul {op.node.name}: {a} x {b}")
    out = (*broadcast(a2[:-2], b2[:-2]), a2[-2], b2[-1])
    if len(a) == 1:
        out = out[:-2] + out[-1:]
    if len(b) == 1:
        out = out[:-1]
    return cost(op, [out], macs=numel(out) * a2[-1])


@RULES.register("Gemm")
def gemm(op: OpNode, /) -> OpCost:
    """Y = alpha * A' B' + beta * C: M*N*K MACs, plus M*N adds when C is given."""
    a, b = op.shape(0), op.shape(1)
    m, k = (a[1], a[0]) if op.attr_int("transA", 0) else a
    n = b[0] if op.attr_int("transB", 0) else b[1]
    bias = m * n if op.has_input(2) else 0
    return cost(op, [(m, n)], macs=m * n * k, other_flops=bias)


def _conv_spatial(
    op: OpNode, in_spatial: ConcreteShape, kernel: ConcreteShape, *, transposed: bool
) -> ConcreteShape:
    """Output spatial dims of Conv / ConvTranspose, including auto_pad and output_shape."""
    rank = len(in_spatial)
    strides = op.attr_ints("strides") or (1,) * rank
    dilations = op.attr_ints("dilations") or (1,) * rank
    pads = op.attr_ints("pads") or (0,) * (2 * rank)
    auto_pad = op.attr_str("auto_pad", "NOTSET")
    effective = tuple((k - 1) * d + 1 for k, d in zip(kernel, dilations, strict=True))
    if transposed:
        explicit = op.attr_ints("output_shape")
        if explicit:
            return explicit[-rank:]
        if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            return tuple(i * s for i, s in zip(in_spatial, strides, strict=True))
        extra = op.attr_ints("output_padding") or (0,) * rank
        dims = zip(in_spatial, strides, extra, effective, strict=True)
        return tuple(
            s * (i - 1) + x + e - pads[j] - pads[j + rank] for j, (i, s, x, e) in enumerate(dims)
        )
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        return tuple(math.ceil(i / s) for i, s in zip(in_spatial, strides, strict=True))
    if auto_pad == "VALID":
        pads = (0,) * (2 * rank)
    return tuple(
        (i + pads[j] + pads[j + rank] - e) // s + 1
        for j, (i, s, e) in enumerate(zip(in_spatial, strides, effective, strict=True))
    )


@RULES.register("Conv", "ConvInteger")
def conv(op: OpNode, /) -> OpCost:
    """W is (M, C/group, k...): each output element takes C/group * prod(k) MACs."""
    x, w = op.shape(0), op.shape(1)
    spatial = _conv_spatial(op, x[2:], w[2:], transposed=False)
    out = (x[0], w[0], *spatial)
    bias = numel(out) if op.has_input(2) else 0
    return cost(op, [out], macs=numel(out) * w[1] * numel(w[2:]), other_flops=bias)


@RULES.register("ConvTranspose")
def conv_transpose(op: OpNode, /) -> OpCost:
    """W is (C, M/group, k...): each input element scatters into M/group * prod(k) MACs."""
    x, w = op.shape(0), op.shape(1)
    group = op.attr_int("group", 1)
    spatial = _conv_spatial(op, x[2:], w[2:], transposed=True)
    out = (x[0], w[1] * group, *spatial)
    bias = numel(out) if op.has_input(2) else 0
    return cost(op, [out], macs=numel(x) * w[1] * numel(w[2:]), other_flops=bias)


@RULES.register("Einsum")
def einsum(op: OpNode, /) -> OpCost:
    """Naive evaluation: one MAC per point of the joint index space of all operands.

    That is exact for the two-operand contractions exporters emit (batched matmuls,
    attention scores); ellipses are not parsed and leave the node unresolved.
    """
    equation = op.attr_str("equation", "").replace(" ", "")
    if "." in equation or not equation:
        raise ShapeUnknownError(f"Einsum {op.node.name}: equation {equation!r} not supported")
    lhs, _, rhs = equation.partition("->")
    terms = lhs.split(",")
    sizes: dict[str, int] = {}
    for index, term in enumerate(terms):
        for letter, size in zip(term, op.shape(index), strict=True):
            sizes[letter] = max(sizes.get(letter, 1), size)
    if not rhs and "->" not in equation:
        rhs = "".join(sorted(c for c in sizes if lhs.count(c) == 1))
    out = tuple(sizes[c] for c in rhs)
    return cost(op, [out], macs=math.prod(sizes.values()))
