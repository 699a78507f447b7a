"""Fan-out engines change how long a backtest takes, never what it finds."""

from __future__ import annotations

import polars as pl
import pytest

from foresize.core.errors import InputError
from foresize.core.parallel import run_tasks
from foresize.forecast.backtest import backtest
from foresize.forecast.baselines import WindowAverage
from foresize.forecast.fanout import backtest_fanout


def _square(x: int) -> int:
    return x * x


def test_run_tasks_keeps_input_order_on_every_engine() -> None:
    items = [(i,) for i in range(7)]
    expected = [i * i for i in range(7)]
    assert run_tasks(_square, items, engine="serial") == expected
    assert run_tasks(_square, items, engine="local", workers=2) == expected
    with pytest.raises(InputError, match="not one of serial, local, ray"):
        run_tasks(_square, items, engine="spark")


@pytest.mark.parametrize("engine", ["local", "ray"])
def test_backtest_fanout_matches_serial(engine: str, gpu_subset: pl.DataFrame) -> None:
    serial = backtest(gpu_subset, WindowAverage())
    fanned = backtest_fanout(gpu_subset, "window_average", engine=engine, workers=2)
    assert fanned.series == serial.series
    assert fanned.points.sort("series", "origin", "step").equals(
        serial.points.sort("series", "origin", "step")
    )
    assert fanned.metrics["mase"] == pytest.approx(serial.metrics["mase"])
