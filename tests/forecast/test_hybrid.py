"""The hybrid LightGBM forecaster on real GenTD26 GPU duty-cycle series."""

from __future__ import annotations

import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from foresize.core.errors import InputError, NotFittedError
from foresize.forecast.backtest import backtest
from foresize.forecast.baselines import Naive
from foresize.forecast.features import StackedAR, series_scale, wavelet_features
from foresize.forecast.hybrid import Hybrid
from foresize.forecast.models import make_forecaster
from foresize.forecast.panel import to_panel
from foresize.ingest.sources import open_telemetry

N_SERIES = 16
FAST = {"n_estimators": 60, "refit_estimators": 20, "max_rows": 20_000}  # keeps the file quick


@pytest.fixture(scope="module")
def gpu_panel(mirror: Path, monkeypatch_module: pytest.MonkeyPatch) -> pl.DataFrame:
    """The first ``N_SERIES`` full-day containers of the GPU duty-cycle panel (by name)."""
    monkeypatch_module.setenv("FORESIZE_DATA_MIRROR", str(mirror))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frame = open_telemetry(["alibaba-gentd26:gpu_duty_cycle"]).frame
        if hasattr(frame, "collect"):
            frame = frame.collect()
    panel, _ = to_panel(frame)
    sizes = panel.group_by("series").len().filter(pl.col("len") >= 1400).sort("series")
    keep = sizes["series"].head(N_SERIES).to_list()
    return panel.filter(pl.col("series").is_in(keep))


@pytest.fixture(scope="module")
def monkeypatch_module() -> pytest.MonkeyPatch:
    """A module-scoped monkeypatch (the builtin fixture is function-scoped)."""
    patch = pytest.MonkeyPatch()
    yield patch  # type: ignore[misc]
    patch.undo()


@pytest.fixture(scope="module")
def fitted(gpu_panel: pl.DataFrame) -> Hybrid:
    """A hybrid fitted once on the real subset."""
    return Hybrid(seed=3, **FAST).fit(gpu_panel)


def synthetic(name: str, values: np.ndarray) -> pl.DataFrame:
    """A panel of one series on a 57 s grid."""
    start = datetime(2022, 9, 11, tzinfo=UTC)
    return pl.DataFrame(
        {
            "series": [name] * values.size,
            "ts": [start + timedelta(seconds=57 * i) for i in range(values.size)],
            "y": values.astype(np.float64),
        },
        schema={"series": pl.String, "ts": pl.Datetime("us", "UTC"), "y": pl.Float64},
    )


def test_output_follows_the_protocol(fitted: Hybrid, gpu_panel: pl.DataFrame) -> None:
    out = fitted.predict(12, levels=(95, 80))
    assert out.columns == [
        "series", "ts", "step", "mean", "lo_80", "hi_80", "lo_95", "hi_95", "model"
    ]  # fmt: skip
    assert out.height == 12 * N_SERIES
    assert out.group_by("series").len()["len"].to_list() == [12] * N_SERIES
    assert set(out["series"]) == set(gpu_panel["series"])
    # every series is the model's, or what the guard chose on the series' validation window
    guarded = {"naive (guard)", "seasonal_naive (guard)"}
    assert all(
        m == "hybrid" or m in guarded or m.startswith("hybrid+naive (guard: w=")
        for m in out["model"]
    )
    assert (out["model"] == "hybrid").mean() > 0.25  # the model serves a real share
    for choice in fitted.choice_.values():  # the guard's rule, on its own evidence
        naive = choice.errors["naive"]
        beat = {m for m, e in choice.errors.items() if e + choice.noise[m] < naive}
        if choice.method == "naive":
            assert not beat - {"naive"}
        else:
            assert choice.method in beat
            assert choice.errors[choice.method] == min(choice.errors[m] for m in beat)
    assert (out["lo_95"] <= out["lo_80"]).all()
    assert (out["lo_80"] <= out["mean"]).all()
    assert (out["mean"] <= out["hi_80"]).all()
    assert (out["hi_80"] <= out["hi_95"]).all()
    # a GPU duty cycle stays within 0..100 %, and so do its forecasts
    assert out["lo_95"].min() >= 0.0  # type: ignore[operator]
    assert out["hi_95"].max() <= 100.0  # type: ignore[operator]
    last = gpu_panel.group_by("series").agg(pl.col("ts").max().alias("last"))
    first_step = out.filter(pl.col("step") == 1).join(last, on="series")
    assert (first_step["ts"] - first_step["last"]).dt.total_seconds().unique().to_list() == [57]


def test_feature_importances_name_every_feature(fitted: Hybrid) -> None:
    importances = fitted.feature_importances_
    assert list(importances) == fitted.feature_names_
    assert "h" in importances
    assert sum(importances.values()) > 0


def test_same_seed_same_forecast(gpu_panel: pl.DataFrame, fitted: Hybrid) -> None:
    again = Hybrid(seed=3, **FAST).fit(gpu_panel).predict(10)
    assert_frame_equal(fitted.predict(10), again)


def test_short_series_fall_back_to_naive(gpu_panel: pl.DataFrame) -> None:
    ramp = synthetic("short", np.arange(12, dtype=np.float64))
    out = Hybrid(**FAST).fit(pl.concat([gpu_panel, ramp])).predict(5)
    short = out.filter(pl.col("series") == "short")
    assert short["model"].unique().to_list() == ["naive (fallback: 12 points)"]
    assert short["mean"].to_list() == [11.0] * 5
    others = out.filter(pl.col("series") != "short")["model"]
    assert not others.str.contains("fallback").any()  # the rest are modelled (or guarded)


def test_constant_series_forecasts_its_constant(gpu_panel: pl.DataFrame) -> None:
    flat = synthetic("flat", np.full(300, 42.0))
    out = Hybrid(**FAST).fit(pl.concat([gpu_panel, flat])).predict(8)
    out = out.filter(pl.col("series") == "flat")
    for column in ("mean", "lo_80", "hi_80", "lo_95", "hi_95"):
        assert out[column].to_list() == [42.0] * 8
    assert out["model"].to_list() == ["naive (fallback: constant series)"] * 8


def test_beats_naive_on_real_series(gpu_panel: pl.DataFrame) -> None:
    """Issue 5's rolling-origin backtest on the subset: MAE at least 10 % below naive's.

    Measured: 0.77 x naive's MAE on these 16 containers (the test region is mostly
    idle, where naive is exact, so the gain comes from the busy-to-idle switches).
    """
    hybrid = backtest(gpu_panel, Hybrid(seed=0, **FAST))
    naive = backtest(gpu_panel, Naive())
    mae_hybrid = float((hybrid.points["y"] - hybrid.points["mean"]).abs().mean())  # type: ignore[arg-type]
    mae_naive = float((naive.points["y"] - naive.points["mean"]).abs().mean())  # type: ignore[arg-type]
    assert hybrid.points.height == naive.points.height
    assert mae_hybrid < 0.9 * mae_naive


def test_predict_before_fit_raises() -> None:
    with pytest.raises(NotFittedError, match="call fit"):
        Hybrid().predict(5)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"lags": 0}, "lags"),
        ({"windows": ()}, "windows"),
        ({"windows": (5, 1)}, "each window"),
        ({"learning_rate": 2.0}, "learning_rate"),
        ({"cal_frac": 0.0}, "cal_frac"),
        ({"n_estimators": 1.5}, "n_estimators"),
        ({"horizon": True}, "horizon"),
        ({"wavelet_levels": -1}, "wavelet_levels"),
        ({"stack_levels": -1}, "stack_levels"),
        ({"stack_lags": 0}, "stack_lags"),
    ],
)
def test_bad_params_raise_input_error(
    gpu_panel: pl.DataFrame, params: dict[str, object], field: str
) -> None:
    with pytest.raises(InputError, match=f"hybrid: {field}"):
        Hybrid(**params).fit(gpu_panel)  # type: ignore[arg-type]


def test_bad_horizon_and_levels_raise(fitted: Hybrid) -> None:
    with pytest.raises(InputError, match="horizon"):
        fitted.predict(0)
    with pytest.raises(InputError, match="levels"):
        fitted.predict(5, levels=(80, 100))


def test_registered_by_name() -> None:
    model = make_forecaster("hybrid", seed=7)
    assert isinstance(model, Hybrid)
    assert model.seed == 7


def test_wavelet_and_stacked_features_are_causal(gpu_panel: pl.DataFrame) -> None:
    """Features at origin t are the same computed on ``y[:t + 1]`` as on the whole series."""
    first = gpu_panel["series"].unique().sort()[0]
    y = gpu_panel.filter(pl.col("series") == first)["y"].to_numpy().astype(np.float64)
    scale = series_scale(y)
    full = wavelet_features(y, scale=scale, levels=4)
    stack = StackedAR.fit(y, levels=4, lags=4)  # coefficients from the history: allowed
    origins = np.array([40, 300, 777, y.size - 2])
    paths = stack.paths(y, origins, 30)
    assert np.abs(full).sum() > 0  # the features are not all trivial
    assert np.ptp(paths) > 0
    for row, t in enumerate(origins):
        cut = y[: t + 1]
        np.testing.assert_array_equal(wavelet_features(cut, scale=scale, levels=4)[t], full[t])
        # equal up to float rounding (one origin vs a batch in the BLAS product)
        np.testing.assert_allclose(
            stack.paths(cut, np.array([t]), 30)[0], paths[row], rtol=1e-12, atol=1e-12
        )
    # the smooth column is c_L - y: details plus it sum to zero (components sum to y)
    np.testing.assert_allclose(full.sum(axis=1), 0.0, atol=1e-9)


def test_stacked_and_wavelet_features_are_named_and_used(gpu_panel: pl.DataFrame) -> None:
    model = Hybrid(seed=1, wavelet_levels=3, stack_levels=2, **FAST).fit(gpu_panel)
    names = model.feature_names_
    assert names[-6:] == ["wav_d1", "wav_d2", "wav_d3", "wav_c3", "stack_ar", "h"]
    assert model.feature_importances_["stack_ar"] > 0
    out = model.predict(40)
    assert out.height == 40 * N_SERIES
    assert out["mean"].is_finite().all()
