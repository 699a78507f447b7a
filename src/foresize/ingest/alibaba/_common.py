"""Shared steps of the Alibaba trace readers: column checks and counted row rules.

The traces are tables (pods, nodes, requests, instances), not telemetry, so
``validate.canonicalize`` does not apply to them; ``apply_rules`` gives them the same
contract instead: every dropped row is counted under a named reason, and under
``strict`` the first one becomes a one-line ``InputError`` naming its row and field.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import polars as pl

from foresize.core.errors import SchemaMismatchError
from foresize.core.schemas import TS_DTYPE

_SUFFIXES = (".tar.gz", ".tgz", ".csv.gz", ".csv")
# |epoch seconds| above this is not a time in any trace (it is year ~5000); such values
# and non-finite ones parse to null instead of overflowing the microsecond cast
_MAX_EPOCH_S = 1e11
_INT64_LIMIT = 2.0**63


def file_stem(path: str | os.PathLike[str]) -> str:
    """The file name without ``.tar.gz``/``.csv``: what the trace calls the table."""
    name = Path(path).name
    for suffix in _SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def require_columns(schema: pl.Schema, required: Iterable[str], *, source: str) -> None:
    """Raise ``SchemaMismatchError`` naming the first required column the file lacks."""
    for column in required:
        if column not in schema:
            raise SchemaMismatchError(
                f"{source}: missing required column {column!r} "
                f"(found: {', '.join(schema.names()) or 'none'})"
            )


def as_numeric(frame: pl.LazyFrame, columns: Iterable[str], *, source: str) -> pl.LazyFrame:
    """Check that ``columns`` hold numbers; an all-empty column (read as text) becomes Float64.

    Text in a number column means the file is not in the upstream format: that raises
    ``SchemaMismatchError`` naming the first offending row (numbered from 1, the first
    data row, as ``validate.apply_rules`` numbers them), the column and its value, so
    the user can open the file at that line.
    """
    schema = frame.collect_schema()
    empty: list[str] = []
    for column in columns:
        dtype = schema[column]
        if dtype.is_numeric():
            continue
        as_text = pl.col(column).cast(pl.String)
        bad = (
            frame.with_row_index("row", offset=1)
            .select("row", as_text)
            .filter(as_text.is_not_null() & as_text.cast(pl.Float64, strict=False).is_null())
            .head(1)
            .collect()
        )
        if bad.height:
            raise SchemaMismatchError(
                f"{source}: row {bad['row'].item()}: column {column!r} is {dtype} "
                f"(e.g. {bad[column].item()!r}), expected a number"
            )
        empty.append(column)
    return frame.with_columns(pl.col(empty).cast(pl.Float64)) if empty else frame


def nan_to_null(frame: pl.LazyFrame, columns: Iterable[str]) -> pl.LazyFrame:
    """NaN in these traces means 'not recorded' (pandas writes it so): make it null.

    Used for table fields where missing is a valid state; telemetry values keep NaN so
    ``canonicalize`` can count them as ``nan_value``.
    """
    schema = frame.collect_schema()
    floats = [c for c in columns if schema[c].is_float()]
    return frame.with_columns(pl.col(floats).fill_nan(None)) if floats else frame


def epoch_s_to_ts(expr: pl.Expr) -> pl.Expr:
    """Epoch seconds (float) to UTC microseconds; non-finite or absurd values become null."""
    seconds = expr.cast(pl.Float64)
    plausible = seconds.is_finite() & (seconds.abs() < _MAX_EPOCH_S)
    micros = (seconds * 1_000_000).round().cast(pl.Int64, strict=False)
    return pl.when(plausible).then(micros).cast(TS_DTYPE)


def not_whole(column: str) -> pl.Expr:
    """True where a number is present but is not a whole number an Int64 can hold."""
    value = pl.col(column).cast(pl.Float64)
    return value.is_not_null() & (
        ~value.is_finite() | (value != value.floor()) | (value.abs() >= _INT64_LIMIT)
    )
