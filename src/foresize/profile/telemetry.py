"""Per-series statistics of telemetry: level, spread, idleness, burstiness, periods, trend.

The input may be larger than memory: series are grouped into chunks of at most
``max_rows`` rows (a streaming pass counts rows per workload first) and each chunk is
read, canonicalised and summarised on its own, so peak memory follows the chunk size,
not the file size. Wide frames are never materialised.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import polars as pl

from foresize.core.errors import InsufficientDataError
from foresize.core.guard import input_errors
from foresize.core.metrics import METRICS, metric_info
from foresize.core.schemas import GAP_FACTOR
from foresize.ingest.report import IngestReport
from foresize.ingest.validate import canonicalize
from foresize.profile.phases import detect_phases
from foresize.profile.shape import describe_shape

QUANTILES = {"p50": 0.50, "p90": 0.90, "p95": 0.95, "p99": 0.99}
DEFAULT_MAX_ROWS = 1_000_000  # ~0.6 GiB peak RSS; see benchmarks/bench_profile_large.py

PROFILE_SCHEMA = pl.Schema(
    [
        ("workload", pl.String()),
        ("metric", pl.String()),
        ("unit", pl.String()),
        ("n_samples", pl.Int64()),
        ("start", pl.Datetime("us", "UTC")),
        ("end", pl.Datetime("us", "UTC")),
        ("span_s", pl.Float64()),
        ("interval_s", pl.Float64()),
        ("n_gaps", pl.Int64()),
        ("gap_s", pl.Float64()),
        ("mean", pl.Float64()),
        ("std", pl.Float64()),
        ("min", pl.Float64()),
        ("p50", pl.Float64()),
        ("p90", pl.Float64()),
        ("p95", pl.Float64()),
        ("p99", pl.Float64()),
        ("max", pl.Float64()),
        ("idle_frac", pl.Float64()),
        ("burstiness", pl.Float64()),
        ("cv", pl.Float64()),
        ("period_s", pl.Float64()),
        ("period_strength", pl.Float64()),
        ("periods_s", pl.List(pl.Float64())),
        ("trend_per_day", pl.Float64()),
        ("trend_r2", pl.Float64()),
    ]
)


def _idle_threshold() -> pl.Expr:
    thresholds = {name: m.idle_at_or_below for name, m in METRICS.items()}
    return pl.col("metric").replace_strict(thresholds, default=0.0, return_dtype=pl.Float64)


def summarize_series(frame: pl.DataFrame, *, keys: Sequence[str]) -> pl.DataFrame:
    """Statistics of canonical telemetry sorted by ``keys`` and ts; one row per series."""
    seconds = (pl.col("ts") - pl.col("ts").min()).dt.total_microseconds().cast(pl.Float64) / 1e6
    with_steps = frame.with_columns(
        (pl.col("ts").diff().dt.total_microseconds().cast(pl.Float64) / 1e6)
        .over(keys)
        .alias("step_s"),
        seconds.over(keys).alias("t_s"),
        (pl.col("value") <= _idle_threshold()).alias("idle"),
    )
    step = pl.col("step_s")
    interval = step.median()
    is_gap = step > GAP_FACTOR * interval
    value = pl.col("value")
    stats = with_steps.group_by(keys, maintain_order=True).agg(
        pl.len().cast(pl.Int64).alias("n_samples"),
        pl.col("ts").min().alias("start"),
        pl.col("ts").max().alias("end"),
        pl.col("t_s").max().alias("span_s"),
        interval.alias("interval_s"),
        is_gap.sum().cast(pl.Int64).alias("n_gaps"),
        pl.when(is_gap).then(step - interval).otherwise(0.0).sum().alias("gap_s"),
        value.mean().alias("mean"),
        value.std().alias("std"),
        value.min().alias("min"),
        *(value.quantile(q, "linear").alias(name) for name, q in QUANTILES.items()),
        value.max().alias("max"),
        pl.col("idle").mean().alias("idle_frac"),
    )
    stats = stats.with_columns(
        pl.col("metric").map_elements(lambda m: metric_info(m).unit, return_dtype=pl.String)
        .alias("unit"),
        pl.when(pl.col("p50") > 0).then(pl.col("p99") / pl.col("p50")).alias("burstiness"),
        pl.when(pl.col("mean") > 0).then(pl.col("std") / pl.col("mean")).alias("cv"),
    )
    shapes = _shapes(with_steps, stats, keys=keys)
    return stats.join(shapes, on=list(keys), how="left", maintain_order="left")


def _shapes(frame: pl.DataFrame, stats: pl.DataFrame, *, keys: Sequence[str]) -> pl.DataFrame:
    """Periods and trend per series; numpy per series since FFTs do not vectorise across
    series of different lengths.
    """
    columns = (*keys, "period_s", "period_strength", "periods_s", "trend_per_day", "trend_r2")
    rows: dict[str, list[object]] = {k: [] for k in columns}
    intervals = stats["interval_s"].to_list()
    for (key, group), step in zip(
        frame.group_by(keys, maintain_order=True), intervals, strict=True
    ):
        shape = describe_shape(group["t_s"].to_numpy(), group["value"].to_numpy(), step or 0.0)
        for name, part in zip(keys, key, strict=True):
            rows[name].append(part)
        rows["period_s"].append(shape.periods_s[0] if shape.periods_s else None)
        rows["period_strength"].append(shape.strengths[0] if shape.strengths else None)
        rows["periods_s"].append(list(shape.periods_s))
        rows["trend_per_day"].append(shape.trend_per_day)
        rows["trend_r2"].append(shape.trend_r2)
    schema = {name: PROFILE_SCHEMA[name] for name in columns if name in PROFILE_SCHEMA}
    schema.update(dict.fromkeys(keys, pl.String()))
    return pl.DataFrame(rows, schema=schema)


def _unlabelled(frame: pl.DataFrame) -> bool:
    """No phase labels to group by: the shared detector supplies them."""
    return "phase" not in frame.columns or frame["phase"].null_count() == frame.height


def plan_chunks(counts: pl.DataFrame, *, max_rows: int) -> list[list[str]]:
    """Pack whole workloads into chunks of at most ``max_rows`` rows (one workload may exceed)."""
    chunks: list[list[str]] = []
    current: list[str] = []
    size = 0
    for workload, n in counts.sort("workload").iter_rows():
        if current and size + n > max_rows:
            chunks.append(current)
            current, size = [], 0
        current.append(workload)
        size += n
    if current:
        chunks.append(current)
    return chunks


def profile_telemetry(
    telemetry: pl.LazyFrame | pl.DataFrame,
    *,
    source: str = "telemetry",
    by_phase: bool = False,
    max_rows: int = DEFAULT_MAX_ROWS,
    on_chunk: Callable[[int, int], None] | None = None,
    strict: bool = False,
) -> tuple[pl.DataFrame, IngestReport]:
    """Profile every series (workload x metric, x phase with ``by_phase``) of ``telemetry``.

    With ``by_phase``, data without phase labels is labelled by ``profile.phases``.

    ``telemetry`` holds the canonical columns (validated here, chunk by chunk). Returns
    the profile (``PROFILE_SCHEMA`` plus ``phase`` when ``by_phase``) and the ingest
    report of what was dropped. ``on_chunk(rows, rows_total)`` reports each chunk's
    rows as it is done. ``strict`` makes an invalid row an error instead of a counted drop,
    as everywhere else.
    """
    lazy = telemetry.lazy()
    with input_errors(source):  # a lazy file's bad cells surface when collected
        counts = (
            lazy.group_by("workload").agg(pl.len().alias("n")).collect(engine="streaming")
        )
    total = int(counts["n"].sum()) if counts.height else 0
    if total == 0:
        raise InsufficientDataError(f"{source}: no telemetry rows to profile")
    keys = ["workload", "metric", *(["phase"] if by_phase else [])]
    chunks = plan_chunks(counts.drop_nulls("workload"), max_rows=max_rows)
    if counts["workload"].null_count():
        chunks.append([])  # rows with no workload: read so they are counted as dropped
    report = IngestReport(source=source)
    parts: list[pl.DataFrame] = []
    for workloads in chunks:
        selector = (pl.col("workload").is_in(workloads) if workloads
                    else pl.col("workload").is_null())
        with input_errors(source):
            rows = lazy.filter(selector).collect(engine="streaming")
        canonical, chunk_report = canonicalize(rows, source=source, strict=strict)
        report.merge(chunk_report)
        if by_phase and _unlabelled(canonical):
            canonical = detect_phases(canonical.drop("phase", strict=False)).drop("segment")
        if canonical.height:
            parts.append(summarize_series(canonical, keys=keys))
        if on_chunk:
            on_chunk(rows.height, total)
    if not parts:
        raise InsufficientDataError(
            f"{source}: every row was invalid ({report.summary()})",
        )
    order = [*keys, *(c for c in PROFILE_SCHEMA if c not in keys)]
    return pl.concat(parts).select(order), report


def recording_summary(telemetry: pl.DataFrame) -> pl.DataFrame:
    """Peak, P95 and mean per workload, metric and phase of recorded samples."""
    keys = [k for k in ("workload", "metric", "phase") if k in telemetry.columns]
    return (
        telemetry.group_by(keys, maintain_order=True)
        .agg(
            pl.len().alias("n_samples"),
            pl.col("value").max().alias("peak"),
            pl.col("value").quantile(QUANTILES["p95"], "linear").alias("p95"),
            pl.col("value").mean().alias("mean"),
        )
        .sort(keys)
    )
