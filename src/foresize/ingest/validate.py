"""Turn a mapped frame into canonical telemetry, counting every row it drops.

Readers only rename and parse; this module owns the rules (which rows are invalid,
which duplicate wins, how rows are ordered) so they are the same for every source.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import polars as pl

from foresize.core.errors import DataDroppedWarning, InputError, SchemaMismatchError
from foresize.core.metrics import METRICS
from foresize.core.schemas import SERIES_KEYS, TELEMETRY, TELEMETRY_OPTIONAL, TS_DTYPE
from foresize.ingest.report import IngestReport

_NONNEGATIVE = [name for name, m in METRICS.items() if m.nonnegative]
_ROW = "__row"
TS_TEXT = "__ts_text"  # the raw text of a parsed ts column, kept so a bad value can be quoted
_REASON = "__reason"
# how files spell a missing cell (R writes NA, JSON tools null or None): such a cell is
# missing, its row dropped and counted, never a reason to reject a file. NaN in any case
# (pandas writes it) is read as a float NaN and counted as nan_value.
NULL_TEXT = ["", "NULL", "Null", "null", "None", "none", "NA", "N/A", "n/a"]


def coerce_columns(frame: pl.DataFrame, *, source: str) -> pl.DataFrame:
    """Cast the canonical columns to their dtypes, naming the column that cannot be cast."""
    missing = [c for c in TELEMETRY if c not in frame.columns]
    if missing:
        raise SchemaMismatchError(
            f"{source}: missing required column {missing[0]!r} "
            f"(found: {', '.join(frame.columns) or 'none'})",
            hint="map your columns with --map ts=COL,workload=COL,metric=COL,value=COL",
        )
    if TS_TEXT in frame.columns:
        _check_parsed_ts(frame, source=source)
        frame = frame.drop(TS_TEXT)
    if frame.schema["ts"] != TS_DTYPE:
        if not isinstance(frame.schema["ts"], pl.Datetime):
            raise SchemaMismatchError(
                f"{source}: column 'ts' is {frame.schema['ts']}, expected {TS_DTYPE}",
                hint="pass --ts-unit or --ts-format so ts can be parsed",
            )
        frame = frame.with_columns(_to_utc(pl.col("ts"), frame.schema["ts"]))
    casts = {}
    for column in ("workload", "metric", *TELEMETRY_OPTIONAL):
        if column in frame.columns and frame.schema[column] != pl.String:
            casts[column] = pl.col(column).cast(pl.String)
    if frame.schema["value"] != pl.Float64:
        dtype = frame.schema["value"]
        if not (dtype.is_numeric() or dtype == pl.Boolean or dtype == pl.Null):
            _check_numeric_text(frame, "value", source=source)
        casts["value"] = _number(pl.col("value"), dtype)
    return frame.with_columns(**casts) if casts else frame


def _check_numeric_text(frame: pl.DataFrame, column: str, *, source: str) -> None:
    """Text where a number belongs: name the first cell that is not one (its row counted
    from 1, the first data row), so the user can open the file there. A cell spelling a
    missing value (``NULL_TEXT``) is missing, not bad; a text column whose cells all
    parse (numbers in quotes) is simply cast.
    """
    text = pl.col(column).cast(pl.String).str.strip_chars()
    bad = frame.with_row_index(_ROW, offset=1).filter(
        text.is_not_null() & ~text.is_in(NULL_TEXT) & _number(text, pl.String()).is_null()
    )
    if bad.height:
        row, value = bad.row(0, named=True)[_ROW], bad.row(0, named=True)[column]
        more = f" ({bad.height:,} such rows)" if bad.height > 1 else ""
        raise SchemaMismatchError(
            f"{source}: row {row}: column {column!r} holds {value!r}, expected a number{more}",
            hint="fix those rows; empty, NaN, NA, null and None cells count as missing",
        )


def _number(expr: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """A column as Float64; text is trimmed, and a missing-value spelling becomes null."""
    if dtype != pl.String:
        return expr.cast(pl.Float64, strict=False)
    text = expr.str.strip_chars()
    return pl.when(text.is_in(NULL_TEXT)).then(None).otherwise(text).cast(pl.Float64,
                                                                          strict=False)


def _check_parsed_ts(frame: pl.DataFrame, *, source: str) -> None:
    failed = frame.with_row_index(_ROW, offset=1).filter(
        pl.col("ts").is_null() & pl.col(TS_TEXT).is_not_null()
    )
    if failed.height:
        row, text = failed.row(0, named=True)[_ROW], failed.row(0, named=True)[TS_TEXT]
        raise InputError(
            f"{source}: row {row}: column 'ts' value {text!r} is not a timestamp "
            f"({failed.height:,} such rows)",
            hint="pass --ts-format (e.g. '%Y-%m-%d %H:%M:%S') or fix the rows",
        )


def _to_utc(expr: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    assert isinstance(dtype, pl.Datetime)
    if dtype.time_zone is None:
        expr = expr.dt.replace_time_zone("UTC")
    return expr.dt.convert_time_zone("UTC").dt.cast_time_unit("us")


@dataclass(frozen=True, slots=True)
class RowRule:
    """One reason to drop a row: ``invalid`` is True where the row breaks the rule.

    ``field`` is the upstream column named in strict errors; ``problem`` completes the
    sentence "field 'x' ..." (e.g. "is negative").
    """

    reason: str
    field: str
    invalid: pl.Expr
    problem: str



def apply_rules(
    frame: pl.DataFrame,
    rules: Sequence[RowRule],
    *,
    source: str,
    strict: bool,
    unique: RowRule | None = None,
) -> tuple[pl.DataFrame, IngestReport]:
    """Drop rows that break a rule, counting each under the first rule it breaks.

    ``unique`` marks later rows repeating an earlier *valid* row's key, so a broken row
    never makes a good one look like a duplicate. Rows are numbered from 1 (the first
    data row), as ``validate.canonicalize`` numbers them.
    """
    marked = frame.with_row_index(_ROW, offset=1).with_columns(
        _first_reason(rules).alias(_REASON)
    )
    if unique is not None:
        marked = _mark_repeats(marked, unique)
    counts = (
        marked.filter(pl.col(_REASON).is_not_null())
        .group_by(_REASON)
        .agg(pl.len().alias("n"), pl.col(_ROW).min().alias("first"))
        .sort(_REASON)
    )
    kept = marked.filter(pl.col(_REASON).is_null()).drop(_ROW, _REASON)
    report = IngestReport(
        source=source,
        rows_in=frame.height,
        rows_out=kept.height,
        dropped=dict(zip(counts[_REASON].to_list(), counts["n"].to_list(), strict=True)),
        first_row=dict(zip(counts[_REASON].to_list(), counts["first"].to_list(), strict=True)),
    )
    if report.dropped:
        if strict:
            raise _strict_error(marked, report, rules, unique, source=source)
        warnings.warn(report.summary(), DataDroppedWarning, stacklevel=3)
    return kept, report


def _first_reason(rules: Sequence[RowRule]) -> pl.Expr:
    """The reason of the first rule a row breaks, else null (a null test passes)."""
    return pl.coalesce(
        pl.lit(None, dtype=pl.String),
        *(pl.when(rule.invalid).then(pl.lit(rule.reason)) for rule in rules),
    )


def _mark_repeats(marked: pl.DataFrame, unique: RowRule) -> pl.DataFrame:
    valid = marked.filter(pl.col(_REASON).is_null())
    repeats = valid.filter(unique.invalid)[_ROW]
    return marked.with_columns(
        pl.when(pl.col(_ROW).is_in(repeats.implode()))
        .then(pl.lit(unique.reason))
        .otherwise(pl.col(_REASON))
        .alias(_REASON)
    )


def _strict_error(
    marked: pl.DataFrame,
    report: IngestReport,
    rules: Sequence[RowRule],
    unique: RowRule | None,
    *,
    source: str,
) -> InputError:
    reason, row = min(report.first_row.items(), key=lambda item: item[1])
    line = marked.filter(pl.col(_ROW) == row)
    if unique is not None and reason == unique.reason:
        rule = unique
    else:  # several rules may share a reason; name the one this row breaks
        rule = next(r for r in rules if r.reason == reason and line.select(r.invalid).item())
    cell = line[rule.field]
    # a time is shown as polars writes it: Python's datetime holds only the years 1-9999
    value = cell.cast(pl.String).item() if cell.dtype == TS_DTYPE else cell.item()
    shown = "" if value is None else f" (got {value!r})"
    every = ", ".join(f"{k}={v:,}" for k, v in sorted(report.dropped.items()))
    plural = "s" if report.n_dropped != 1 else ""
    return InputError(
        f"{source}: row {row}: field {rule.field!r} {rule.problem}{shown}; "
        f"{report.n_dropped:,} invalid row{plural} in all: {every}",
        hint="fix the rows, or drop --strict to skip them with a count",
    )


_SAMPLE_KEYS = (*SERIES_KEYS, "ts")
TS_FIRST = datetime(1, 1, 1, tzinfo=UTC)  # what Python's datetime, hence every output, holds
TS_LAST = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)


def _telemetry_rules() -> list[RowRule]:
    value = pl.col("value")
    usage = pl.col("metric").is_in(_NONNEGATIVE)
    ts = pl.col("ts")
    return [
        *(RowRule("missing_key", key, pl.col(key).is_null(), "is empty") for key in _SAMPLE_KEYS),
        # polars holds times of ±292,000 years; a report (JSON, a table) cannot show them
        RowRule("ts_out_of_range", "ts", (ts < TS_FIRST) | (ts > TS_LAST),
                "is outside the years 1 to 9999"),
        RowRule("missing_value", "value", value.is_null(), "is empty"),
        RowRule("nan_value", "value", value.is_nan(), "is NaN"),
        RowRule("infinite_value", "value", value.is_infinite(), "is infinite"),
        RowRule("negative_value", "value", usage & (value < 0), "is negative for a usage metric"),
    ]


_DUPLICATE = RowRule("duplicate_ts", "ts", ~pl.struct(*_SAMPLE_KEYS).is_first_distinct(),
                     "repeats an earlier sample of its series")


def canonicalize(
    frame: pl.DataFrame, *, source: str, strict: bool = False
) -> tuple[pl.DataFrame, IngestReport]:
    """Validate, drop invalid rows (counted by reason), dedupe and sort per series.

    A duplicate is a later valid sample of the same workload, metric and ts, so a NaN
    row never displaces a good one. Under ``strict`` any dropped row is an
    ``InputError`` naming the first offending row and field.
    """
    frame = coerce_columns(frame, source=source)
    keep = [c for c in (*TELEMETRY, *TELEMETRY_OPTIONAL) if c in frame.columns]
    kept, report = apply_rules(frame.select(keep), _telemetry_rules(), source=source,
                               strict=strict, unique=_DUPLICATE)
    reordered = kept.select(
        (pl.col("ts").diff().over(SERIES_KEYS) < pl.duration(microseconds=0)).sum()
    ).item()
    out = kept.sort(*SERIES_KEYS, "ts", maintain_order=True)
    report.reordered = int(reordered or 0)
    report.n_series = out.select(pl.struct(*SERIES_KEYS).n_unique()).item() if out.height else 0
    return out, report
