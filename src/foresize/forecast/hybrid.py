"""The hybrid forecaster: one global LightGBM, direct multi-horizon, median target.

Why each choice (measured on GenTD26, see ``benchmarks/bench_forecast.py``):

* **Direct, not recursive.** Each training row is an origin ``t`` and a horizon
  ``h`` (a feature) with the target ``y[t + h]``. A recursive model feeds its own
  forecasts back as lags, and on series that switch between idle and busy every
  error compounds through the recursion; that is what makes a plain recursive
  LightGBM lose to naive here. A direct model never sees its own errors.
* **Median, not mean.** The loss is L1, so the point forecast (``mean`` column of
  the protocol) is the conditional *median*. MASE and WAPE are absolute-error
  metrics, which the median minimises; on intermittent, spiky series the median
  and the mean differ a lot.
* **Scale-free and global.** The target is ``(y[t + h] - y[t]) / s`` and features
  are differences to ``y[t]`` over ``s``, the series' mean absolute one-step
  change, so one model learns from every series at once (cheap: one fit per
  ``fit`` call, whatever the number of series) and serves series on any scale.
* **A guard decided before the origin** (``forecast.guard``). A calibration model
  is fitted without the last ``cal_frac`` of each series (the validation window);
  from every origin of that window it forecasts steps ``1..horizon``, and so do
  naive, seasonal naive and the inverse-error combination of the model with naive.
  Each series is forecast by the one that did best there, naive unless another
  beat it by more than ``guard_z`` standard errors of the paired difference; its
  validation residuals per step give conformal
  bands (``forecast.conformal``). The final model then continues the calibration
  model on every row. Why: GenTD26 series change regime and many go idle or move
  in steps, where naive is hard to beat; one global model need not fit them all,
  and the series' own recent past, not rows it is scored on, says which do.

* **Stacking.** Optional features (issue 5): the causal wavelet components at the
  origin, and the h-step forecast of a per-series linear model (an AR per wavelet
  component, fitted once per ``fit`` on the series' history) as ``stack_ar``.

Series shorter than ``min_history`` points, or constant ones, get the naive
forecast, said in ``model``; so does every series when the panel is too small to
hold out a validation window (fewer than ``MIN_ROWS`` sampled rows on either side).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Self

import numpy as np
import polars as pl

from foresize.core.errors import InputError, NotFittedError
from foresize.forecast.baselines import naive_forecast
from foresize.forecast.conformal import fleet_scale
from foresize.forecast.features import (
    StackedAR,
    feature_names,
    idle_level,
    origin_features,
    series_scale,
    wavelet_feature_names,
    wavelet_features,
)
from foresize.forecast.guard import (
    BAND_POOL,
    CAL_FRAC,
    FLEET_BANDS,
    GUARD_Z,
    NAIVE,
    SEASONAL,
    WINDOW_HORIZONS,
    GuardChoice,
    choose,
    guard_origins,
    naive_paths,
    seasonal_paths,
    validation_window,
)
from foresize.forecast.panel import FloatArray, check_panel
from foresize.forecast.protocol import (
    DEFAULT_LEVELS,
    SeriesForecast,
    check_horizon,
    check_levels,
    forecast_frame,
    series_steps,
)

MODEL_NAME = "hybrid"
STACK_NAME = "stack_ar"
MIN_ROWS = 100  # sampled rows each side of the validation cut before a calibration model
# per trained series: history, sample times (epoch s), scale, stacked linear model
_Data = tuple[FloatArray, FloatArray, float, StackedAR | None]


@dataclass(frozen=True, slots=True)
class _Series:
    """What one trained series keeps for prediction: its history, last features, bounds."""

    y: FloatArray
    scale: float
    low: float
    high: float
    design: FloatArray  # design rows from the last point, steps 1..horizon


def _check_int(owner: str, name: str, value: object, low: int) -> int:
    """A whole-number parameter at least ``low``; the message names it."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
        raise InputError(f"{owner}: {name} must be a whole number >= {low}, got {value!r}")
    return int(value)


def _check_float(owner: str, name: str, value: object, low: float, high: float) -> float:
    """A float parameter in ``(low, high)``; the message names it."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not low < value < high:
        raise InputError(f"{owner}: {name} must be a number in ({low}, {high}), got {value!r}")
    return float(value)


def _check_closed(owner: str, name: str, value: object, low: float, high: float) -> float:
    """A float parameter in ``[low, high]``; the message names it."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise InputError(f"{owner}: {name} must be a number in [{low}, {high}], got {value!r}")
    return float(value)


class Hybrid:
    """Global direct multi-horizon LightGBM on scale-free features, conformal intervals.

    ``mean`` in the output is the conditional median (L1 loss), see the module doc.
    Parameters: ``horizon`` is the longest step trained (later steps reuse it);
    ``lags`` the one-step differences used; ``windows`` the rolling-window lengths;
    ``n_estimators``/``learning_rate``/``num_leaves`` the LightGBM size;
    ``max_rows`` the (origin, horizon) training rows sampled over all series, at most
    ``rows_per_series`` from each (the fit's cost grows with the rows, so a panel of
    few series stays cheap; 400 keeps every forecaster under 0.5 s per series and
    origin-refit on the 2-core benchmark machine);
    ``cal_frac`` the share of each series (at least ``window_horizons`` horizons)
    held out as the validation window that decides the guard and calibrates the
    bands; ``season`` the seasonal naive candidate's period in steps; ``guard_z`` how
    many standard errors of the paired per-origin difference a method must beat
    naive's validation MAE by to be chosen (``guard.paired_noise``); ``band_pool``
    how far the bands pool neighbouring steps (``conformal.step_offsets``);
    ``fleet_bands`` scales every band by the fleet's own older-to-newer coverage
    factor (``conformal.fleet_scale``);
    ``min_history`` the fewest points a series needs (else naive);
    ``calendar`` adds the time of day; ``wavelet_levels`` (0: off) adds the causal
    à trous Haar components at the origin (``features.wavelet_features``);
    ``stack_levels`` (None: off) stacks a per-series linear forecast as a feature, an
    AR(``stack_lags``) per wavelet component (0: on the series itself), whose h-step
    forecast from the origin is the row's ``stack_ar`` (``features.StackedAR``);
    ``clip_to_range`` keeps forecasts within the
    series' observed range (a band leaves it only as far as naive's band does,
    ``guard.GuardChoice.forecast``); ``n_jobs`` LightGBM threads (1 by default: on a shared
    2-core machine a second OpenMP thread spin-waits more than it helps; measured
    10x slower fits under load); ``seed`` fixes sampling and trees. The final model
    warm-starts from the calibration model (``n_estimators`` trees on the early
    rows) and adds ``refit_estimators`` trees fitted on all rows, so the latest
    behaviour is learned without paying for a second full fit. A refit on a history
    that only grew by fewer than ``refresh_every`` points per series keeps both
    boosters and recomputes the rest at the new origin (see ``_extends_last_fit``);
    ``refresh_every=1`` retrains at every fit.
    """

    name = MODEL_NAME

    def __init__(
        self,
        *,
        horizon: int = 30,
        lags: int = 10,
        windows: Sequence[int] = (5, 15, 60),
        n_estimators: int = 100,
        refit_estimators: int = 40,
        refresh_every: int = 90,
        learning_rate: float = 0.08,
        num_leaves: int = 31,
        max_rows: int = 60_000,
        rows_per_series: int = 400,
        cal_frac: float = CAL_FRAC,
        season: int = 24,
        guard_z: float = GUARD_Z,
        window_horizons: int = WINDOW_HORIZONS,
        band_pool: float = BAND_POOL,
        fleet_bands: bool = FLEET_BANDS,
        min_history: int = 60,
        calendar: bool = False,
        wavelet_levels: int = 4,
        stack_levels: int | None = 4,
        stack_lags: int = 4,
        clip_to_range: bool = True,
        n_jobs: int = 1,
        seed: int = 0,
    ) -> None:
        self.horizon = horizon
        self.lags = lags
        self.windows = windows
        self.n_estimators = n_estimators
        self.refit_estimators = refit_estimators
        self.refresh_every = refresh_every
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.max_rows = max_rows
        self.rows_per_series = rows_per_series
        self.cal_frac = cal_frac
        self.season = season
        self.guard_z = guard_z
        self.window_horizons = window_horizons
        self.band_pool = band_pool
        self.fleet_bands = fleet_bands
        self.min_history = min_history
        self.calendar = calendar
        self.wavelet_levels = wavelet_levels
        self.stack_levels = stack_levels
        self.stack_lags = stack_lags
        self.clip_to_range = clip_to_range
        self.n_jobs = n_jobs
        self.seed = seed

    # ------------------------------------------------------------------ checks

    def _check_params(self) -> None:
        """Fail with one line naming the first bad parameter."""
        owner = self.name
        _check_int(owner, "horizon", self.horizon, 1)
        _check_int(owner, "lags", self.lags, 1)
        _check_int(owner, "n_estimators", self.n_estimators, 1)
        _check_int(owner, "refit_estimators", self.refit_estimators, 1)
        _check_int(owner, "refresh_every", self.refresh_every, 1)
        _check_int(owner, "num_leaves", self.num_leaves, 2)
        _check_int(owner, "max_rows", self.max_rows, 100)
        _check_int(owner, "rows_per_series", self.rows_per_series, 1)
        _check_int(owner, "min_history", self.min_history, 2)
        _check_int(owner, "season", self.season, 1)
        _check_int(owner, "n_jobs", self.n_jobs, 1)
        _check_int(owner, "seed", self.seed, 0)
        _check_int(owner, "wavelet_levels", self.wavelet_levels, 0)
        _check_int(owner, "stack_lags", self.stack_lags, 1)
        if self.stack_levels is not None:
            _check_int(owner, "stack_levels", self.stack_levels, 0)
        _check_float(owner, "learning_rate", self.learning_rate, 0.0, 1.0)
        _check_float(owner, "cal_frac", self.cal_frac, 0.0, 1.0)
        _check_closed(owner, "guard_z", self.guard_z, 0.0, 10.0)
        _check_closed(owner, "band_pool", self.band_pool, 0.0, 1.0)
        _check_int(owner, "window_horizons", self.window_horizons, 1)
        if not self.windows:
            raise InputError(f"{owner}: windows must name at least one window length")
        for w in self.windows:
            _check_int(owner, "each window", w, 2)

    def _lgb_params(self) -> dict[str, Any]:
        """LightGBM settings: L1 (median) loss, small trees, coarse bins, deterministic."""
        return {
            "objective": "l1",
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_data_in_leaf": 20,
            "max_bin": 63,  # 3x faster than 255 on a few thousand rows (L1 refits leaves)
            "feature_fraction": 0.8,
            "bagging_fraction": 0.8,
            "bagging_freq": 1,
            "num_threads": self.n_jobs,
            "seed": self.seed,
            "deterministic": True,
            "force_col_wise": True,
            "verbose": -1,
        }

    # --------------------------------------------------------------------- fit

    def fit(self, panel: pl.DataFrame) -> Self:
        """Build origin features per series, fit the calibration model, guard, final model."""
        self._check_params()
        check_panel(panel, source=f"{self.name} fit")
        rng = np.random.default_rng(self.seed)
        names = feature_names(self.lags, self.windows, calendar=self.calendar)
        if self.wavelet_levels:
            names += wavelet_feature_names(self.wavelet_levels)
        if self.stack_levels is not None:
            names.append(STACK_NAME)
        names.append("h")
        self.steps_ = series_steps(panel)
        self.fallback_: dict[str, tuple[FloatArray, str]] = {}
        self.trained_: dict[str, _Series] = {}
        self.choice_: dict[str, GuardChoice] = {}
        self.validation_: dict[str, tuple[np.ndarray, FloatArray]] = {}
        histories: dict[str, tuple[FloatArray, FloatArray]] = {}
        ordered = panel.sort("series", "ts", maintain_order=True)
        for (key,), group in ordered.group_by(["series"], maintain_order=True):
            name = str(key)
            y = group["y"].to_numpy().astype(np.float64)
            if y.size < self.min_history or series_scale(y) == 0.0:
                why = "constant series" if y.size >= self.min_history else f"{y.size} points"
                self.fallback_[name] = (y, why)
                continue
            histories[name] = (y, group["ts"].dt.epoch("us").to_numpy().astype(np.float64) / 1e6)
        reuse = self._extends_last_fit({name: y for name, (y, _) in histories.items()})
        stacks: dict[str, StackedAR | None] = getattr(self, "stacks_", {}) if reuse else {}
        data: list[_Data] = []
        guard_rows: list[tuple[np.ndarray, FloatArray]] = []
        steps = np.arange(1, self.horizon + 1)
        for name, (y, ts_s) in histories.items():
            scale = series_scale(y)
            stack = stacks[name] if name in stacks else self._stack_model(y)
            d: _Data = (y, ts_s, scale, stack)
            # the validation origins and the last point in one design call (one feature
            # pass, one stacked-AR recursion): each row is an (origin, step) pair
            t = guard_origins(y.size, self._window(y.size))
            origin = np.concatenate([np.repeat(t, steps.size), np.full(steps.size, y.size - 1)])
            design = self._design(d, origin, np.tile(steps, t.size + 1))
            self.trained_[name] = _Series(
                y=y,
                scale=scale,
                low=float(y.min()),
                high=float(y.max()),
                design=design[t.size * steps.size :],
            )
            guard_rows.append((t, design[: t.size * steps.size]))
            data.append(d)
        self.feature_names_ = names
        if data and reuse:
            self._guard(data, guard_rows, self.calib_)
        else:
            self.feature_importances_: dict[str, float] = {}
            if data:
                self._fit_models(data, guard_rows, rng)
        return self

    def get_params(self) -> dict[str, Any]:
        """The constructor parameters as set now (a change of any forces a full fit)."""
        return {k: v for k, v in vars(self).items() if not k.endswith("_")}

    def _extends_last_fit(self, histories: dict[str, FloatArray]) -> bool:
        """Whether the boosters of the last fit can serve this one unchanged.

        True when no parameter changed, some series were in the boosters' training
        panel, and each of those is that history plus fewer than ``refresh_every`` new
        points: the boosters then trained only on rows before this fit's validation
        windows (a series they never saw is out of sample anyway), which is all the
        guard needs, and features, guard and bands are recomputed at the new origin.
        This is what a rolling-origin backtest (or a live loop) refitting every few
        steps does; a changed or rewritten history refits everything.
        """
        old = getattr(self, "history_", None)
        if not old or getattr(self, "params_", None) != self.get_params():
            return False
        seen = [name for name in histories if name in old]
        if not seen:
            return False
        for name in seen:
            y, prev = histories[name], old[name]
            grown = y.size - prev.size
            if not 0 <= grown < self.refresh_every or not np.array_equal(y[: prev.size], prev):
                return False
        return True

    def _stack_model(self, y: FloatArray) -> StackedAR | None:
        """The series' stacked linear forecaster, or None when stacking is off."""
        if self.stack_levels is None:
            return None
        return StackedAR.fit(y, levels=self.stack_levels, lags=self.stack_lags)

    def _window(self, n: int) -> int:
        """Points at the end of an ``n``-point series held out as its validation window."""
        return validation_window(n, self.horizon, self.cal_frac, self.window_horizons)

    def _design(self, data: _Data, t: np.ndarray, h: np.ndarray) -> FloatArray:
        """Design rows (features at origin ``t``, stacked forecast at ``h``, ``h``).

        Features and the stacked recursion are computed once per distinct origin, and
        only at the origins asked for (not the whole history).
        """
        y, ts_s, scale, stack = data
        origins, row = np.unique(t, return_inverse=True)
        feats = origin_features(
            y,
            ts_s,
            scale=scale,
            idle=idle_level(y),
            lags=self.lags,
            windows=self.windows,
            calendar=self.calendar,
            rows=origins,
        )
        if self.wavelet_levels:
            waves = wavelet_features(y, scale=scale, levels=self.wavelet_levels)[origins]
            feats = np.hstack([feats, waves])
        columns = [feats[row]]
        if stack is not None:
            path = stack.paths(y, origins, int(h.max()))[row, h - 1]
            columns.append(((path - y[t]) / scale)[:, None])
        columns.append(h.astype(np.float64)[:, None])
        return np.hstack(columns)

    def _sample(
        self, data: list[_Data], rng: np.random.Generator
    ) -> tuple[FloatArray, FloatArray, np.ndarray]:
        """Sampled (origin, horizon) rows: design, scaled target, and whether the target
        lies in the series' validation window.
        """
        per_series = max(1, min(self.max_rows // len(data), self.rows_per_series))
        xs: list[FloatArray] = []
        targets: list[FloatArray] = []
        held: list[np.ndarray] = []
        for d in data:
            y = d[0]
            n = y.size
            h_max = min(self.horizon, n - 1)
            t0 = min(self.lags, n // 4)
            h = rng.integers(1, h_max + 1, size=per_series)
            t = t0 + (rng.random(per_series) * np.maximum(n - h - t0, 1)).astype(np.int64)
            t = np.minimum(t, n - 1 - h)
            xs.append(self._design(d, t, h))
            targets.append((y[t + h] - y[t]) / d[2])
            held.append(t + h >= n - self._window(n))
        return np.vstack(xs), np.concatenate(targets), np.concatenate(held)

    def _fit_models(
        self,
        data: list[_Data],
        guard_rows: list[tuple[np.ndarray, FloatArray]],
        rng: np.random.Generator,
    ) -> None:
        """Calibration model on the early rows, the guard on the validation windows,
        then the final model on every row.
        """
        import lightgbm as lgb  # here, not at import: it pulls in scikit-learn (~1 s)

        design, target, held = self._sample(data, rng)
        params = self._lgb_params()
        early = ~held
        if early.sum() < MIN_ROWS or held.sum() < MIN_ROWS:
            for name, s in self.trained_.items():
                self.fallback_[name] = (s.y, "too little history to validate the model")
            self.trained_ = {}
            self.history_ = {}
            return
        calib = lgb.train(
            params,
            lgb.Dataset(design[early], target[early], free_raw_data=True),
            num_boost_round=self.n_estimators,
        )
        self.calib_: Any = calib
        self.history_ = {name: s.y for name, s in self.trained_.items()}
        self.stacks_ = {name: d[3] for name, d in zip(self.trained_, data, strict=True)}
        self.params_ = self.get_params()
        self._guard(data, guard_rows, calib)
        self.booster_ = lgb.train(
            params,
            lgb.Dataset(design, target),
            num_boost_round=self.refit_estimators,
            init_model=calib,
        )
        gains = self.booster_.feature_importance(importance_type="gain")
        self.feature_importances_ = {
            name: float(g) for name, g in zip(self.feature_names_, gains, strict=True)
        }

    def _guard(
        self, data: list[_Data], guard_rows: list[tuple[np.ndarray, FloatArray]], calib: Any
    ) -> None:
        """Per series, the calibration model's and the baselines' forecasts from every
        validation origin (``guard_rows``: the origins and their design rows), and the
        guard's choice among them (``forecast.guard``).

        The calibration model never trained on a row whose target is in the window, so
        its residuals there are out of sample, like naive's.
        """
        steps = np.arange(1, self.horizon + 1)
        change = np.asarray(
            calib.predict(np.vstack([rows for _, rows in guard_rows])), dtype=np.float64
        )
        at = 0
        for (name, s), (y, _, scale, _), (t, _) in zip(
            self.trained_.items(), data, guard_rows, strict=True
        ):
            size = t.size * steps.size
            model = y[t][:, None] + scale * change[at : at + size].reshape(t.size, steps.size)
            at += size
            model = np.clip(model, *self._bounds(s))
            self.validation_[name] = (t, model)
            paths = {
                NAIVE: naive_paths(y, t, self.horizon),
                SEASONAL: seasonal_paths(y, t, self.horizon, self.season),
                MODEL_NAME: model,
            }
            self.choice_[name] = choose(
                y, t, paths, z=self.guard_z, pool=self.band_pool, model=MODEL_NAME
            )

    def _bounds(self, s: _Series) -> tuple[float, float]:
        """The range a forecast is clipped to: observed range, or only >= 0 for usage."""
        if self.clip_to_range:
            return s.low, s.high
        return (0.0 if s.low >= 0 else -np.inf), np.inf

    # ----------------------------------------------------------------- predict

    def predict(self, h: int, levels: Sequence[int] = DEFAULT_LEVELS) -> pl.DataFrame:
        """``h`` steps per series: the guard's method, with conformal bands."""
        if not hasattr(self, "trained_"):
            raise NotFittedError(f"{self.name}: call fit() before predict()")
        h = check_horizon(h)
        levels = check_levels(levels)
        forecasts: dict[str, SeriesForecast] = {}
        for name, (y, why) in self.fallback_.items():
            base = naive_forecast(y, h, levels)
            forecasts[name] = SeriesForecast(
                base.mean, base.lower, base.upper, f"naive (fallback: {why})"
            )
        if self.trained_:
            forecasts.update(self._predict_trained(h, levels))
        order = list(self.steps_)
        return forecast_frame({k: forecasts[k] for k in order}, self.steps_, levels)

    def model_paths(self, h: int) -> dict[str, FloatArray]:
        """The final model's ``h``-step median path per trained series (before the guard)."""
        at = np.minimum(np.arange(h), self.horizon - 1)  # later steps reuse the last one
        rows = [s.design[at] for s in self.trained_.values()]
        change = np.asarray(self.booster_.predict(np.vstack(rows)), dtype=np.float64)
        return {
            name: np.clip(s.y[-1] + s.scale * change[i * h : (i + 1) * h], *self._bounds(s))
            for i, (name, s) in enumerate(self.trained_.items())
        }

    def _predict_trained(self, h: int, levels: tuple[int, ...]) -> dict[str, SeriesForecast]:
        """Each trained series' chosen method and its conformal bands, one booster call."""
        model = self.model_paths(h)
        scale = self.band_scale(levels)
        out: dict[str, SeriesForecast] = {}
        for name, s in self.trained_.items():
            choice = self.choice_[name]
            end = np.array([s.y.size - 1])
            finals = {
                MODEL_NAME: model[name],
                NAIVE: naive_paths(s.y, end, h)[0],
                SEASONAL: seasonal_paths(s.y, end, h, self.season)[0],
            }
            low, high = self._bounds(s)
            out[name] = choice.forecast(
                finals,
                levels,
                low=low,
                high=high,
                label=guard_label(choice),
                scale=scale,
                history=s.y if self.clip_to_range else None,  # no range: nothing to leave
            )
        return out

    def band_scale(self, levels: Sequence[int]) -> dict[int, tuple[float, float]] | None:
        """The fleet's factors on the bands per level (``conformal.fleet_scale``), or None
        when ``fleet_bands`` is off.
        """
        if not self.fleet_bands:
            return None
        residuals = [choice.residuals for choice in self.choice_.values()]
        return fleet_scale(residuals, levels, pool=self.band_pool)


def guard_label(choice: GuardChoice) -> str:
    """The ``model`` column of a guarded series: the model's name, or what the guard chose."""
    if choice.method == MODEL_NAME:
        return MODEL_NAME
    if choice.weight < 1.0:
        return f"{choice.method} (guard: w={choice.weight:.2f})"
    return f"{choice.method} (guard)"
