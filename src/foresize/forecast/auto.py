"""``auto``: per series, the candidate that forecast the series' own recent past best.

No single model wins on every series of a fleet (a flat memory series wants naive, a
noisy duty cycle a window's median, a busy service the hybrid), so ``Auto`` runs the
guard of ``forecast.guard`` over every candidate: each forecasts steps ``1..horizon``
from every origin of the series' validation window (its last ``cal_frac`` before the
forecast origin), and the series is forecast by the one with the lowest MAE there,
naive unless another beat it by more than ``guard_z`` standard errors of the paired
difference (``extra_z`` for the candidates the hybrid's own guard does not weigh:
each extra candidate is one more chance to win the window by luck), with conformal
bands from that one's residuals. The default local candidate is the window's median,
not its mean: MASE scores absolute errors, which the median minimises, and on counts
that thin out to mostly zeros the mean errs at every quiet step (measured on the qps
panel, held out; the median also did better on gpu and mem).
The hybrid candidate's validation forecasts come from its calibration model, which
never trained on the window; the hybrid is also combined with naive. Nothing after the
forecast origin is read, and nothing is refitted per validation origin for the default
candidates (their forecasts from every origin are vectorised), so ``auto`` costs about
one hybrid fit. Other single models are candidates too, refitted at each validation
origin (slower). Series shorter than ``min_history`` get naive. The choice is in
``choice_`` and in the ``model`` column.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Self

import numpy as np
import polars as pl

from foresize.core.errors import InputError, NotFittedError
from foresize.forecast.baselines import naive_forecast
from foresize.forecast.conformal import fleet_scale
from foresize.forecast.guard import (
    BAND_POOL,
    CAL_FRAC,
    COMBINED_SUFFIX,
    FLEET_BANDS,
    GUARD_Z,
    NAIVE,
    SEASONAL,
    WINDOW_HORIZONS,
    GuardChoice,
    IntArray,
    choose,
    guard_origins,
    naive_paths,
    seasonal_paths,
    validation_window,
    window_median_paths,
    window_paths,
)
from foresize.forecast.hybrid import MODEL_NAME, Hybrid
from foresize.forecast.panel import FloatArray, check_panel, series_arrays
from foresize.forecast.protocol import (
    DEFAULT_LEVELS,
    LocalForecaster,
    SeriesForecast,
    check_horizon,
    check_levels,
    forecast_frame,
    series_steps,
)
from foresize.forecast.registry import SINGLE_MODELS
from foresize.forecast.smoothing import fit_alpha, ses_paths

DEFAULT_CANDIDATES = (NAIVE, SEASONAL, "window_median", MODEL_NAME)
# the candidates the hybrid's own guard weighs; the others are auto's extra ones
GUARDED_BY_HYBRID = frozenset({NAIVE, SEASONAL, MODEL_NAME})
# How many standard errors of the paired difference auto's extra candidates must beat
# naive by (the hybrid's candidates clear ``guard_z``); chosen on the gpu panel only
# (grid 0 / 1 / 2, auto MASE 0.139 / 0.140 / 0.148) and reported on the others.
EXTRA_Z = 0.0
WINDOW_AVERAGE = "window_average"
WINDOW_MEDIAN = "window_median"
SES = "ses"


class Auto:
    """Pick the best candidate per series on its validation window, then forecast with it.

    ``candidates`` are single-model names (naive is always one: it is the default);
    ``horizon`` the steps validated (later steps reuse the last one's band);
    ``season`` the seasonal naive period and ``window`` the window median's (and
    average's) length, in steps; ``cal_frac``, ``guard_z``, ``window_horizons``,
    ``band_pool``, ``fleet_bands`` as in ``forecast.hybrid``; ``extra_z`` the margin,
    in standard errors of the paired difference, that candidates outside the hybrid's
    guard must clear; ``clip_to_range`` keeps forecasts and bands within the series'
    observed range, as the hybrid does (a band leaves it only as far as naive's band
    does; else only usage is kept at or above zero);
    ``min_history`` the fewest points a series needs to be validated (else naive);
    ``seed`` the hybrid's seed.
    """

    name = "auto"

    def __init__(
        self,
        candidates: Sequence[str] | None = None,
        *,
        horizon: int = 30,
        season: int = 24,
        window: int = 30,
        cal_frac: float = CAL_FRAC,
        guard_z: float = GUARD_Z,
        window_horizons: int = WINDOW_HORIZONS,
        band_pool: float = BAND_POOL,
        fleet_bands: bool = FLEET_BANDS,
        extra_z: float = EXTRA_Z,
        clip_to_range: bool = True,
        min_history: int = 60,
        seed: int = 0,
    ) -> None:
        self.candidates = candidates
        self.horizon = horizon
        self.season = season
        self.window = window
        self.cal_frac = cal_frac
        self.guard_z = guard_z
        self.window_horizons = window_horizons
        self.band_pool = band_pool
        self.fleet_bands = fleet_bands
        self.extra_z = extra_z
        self.clip_to_range = clip_to_range
        self.min_history = min_history
        self.seed = seed

    def _names(self) -> list[str]:
        """The candidates, naive first; unknown names fail with suggestions."""
        names = list(self.candidates or DEFAULT_CANDIDATES)
        if not names:
            raise InputError("auto: needs at least one candidate model")
        if "auto" in names:
            raise InputError("auto: cannot be its own candidate")
        for name in names:
            SINGLE_MODELS.get(name)
        return [NAIVE, *[n for n in dict.fromkeys(names) if n != NAIVE]]

    def fit(self, panel: pl.DataFrame) -> Self:
        """Validate every candidate on each series' window and keep each series' choice."""
        check_panel(panel, source="auto fit")
        horizon = check_horizon(self.horizon)
        names = self._names()
        self.steps_ = series_steps(panel)
        self.series_ = series_arrays(panel)
        self.hybrid_ = self._hybrid(horizon).fit(panel) if MODEL_NAME in names else None
        self.guard_: dict[str, GuardChoice] = {}
        for key, y in self.series_.items():
            if y.size < max(self.min_history, 2):
                continue
            validated = self.hybrid_.validation_ if self.hybrid_ is not None else {}
            if key in validated:
                origins, model = validated[key]
            else:
                window = validation_window(y.size, horizon, self.cal_frac, self.window_horizons)
                origins = guard_origins(y.size, window)
            paths = {
                name: self._paths(name, y, origins, horizon) for name in names if name != MODEL_NAME
            }
            if key in validated:
                paths[MODEL_NAME] = model
            combine = MODEL_NAME if key in validated else None
            extra = {name: self.extra_z for name in paths if name not in GUARDED_BY_HYBRID}
            self.guard_[key] = choose(
                y, origins, paths, z=self.guard_z, pool=self.band_pool, model=combine, z_of=extra
            )
        self.choice_ = {
            key: self.guard_[key].method if key in self.guard_ else NAIVE for key in self.series_
        }
        return self

    def _hybrid(self, horizon: int) -> Hybrid:
        """The hybrid candidate: the last fit's instance when its parameters still hold.

        Why keep it: a hybrid refitted on a history that only grew keeps its boosters
        (``Hybrid._extends_last_fit``), so a rolling-origin backtest or a live loop
        refitting ``auto`` pays for LightGBM training once every ``refresh_every``
        points, as the hybrid alone does, not at every fit.
        """
        fresh = Hybrid(
            horizon=horizon,
            season=self.season,
            cal_frac=self.cal_frac,
            guard_z=self.guard_z,
            window_horizons=self.window_horizons,
            band_pool=self.band_pool,
            fleet_bands=self.fleet_bands,
            clip_to_range=self.clip_to_range,
            min_history=self.min_history,
            seed=self.seed,
        )
        last = getattr(self, "hybrid_", None)
        if isinstance(last, Hybrid) and last.get_params() == fresh.get_params():
            return last
        return fresh

    def _paths(self, name: str, y: FloatArray, origins: IntArray, h: int) -> FloatArray:
        """Candidate ``name``'s forecasts from every origin (vectorised where it can be)."""
        if name == NAIVE:
            return naive_paths(y, origins, h)
        if name == SEASONAL:
            return seasonal_paths(y, origins, h, self.season)
        if name == WINDOW_AVERAGE:
            return window_paths(y, origins, h, self.window)
        if name == WINDOW_MEDIAN:
            return window_median_paths(y, origins, h, self.window)
        if name == SES:  # the rate is fitted on the history before the first origin
            return ses_paths(y, origins, h, fit_alpha(y[: int(origins[0]) + 1]))
        model = _local(name)
        return np.vstack(
            [model.forecast_series(y[: t + 1], h, (80,), key=name).mean for t in origins]
        )

    def _final(self, name: str, y: FloatArray, h: int) -> FloatArray:
        """Candidate ``name``'s forecast from the end of ``y`` (not the hybrid's)."""
        if name in (NAIVE, SEASONAL, WINDOW_AVERAGE, WINDOW_MEDIAN):
            paths = self._paths(name, y, np.array([y.size - 1]), h)
            return np.asarray(paths[0], dtype=np.float64)
        forecast: SeriesForecast = _local(name).forecast_series(y, h, (80,), key=name)
        return forecast.mean

    def predict(self, h: int, levels: Sequence[int] = DEFAULT_LEVELS) -> pl.DataFrame:
        """Each series' choice with its conformal bands; ``model`` is ``auto:<choice>``."""
        if not hasattr(self, "guard_"):
            raise NotFittedError("auto: call fit() before predict()")
        h = check_horizon(h)
        levels = check_levels(levels)
        hybrid = self.hybrid_
        model = hybrid.model_paths(h) if hybrid is not None and hybrid.trained_ else {}
        scale = None
        if self.fleet_bands:
            residuals = [choice.residuals for choice in self.guard_.values()]
            scale = fleet_scale(residuals, levels, pool=self.band_pool)
        forecasts: dict[str, SeriesForecast] = {}
        for key, y in self.series_.items():
            choice = self.guard_.get(key)
            if choice is None:
                base = naive_forecast(y, h, levels)
                forecasts[key] = SeriesForecast(
                    base.mean, base.lower, base.upper, f"auto:naive (fallback: {y.size} points)"
                )
                continue
            needed = {choice.method.removesuffix(COMBINED_SUFFIX), NAIVE}
            finals = {
                name: model[key] if name == MODEL_NAME else self._final(name, y, h)
                for name in needed
            }
            low, high = float(y.min()), float(y.max())
            if not self.clip_to_range:
                low, high = (0.0 if low >= 0 else -np.inf), np.inf
            label = f"auto:{choice.method}"
            if choice.weight < 1.0:
                label += f" (w={choice.weight:.2f})"
            forecasts[key] = choice.forecast(
                finals,
                levels,
                low=low,
                high=high,
                label=label,
                scale=scale,
                history=y if self.clip_to_range else None,  # no range: nothing to leave
            )
        return forecast_frame(forecasts, self.steps_, levels)


def _local(name: str) -> LocalForecaster:
    """A fresh single model ``name`` that forecasts one series at a time."""
    model = SINGLE_MODELS.get(name)()
    if not isinstance(model, LocalForecaster):
        raise InputError(f"auto: candidate {name!r} cannot be validated series by series")
    return model
