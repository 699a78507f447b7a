"""Regularising telemetry into a forecasting panel: the grid rule and its counts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from foresize.core.errors import InputError
from foresize.forecast.panel import check_panel, infer_step_s, series_arrays, to_panel


def _telemetry(rows: list[tuple[str, float, float]], metric: str = "gpu_util_pct") -> pl.DataFrame:
    base = datetime(2024, 1, 1, tzinfo=UTC)
    return pl.DataFrame(
        {
            "workload": [w for w, _, _ in rows],
            "metric": [metric] * len(rows),
            "ts": [base + timedelta(seconds=s) for _, s, _ in rows],
            "value": [v for _, _, v in rows],
        },
        schema={
            "workload": pl.String,
            "metric": pl.String,
            "ts": pl.Datetime("us", "UTC"),
            "value": pl.Float64,
        },
    )


def test_gentd26_panel_keeps_every_series_on_a_57_second_grid(
    gpu_telemetry: pl.DataFrame, gpu_panel: pl.DataFrame
) -> None:
    panel, report = to_panel(gpu_telemetry)
    assert report.step_s == 57
    assert report.series == gpu_telemetry["workload"].n_unique() == 143
    assert report.samples == gpu_telemetry.height
    # every grid point is a sample, an interpolated gap, or absorbs merged samples
    assert report.points == report.samples - report.merged + report.filled
    steps = panel.group_by("series").agg(
        pl.col("ts").diff().dt.total_seconds().drop_nulls().unique()
    )
    assert set(steps["ts"].explode().to_list()) == {57}
    assert panel.equals(gpu_panel)


def test_gaps_are_interpolated_and_close_samples_averaged() -> None:
    frame = _telemetry([("a", 0, 10.0), ("a", 60, 20.0), ("a", 63, 40.0), ("a", 240, 0.0)])
    panel, report = to_panel(frame, step_s=60)
    assert panel["y"].to_list() == [10.0, 30.0, 20.0, 10.0, 0.0]
    assert (report.merged, report.filled) == (1, 2)


def test_median_interval_is_the_step() -> None:
    frame = _telemetry([("a", 0, 1), ("a", 30, 1), ("a", 60, 1), ("a", 150, 1), ("b", 5, 1)])
    assert infer_step_s(frame) == 30


def test_several_metrics_need_a_choice() -> None:
    frame = pl.concat(
        [_telemetry([("a", 0, 1.0)]), _telemetry([("a", 0, 5.0)], metric="mem_util_pct")]
    )
    with pytest.raises(InputError, match="pick one with --metric"):
        to_panel(frame)
    with pytest.raises(InputError, match="'qps' does not appear"):
        to_panel(frame, metric="qps")
    panel, report = to_panel(frame, metric="mem_util_pct")
    assert panel["y"].to_list() == [5.0]
    assert report.metric == "mem_util_pct"


def test_check_panel_names_the_bad_value() -> None:
    panel = to_panel(_telemetry([("a", 0, 1.0), ("a", 60, 2.0)]))[0]
    broken = panel.with_columns(
        y=pl.when(pl.col("y") > 1).then(float("nan")).otherwise(pl.col("y"))
    )
    with pytest.raises(InputError, match="y is nan for series 'a'"):
        check_panel(broken)
    with pytest.raises(InputError, match="missing column 'y'"):
        check_panel(panel.drop("y"))


def test_series_arrays_are_in_time_order() -> None:
    panel = to_panel(_telemetry([("b", 60, 2.0), ("a", 0, 1.0), ("b", 0, 1.0)]), step_s=60)[0]
    arrays = series_arrays(panel.reverse())
    assert list(arrays) == ["a", "b"]
    assert arrays["b"].tolist() == [1.0, 2.0]
