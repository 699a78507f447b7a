"""Request traces: one row per request with its arrival and its token counts.

The contract (``REQUEST_TRACE``, ``shared/DESIGN.md``): ``ts`` (arrival, UTC
microseconds), ``input_tokens`` and ``output_tokens`` (i64, both > 0), optional
``model``, ``tenant``, ``service``. The serving simulator consumes it directly, so the
reader is strict where a wrong row would silently bend the result: a zero or negative
token count is an ``InputError`` naming the first such row (a request that generates
nothing is not a request an LLM server sees), while rows out of time order are sorted
and exact duplicate rows are dropped, both counted in the ``IngestReport``.

``replay`` makes a trace faster (``rate_scale``) or longer (``splice``): both are
stated in ``ReplayInfo`` so every output can say which trace it really ran.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from foresize.core.errors import InputError, SchemaMismatchError, UsageError
from foresize.core.io import sha256_file
from foresize.core.schemas import TS_DTYPE
from foresize.ingest.report import IngestReport
from foresize.ingest.tabular import STDIN, TsUnit, collect_input, parse_ts, scan_file

REQUEST_TRACE = pl.Schema(
    [("ts", TS_DTYPE), ("input_tokens", pl.Int64()), ("output_tokens", pl.Int64())]
)
REQUEST_OPTIONAL = ("model", "tenant", "service")
REQUEST_KEYS = (*REQUEST_TRACE.names(), *REQUEST_OPTIONAL)
# The Azure LLM inference traces (2023): upstream column -> canonical column.
AZURE_COLUMNS: Mapping[str, str] = {
    "ts": "TIMESTAMP", "input_tokens": "ContextTokens", "output_tokens": "GeneratedTokens"
}
_LINE_SUFFIXES = (".jsonl", ".ndjson", ".json")


def parse_request_mapping(text: str | None) -> dict[str, str]:
    """``ts=COL,input_tokens=COL,output_tokens=COL[,model=COL]`` -> {canonical: column}."""
    if not text:
        return {}
    mapping: dict[str, str] = {}
    for part in text.split(","):
        key, sep, column = (s.strip() for s in part.partition("="))
        if not sep or not key or not column:
            raise UsageError(f"--map: {part!r} is not KEY=COLUMN")
        if key not in REQUEST_KEYS:
            raise UsageError(f"--map: unknown key {key!r}; valid: {', '.join(REQUEST_KEYS)}")
        mapping[key] = column
    return mapping


def _scan(path: str | os.PathLike[str]) -> pl.LazyFrame:
    """CSV, parquet, tar.gz or JSON lines (``.jsonl``, ``.ndjson``, ``.json``)."""
    if str(path).lower().endswith(_LINE_SUFFIXES):
        try:
            frame = pl.scan_ndjson(Path(path))
            frame.collect_schema()
        except (pl.exceptions.PolarsError, OSError) as exc:
            raise InputError(f"{path}: unreadable JSON lines ({exc})") from exc
        return frame
    return scan_file(path)


def scan_requests(
    path: str | os.PathLike[str],
    *,
    mapping: Mapping[str, str] | None = None,
    ts_unit: TsUnit = "s",
    ts_format: str | None = None,
) -> pl.LazyFrame:
    """Lazily read a request file into the canonical columns (not yet validated)."""
    source = str(path)
    frame = _scan(path)
    schema = frame.collect_schema()
    mapping = dict(mapping or {})
    for key in REQUEST_KEYS:  # a column already named canonically needs no mapping
        if key not in mapping and key in schema:
            mapping[key] = key
    for key, column in mapping.items():
        if column not in schema:
            raise SchemaMismatchError(
                f"{source}: --map {key}={column}: no column {column!r} "
                f"(found: {', '.join(schema.names())})"
            )
    missing = [k for k in REQUEST_TRACE.names() if k not in mapping]
    if missing:
        raise SchemaMismatchError(
            f"{source}: missing {', '.join(missing)} (found: {', '.join(schema.names())})",
            hint="name the columns with --map ts=COL,input_tokens=COL,output_tokens=COL",
        )
    frame = frame.select([pl.col(column).alias(key) for key, column in mapping.items()])
    return parse_ts(frame, source=source, ts_unit=ts_unit, ts_format=ts_format)


def canonicalize_requests(
    frame: pl.DataFrame, *, source: str
) -> tuple[pl.DataFrame, IngestReport]:
    """Type, check and order a request frame; raise on bad token counts or timestamps."""
    report = IngestReport(source=source, rows_in=frame.height, n_series=1)
    if "__ts_text" in frame.columns:
        bad_ts = frame.with_row_index("row", 1).filter(
            pl.col("ts").is_null() & pl.col("__ts_text").is_not_null()
        )
        if bad_ts.height:
            row = bad_ts.row(0, named=True)
            raise InputError(
                f"{source}: row {row['row']}: ts {row['__ts_text']!r} is not a timestamp "
                f"({bad_ts.height:,} such rows)", hint="pass --ts-format",
            )
        frame = frame.drop("__ts_text")
    for column in ("input_tokens", "output_tokens"):
        dtype = frame.schema[column]
        if not dtype.is_numeric():
            raise SchemaMismatchError(f"{source}: column {column!r} is {dtype}, expected integers")
        values = frame[column].cast(pl.Float64)
        bad = (values.is_null() | (values <= 0) | (values != values.round())).arg_true()
        if bad.len():
            first = int(bad[0])
            raise InputError(
                f"{source}: row {first + 1}: {column} = {frame[column][first]!r}; every "
                f"request needs a whole number of tokens > 0 ({bad.len():,} rows fail)",
                hint="drop or fix those rows first",
            )
    if frame["ts"].null_count():
        first = int(frame["ts"].is_null().arg_true()[0])
        raise InputError(f"{source}: row {first + 1}: missing arrival time")
    optional = [c for c in REQUEST_OPTIONAL if c in frame.columns]
    frame = frame.select(
        pl.col("ts").cast(TS_DTYPE),
        pl.col("input_tokens").cast(pl.Int64),
        pl.col("output_tokens").cast(pl.Int64),
        *(pl.col(c).cast(pl.String) for c in optional),
    )
    us = frame["ts"].dt.epoch("us")
    report.reordered = int((us < us.cum_max().shift(1)).sum() or 0)
    if report.reordered:
        frame = frame.sort("ts", maintain_order=True)
    unique = frame.unique(maintain_order=True)
    if unique.height < frame.height:
        report.dropped["duplicate_row"] = frame.height - unique.height
        frame = unique
    same_ts = int(frame["ts"].is_duplicated().sum())
    if same_ts:
        report.notes.append(f"{same_ts:,} requests share an arrival time with another (kept)")
    report.rows_out = frame.height
    if frame.height == 0:
        raise InputError(f"{source}: no requests")
    return frame, report


def read_requests(
    path: str | os.PathLike[str],
    *,
    mapping: Mapping[str, str] | None = None,
    ts_unit: TsUnit = "s",
    ts_format: str | None = None,
) -> tuple[pl.DataFrame, IngestReport]:
    """Read any CSV, parquet or JSON-lines request file as a ``REQUEST_TRACE`` frame."""
    source = str(path)
    lazy = scan_requests(path, mapping=mapping, ts_unit=ts_unit, ts_format=ts_format)
    frame, report = canonicalize_requests(collect_input(lazy, source=source), source=source)
    report.sha256 = None if source == STDIN else sha256_file(path)
    return frame, report


def read_azure_llm(path: str | os.PathLike[str]) -> tuple[pl.DataFrame, IngestReport]:
    """An Azure LLM inference trace (2023, code or conversation) as a request trace."""
    return read_requests(path, mapping=AZURE_COLUMNS)


@dataclass(frozen=True, slots=True)
class ReplayInfo:
    """How a trace was replayed: stated in every output that ran it."""

    rate_scale: float = 1.0
    splice: int = 1
    n_requests: int = 0
    duration_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"rate_scale": self.rate_scale, "splice": self.splice,
                "n_requests": self.n_requests, "duration_s": self.duration_s}

    def describe(self) -> str:
        """One phrase: ``rate x2, spliced x3`` or ``as recorded``."""
        parts = [f"rate x{self.rate_scale:g}"] if self.rate_scale != 1 else []
        parts += [f"spliced x{self.splice}"] if self.splice != 1 else []
        return ", ".join(parts) or "as recorded"


def replay(
    frame: pl.DataFrame, *, rate_scale: float = 1.0, splice: int = 1
) -> tuple[pl.DataFrame, ReplayInfo]:
    """The trace ``rate_scale`` times faster, repeated ``splice`` times end to end.

    Arrival offsets from the first request are divided by ``rate_scale`` (token counts
    unchanged, so the offered load scales by that factor). Each spliced copy starts one
    mean inter-arrival gap after the previous copy's last request, so the seam carries
    no gap or burst of its own.
    """
    if not rate_scale > 0:
        raise UsageError(f"--rate-scale must be > 0, got {rate_scale}")
    if splice < 1:
        raise UsageError(f"--splice must be >= 1, got {splice}")
    us = frame["ts"].dt.epoch("us").to_numpy().astype(np.int64)
    start = int(us[0]) if us.size else 0
    offset = (us - start) / rate_scale
    span = float(offset[-1]) if us.size else 0.0
    gap = span / max(us.size - 1, 1)
    shifted = np.concatenate([offset + k * (span + gap) for k in range(splice)])
    ts = pl.Series("ts", start + np.round(shifted).astype(np.int64)).cast(pl.Datetime("us"))
    out = pl.concat([frame] * splice).with_columns(ts.dt.replace_time_zone("UTC"))
    duration_s = (float(shifted[-1]) if shifted.size else 0.0) / 1e6
    return out, ReplayInfo(rate_scale, splice, out.height, duration_s)


def read_request_source(
    source: str,
    *,
    mapping: Mapping[str, str] | None = None,
    ts_unit: TsUnit = "s",
    ts_format: str | None = None,
    mirror: str | os.PathLike[str] | None = None,
) -> tuple[pl.DataFrame, IngestReport]:
    """A request trace from a file, or from a registered dataset table (``azure-llm:conv``).

    A dataset table is verified against its catalog sha256 (mirror or cache) and read
    with its registered reader, which must give a ``REQUEST_TRACE`` frame.
    """
    from foresize.ingest.datasets import fetch_tables, parse_address

    if ":" in source and not Path(source).exists():
        _, table = parse_address(source)
        if table is None or table.kind != "requests":
            raise InputError(f"{source}: not a request-trace table",
                             hint="list them: foresize datasets list")
        if table.reader != f"{__name__}:read_azure_llm":
            raise InputError(f"{source}: its requests carry no token counts",
                             hint="serve a trace with input and output tokens per request")
        (fetched,) = fetch_tables(source, mirror=mirror)
        assert fetched.path is not None
        frame, report = read_azure_llm(fetched.path)
        report.source = source
        return frame, report
    return read_requests(source, mapping=mapping, ts_unit=ts_unit, ts_format=ts_format)
