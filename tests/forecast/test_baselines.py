"""Baselines: known answers, the output contract and empirical intervals."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from foresize.core.errors import InputError, NotFittedError, UnknownNameError
from foresize.forecast import baselines
from foresize.forecast.baselines import (
    MIN_ERRORS,
    Naive,
    SeasonalNaive,
    WindowAverage,
    naive_forecast,
    step_quantiles,
)
from foresize.forecast.models import FORECASTERS, make_forecaster
from foresize.forecast.protocol import level_quantiles


def test_level_quantiles() -> None:
    assert level_quantiles(80) == pytest.approx((0.1, 0.9))
    assert level_quantiles(95) == pytest.approx((0.025, 0.975))


def test_naive_carries_the_last_value_with_change_quantiles() -> None:
    y = np.arange(20, dtype=float)  # every one-step change is +1, every k-step change +k
    fc = naive_forecast(y, 3, (80,))
    assert fc.mean.tolist() == [19.0, 19.0, 19.0]
    # the bands always hold the point forecast, so a line's lower band is the last value
    assert fc.lower[80].tolist() == pytest.approx([19.0, 19.0, 19.0])
    assert fc.upper[80].tolist() == pytest.approx([20.0, 21.0, 22.0])


def test_seasonal_naive_repeats_the_season_and_falls_back_when_short() -> None:
    y = np.tile([1.0, 5.0, 9.0], 4)
    fc = SeasonalNaive(season=3).forecast_series(y, 5, (80,), key="s")
    assert fc.mean.tolist() == [1.0, 5.0, 9.0, 1.0, 5.0]
    short = SeasonalNaive(season=10).forecast_series(y, 2, (80,), key="s")
    assert "fallback" in short.model
    assert short.mean.tolist() == [9.0, 9.0]


def test_window_average() -> None:
    y = np.array([0.0, 0, 0, 4, 8])
    fc = WindowAverage(window=2).forecast_series(y, 2, (80,), key="s")
    assert fc.mean.tolist() == [6.0, 6.0]
    with pytest.raises(InputError, match="window must be at least 1"):
        WindowAverage(window=0).forecast_series(y, 2, (80,), key="s")


@pytest.mark.parametrize("name", ["naive", "seasonal_naive", "window_average"])
def test_contract_on_real_series(name: str, gpu_subset: pl.DataFrame) -> None:
    out = make_forecaster(name).fit(gpu_subset).predict(7, levels=(95, 80))
    assert out.columns == [
        "series", "ts", "step", "mean", "lo_80", "hi_80", "lo_95", "hi_95", "model",
    ]  # fmt: skip
    assert out.height == 7 * gpu_subset["series"].n_unique()
    assert out.filter(
        (pl.col("lo_95") > pl.col("lo_80"))
        | (pl.col("lo_80") > pl.col("mean"))
        | (pl.col("mean") > pl.col("hi_80"))
        | (pl.col("hi_80") > pl.col("hi_95"))
        | (pl.col("lo_95") < 0)
    ).is_empty()
    last = gpu_subset.group_by("series").agg(pl.col("ts").max())
    first_step = out.filter(pl.col("step") == 1).join(last, on="series", suffix="_last")
    assert (first_step["ts"] - first_step["ts_last"]).dt.total_seconds().unique().to_list() == [57]


def test_predict_before_fit_and_bad_arguments(gpu_subset: pl.DataFrame) -> None:
    with pytest.raises(NotFittedError):
        Naive().predict(3)
    fitted = Naive().fit(gpu_subset)
    with pytest.raises(InputError, match="positive whole number"):
        fitted.predict(0)
    with pytest.raises(InputError, match="between 0 and 100"):
        fitted.predict(3, levels=(100,))
    with pytest.raises(UnknownNameError, match="Did you mean 'naive'"):
        make_forecaster("naiv")
    assert {"naive", "seasonal_naive", "window_average"} <= set(FORECASTERS.names())


def test_one_point_series_says_it_has_no_interval_history() -> None:
    fc = naive_forecast(np.array([3.0]), 2, (80,))
    assert fc.mean.tolist() == [3.0, 3.0]
    assert fc.lower[80].tolist() == fc.upper[80].tolist() == [3.0, 3.0]
    assert "no interval history" in fc.model


@pytest.mark.parametrize("chunk", [1 << 22, 37, 1])
def test_step_quantiles_equal_numpy_per_step(chunk: int, monkeypatch: pytest.MonkeyPatch) -> None:
    # the one-matrix sort gives numpy's own linear quantile, bit for bit, whatever the chunks
    monkeypatch.setattr(baselines, "SORT_CHUNK", chunk)
    rng = np.random.default_rng(3)
    y = np.round(rng.gamma(1.0, 3.0, 120) * (rng.random(120) < 0.7), 1)  # ties, zeros
    steps = [y[k:] - y[:-k] for k in range(1, 119)] + [np.empty(0)]
    qs = [0.025, 0.1, 0.5, 0.9, 0.975]
    found = step_quantiles(steps, qs)
    for k, errors in enumerate(steps):
        if errors.size >= MIN_ERRORS:
            assert found[k].tolist() == np.quantile(errors, qs).tolist()
        else:  # too few errors to say: NaN, and the bands keep the steps before
            assert np.isnan(found[k]).all()
