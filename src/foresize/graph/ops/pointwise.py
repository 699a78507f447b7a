"""Rules for elementwise ops, activations, normalisations, reductions and pooling.

None of these multiply-accumulate, so MACs are 0 and FLOPs are counted per element
with the constants below. A transcendental (exp, log, erf, tanh, sqrt) counts as one
FLOP, like an add: the constants say how many basic operations an op is made of,
not how long each takes on a given device.
"""

from __future__ import annotations

from collections.abc import Mapping

from foresize.graph.model import ConcreteShape, numel
from foresize.graph.ops.base import RULES, OpCost, OpNode, broadcast, cost

# FLOPs per output element; n-ary ops (Sum, Max, Mean...) do (n_inputs - 1) of these.
ELEMENTWISE_FLOPS: Mapping[str, int] = {
    **dict.fromkeys(
        ("Add", "Sub", "Mul", "Div", "Pow", "Mod", "Max", "Min", "Sum", "Mean",
         "Equal", "Greater", "GreaterOrEqual", "Less", "LessOrEqual",
         "And", "Or", "Xor", "BitShift", "BitwiseAnd", "BitwiseOr", "BitwiseXor"),
        1,
    ),
    "Where": 1,  # a select per element
}  # fmt: skip

# FLOPs per output element of unary ops and activations, from their definitions.
ACTIVATION_FLOPS: Mapping[str, int] = {
    **dict.fromkeys(
        ("Relu", "Abs", "Neg", "Sqrt", "Exp", "Log", "Erf", "Tanh", "Reciprocal",
         "Floor", "Ceil", "Round", "Sign", "Not", "Sin", "Cos", "Tan", "Asin", "Acos",
         "Atan", "Sinh", "Cosh", "Asinh", "Acosh", "Atanh", "IsNaN", "IsInf", "BitwiseNot"),
        1,
    ),
    "LeakyRelu": 2,  # compare, multiply
    "PRelu": 2,  # compare, multiply
    "ThresholdedRelu": 1,  # compare
    "Clip": 2,  # max, min
    "Sigmoid": 3,  # 1 / (1 + exp(-x)): exp, add, divide
    "HardSigmoid": 4,  # max(0, min(1, alpha * x + beta))
    "HardSwish": 5,  # x * HardSigmoid(x)
    "Elu": 3,  # compare, exp, subtract (alpha scaling folded)
    "Selu": 4,  # Elu plus the gamma scale
    "Celu": 4,  # max(0,x) + min(0, alpha*(exp(x/alpha)-1))
    "Softplus": 3,  # log(1 + exp(x))
    "Softsign": 3,  # x / (1 + |x|)
    "Mish": 5,  # x * tanh(softplus(x))
    "Gelu": 5,  # 0.5 * x * (1 + erf(x / sqrt 2)): divide, erf, add, two multiplies
    "Swish": 4,  # x * sigmoid(x)
}  # fmt: skip

SOFTMAX_FLOPS = 5  # max-reduce, subtract, exp, sum-reduce, divide per element
LAYER_NORM_FLOPS = 5  # mean, subtract, square-accumulate (2), normalise per element
BATCH_NORM_FLOPS = 2  # inference: statistics fold into one multiply-add per element


@RULES.register(*ELEMENTWISE_FLOPS)
def elementwise(op: OpNode, /) -> OpCost:
    """Broadcasting n-ary op: (n - 1) x constant FLOPs per output element; Where is one."""
    shapes = [op.shape(i) for i in range(len(op.inputs)) if op.has_input(i)]
    out = broadcast(*shapes)
    n_ops = 1 if op.node.op_type == "Where" else max(len(shapes) - 1, 1)
    per = ELEMENTWISE_FLOPS[op.node.op_type] * n_ops
    return cost(op, [out], other_flops=per * numel(out))


@RULES.register(*ACTIVATION_FLOPS)
def activation(op: OpNode, /) -> OpCost:
    """Unary op: the per-op constant x elements; the shape is unchanged."""
    x = op.shape(0)
    return cost(op, [x], other_flops=ACTIVATION_FLOPS[op.node.op_type] * numel(x))


@RULES.register("Softmax", "LogSoftmax", "Hardmax")
def softmax(op: OpNode, /) -> OpCost:
    """Stable softmax over one axis: SOFTMAX_FLOPS per element (LogSoftmax alike)."""
    x = op.shape(0)
    return cost(op, [x], other_flops=SOFTMAX_FLOPS * numel(x))


@RULES.register("LayerNormalization", "InstanceNormalization", "GroupNormalization")
def layer_norm(op: OpNode, /) -> OpCost:
    """Statistics over the normalised axes, then scale (+1) and bias (+1) per element.

    RMS-norm exported as primitives (Pow, ReduceMean, Add, Sqrt, Div, Mul) is counted
    through those nodes.
    """
    x = op.shape(0)
    per = LAYER_NORM_FLOPS + int(op.has_input(1)) + int(op.has_input(2))
    outs: list[ConcreteShape | None] = [x, *[None] * (len(op.outputs) - 1)]
    return cost(op, outs, other_flops=per * numel(x))


@RULES.register("BatchNormalization")
def batch_norm(op: OpNode, /) -> OpCost:
    """Inference-mode batch norm: BATCH_NORM_FLOPS per element."""
    x = op.shape(0)
    outs: list[ConcreteShape | None] = [x, *[None] * (len(op.outputs) - 1)]
    return cost(op, outs, other_flops=BATCH_NORM_FLOPS * numel(x))


def _reduced_shape(op: OpNode, x: ConcreteShape) -> ConcreteShape | None:
    """Output shape of a Reduce*/Arg* node from attribute or constant-input axes."""
    keepdims = op.attr_int("keepdims", 1)
    axes = op.attr_ints("axes") or op.const_ints(1)
    if op.node.op_type in ("ArgMax", "ArgMin"):
        axes = (op.attr_int("axis", 0),)
    if axes is None:
        if op.has_input(1):
            return op.out_shape(0)  # axes computed at run time: trust inference
        if op.attr_int("noop_with_empty_axes", 0):
            return x
        axes = tuple(range(len(x)))
    norm = {a % len(x) for a in axes} if x else set()
    if keepdims:
        return tuple(1 if i in norm else d for i, d in enumerate(x))
    return tuple(d for i, d in enumerate(x) if i not in norm)


@RULES.register(
    "ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1",
    "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare", "ArgMax", "ArgMin",
)  # fmt: skip
def reduction(op: OpNode, /) -> OpCost:
    """One FLOP per input element (the accumulate); finishing touches are negligible."""
    x = op.shape(0)
    return cost(op, [_reduced_shape(op, x)], other_flops=numel(x))


@RULES.register("MaxPool", "AveragePool", "LpPool")
def pool(op: OpNode, /) -> OpCost:
    """prod(kernel) compares or adds per output element."""
    x = op.shape(0)
    kernel = op.attr_ints("kernel_shape")
    rank = len(kernel)
    strides = op.attr_ints("strides") or (1,) * rank
    dilations = op.attr_ints("dilations") or (1,) * rank
    pads = op.attr_ints("pads") or (0,) * (2 * rank)
    auto_pad = op.attr_str("auto_pad", "NOTSET")
    ceil = op.attr_int("ceil_mode", 0)
    spatial: list[int] = []
    for j, (i, k, s, d) in enumerate(zip(x[2:], kernel, strides, dilations, strict=True)):
        if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            spatial.append(-(-i // s))
            continue
        span = i + (0 if auto_pad == "VALID" else pads[j] + pads[j + rank]) - ((k - 1) * d + 1)
        spatial.append((-(-span // s) if ceil else span // s) + 1)
    out = (*x[:2], *spatial)
    outs: list[ConcreteShape | None] = [out, *[None] * (len(op.outputs) - 1)]
    return cost(op, outs, other_flops=numel(out) * numel(kernel))


@RULES.register("GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool")
def global_pool(op: OpNode, /) -> OpCost:
    """One add or compare per input element."""
    x = op.shape(0)
    return cost(op, [(*x[:2], *(1,) * (len(x) - 2))], other_flops=numel(x))
