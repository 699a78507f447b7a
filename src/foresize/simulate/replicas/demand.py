"""Demand series for the autoscaler: one value per step on a regular grid.

* ``lora_concurrency``: from the GenTD26 LoRA request trace, the peak number of
  requests executing in each step. A request executes over ``[gmt_create,
  gmt_create + exec_time_seconds)`` (the trace has no separate start time, so queueing
  before execution is not visible); requests with a zero execution time (``PENDING``)
  never execute. At one request per replica (one diffusion pipeline per GPU) it is
  the replica count that serves every request of the step without queueing.
* ``summed_demand``: any canonical telemetry of one metric, summed over workloads per
  step (``alibaba-gentd26:qps`` gives the system QPS summed over containers per 57 s
  step). The step is the median interval between distinct timestamps of all
  workloads; each workload's samples are averaged per step, the workloads present
  summed (an absent workload adds nothing), and steps where no workload reported are
  filled by linear interpolation (``forecast.panel.to_panel``'s rule), counted in
  ``filled``. Negative or non-finite values are an ``InputError``.
* ``open_demand``: a SOURCE as the CLI takes it; the dataset addresses
  ``alibaba-gentd26:lora`` (or ``gentd26:lora``) give the LoRA concurrency, and
  ``alibaba-gentd26:qps`` the containers' QPS without the gateway's own series.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from foresize.core.errors import InputError, InsufficientDataError
from foresize.core.guard import input_errors
from foresize.core.schemas import check_telemetry
from foresize.forecast.panel import infer_step_s, to_panel
from foresize.ingest.alibaba.gentd26 import read_gentd26_lora
from foresize.ingest.sources import ReadOptions, open_telemetry
from foresize.ingest.validate import coerce_columns
from foresize.simulate.replicas.service import FloatArray

LORA_ADDRESSES = ("alibaba-gentd26:lora", "gentd26:lora")
QPS_ADDRESSES = ("alibaba-gentd26:qps", "gentd26:qps")
GATEWAY = "gateway"


@dataclass(slots=True)
class DemandSeries:
    """A demand series: ``values[i]`` at ``start_us + i x step_s`` (UTC epoch microseconds)."""

    name: str
    values: FloatArray
    step_s: float
    start_us: int
    unit: str
    service_time_s: float | None = None  # measured mean time per request, when known
    offered: FloatArray | None = None  # mean load per step when ``values`` are peaks
    notes: list[str] = field(default_factory=list)
    sha256: dict[str, str] = field(default_factory=dict)
    filled: int = 0

    def __post_init__(self) -> None:
        if self.values.size == 0:
            raise InsufficientDataError(f"{self.name}: demand series is empty")
        if not np.isfinite(self.values).all():
            raise InputError(f"{self.name}: demand has NaN or infinite values")
        if (self.values < 0).any():
            i = int(np.argmax(self.values < 0))
            raise InputError(
                f"{self.name}: demand is negative ({self.values[i]:g}) at step {i}",
                hint="demand is requests or requests/s: >= 0",
            )

    @property
    def hours(self) -> float:
        """Length of the series in hours."""
        return self.values.size * self.step_s / 3600.0

    def describe(self) -> dict[str, Any]:
        """Plain dict for JSON output (no values)."""
        return {
            "name": self.name,
            "unit": self.unit,
            "step_s": self.step_s,
            "steps": int(self.values.size),
            "hours": self.hours,
            "start": _iso(self.start_us),
            "peak": float(self.values.max()),
            "mean": float(self.values.mean()),
            "filled_steps": self.filled,
            "service_time_s": self.service_time_s,
            "notes": self.notes,
        }


def _iso(us: int) -> str:
    return str(
        pl.Series([us])
        .cast(pl.Datetime("us"))
        .dt.replace_time_zone("UTC")
        .dt.to_string("%Y-%m-%dT%H:%M:%SZ")
        .item()
    )


def peak_concurrency(
    start_s: FloatArray, end_s: FloatArray, *, t0_s: float, step_s: float, n: int
) -> FloatArray:
    """Peak number of intervals ``[start, end)`` open during each step ``[t0 + i s, ...)``.

    Events are sorted with ends before starts at equal times (a request that ends when
    another begins does not overlap it). A step's peak is the larger of the level at
    its start (after every event at or before it) and the level after each event
    strictly inside it.
    """
    keep = end_s > start_s
    if not keep.any():
        return np.zeros(n)
    times = np.concatenate([start_s[keep], end_s[keep]])
    delta = np.concatenate([np.ones(int(keep.sum())), -np.ones(int(keep.sum()))])
    order = np.lexsort((delta, times))
    times, delta = times[order], delta[order]
    level = np.cumsum(delta)
    offset = (times - t0_s) / step_s
    bins = np.floor(offset).astype(np.int64)
    inside = (offset > bins) & (bins >= 0) & (bins < n)
    peak = np.zeros(n)
    np.maximum.at(peak, bins[inside], level[inside])
    starts = t0_s + step_s * np.arange(n)
    last = np.searchsorted(times, starts, side="right") - 1
    carry = np.where(last >= 0, level[np.maximum(last, 0)], 0.0)
    result: FloatArray = np.maximum(np.maximum(peak, carry), 0.0)
    return result


def mean_concurrency(
    start_s: FloatArray, end_s: FloatArray, *, t0_s: float, step_s: float, n: int
) -> FloatArray:
    """Mean number of intervals open over each step (busy seconds / step length).

    Busy time up to ``x`` is ``sum(x - start | start < x) - sum(x - end | end < x)``,
    evaluated at the step edges with sorted starts and ends.
    """
    edges = t0_s + step_s * np.arange(n + 1)

    def busy(points: FloatArray) -> FloatArray:
        points = np.sort(points)
        below = np.searchsorted(points, edges, side="left")
        sums = np.concatenate([[0.0], np.cumsum(points)])
        result: FloatArray = below * edges - sums[below]
        return result

    total = busy(start_s) - busy(end_s)
    result: FloatArray = np.maximum(np.diff(total) / step_s, 0.0)
    return result


def lora_concurrency(
    requests: pl.DataFrame, *, step_s: float = 60.0, name: str = "alibaba-gentd26:lora"
) -> DemandSeries:
    """Per-step peak concurrency of a typed LoRA request frame (``read_gentd26_lora``)."""
    rows = requests.filter(pl.col("ts").is_not_null() & pl.col("exec_time_s").is_not_null())
    if rows.is_empty():
        raise InsufficientDataError(f"{name}: no requests with a time and an execution time")
    start = rows["ts"].dt.epoch("us").to_numpy().astype(np.float64) / 1e6
    exec_s = rows["exec_time_s"].to_numpy().astype(np.float64)
    end = start + exec_s
    t0 = math.floor(float(start.min()) / step_s) * step_s
    n = max(1, math.ceil((float(end.max()) - t0) / step_s))
    values = peak_concurrency(start, end, t0_s=t0, step_s=step_s, n=n)
    offered = np.minimum(mean_concurrency(start, end, t0_s=t0, step_s=step_s, n=n), values)
    ran = exec_s[exec_s > 0]
    notes = [
        f"{int((exec_s > 0).sum()):,} of {rows.height:,} requests executed "
        "(exec_time_s > 0); demand = peak concurrency per step, queueing load = "
        "mean concurrency per step"
    ]
    return DemandSeries(
        name,
        values,
        step_s,
        round(t0 * 1e6),
        "concurrent requests",
        service_time_s=float(ran.mean()) if ran.size else None,
        offered=offered,
        notes=notes,
    )


def summed_demand(
    frame: pl.DataFrame, *, metric: str | None = None, source: str = "telemetry"
) -> DemandSeries:
    """One metric of canonical telemetry, summed over workloads per step (see module doc)."""
    check_telemetry(frame, source=source)
    metrics = sorted(frame["metric"].drop_nulls().unique().to_list())
    if not metrics:
        raise InsufficientDataError(f"{source}: no row names a metric")
    if metric is None:
        if len(metrics) != 1:
            raise InputError(
                f"{source}: holds metrics {', '.join(metrics)}; pick one with --metric"
            )
        metric = metrics[0]
    rows = frame.filter(pl.col("metric") == metric)
    if rows.is_empty():
        raise InputError(
            f"{source}: metric {metric!r} does not appear; it holds {', '.join(metrics) or 'none'}"
        )
    bad = rows.filter(
        pl.col("value").is_null() | ~pl.col("value").is_finite() | (pl.col("value") < 0)
    )
    if not bad.is_empty():
        row = bad.row(0, named=True)
        raise InputError(
            f"{source}: {metric} is {row['value']} for {row['workload']!r} at {row['ts']}",
            hint="demand must be finite and >= 0",
        )
    step = _union_step_s(rows)
    step_us = round(step * 1e6)
    first = rows["ts"].min()
    bucket = ((pl.col("ts") - pl.lit(first)).dt.total_microseconds() / step_us).round()
    per_step = (
        rows.with_columns(bucket.cast(pl.Int64).alias("_b"))
        .group_by("workload", "_b")
        .agg(pl.col("value").mean())
        .group_by("_b")
        .agg(pl.col("value").sum())
        .sort("_b")
    )
    ts = pl.lit(first) + pl.duration(microseconds=pl.col("_b") * step_us)
    summed = per_step.select(
        pl.lit("total").alias("workload"), pl.lit(metric).alias("metric"), ts.alias("ts"), "value"
    )
    panel, report = to_panel(summed, metric=metric, step_s=step, source=source)
    start_us = int(panel["ts"].dt.epoch("us")[0])
    n_workloads = rows["workload"].n_unique()
    notes = [
        f"{metric} summed over {n_workloads} workload(s) per {step:g} s step; "
        f"{report.filled} empty step(s) filled by linear interpolation"
    ]
    return DemandSeries(
        source,
        panel["y"].to_numpy().astype(np.float64),
        step,
        start_us,
        metric,
        notes=notes,
        filled=report.filled,
    )


def _union_step_s(rows: pl.DataFrame) -> float:
    """The median interval between consecutive distinct timestamps of all workloads (whole
    seconds); the per-workload median (``infer_step_s``) when that is shorter than a second.

    Workloads that report only when busy (GenTD26's per-container QPS) are sampled more
    sparsely than the system, so the union of their timestamps shows the real step.
    """
    gaps = rows["ts"].unique().sort().diff().dt.total_microseconds().drop_nulls()
    gaps = gaps.filter(gaps > 0)
    if gaps.is_empty():
        return infer_step_s(rows)
    step = round(float(gaps.median()) / 1e6)  # type: ignore[arg-type]
    return float(step) if step >= 1 else infer_step_s(rows)


def is_lora(source: str) -> bool:
    """Whether SOURCE names the GenTD26 LoRA request trace (as a dataset table)."""
    return source.strip().lower() in LORA_ADDRESSES


def open_demand(
    source: str,
    options: ReadOptions,
    *,
    metric: str | None = None,
    workloads: list[str] | None = None,
) -> DemandSeries:
    """Open SOURCE as a demand series: LoRA concurrency for the LoRA table, else telemetry."""
    if is_lora(source):
        from foresize.ingest import datasets

        path = datasets.table_path("alibaba-gentd26:lora", mirror=options.mirror)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            requests, report = read_gentd26_lora(path)
        series = lora_concurrency(requests, name=source)
        series.sha256 = {source: report.sha256 or ""}
        return series
    with warnings.catch_warnings(), input_errors(source):
        warnings.simplefilter("ignore")
        opened = open_telemetry([source], options)
        frame = opened.frame
        if workloads:
            frame = frame.filter(pl.col("workload").is_in(workloads))
        containers_only = source.strip().lower() in QPS_ADDRESSES
        if containers_only:
            frame = frame.filter(pl.col("workload") != GATEWAY)
        # typed as every command types telemetry (text in 'value' is an input error);
        # bad values stay, for summed_demand to name
        collected = coerce_columns(frame.collect(), source=source).drop_nulls(["metric", "ts"])
    if collected.is_empty():
        raise InsufficientDataError(f"{source}: no rows to build a demand series from")
    series = summed_demand(
        collected.select("workload", "metric", "ts", "value"),
        metric=metric,
        source=source,
    )
    if containers_only:
        series.notes.append(
            "the gateway's own series (api_requests) left out: system QPS "
            "is the generative requests summed over containers"
        )
    series.sha256 = dict(opened.sha256)
    return series
