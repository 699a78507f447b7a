"""Quality gates on a command's result rows: ``--check 'mase<=1.0'`` exits 5 when a row
breaks the bound, so a CI job can branch on "ran, but not good enough" apart from "bad
input" (3) and "crashed" (1).

A gate reads the rows the command writes (``-f json`` names their columns), every row
must hold it, and the output is written before the gate is judged: the file a failing
job leaves is the evidence of why it failed. A row with no value in the column breaks
the gate (a skipped backtest row must not pass a CI job by having no MASE).
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from foresize.core.errors import CheckFailedError, UnknownNameError, UsageError

if TYPE_CHECKING:
    import polars as pl

OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le, "<": operator.lt, ">=": operator.ge, ">": operator.gt,
}
_GATE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(<=|>=|<|>)\s*(\S+)\s*$")
SHOWN_ROWS = 3  # rows named in the one-line failure; the output file has all of them


@dataclass(frozen=True, slots=True)
class Check:
    """``column op bound``, held by every result row."""

    column: str
    op: str
    bound: float

    def __str__(self) -> str:
        return f"{self.column}{self.op}{self.bound:g}"

    def holds(self, value: float | None) -> bool:
        """A missing or NaN value breaks the gate: it shows nothing was measured."""
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return False
        return OPERATORS[self.op](float(value), self.bound)


def parse_checks(texts: Sequence[str] | None) -> list[Check]:
    """Parse ``--check`` values as the flag is read (exit 2 before any work)."""
    checks = []
    for text in texts or ():
        match = _GATE.match(text)
        bound = _number(match.group(3)) if match else None
        if match is None or bound is None:
            raise UsageError(f"--check {text!r} is not COLUMN OP NUMBER with OP one of "
                             "<=, <, >=, > (e.g. 'mase<=1.0')")
        checks.append(Check(match.group(1), match.group(2), bound))
    return checks


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def check_gate_columns(tables: Sequence[pl.DataFrame], checks: Sequence[Check]) -> None:
    """Every gate names a numeric column of the rows (of at least one of a report's
    tables): checked before anything is written, so a typo is a usage error (2), never
    a gate that silently passes.
    """
    numeric = list(dict.fromkeys(name for table in tables
                                 for name, dtype in table.schema.items() if dtype.is_numeric()))
    for check in checks:
        if check.column not in numeric:
            raise UnknownNameError("--check column", check.column, numeric)


def enforce(tables: Sequence[pl.DataFrame], checks: Sequence[Check]) -> None:
    """Raise :class:`CheckFailedError` (exit 5) naming the first rows that break a gate,
    on every table with its column; a row is named by its table's first text column
    (model, policy, workload).
    """
    lines = [line for table in tables
             for line in _broken(table, [c for c in checks if c.column in table.columns])]
    if lines:
        raise CheckFailedError("check failed: " + "; ".join(lines))


def _broken(frame: pl.DataFrame, checks: Sequence[Check]) -> list[str]:
    """One line per gate that a row of ``frame`` breaks."""
    import polars as pl

    label = next((name for name, dtype in frame.schema.items() if dtype == pl.String), None)
    names = (frame.get_column(label).to_list() if label
             else [f"row {i + 1}" for i in range(frame.height)])
    lines = []
    for check in checks:
        values = frame.get_column(check.column).to_list()
        broken = [(name, value) for name, value in zip(names, values, strict=True)
                  if not check.holds(value)]
        if broken:
            shown = ", ".join(f"{name} ({_show(value)})" for name, value in broken[:SHOWN_ROWS])
            more = f", +{len(broken) - SHOWN_ROWS} more" if len(broken) > SHOWN_ROWS else ""
            lines.append(f"{check} broken by {len(broken)} of {frame.height} rows: "
                         f"{shown}{more}")
    return lines


def _show(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "no value"
    return f"{value:.4g}"
