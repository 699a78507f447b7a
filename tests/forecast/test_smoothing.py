"""Simple exponential smoothing: known levels, the fitted rate, paths that read no future."""

from __future__ import annotations

import numpy as np
import pytest

from foresize.forecast.auto import Auto
from foresize.forecast.guard import validation_origins
from foresize.forecast.models import make_forecaster
from foresize.forecast.smoothing import (
    ALPHAS,
    ExponentialSmoothing,
    fit_alpha,
    ses_paths,
    smoothed_levels,
)
from tests.forecast.test_auto import _panel


def test_smoothed_levels_by_hand() -> None:
    y = np.array([4.0, 8.0, 0.0, 2.0])
    # 4; 0.5*8 + 0.5*4 = 6; 0.5*0 + 0.5*6 = 3; 0.5*2 + 0.5*3 = 2.5
    assert smoothed_levels(y, 0.5).tolist() == [4.0, 6.0, 3.0, 2.5]
    assert smoothed_levels(y, 1.0).tolist() == y.tolist()  # rate 1 is naive


def test_fitted_rate_follows_a_walk_and_averages_noise() -> None:
    rng = np.random.default_rng(5)
    walk = np.cumsum(rng.normal(0, 1, 600))
    noise = 10 + rng.normal(0, 1, 600)
    assert fit_alpha(walk) >= 0.5  # the last value is the best one-step forecast
    assert fit_alpha(noise) <= 0.1  # the long-run mean is
    assert fit_alpha(np.array([1.0, 2.0])) == 1.0  # too short: naive
    assert fit_alpha(noise) in ALPHAS


def test_paths_read_nothing_after_their_origin() -> None:
    rng = np.random.default_rng(2)
    y = 5 + rng.normal(0, 1, 300)
    origins = validation_origins(y.size, 60)
    paths = ses_paths(y, origins, 4, 0.2)
    changed = y.copy()
    changed[origins[-1] + 1 :] += 1000.0  # only rows after the last origin
    assert np.array_equal(ses_paths(changed, origins, 4, 0.2), paths)
    at = int(origins[10])
    assert paths[10, 0] == pytest.approx(smoothed_levels(y[: at + 1], 0.2)[-1])


def test_model_forecasts_its_level_with_bands_and_is_an_auto_candidate() -> None:
    rng = np.random.default_rng(9)
    noise = 10 + rng.normal(0, 1, 400)
    out = ExponentialSmoothing().forecast_series(noise, 5, (80,), key="s")
    level = smoothed_levels(noise, fit_alpha(noise))[-1]
    assert out.mean.tolist() == [pytest.approx(level)] * 5
    assert (out.lower[80] < out.mean).all()
    assert (out.upper[80] > out.mean).all()
    assert out.model.startswith("ses(a=")
    assert make_forecaster("ses").name == "ses"
    auto = Auto(["naive", "ses"]).fit(_panel({"noise": noise}))
    assert auto.choice_ == {"noise": "ses"}
