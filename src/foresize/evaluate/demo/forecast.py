"""Demo stages 2-4 helpers: which metrics are forecast, over what horizon, how accurately.

One forecaster (``forecast.models``) per metric over the planning horizon with 80/95 %
intervals, and its short rolling-origin backtest (``forecast.backtest``) as the accuracy.
"""

from __future__ import annotations

import math
from typing import Any

import polars as pl

from foresize.core.errors import InsufficientDataError
from foresize.forecast.backtest import backtest
from foresize.forecast.models import make_forecaster
from foresize.forecast.panel import to_panel
from foresize.recommend.service import (
    DEMAND_METRICS,
    demand_frame,
)
from foresize.recommend.strategies import MIN_POINTS

RESOURCE_METRICS = ("mem_bytes", "gpu_mem_bytes", "cpu_cores", "mem_util_pct")
UTIL_METRIC = "gpu_util_pct"  # right-sized (and the model placed on it) only without demand
FORECAST_METRICS = (*DEMAND_METRICS, *RESOURCE_METRICS, UTIL_METRIC)
ACCURACY_HORIZON_S = 6 * 3600.0
LEVELS = (80, 95)
DAY_S = 86400.0
HISTORY_SHARE = 3 / 7  # the default horizon is at most 3/7 of the history (the 70/30 split)
BACKTEST_ORIGINS = 3


def default_horizon_s(frame: pl.DataFrame) -> float:
    """One day, or 3/7 of the median history when that is shorter."""
    spans = frame.group_by("workload", "metric").agg(
        (pl.col("ts").max() - pl.col("ts").min()).dt.total_seconds().alias("span")
    )
    median = float(spans["span"].median() or 0.0)  # type: ignore[arg-type]
    return max(60.0, min(DAY_S, HISTORY_SHARE * median))


def _metric_rows(frame: pl.DataFrame, metric: str) -> pl.DataFrame:
    """One row per workload and instant (demand split by tenant summed)."""
    if metric in DEMAND_METRICS:
        return demand_frame(frame, metric).select("workload", "metric", "ts", "value")
    return frame.filter(pl.col("metric") == metric).select("workload", "metric", "ts", "value")


def long_enough(rows: pl.DataFrame, min_points: int) -> pl.DataFrame:
    """The rows of workloads with at least ``min_points`` samples."""
    counts = rows.group_by("workload").len()
    keep = counts.filter(pl.col("len") >= min_points)["workload"]
    return rows.filter(pl.col("workload").is_in(keep.to_list()))


def forecast_metrics(
    frame: pl.DataFrame,
    *,
    forecaster: str,
    horizon_s: float,
    accuracy: bool,
    source: str,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Forecasts with intervals per metric, and the backtest accuracy per metric."""
    present = set(frame["metric"].unique().to_list())
    forecasts: list[pl.DataFrame] = []
    scores: list[dict[str, Any]] = []
    for metric in (m for m in FORECAST_METRICS if m in present):
        rows = long_enough(_metric_rows(frame, metric), MIN_POINTS)
        if rows.is_empty():
            continue
        panel, report = to_panel(rows, metric=metric, source=source)
        h = max(1, math.ceil(horizon_s / report.step_s - 1e-9))
        predicted = make_forecaster(forecaster).fit(panel).predict(h, LEVELS)
        forecasts.append(predicted.with_columns(metric=pl.lit(metric)))
        if accuracy:
            short = max(1, math.ceil(min(horizon_s, ACCURACY_HORIZON_S) / report.step_s - 1e-9))
            scores.append({"metric": metric, **_accuracy(panel, forecaster, short)})
    if not forecasts:
        raise InsufficientDataError(
            f"{source}: no series has {MIN_POINTS} samples of a metric foresize forecasts "
            f"({', '.join(FORECAST_METRICS)})"
        )
    frame_out = pl.concat(forecasts, how="diagonal_relaxed")
    head = ["metric", "series", "ts", "step"]
    return frame_out.select(*head, pl.exclude(head)), pl.DataFrame(scores)


def _accuracy(panel: pl.DataFrame, forecaster: str, h: int) -> dict[str, Any]:
    """A short rolling-origin backtest: ``BACKTEST_ORIGINS`` origins over the last 30 %,
    each forecasting ``h`` steps (at most the test region).
    """
    lengths = panel.group_by("series").len()["len"]
    test = math.ceil(0.3 * int(lengths.median() or 0))  # type: ignore[arg-type]
    horizon = max(1, min(h, test))
    every = max(1, math.ceil(test / BACKTEST_ORIGINS))
    result = backtest(panel, make_forecaster(forecaster), horizon=horizon, every=every)
    metrics = result.metrics
    return {
        "model": result.model,
        "series": result.series,
        "origins": result.origins,
        "horizon_steps": horizon,
        **{k: metrics.get(k) for k in ("mase", "wape", "coverage_80", "coverage_95")},
    }
