"""Automatic ARIMA: known answers, fallbacks, warm refits and a run on real GenTD26 series."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from foresize.core.errors import InputError
from foresize.forecast.arima import Arima, ArimaConfig, Spec, arima_series, ndiffs
from foresize.forecast.models import make_forecaster


def _ar1(n: int, phi: float, seed: int, mean: float = 50.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    e = rng.normal(size=n)
    x = np.zeros(n)
    for t in range(1, n):
        x[t] = phi * x[t - 1] + e[t]
    return mean + x


def _panel(values: dict[str, np.ndarray]) -> pl.DataFrame:
    parts = []
    for name, y in values.items():
        ts = pl.datetime_range(
            pl.datetime(2026, 1, 1, time_zone="UTC"),
            pl.datetime(2026, 1, 1, time_zone="UTC") + pl.duration(minutes=y.size - 1),
            "1m",
            eager=True,
        ).dt.cast_time_unit("us")
        parts.append(pl.DataFrame({"series": [name] * y.size, "ts": ts, "y": y}))
    return pl.concat(parts)


def test_recovers_a_simulated_ar1() -> None:
    model = Arima()
    y = _ar1(1000, 0.7, seed=1)
    fc = model.forecast_series(y, 10, (80, 95), key="ar1")
    assert fc.model == "arima(1,0,0)"
    state = model.cache_["ar1"]
    assert state.spec == Spec(1, 0, 0)
    intercept, phi = state.params
    assert phi == pytest.approx(0.7, abs=0.06)
    assert intercept / (1 - phi) == pytest.approx(50.0, abs=0.5)  # the process mean
    # the forecast decays from the last value towards the mean, geometrically
    gap = fc.mean - intercept / (1 - phi)
    assert gap[1:] / gap[:-1] == pytest.approx(np.full(9, phi))
    assert (fc.lower[95] <= fc.lower[80]).all()
    assert (fc.upper[80] <= fc.upper[95]).all()


def test_a_random_walk_is_differenced_once() -> None:
    walk = np.cumsum(np.random.default_rng(2).normal(size=600))
    assert ndiffs(walk, max_d=2) == 1
    assert ndiffs(_ar1(600, 0.3, seed=3), max_d=2) == 0


def test_constant_and_all_zero_series_give_the_constant_with_no_spread() -> None:
    for value in (7.5, 0.0):
        fc, state = arima_series(np.full(200, value), 5, (80, 95), ArimaConfig(), None)
        assert fc.model == "constant (no variation)"
        assert state is None
        assert fc.mean.tolist() == [value] * 5
        assert fc.lower[95].tolist() == fc.upper[95].tolist() == [value] * 5


def test_a_three_point_series_falls_back_to_naive_and_says_so() -> None:
    fc, _ = arima_series(np.array([1.0, 4.0, 2.0]), 4, (80,), ArimaConfig(), None)
    assert fc.model == "naive (fallback: 3 points < 16)"
    assert fc.mean.tolist() == [2.0] * 4


def test_a_failing_fit_falls_back_instead_of_crashing(monkeypatch: pytest.MonkeyPatch) -> None:
    from statsmodels.tsa.statespace.sarimax import SARIMAX

    def broken(*args: object, **kwargs: object) -> None:
        raise ValueError("boom")

    monkeypatch.setattr(SARIMAX, "fit", broken)
    level = _ar1(300, 0.2, seed=4)  # undifferenced: even the simplest order needs fit()
    fc, state = arima_series(level, 3, (80,), ArimaConfig(max_d=0), None)
    assert fc.model == "naive (fallback: arima ValueError)"
    assert state is None
    assert fc.mean.tolist() == [level[-1]] * 3
    walk = np.cumsum(level - 50)  # differenced: arima(0,1,0) has no parameter to fit
    fc, state = arima_series(walk, 3, (80,), ArimaConfig(), None)
    assert fc.model.startswith("arima(0,1,0) (fallback from arima(")
    assert fc.model.endswith(": ValueError)")
    assert state is not None


def test_warm_start_reuses_the_order_and_re_searches_on_schedule() -> None:
    y = _ar1(700, 0.6, seed=0)
    model = Arima(research_every=2)
    first = model.fit(_panel({"a": y[:500]})).predict(5)
    assert model.cache_["a"].refits == 0
    second = model.fit(_panel({"a": y[:530]})).predict(5)
    assert model.cache_["a"].refits == 1
    assert second["model"][0] == first["model"][0]
    model.fit(_panel({"a": y[:560]})).predict(5)
    model.fit(_panel({"a": y[:590]})).predict(5)  # third refit: the order is searched again
    assert model.cache_["a"].refits == 0
    cold = Arima(warm_start=False)
    cold.fit(_panel({"a": y[:500]})).predict(5)
    cold.fit(_panel({"a": y[:530]})).predict(5)
    assert cold.cache_["a"].refits == 0


def test_a_seasonal_period_finds_the_season() -> None:
    rng = np.random.default_rng(6)
    t = np.arange(480)
    y = 20 + 8 * np.sin(2 * np.pi * t / 12) + rng.normal(scale=0.5, size=t.size)
    fc = Arima(season=12).forecast_series(y, 12, (80,), key="s")
    assert fc.model.endswith("[12]")
    truth = 20 + 8 * np.sin(2 * np.pi * np.arange(480, 492) / 12)
    assert np.abs(fc.mean - truth).max() < 2.0


def test_real_gpu_series_in_two_processes(gpu_subset: pl.DataFrame) -> None:
    names = sorted(gpu_subset["series"].unique().to_list())[:6]
    panel = gpu_subset.filter(pl.col("series").is_in(names))
    one = make_forecaster("arima").fit(panel).predict(30, (80, 95))
    two = Arima(n_jobs=2).fit(panel).predict(30, (80, 95))
    assert one.columns == [
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
    assert one.height == 30 * len(names)
    assert one.equals(two)  # processes change nothing but the wall time
    values = one.select("mean", "lo_80", "hi_80", "lo_95", "hi_95").to_numpy()
    assert np.isfinite(values).all()
    assert (values >= 0).all()
    assert (one["lo_95"] <= one["lo_80"]).all()
    assert (one["lo_80"] <= one["mean"]).all()
    assert (one["mean"] <= one["hi_80"]).all()
    assert (one["hi_80"] <= one["hi_95"]).all()
    assert one["model"].str.starts_with("arima(").any()


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"max_p": -1}, "'max_p'"),
        ({"max_q": 1.5}, "'max_q'"),
        ({"max_d": 3}, "'max_d'"),
        ({"season": 1}, "'season'"),
        ({"criterion": "bic"}, "'criterion'"),
        ({"n_jobs": 0}, "'n_jobs'"),
    ],
)
def test_bad_parameters_are_named(params: dict[str, object], field: str) -> None:
    with pytest.raises(InputError, match=field):
        Arima(**params).fit(_panel({"a": np.arange(20.0)}))  # type: ignore[arg-type]
