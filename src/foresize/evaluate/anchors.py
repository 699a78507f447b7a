"""Nixtla's statsforecast and mlforecast models behind foresize's Forecaster protocol.

The anchors users already know: statsforecast Naive, SeasonalNaive, AutoARIMA, AutoETS,
AutoTheta, and mlforecast's recursive LightGBM on lags 1..30. Wrapped as Forecasters
they run through exactly the same ``backtest`` as foresize's models, so the numbers are
comparable. They are optional (the ``bench`` extra): ``anchors_available()`` says
whether they are installed. Where an anchor returns nothing for a series (SeasonalNaive
on a series shorter than two seasons), naive fills in and ``model`` says so.
"""

from __future__ import annotations

import importlib.util
import warnings
from collections.abc import Sequence
from typing import Any, Self

import numpy as np
import polars as pl

from foresize.core.errors import UnknownNameError
from foresize.forecast.baselines import Naive
from foresize.forecast.protocol import Forecaster

ANCHORS = (
    "sf_naive",
    "sf_seasonal_naive",
    "sf_auto_arima",
    "sf_auto_ets",
    "sf_auto_theta",
    "mlf_lgbm",
)


def anchors_available() -> bool:
    """Whether statsforecast and mlforecast are installed."""
    return all(importlib.util.find_spec(m) is not None for m in ("statsforecast", "mlforecast"))


def nixtla_frame(panel: pl.DataFrame) -> tuple[Any, dict[str, int]]:
    """Pandas ``unique_id, ds, y`` with integer ds, and each series' last ds."""
    indexed = panel.sort("series", "ts").with_columns(ds=pl.int_range(pl.len()).over("series"))
    last = dict(indexed.group_by("series").agg(pl.col("ds").max()).iter_rows())
    return indexed.select(unique_id="series", ds="ds", y="y").to_pandas(), last


def long_forecast(
    wide: Any, last: dict[str, int], column: str, levels: Sequence[int], model: str
) -> pl.DataFrame:
    """A Nixtla wide forecast -> the protocol's long frame (``ts`` is a dummy)."""
    frame = pl.from_pandas(wide.reset_index() if "unique_id" not in wide.columns else wide)
    frame = frame.with_columns(
        series=pl.col("unique_id").cast(pl.String),
        step=(pl.col("ds") - pl.col("unique_id").cast(pl.String).replace_strict(last)).cast(
            pl.Int64
        ),
    )
    cols = {"mean": pl.col(column)}
    for level in levels:
        lo, hi = f"{column}-lo-{level}", f"{column}-hi-{level}"
        cols[f"lo_{level}"] = pl.col(lo) if lo in frame.columns else pl.lit(None, pl.Float64)
        cols[f"hi_{level}"] = pl.col(hi) if hi in frame.columns else pl.lit(None, pl.Float64)
    return frame.select(
        "series",
        ts=pl.lit(0).cast(pl.Datetime("us", "UTC")),
        step="step",
        **cols,
        model=pl.lit(model),
    )


def with_naive_fallback(
    forecast: pl.DataFrame, panel: pl.DataFrame, h: int, levels: Sequence[int]
) -> pl.DataFrame:
    """Fill what an anchor left empty (e.g. SeasonalNaive on a series < 2 seasons) with naive."""
    naive = Naive().fit(panel).predict(h, levels)
    value_cols = ["mean", *[f"{side}_{lv}" for lv in levels for side in ("lo", "hi")]]
    joined = naive.select("series", "step", *value_cols).join(
        forecast.select("series", "step", *value_cols, "model"),
        on=["series", "step"],
        how="left",
        suffix="_anchor",
    )
    return joined.select(
        "series",
        ts=pl.lit(0).cast(pl.Datetime("us", "UTC")),
        step="step",
        **{c: pl.col(f"{c}_anchor").fill_nan(None).fill_null(pl.col(c)) for c in value_cols},
        model=pl.col("model").fill_null("naive (fallback)"),
    )


class StatsAnchor:
    """A statsforecast model behind the Forecaster protocol (refit on every ``fit``)."""

    def __init__(self, name: str, model: Any) -> None:
        self.name = name
        self.model = model

    def fit(self, panel: pl.DataFrame) -> Self:
        """Keep the panel; statsforecast fits inside ``forecast``."""
        self.panel_ = panel
        return self

    def predict(self, h: int, levels: Sequence[int] = (80, 95)) -> pl.DataFrame:
        """Fit and forecast every series with statsforecast."""
        from statsforecast import StatsForecast

        df, last = nixtla_frame(self.panel_)
        sf = StatsForecast(models=[self.model], freq=1, n_jobs=1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            wide = sf.forecast(df=df, h=h, level=list(levels))
        return with_naive_fallback(
            long_forecast(wide, last, str(self.model), levels, self.name), self.panel_, h, levels
        )


class MLAnchor:
    """mlforecast LightGBM, lags 1..30, recursive; conformal intervals where possible."""

    name = "mlf_lgbm"

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def fit(self, panel: pl.DataFrame) -> Self:
        """Fit one global recursive LightGBM on all series."""
        import lightgbm as lgb
        from mlforecast import MLForecast
        from mlforecast.utils import PredictionIntervals

        self.panel_ = panel
        df, self.last_ = nixtla_frame(panel)
        model = lgb.LGBMRegressor(n_estimators=100, verbose=-1, random_state=self.seed, n_jobs=1)
        self.mlf_ = MLForecast(models={"lgbm": model}, freq=1, lags=list(range(1, 31)))
        shortest = int(df.groupby("unique_id").size().min())
        self.intervals_ = shortest > 2 * 30 + 30
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if self.intervals_:
                self.mlf_.fit(df, prediction_intervals=PredictionIntervals(n_windows=2, h=30))
            else:
                self.mlf_.fit(df)
        return self

    def predict(self, h: int, levels: Sequence[int] = (80, 95)) -> pl.DataFrame:
        """Recursive forecast of every series."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            wide = self.mlf_.predict(h, level=list(levels) if self.intervals_ else None)
        return with_naive_fallback(
            long_forecast(wide, self.last_, "lgbm", levels, self.name), self.panel_, h, levels
        )


def make_anchors(names: Sequence[str], *, season: int, seed: int) -> list[Forecaster]:
    """The anchors named (``ANCHORS``), seasonal ones with ``season`` steps."""
    if not names:
        return []
    from statsforecast import models as sf

    factories: dict[str, Any] = {
        "sf_naive": lambda: StatsAnchor("sf_naive", sf.Naive()),
        "sf_seasonal_naive": lambda: StatsAnchor(
            "sf_seasonal_naive", sf.SeasonalNaive(season_length=season)
        ),
        "sf_auto_arima": lambda: StatsAnchor("sf_auto_arima", sf.AutoARIMA()),
        "sf_auto_ets": lambda: StatsAnchor("sf_auto_ets", sf.AutoETS()),
        "sf_auto_theta": lambda: StatsAnchor("sf_auto_theta", sf.AutoTheta()),
        "mlf_lgbm": lambda: MLAnchor(seed),
    }
    for name in names:
        if name not in factories:
            raise UnknownNameError("anchor", name, list(ANCHORS))
    return [factories[n]() for n in names]


def warm_up() -> None:
    """Compile statsforecast's numba kernels once so timings measure fitting, not JIT."""
    from statsforecast import StatsForecast
    from statsforecast import models as sf

    y = np.sin(np.arange(200) / 5.0) + np.random.default_rng(0).normal(0, 0.1, 200)
    df = pl.DataFrame({"unique_id": ["a"] * 200, "ds": np.arange(200), "y": y}).to_pandas()
    models = [
        sf.Naive(),
        sf.SeasonalNaive(season_length=12),
        sf.AutoARIMA(),
        sf.AutoETS(),
        sf.AutoTheta(),
    ]
    StatsForecast(models=models, freq=1, n_jobs=1).forecast(df=df, h=5, level=[80])
