"""Forecast evaluation panels from GenTD26: ``series, ts, y`` frames on regular grids.

* ``gpu``: ``pod_gpu_duty_cycle``, gpu_util_pct per container, 57 s grid.
* ``mem``: ``pod_memory_util``, mem_util_pct per container, 57 s grid.
* ``qps``: the QPS table holds a row only when a workload saw requests, so it is summed
  per request type (tenant) and in total per 57 s step on a full grid, absent steps
  being 0 requests: ``generative_requests``, ``api_requests`` and ``total``.
* ``lora``: LoRA arrivals per minute per workload plus their sum, averaged over
  10-minute bins (still arrivals per minute): at one minute the 23 days give 331
  origins per series, which the AutoARIMA anchor cannot refit in a sane time, while
  10-minute bins keep the whole history and the daily cycle (144 bins).
* ``queue`` (benchmarks only, not in ``PANELS``): ``queue_rt``, the queueing delay in
  seconds per container, on its own grid (a sample every 114 s, about 13 hours per
  container): a latency rather than a usage, real serving telemetry of another kind.
* ``steps`` (benchmarks only, constructed): 400 step-like GPU memory series of a day at
  one sample a minute (``rightsize_panels.step_fleet``: flat for hours, then a jump, as
  GPU memory is when a server loads another model). The real GenTD26 GPU memory panel,
  where a plain hybrid once lost to naive by 9 %, is not in the mirror; this is the
  shape it has, with no seasonality (its season is an hour only so that seasonal naive
  has one).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from foresize.core.errors import UnknownNameError
from foresize.evaluate.common import read_table
from foresize.forecast.panel import to_panel

STEP_S = 57
PANELS = ("gpu", "mem", "qps", "lora")
EXTRA_PANELS = ("queue", "steps")
# an hour of 57 s steps; a day of 10-minute bins; half an hour of 114 s steps (the queue
# panel spans ~13 hours, too short for two days)
SEASONS = {"gpu": 60, "mem": 60, "qps": 60, "lora": 144, "queue": 16, "steps": 60}


def binned_sum(frame: pl.DataFrame, key: pl.Expr, step_s: int) -> pl.DataFrame:
    """Sum of ``value`` per ``key`` and ``step_s`` bin on a full grid (absent bins are 0)."""
    t0 = frame["ts"].min()
    binned = frame.with_columns(
        series=key,
        b=((pl.col("ts") - pl.lit(t0)).dt.total_seconds() // step_s).cast(pl.Int64),
    )
    sums = binned.group_by("series", "b").agg(y=pl.col("value").sum())
    n_bins = int(sums["b"].max()) + 1  # type: ignore[arg-type]
    grid = pl.DataFrame({"series": sums["series"].unique().sort()}).join(
        pl.DataFrame({"b": np.arange(n_bins)}), how="cross"
    )
    out = grid.join(sums, on=["series", "b"], how="left").with_columns(pl.col("y").fill_null(0.0))
    return out.with_columns(
        ts=pl.lit(t0) + pl.duration(seconds=pl.col("b") * step_s),
    ).select("series", "ts", "y")


def load_panel(
    name: str, *, dataset: str = "alibaba-gentd26", mirror: Path | None = None
) -> pl.DataFrame:
    """One evaluation panel ``series, ts, y`` (see the module docstring)."""
    if name in ("gpu", "mem", "queue"):
        address = {"gpu": "gpu_duty_cycle", "mem": "memory_util", "queue": "queue_rt"}[name]
        panel, _ = to_panel(read_table(f"{dataset}:{address}", mirror=mirror))
        return panel
    if name == "qps":
        frame = read_table(f"{dataset}:qps", mirror=mirror)
        by_tenant = binned_sum(frame, pl.col("tenant"), STEP_S)
        total = (
            by_tenant.group_by("ts").agg(y=pl.col("y").sum()).with_columns(series=pl.lit("total"))
        )
        return pl.concat([by_tenant, total.select("series", "ts", "y")]).sort("series", "ts")
    if name == "lora":
        frame = read_table(f"{dataset}:lora", mirror=mirror)
        total = (
            frame.group_by("ts")
            .agg(value=pl.col("value").sum())
            .with_columns(workload=pl.lit("total"))
        )
        columns = ["workload", "ts", "value"]
        both = pl.concat([frame.select(columns), total.select(columns)])
        per_bin = binned_sum(both, pl.col("workload"), 600)
        return per_bin.with_columns(pl.col("y") / 10.0).sort("series", "ts")
    if name == "steps":
        from foresize.evaluate.rightsize_panels import step_fleet

        return pl.concat(
            pl.DataFrame({"series": key, "y": history.values}).with_columns(
                ts=pl.from_epoch(pl.Series(history.ts_s.astype(np.int64)), time_unit="s")
                .dt.replace_time_zone("UTC")
            )
            for key, history in step_fleet(seed=0).items()
        ).select("series", "ts", "y")
    raise UnknownNameError("forecast panel", name, [*PANELS, *EXTRA_PANELS])
