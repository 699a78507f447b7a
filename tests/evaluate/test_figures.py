"""Report figures a person can read, built as matplotlib objects on the real GenTD26 data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from foresize.evaluate.common import first_workloads, read_table
from foresize.evaluate.forecasting import sample_series, subset
from foresize.evaluate.panels import load_panel
from foresize.evaluate.rightsizing import frontier_figure, tradeoff_curves
from foresize.forecast.backtest import backtest
from foresize.forecast.models import FORECASTERS

pytest.importorskip("matplotlib", reason="the plot extra")


def test_forecast_samples_move(mirror: Path) -> None:
    """GPU duty cycles: the first series by name are idle at their last origin (the old
    choice drew three flat zeros); the samples chosen now all vary there."""
    result = backtest(subset(load_panel("gpu", mirror=mirror), 8), FORECASTERS.get("naive")())
    last = result.points.filter(pl.col("origin") == pl.col("origin").max().over("series"))
    spread = dict(last.group_by("series").agg(pl.col("y").var()).iter_rows())
    first_by_name = sorted(spread)[:3]
    assert all(spread[name] == 0 for name in first_by_name)
    chosen = sample_series(result)
    assert chosen
    assert all(spread[name] > 0 for name in chosen)
    assert len(set(chosen)) == len(chosen)


def test_forecast_samples_start_from_the_typical_series(mirror: Path) -> None:
    result = backtest(subset(load_panel("mem", mirror=mirror), 8), FORECASTERS.get("naive")())
    chosen = sample_series(result, n=3)
    assert len(chosen) == 3
    scales = pl.DataFrame({"series": list(result.scales), "scale": list(result.scales.values())})
    mase = dict(result.points.join(scales, on="series").group_by("series").agg(
        ((pl.col("y") - pl.col("mean")).abs() / pl.col("scale")).mean()).iter_rows())
    ranked = sorted(mase.values())
    assert mase[chosen[0]] == ranked[len(ranked) // 2]


def test_rightsize_frontier_ticks_are_whole_containers(mirror: Path) -> None:
    import matplotlib.pyplot as plt

    memory = first_workloads(read_table("alibaba-gentd26:memory_util", mirror=mirror), 5)
    fig = frontier_figure(tradeoff_curves(memory))
    (ax,) = fig.axes
    fig.canvas.draw()
    low, high = ax.get_ylim()
    ticks = [t for t in ax.get_yticks() if low <= t <= high]
    assert len(ticks) >= 2
    assert all(float(t).is_integer() for t in ticks), ticks
    # each strategy's curve in its own dash and colour
    styles = {(str(line._unscaled_dash_pattern), line.get_color()) for line in ax.lines}
    assert len(styles) == len(ax.lines) > 1
    assert np.isfinite(low)
    plt.close(fig)
