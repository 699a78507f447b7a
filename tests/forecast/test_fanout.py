"""Fan-out engines change how long a backtest takes, never what it finds."""

from __future__ import annotations

import polars as pl
import pytest

from foresize.core.errors import InputError
from foresize.core.parallel import run_tasks
from foresize.forecast.backtest import backtest
from foresize.forecast.baselines import WindowAverage
from foresize.forecast.fanout import SERIAL_CHUNKS, backtest_fanout, forecast_in_chunks
from foresize.forecast.hybrid import Hybrid
from foresize.forecast.wavelet import Wavelet


def _square(x: int) -> int:
    return x * x


def test_run_tasks_keeps_input_order_on_every_engine() -> None:
    items = [(i,) for i in range(7)]
    expected = [i * i for i in range(7)]
    assert run_tasks(_square, items, engine="serial") == expected
    assert run_tasks(_square, items, engine="local", workers=2) == expected
    with pytest.raises(InputError, match="not one of serial, local, ray"):  # a UsageError
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


def test_forecast_in_chunks_equals_one_call(gpu_panel: pl.DataFrame) -> None:
    """Per-series models in counted chunks: the same frame, rows and order, as one call
    on all 143 real containers (more series than chunks, so chunks hold several)."""
    seen: list[int] = []
    chunked = forecast_in_chunks(gpu_panel, Wavelet(), 12, (80, 95), on_chunk=seen.append)
    whole = Wavelet().fit(gpu_panel).predict(12, (80, 95))
    assert chunked.equals(whole)
    assert len(seen) == SERIAL_CHUNKS
    assert sum(seen) == gpu_panel["series"].n_unique() == 143


def test_a_global_model_is_one_step(gpu_subset: pl.DataFrame) -> None:
    seen: list[int] = []
    frame = forecast_in_chunks(gpu_subset, Hybrid(), 6, (80,), on_chunk=seen.append)
    assert seen == [12]
    assert frame["series"].n_unique() == 12
