"""Rules for lookups, recurrent layers and resampling: Gather, LSTM/GRU/RNN, Resize.

Recurrent layers: per step and direction, the input and recurrent projections are
``batch * gates * hidden * (input + hidden)`` MACs; per hidden unit and step the cell
adds the gate sums (``gates`` FLOPs), the biases when given (``2 * gates``) and the
cell arithmetic below, with a sigmoid at 3 FLOPs and a tanh at 1 as in pointwise.py.
"""

from __future__ import annotations

from collections.abc import Mapping

from foresize.graph.model import ConcreteShape, numel
from foresize.graph.ops.base import RULES, OpCost, OpNode, ShapeUnknownError, cost

# (gates, cell FLOPs per hidden unit per step)
RECURRENT: Mapping[str, tuple[int, int]] = {
    # 3 sigmoids (9) + tanh g (1) + c = f*c + i*g (3) + tanh c (1) + o * tanh c (1)
    "LSTM": (4, 15),
    # 2 sigmoids (6) + r * (R h) (1) + tanh (1) + h = (1 - z) * h~ + z * h (4)
    "GRU": (3, 12),
    # tanh
    "RNN": (1, 1),
}

# FLOPs per output element and resized axis, by interpolation mode
RESIZE_FLOPS: Mapping[str, int] = {"nearest": 0, "linear": 3, "cubic": 8}


@RULES.register("Gather")
def gather(op: OpNode, /) -> OpCost:
    """An embedding lookup: no arithmetic, and only the gathered rows are read.

    Counting the whole table as read would make every language model look
    memory-bound on its embedding.
    """
    data, indices = op.shape(0), op.shape(1)
    axis = op.attr_int("axis", 0) % len(data)
    out = (*data[:axis], *indices, *data[axis + 1 :])
    written = cost(op, [out]).bytes_written
    index_bytes = (op.inputs[1].n_bytes if op.inputs[1] is not None else 0) or 0
    return OpCost(0, 0, index_bytes + written, written, (out,))


@RULES.register(*RECURRENT)
def recurrent(op: OpNode, /) -> OpCost:
    """X is (seq, batch, input) or batch-first with layout=1; W is (dirs, gates*hidden, input)."""
    x, w = op.shape(0), op.shape(1)
    gates, cell = RECURRENT[op.node.op_type]
    seq, batch = (x[1], x[0]) if op.attr_int("layout", 0) else (x[0], x[1])
    dirs, input_size = w[0], w[2]
    hidden = op.attr_int("hidden_size", w[1] // gates)
    steps = seq * dirs * batch
    macs = steps * gates * hidden * (input_size + hidden)
    per_unit = gates + cell + (2 * gates if op.has_input(3) else 0)
    if op.attr_int("layout", 0):
        y: ConcreteShape = (batch, seq, dirs, hidden)
        state: ConcreteShape = (batch, dirs, hidden)
    else:
        y, state = (seq, dirs, batch, hidden), (dirs, batch, hidden)
    outs = [y, state, state][: len(op.outputs)]
    return cost(op, outs, macs=macs, other_flops=steps * hidden * per_unit)


@RULES.register("Resize", "Upsample")
def resize(op: OpNode, /) -> OpCost:
    """Interpolation cost per output element and resized axis (RESIZE_FLOPS).

    The output shape comes from inference, else from constant sizes or scales.
    """
    x = op.shape(0)
    out = op.out_shape(0) or _resized(op, x)
    if out is None:
        raise ShapeUnknownError(f"{op.node.op_type} {op.node.name}: output size unknown")
    mode = op.attr_str("mode", "nearest")
    axes = sum(1 for a, b in zip(x, out, strict=True) if a != b)
    return cost(op, [out], other_flops=RESIZE_FLOPS.get(mode, 0) * axes * numel(out))


def _resized(op: OpNode, x: ConcreteShape) -> ConcreteShape | None:
    """Output shape from a constant ``sizes`` input (Resize input 3)."""
    sizes = op.const_ints(3) if op.node.op_type == "Resize" else None
    if sizes is not None and len(sizes) == len(x):
        return sizes
    return None
