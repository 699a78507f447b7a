"""Per-operator cost rules, one module per op family, all in one registry (RULES)."""

from foresize.graph.ops import control_flow, linear, pointwise, sequence
from foresize.graph.ops.base import RULES, ZERO_COST, OpCost, OpNode, ShapeUnknownError

__all__ = [
    "RULES",
    "ZERO_COST",
    "OpCost",
    "OpNode",
    "ShapeUnknownError",
    "control_flow",
    "linear",
    "pointwise",
    "sequence",
]
