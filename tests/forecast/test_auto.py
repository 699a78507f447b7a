"""``auto`` picks per series by backtest."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from foresize.core.errors import InputError, UnknownNameError
from foresize.forecast.auto import Auto
from foresize.forecast.baselines import naive_forecast


def _panel(series: dict[str, np.ndarray]) -> pl.DataFrame:
    base = datetime(2024, 1, 1, tzinfo=UTC)
    return pl.concat(
        pl.DataFrame(
            {
                "series": [name] * values.size,
                "ts": [base + timedelta(minutes=i) for i in range(values.size)],
                "y": values.astype(float),
            },
            schema={"series": pl.String, "ts": pl.Datetime("us", "UTC"), "y": pl.Float64},
        )
        for name, values in series.items()
    )


def test_noise_goes_to_the_average_and_a_trend_to_naive() -> None:
    rng = np.random.default_rng(7)
    panel = _panel(
        {
            "noise": 50 + rng.normal(0, 10, 400),  # i.i.d.: the mean is the best forecast
            "trend": np.arange(400.0) + rng.normal(0, 1, 400),  # an average lags a trend
        }
    )
    auto = Auto(["naive", "window_average"]).fit(panel)
    assert auto.choice_ == {"noise": "window_average", "trend": "naive"}
    out = auto.predict(4)
    assert out.filter(pl.col("series") == "noise")["model"][0].startswith("auto:window_average")
    assert out.height == 8


def test_sparse_counts_go_to_the_median_not_the_mean() -> None:
    """Mostly-zero counts with bursts: the window's mean sits above the zeros and errs at
    every quiet step, its median is zero there (MASE scores absolute errors).
    """
    rng = np.random.default_rng(11)
    counts = rng.poisson(3.0, 400) * (rng.random(400) < 0.15)
    auto = Auto(["naive", "window_average", "window_median"], extra_z=0.0)
    choice = auto.fit(_panel({"sparse": counts.astype(float)})).choice_
    assert choice == {"sparse": "window_median"}
    assert auto.predict(3)["mean"].to_list() == [0.0, 0.0, 0.0]


def test_bad_candidates() -> None:
    panel = _panel({"a": np.arange(50.0)})
    with pytest.raises(UnknownNameError, match="Did you mean 'naive'"):
        Auto(["naiv"]).fit(panel)
    with pytest.raises(InputError, match="its own candidate"):
        Auto(["auto"]).fit(panel)


def test_bands_stay_within_the_observed_range_as_the_hybrids_do() -> None:
    """Clipped to the observed range (the default, as in the hybrid), a band leaves it
    only as far as naive's empirical band does (``GuardChoice.forecast``); without the
    clip the bands are the candidates' own, wider here, and usage stays at or above zero.
    """
    rng = np.random.default_rng(3)
    trend = np.arange(400.0) + rng.normal(0, 1, 400)
    noise = 5 + rng.normal(0, 2, 400)
    panel = _panel({"trend": trend, "noise": noise})
    clipped = Auto(["naive", "window_average"]).fit(panel).predict(6)
    free = Auto(["naive", "window_average"], clip_to_range=False).fit(panel).predict(6)
    for name, y in (("trend", trend), ("noise", noise)):
        rows = clipped.filter(pl.col("series") == name)
        reach = naive_forecast(y, 6, (95,))
        assert (rows["hi_95"].to_numpy() <= np.maximum(y.max(), reach.upper[95])).all()
        assert (rows["lo_95"].to_numpy() >= np.minimum(y.min(), reach.lower[95])).all()
        loose = free.filter(pl.col("series") == name)
        assert (loose["hi_95"] >= rows["hi_95"]).all()
    assert (free["hi_95"] > clipped["hi_95"]).any()
    assert free.filter(pl.col("series") == "noise")["lo_95"].min() >= 0.0
