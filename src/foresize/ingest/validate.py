"""Turn a mapped frame into canonical telemetry, counting every row it drops.

Readers only rename and parse; this module owns the rules (which rows are invalid,
which duplicate wins, how rows are ordered) so they are the same for every source.
"""

from __future__ import annotations

import warnings

import polars as pl

from foresize.core.errors import DataDroppedWarning, InputError, SchemaMismatchError
from foresize.core.schemas import METRICS, SERIES_KEYS, TELEMETRY, TELEMETRY_OPTIONAL, TS_DTYPE
from foresize.ingest.report import IngestReport

_NONNEGATIVE = [name for name, m in METRICS.items() if m.nonnegative]
_ROW = "__row"
TS_TEXT = "__ts_text"  # the raw text of a parsed ts column, kept so a bad value can be quoted
_REASON = "__reason"


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
            bad = frame.filter(
                pl.col("value").is_not_null()
                & pl.col("value").cast(pl.Float64, strict=False).is_null()
            )
            example = f" (e.g. {bad['value'][0]!r})" if bad.height else ""
            raise SchemaMismatchError(
                f"{source}: column 'value' is {dtype}{example}, expected a number"
            )
        casts["value"] = pl.col("value").cast(pl.Float64, strict=False)
    return frame.with_columns(**casts) if casts else frame


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


def canonicalize(
    frame: pl.DataFrame, *, source: str, strict: bool = False
) -> tuple[pl.DataFrame, IngestReport]:
    """Validate, drop invalid rows (counted by reason), dedupe and sort per series.

    Under ``strict`` any dropped row is an ``InputError`` naming the first offending row.
    """
    frame = coerce_columns(frame, source=source)
    keep = [c for c in (*TELEMETRY, *TELEMETRY_OPTIONAL) if c in frame.columns]
    frame = frame.select(keep).with_row_index(_ROW, offset=1)
    value = pl.col("value")
    missing_key = pl.any_horizontal(pl.col(k).is_null() for k in (*SERIES_KEYS, "ts"))
    negative = pl.col("metric").is_in(_NONNEGATIVE) & (value < 0)
    invalid = missing_key | value.is_null() | value.is_nan() | value.is_infinite() | negative
    reason = (
        pl.when(missing_key)
        .then(pl.lit("missing_key"))
        .when(value.is_null())
        .then(pl.lit("missing_value"))
        .when(value.is_nan())
        .then(pl.lit("nan_value"))
        .when(value.is_infinite())
        .then(pl.lit("infinite_value"))
        .when(negative)
        .then(pl.lit("negative_value"))
        .when(pl.struct(*SERIES_KEYS, "ts").is_first_distinct().not_())
        .then(pl.lit("duplicate_ts"))
        .otherwise(pl.lit(None, dtype=pl.String))
    )
    # duplicates are judged among otherwise valid rows only, so a NaN row never wins
    valid_first = frame.with_columns(invalid.alias("__invalid")).sort(
        "__invalid", _ROW, maintain_order=True
    )
    marked = valid_first.with_columns(reason.alias(_REASON)).sort(_ROW)
    counts = (
        marked.filter(pl.col(_REASON).is_not_null())
        .group_by(_REASON)
        .agg(pl.len().alias("n"), pl.col(_ROW).min().alias("first"))
        .sort(_REASON)
    )
    kept = marked.filter(pl.col(_REASON).is_null())
    reordered = kept.select(
        (pl.col("ts").diff().over(SERIES_KEYS) < pl.duration(microseconds=0)).sum()
    ).item()
    out = kept.drop(_ROW, _REASON, "__invalid").sort(*SERIES_KEYS, "ts", maintain_order=True)
    report = IngestReport(
        source=source,
        rows_in=frame.height,
        rows_out=out.height,
        dropped=dict(zip(counts[_REASON].to_list(), counts["n"].to_list(), strict=True)),
        first_row=dict(zip(counts[_REASON].to_list(), counts["first"].to_list(), strict=True)),
        reordered=int(reordered or 0),
        n_series=out.select(pl.struct(*SERIES_KEYS).n_unique()).item() if out.height else 0,
    )
    if report.dropped:
        if strict:
            reason_name, first = min(report.first_row.items(), key=lambda kv: kv[1])
            listed = ", ".join(f"{k}={v}" for k, v in sorted(report.dropped.items()))
            plural = "s" if report.n_dropped != 1 else ""
            raise InputError(
                f"{source}: row {first}: {reason_name.replace('_', ' ')} "
                f"({report.n_dropped:,} invalid row{plural} in all: {listed})",
                hint="fix the rows, or drop --strict to skip them with a count",
            )
        warnings.warn(report.summary(), DataDroppedWarning, stacklevel=2)
    return out, report
