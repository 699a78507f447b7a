"""Wavelet forecaster: exact, causal decomposition; known answers; real GenTD26 series."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from foresize.core.errors import InputError
from foresize.forecast.models import make_forecaster
from foresize.forecast.panel import series_arrays
from foresize.forecast.wavelet import Wavelet, causal_components, haar_lowpass

values = st.lists(
    st.floats(min_value=-1e3, max_value=1e3, allow_nan=False), min_size=2, max_size=80
)


def test_the_filter_is_pywavelets_haar_as_an_average() -> None:
    assert haar_lowpass() == pytest.approx((0.5, 0.5))


def test_one_level_by_hand() -> None:
    comps = causal_components(np.array([2.0, 4.0, 8.0]), 1)
    # c_1(t) = (y(t) + y(t-1)) / 2 with y(-1) := y(0); d_1 = y - c_1
    assert comps[1].tolist() == [2.0, 3.0, 6.0]
    assert comps[0].tolist() == [0.0, 1.0, 2.0]


@given(values, st.integers(min_value=1, max_value=6))
def test_components_sum_to_the_series(y: list[float], levels: int) -> None:
    arr = np.array(y)
    comps = causal_components(arr, levels)
    assert comps.shape == (levels + 1, arr.size)
    assert comps.sum(axis=0) == pytest.approx(arr, abs=1e-9)


@settings(max_examples=60)
@given(values, st.integers(min_value=1, max_value=6), st.data())
def test_components_are_causal(y: list[float], levels: int, data: st.DataObject) -> None:
    arr = np.array(y)
    t = data.draw(st.integers(min_value=1, max_value=arr.size))
    full = causal_components(arr, levels)
    prefix = causal_components(arr[:t], levels)
    # what the decomposition says at t-1 does not change when the future arrives
    assert prefix[:, t - 1] == pytest.approx(full[:, t - 1], abs=1e-9)


def test_a_sinusoid_is_forecast_almost_exactly() -> None:
    t = np.arange(400)
    y = 10 + 5 * np.sin(2 * np.pi * t / 20)
    fc = Wavelet().forecast_series(y, 20, (80,), key="s")
    truth = 10 + 5 * np.sin(2 * np.pi * np.arange(400, 420) / 20)
    assert np.abs(fc.mean - truth).max() < 1e-3
    assert fc.model.startswith("wavelet(haar, levels=4")


def test_constant_zero_and_short_series() -> None:
    model = Wavelet()
    flat = model.forecast_series(np.full(300, 3.0), 4, (80,), key="c")
    assert flat.model == "constant (no variation)"
    assert flat.mean.tolist() == flat.upper[80].tolist() == [3.0] * 4
    zero = model.forecast_series(np.zeros(300), 2, (80,), key="z")
    assert zero.mean.tolist() == [0.0, 0.0]
    short = model.forecast_series(np.array([1.0, 5.0, 2.0]), 2, (80,), key="s")
    assert short.model == "naive (fallback: 3 points < 40 for 4 levels)"
    assert short.mean.tolist() == [2.0, 2.0]


def test_real_gpu_series(gpu_subset: pl.DataFrame) -> None:
    out = make_forecaster("wavelet", levels=3).fit(gpu_subset).predict(30, (80, 95))
    assert out.columns == [
        "series",
        "ts",
        "step",
        "mean",
        "lo_80",
        "hi_80",
        "lo_95",
        "hi_95",
        "model",
    ]
    assert out.height == 30 * gpu_subset["series"].n_unique()
    numbers = out.select("mean", "lo_80", "hi_80", "lo_95", "hi_95").to_numpy()
    assert np.isfinite(numbers).all()
    assert (numbers >= 0).all()
    assert (out["lo_95"] <= out["lo_80"]).all()
    assert (out["lo_80"] <= out["mean"]).all()
    assert (out["mean"] <= out["hi_80"]).all()
    assert (out["hi_80"] <= out["hi_95"]).all()
    assert out["model"].str.starts_with("wavelet(haar, levels=3").any()
    # a rolling check on one busy series: the 95 % band holds most of the next 30 points
    y = max(series_arrays(gpu_subset).values(), key=lambda a: float(np.std(a)))
    held = []
    for origin in range(y.size - 300, y.size - 30, 30):
        fc = Wavelet().forecast_series(y[:origin], 30, (95,), key="b")
        future = y[origin : origin + 30]
        held.append(np.mean((fc.lower[95] <= future) & (future <= fc.upper[95])))
    assert np.mean(held) > 0.8


@pytest.mark.parametrize(
    ("params", "field"),
    [({"levels": 0}, "'levels'"), ({"detail_lags": 0}, "'detail_lags'")],
)
def test_bad_parameters_are_named(
    params: dict[str, int], field: str, gpu_subset: pl.DataFrame
) -> None:
    with pytest.raises(InputError, match=field):
        Wavelet(**params).fit(gpu_subset)


def test_causal_components_rejects_zero_levels() -> None:
    with pytest.raises(InputError, match="'levels' parameter of causal_components"):
        causal_components(np.arange(5.0), 0)
