"""Generic parquet and CSV telemetry, long or wide, with a column mapping.

``scan_telemetry`` returns a lazy frame with the canonical column names (parsed but not
yet validated) so files larger than memory can be streamed; ``read_telemetry`` collects
and canonicalises it, returning the frame and its ``IngestReport``.
"""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import polars as pl

from foresize.core.errors import InputError, SchemaMismatchError, UsageError
from foresize.core.guard import reader
from foresize.core.io import sha256_file
from foresize.core.paths import missing_file
from foresize.core.schemas import TELEMETRY_OPTIONAL, TS_DTYPE
from foresize.ingest.archive import extracted_csv, is_archive
from foresize.ingest.report import IngestReport
from foresize.ingest.validate import NULL_TEXT, TS_TEXT, canonicalize

TsUnit = Literal["s", "ms", "us", "ns"]
CANONICAL_KEYS = ("workload", "metric", "ts", "value", *TELEMETRY_OPTIONAL)
TEXT_TS_FORMATS = ("%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M",
                   "%Y-%m-%dT%H:%M", "%Y-%m-%d", "%Y/%m/%d %H:%M:%S%.f")
# RFC 3339 and ISO 8601 with a zone ("Z", "+00:00", "+0530"), with a 'T' or a space: the
# offset is applied, so every zone lands on the same UTC instant
ZONED_TS_FORMATS = ("%Y-%m-%dT%H:%M:%S%.f%#z", "%Y-%m-%d %H:%M:%S%.f%#z",
                    "%Y-%m-%dT%H:%M%#z", "%Y-%m-%d %H:%M%#z")

_FACTOR = {"s": 1_000_000, "ms": 1_000, "us": 1, "ns": 0.001}
_MAX_EPOCH_S = 1e11


def parse_mapping(text: str | None) -> dict[str, str]:
    """Parse ``ts=COL,workload=COL[,metric=COL][,value=COL]`` into {canonical: source}."""
    if not text:
        return {}
    mapping: dict[str, str] = {}
    for part in text.split(","):
        key, sep, column = part.partition("=")
        key, column = key.strip(), column.strip()
        if not sep or not key or not column:
            raise UsageError(f"--map: {part!r} is not KEY=COLUMN")
        if key not in CANONICAL_KEYS:
            raise UsageError(f"--map: unknown key {key!r}; valid: {', '.join(CANONICAL_KEYS)}")
        mapping[key] = column
    return mapping


def file_format(path: Path) -> Literal["parquet", "csv"]:
    """The reader a file needs, from its name."""
    name = path.name.lower()
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    if name.endswith((".csv", ".csv.gz", ".tsv")) or is_archive(path):
        return "csv"
    raise InputError(f"{path}: unknown file type; expected .parquet, .csv or .tar.gz")


def check_readable(path: Path) -> None:
    """Raise a one-line ``InputError`` for a missing, unreadable or empty file."""
    if not path.exists():
        raise missing_file(path, dataset_names=True)
    if not path.is_file():
        raise InputError(f"{path}: not a regular file")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: file is empty")


STDIN = "-"
_PARQUET_MAGIC = b"PAR1"


def read_stdin() -> pl.LazyFrame:
    """CSV or parquet piped on stdin (buffered: a pipe cannot be scanned twice)."""
    if sys.stdin.isatty():
        raise InputError("stdin: expected telemetry piped in, found a terminal",
                         hint="pipe a CSV or parquet file in, or pass a file path")
    data = sys.stdin.buffer.read()
    if not data:
        raise InputError("stdin: no data")
    try:
        if data[:4] == _PARQUET_MAGIC:
            return pl.read_parquet(io.BytesIO(data)).lazy()
        return pl.read_csv(io.BytesIO(data), infer_schema_length=10_000,
                           null_values=NULL_TEXT).lazy()
    except pl.exceptions.PolarsError as exc:
        raise InputError(f"stdin: unreadable ({_first_line(exc)})") from exc


def scan_file(path: str | os.PathLike[str]) -> pl.LazyFrame:
    """Lazily open a parquet, CSV or single-CSV tar.gz, failing early on corrupt files;
    ``-`` reads stdin.
    """
    if str(path) == STDIN:
        return read_stdin()
    path = Path(path)
    check_readable(path)
    try:
        if file_format(path) == "parquet":
            frame = pl.scan_parquet(path)
        else:
            csv = extracted_csv(path) if is_archive(path) else path
            check_readable(csv)
            frame = pl.scan_csv(
                csv,
                separator="\t" if csv.name.endswith(".tsv") else ",",
                infer_schema_length=10_000,
                null_values=NULL_TEXT,
            )
        frame.collect_schema()
    except pl.exceptions.PolarsError as exc:
        raise InputError(f"{path}: unreadable ({_first_line(exc)})") from exc
    except OSError as exc:
        raise InputError(f"{path}: unreadable ({exc.strerror or exc})") from exc
    return frame


def collect_input(frame: pl.LazyFrame, *, source: str) -> pl.DataFrame:
    """Collect a lazy frame, turning polars' parse and I/O errors into ``InputError``."""
    try:
        return frame.collect()
    except pl.exceptions.PolarsError as exc:
        raise InputError(f"{source}: {_first_line(exc)}") from exc
    except OSError as exc:
        raise InputError(f"{source}: unreadable ({exc.strerror or exc})") from exc


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def parse_ts(
    frame: pl.LazyFrame, *, source: str, ts_unit: TsUnit = "s", ts_format: str | None = None
) -> pl.LazyFrame:
    """Parse the ``ts`` column (epoch numbers, strings or datetimes) into UTC microseconds."""
    dtype = frame.collect_schema()["ts"]
    ts = pl.col("ts")
    if isinstance(dtype, pl.Datetime):
        parsed = ts if dtype.time_zone else ts.dt.replace_time_zone("UTC")
        parsed = parsed.dt.convert_time_zone("UTC").dt.cast_time_unit("us")
    elif dtype == pl.Date:
        parsed = ts.cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    elif dtype.is_numeric():
        # beyond |1e11| s (year ~5000) no number is a time: null here, and validation
        # quotes the raw value instead of the cast overflowing
        seconds = ts.cast(pl.Float64) * (_FACTOR[ts_unit] / 1_000_000)
        micros = (seconds * 1_000_000).round().cast(pl.Int64, strict=False)
        plausible = seconds.is_finite() & (seconds.abs() < _MAX_EPOCH_S)
        parsed = pl.when(plausible).then(micros).cast(TS_DTYPE)
        return frame.with_columns(parsed.alias("ts"), ts.cast(pl.String).alias(TS_TEXT))
    elif dtype == pl.String:
        return frame.with_columns(
            _parse_text_ts(ts, ts_format).alias("ts"), ts.alias(TS_TEXT)
        )
    else:
        raise SchemaMismatchError(
            f"{source}: column 'ts' is {dtype}, expected a timestamp, a date or epoch seconds"
        )
    return frame.with_columns(parsed.alias("ts"))


def _parse_text_ts(ts: pl.Expr, ts_format: str | None) -> pl.Expr:
    """Text timestamps; unparsable ones become null and validation quotes the first."""
    if ts_format is not None:
        parsed = ts.str.strptime(pl.Datetime("us"), ts_format, strict=False)
        if "%z" in ts_format or "%Z" in ts_format:
            return parsed.dt.convert_time_zone("UTC")
        return parsed.dt.replace_time_zone("UTC")
    naive = [ts.str.strptime(pl.Datetime("us"), fmt, strict=False).dt.replace_time_zone("UTC")
             for fmt in TEXT_TS_FORMATS]
    # RFC 3339 allows a lowercase 't' and 'z'; digits and signs are unchanged by upper case
    upper = ts.str.strip_chars().str.to_uppercase()
    zoned = [upper.str.strptime(TS_DTYPE, fmt, strict=False) for fmt in ZONED_TS_FORMATS]
    return pl.coalesce(*naive, *zoned)


def to_long(
    frame: pl.LazyFrame,
    *,
    source: str,
    mapping: Mapping[str, str],
    metric: str | None = None,
    workload: str | None = None,
) -> pl.LazyFrame:
    """Rename mapped columns and, for wide files, melt every numeric column into a metric."""
    schema = frame.collect_schema()
    for key, column in mapping.items():
        if column not in schema:
            raise SchemaMismatchError(
                f"{source}: --map {key}={column}: no column {column!r} "
                f"(found: {', '.join(schema.names())})"
            )
    renamed = {column: key for key, column in mapping.items() if column != key}
    clashes = [c for c in renamed.values() if c in schema and c not in renamed]
    frame = frame.drop(clashes).rename(renamed)
    schema = frame.collect_schema()
    if "ts" not in schema:
        raise SchemaMismatchError(
            f"{source}: missing required column 'ts' (found: {', '.join(schema.names())})",
            hint="name the time column with --map ts=COLUMN",
        )
    if "workload" not in schema:
        frame = frame.with_columns(workload=pl.lit(workload or Path(source).name.split(".")[0]))
    if "value" in schema:
        if "metric" not in schema:
            frame = frame.with_columns(metric=pl.lit(metric or mapping.get("value", "value")))
        return frame
    id_columns = ["workload", "ts", *(c for c in TELEMETRY_OPTIONAL if c in schema)]
    measures = [c for c, t in schema.items() if c not in id_columns and c != "metric"]
    numeric = [c for c in measures if schema[c].is_numeric()]
    if not numeric:
        raise SchemaMismatchError(
            f"{source}: no 'value' column and no numeric columns to read as metrics "
            f"(found: {', '.join(schema.names())})",
            hint="map the value column with --map value=COLUMN",
        )
    return frame.unpivot(
        on=numeric, index=id_columns, variable_name="metric", value_name="value"
    )


def scan_telemetry(
    path: str | os.PathLike[str],
    *,
    mapping: Mapping[str, str] | None = None,
    metric: str | None = None,
    workload: str | None = None,
    ts_unit: TsUnit = "s",
    ts_format: str | None = None,
) -> pl.LazyFrame:
    """Lazily read a telemetry file into canonical columns (not yet validated)."""
    source = str(path)
    frame = scan_file(path)
    frame = to_long(frame, source=source, mapping=mapping or {}, metric=metric, workload=workload)
    return parse_ts(frame, source=source, ts_unit=ts_unit, ts_format=ts_format)


@reader
def read_telemetry(
    path: str | os.PathLike[str],
    *,
    mapping: Mapping[str, str] | None = None,
    metric: str | None = None,
    workload: str | None = None,
    ts_unit: TsUnit = "s",
    ts_format: str | None = None,
    strict: bool = False,
) -> tuple[pl.DataFrame, IngestReport]:
    """Read and canonicalise a telemetry file; see ``scan_telemetry`` for the options."""
    source = str(path)
    lazy = scan_telemetry(
        path, mapping=mapping, metric=metric, workload=workload, ts_unit=ts_unit,
        ts_format=ts_format,
    )
    frame, report = canonicalize(collect_input(lazy, source=source), source=source, strict=strict)
    report.sha256 = None if source == STDIN else sha256_file(path)
    return frame, report
