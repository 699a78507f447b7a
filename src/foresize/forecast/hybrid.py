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
* **Split-conformal intervals.** A first model is fitted without the latest
  ``cal_frac`` of each series; its residuals on that held-out part, per horizon
  bucket and idle/busy state at the origin, give the band quantiles
  (``forecast.conformal``). The final model then continues it on every row.

* **Stacking.** Optional features (issue 5): the causal wavelet components at the
  origin, and the h-step forecast of a per-series linear model (an AR per wavelet
  component, fitted once per ``fit`` on the series' history) as ``stack_ar``.

Series shorter than ``min_history`` points, or constant ones, get the naive
forecast, said in ``model``; so do series on which naive beat the calibration model on
their held-out rows (the guard: one global model need not fit every series).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Self

import numpy as np
import polars as pl

from foresize.core.errors import InputError, NotFittedError
from foresize.forecast.baselines import naive_forecast
from foresize.forecast.conformal import ConformalBands, group_of, origin_state
from foresize.forecast.features import (
    StackedAR,
    feature_names,
    idle_level,
    origin_features,
    series_scale,
    wavelet_feature_names,
    wavelet_features,
)
from foresize.forecast.panel import FloatArray, check_panel
from foresize.forecast.protocol import (
    DEFAULT_LEVELS,
    SeriesForecast,
    check_horizon,
    check_levels,
    forecast_frame,
    level_quantiles,
    series_steps,
)

MODEL_NAME = "hybrid"
GUARD_MIN_ROWS = 30  # held-out rows a series needs before the guard judges it
IDLE_NOW, RUN_STATE = 2, 3  # origin_features columns: idle flag, log1p(steps since a flip)
STACK_NAME = "stack_ar"
# per trained series: history, origin features, scale, idle level, stacked linear model
_Data = tuple[FloatArray, FloatArray, float, float, StackedAR | None]


def idle_run(feats: FloatArray) -> FloatArray:
    """Steps since the idle/busy state last flipped, from rows of origin features."""
    return np.rint(np.expm1(feats[:, RUN_STATE]))


@dataclass(frozen=True, slots=True)
class _Series:
    """What one trained series keeps for prediction: its last features and bounds."""

    last: float
    scale: float
    state: int
    low: float
    high: float
    features: FloatArray  # origin features at the last point
    stack: FloatArray | None  # scaled stacked forecast from the last point, steps 1..horizon


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


class Hybrid:
    """Global direct multi-horizon LightGBM on scale-free features, conformal intervals.

    ``mean`` in the output is the conditional median (L1 loss), see the module doc.
    Parameters: ``horizon`` is the longest step trained (later steps reuse it);
    ``lags`` the one-step differences used; ``windows`` the rolling-window lengths;
    ``n_estimators``/``learning_rate``/``num_leaves`` the LightGBM size;
    ``max_rows`` the (origin, horizon) training rows sampled over all series;
    ``cal_frac`` the share of each series held out to calibrate the intervals;
    ``min_history`` the fewest points a series needs (else naive);
    ``calendar`` adds the time of day; ``wavelet_levels`` (0: off) adds the causal
    à trous Haar components at the origin (``features.wavelet_features``);
    ``stack_levels`` (None: off) stacks a per-series linear forecast as a feature, an
    AR(``stack_lags``) per wavelet component (0: on the series itself), whose h-step
    forecast from the origin is the row's ``stack_ar`` (``features.StackedAR``);
    ``clip_to_range`` keeps forecasts within the
    series' observed range; ``n_jobs`` LightGBM threads (1 by default: on a shared
    2-core machine a second OpenMP thread spin-waits more than it helps; measured
    10x slower fits under load); ``seed`` fixes sampling and trees. The final model
    warm-starts from the calibration model (``n_estimators`` trees on the early
    rows) and adds ``refit_estimators`` trees fitted on all rows, so the latest
    behaviour is learned without paying for a second full fit.
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
        learning_rate: float = 0.08,
        num_leaves: int = 31,
        max_rows: int = 60_000,
        cal_frac: float = 0.1,
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
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.max_rows = max_rows
        self.cal_frac = cal_frac
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
        _check_int(owner, "num_leaves", self.num_leaves, 2)
        _check_int(owner, "max_rows", self.max_rows, 100)
        _check_int(owner, "min_history", self.min_history, 2)
        _check_int(owner, "n_jobs", self.n_jobs, 1)
        _check_int(owner, "seed", self.seed, 0)
        _check_int(owner, "wavelet_levels", self.wavelet_levels, 0)
        _check_int(owner, "stack_lags", self.stack_lags, 1)
        if self.stack_levels is not None:
            _check_int(owner, "stack_levels", self.stack_levels, 0)
        _check_float(owner, "learning_rate", self.learning_rate, 0.0, 1.0)
        _check_float(owner, "cal_frac", self.cal_frac, 0.0, 1.0)
        if not self.windows:
            raise InputError(f"{owner}: windows must name at least one window length")
        for w in self.windows:
            _check_int(owner, "each window", w, 2)

    def _lgb_params(self) -> dict[str, Any]:
        """LightGBM settings: L1 (median) loss, small trees, deterministic."""
        return {
            "objective": "l1",
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_data_in_leaf": 20,
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
        """Build origin features per series, fit the calibration and final models."""
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
        self.fallback_: dict[str, FloatArray] = {}
        self.trained_: dict[str, _Series] = {}
        self.guarded_: dict[str, FloatArray] = {}
        data: list[_Data] = []
        ordered = panel.sort("series", "ts", maintain_order=True)
        for (key,), group in ordered.group_by(["series"], maintain_order=True):
            name = str(key)
            y = group["y"].to_numpy().astype(np.float64)
            scale = series_scale(y)
            if y.size < self.min_history or scale == 0.0:
                self.fallback_[name] = y
                continue
            ts_s = group["ts"].dt.epoch("us").to_numpy().astype(np.float64) / 1e6
            idle = idle_level(y)
            feats = origin_features(
                y,
                ts_s,
                scale=scale,
                idle=idle,
                lags=self.lags,
                windows=self.windows,
                calendar=self.calendar,
            )
            if self.wavelet_levels:
                waves = wavelet_features(y, scale=scale, levels=self.wavelet_levels)
                feats = np.hstack([feats, waves])
            stack = self._stack_model(y)
            self.trained_[name] = _Series(
                last=float(y[-1]),
                scale=scale,
                state=int(origin_state(feats[-1:, IDLE_NOW] > 0, idle_run(feats[-1:]))[0]),
                low=float(y.min()),
                high=float(y.max()),
                features=feats[-1],
                stack=None
                if stack is None
                else (stack.paths(y, np.array([y.size - 1]), self.horizon)[0] - y[-1]) / scale,
            )
            data.append((y, feats, scale, idle, stack))
        self.feature_names_ = names
        self.feature_importances_: dict[str, float] = {}
        if data:
            self._fit_models(data, rng)
        return self

    def _stack_model(self, y: FloatArray) -> StackedAR | None:
        """The series' stacked linear forecaster, or None when stacking is off."""
        if self.stack_levels is None:
            return None
        return StackedAR.fit(y, levels=self.stack_levels, lags=self.stack_lags)

    def _sample(
        self, data: list[_Data], rng: np.random.Generator
    ) -> tuple[FloatArray, FloatArray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Sampled (origin, horizon) rows: features, scaled target, h, idle flag, held-out
        flag and the row's series (its index in ``data``).
        """
        per_series = max(1, self.max_rows // len(data))
        xs: list[FloatArray] = []
        targets: list[FloatArray] = []
        hs: list[np.ndarray] = []
        idles: list[np.ndarray] = []
        held: list[np.ndarray] = []
        sids: list[np.ndarray] = []
        for sid, (y, feats, scale, idle, stack) in enumerate(data):
            n = y.size
            h_max = min(self.horizon, n - 1)
            t0 = min(self.lags, n // 4)
            h = rng.integers(1, h_max + 1, size=per_series)
            t = t0 + (rng.random(per_series) * np.maximum(n - h - t0, 1)).astype(np.int64)
            t = np.minimum(t, n - 1 - h)
            cut = n - max(self.horizon, round(self.cal_frac * n))
            if stack is None:
                xs.append(feats[t])
            else:  # one vectorised AR recursion over every sampled origin, read at h
                path = stack.paths(y, t, h_max)[np.arange(t.size), h - 1]
                xs.append(np.column_stack([feats[t], (path - y[t]) / scale]))
            targets.append((y[t + h] - y[t]) / scale)
            hs.append(h)
            idles.append(origin_state(y[t] <= idle, idle_run(feats[t])))
            held.append(t + h > cut - 1)
            sids.append(np.full(per_series, sid))
        return (
            np.vstack(xs),
            np.concatenate(targets),
            np.concatenate(hs),
            np.concatenate(idles),
            np.concatenate(held),
            np.concatenate(sids),
        )

    def _fit_models(self, data: list[_Data], rng: np.random.Generator) -> None:
        """Calibration model on the early rows, bands from the held-out rows, final model."""
        import lightgbm as lgb  # here, not at import: it pulls in scikit-learn (~1 s)

        x, target, h, idle, held, sid = self._sample(data, rng)
        design = np.column_stack([x, h.astype(np.float64)])
        params = self._lgb_params()
        early = ~held
        if early.sum() >= 100 and held.sum() >= 100:
            calib = lgb.train(
                params,
                lgb.Dataset(design[early], target[early], free_raw_data=True),
                num_boost_round=self.n_estimators,
            )
            residuals = target[held] - calib.predict(design[held])
            self.bands_ = ConformalBands(residuals, group_of(h[held], idle[held]))
            self._guard(data, residuals, target[held], sid[held])
            self.booster_ = lgb.train(
                params,
                lgb.Dataset(design, target),
                num_boost_round=self.refit_estimators,
                init_model=calib,
            )
        else:
            self.bands_ = ConformalBands(np.zeros(1), np.zeros(1, dtype=np.int64), min_count=1)
            self.booster_ = lgb.train(
                params, lgb.Dataset(design, target), num_boost_round=self.n_estimators
            )
        gains = self.booster_.feature_importance(importance_type="gain")
        self.feature_importances_ = {
            name: float(g) for name, g in zip(self.feature_names_, gains, strict=True)
        }

    def _guard(
        self,
        data: list[_Data],
        residuals: FloatArray,
        held_target: FloatArray,
        held_sid: np.ndarray,
    ) -> None:
        """Series where naive beat the model on the held-out rows forecast naive.

        One global model serves the fleet, but not every series: a few sparse series in
        a panel (GenTD26's three QPS totals) can be better left to naive. The held-out
        rows that calibrate the bands say so per series, without touching the test
        data: naive's scaled error there is the target itself (it forecasts no change).
        """
        names = list(self.trained_)
        model_err = np.bincount(held_sid, weights=np.abs(residuals), minlength=len(names))
        naive_err = np.bincount(held_sid, weights=np.abs(held_target), minlength=len(names))
        counts = np.bincount(held_sid, minlength=len(names))
        for i in np.flatnonzero((counts >= GUARD_MIN_ROWS) & (naive_err < model_err)):
            self.guarded_[names[i]] = data[i][0]

    # ----------------------------------------------------------------- predict

    def predict(self, h: int, levels: Sequence[int] = DEFAULT_LEVELS) -> pl.DataFrame:
        """``h`` steps per series; ``mean`` is the median forecast, bands are conformal."""
        if not hasattr(self, "trained_"):
            raise NotFittedError(f"{self.name}: call fit() before predict()")
        h = check_horizon(h)
        levels = check_levels(levels)
        forecasts: dict[str, SeriesForecast] = {}
        for name, y in self.fallback_.items():
            base = naive_forecast(y, h, levels)
            why = "constant series" if y.size >= self.min_history else f"{y.size} points"
            forecasts[name] = SeriesForecast(
                base.mean, base.lower, base.upper, f"naive (fallback: {why})"
            )
        if self.trained_:
            forecasts.update(self._predict_trained(h, levels))
        for name, y in self.guarded_.items():
            base = naive_forecast(y, h, levels)
            forecasts[name] = SeriesForecast(
                base.mean, base.lower, base.upper, "naive (guard: beat hybrid on held-out rows)"
            )
        order = list(self.steps_)
        return forecast_frame({k: forecasts[k] for k in order}, self.steps_, levels)

    def _predict_trained(self, h: int, levels: tuple[int, ...]) -> dict[str, SeriesForecast]:
        """Median paths and conformal bands for every trained series, one booster call."""
        steps = np.arange(1, h + 1)
        h_feature = np.minimum(steps, self.horizon).astype(np.float64)
        at = h_feature.astype(np.int64) - 1
        rows = [
            np.column_stack(
                [
                    np.tile(s.features, (h, 1)),
                    *([] if s.stack is None else [s.stack[at]]),
                    h_feature,
                ]
            )
            for s in self.trained_.values()
        ]
        change = np.asarray(self.booster_.predict(np.vstack(rows)), dtype=np.float64)
        out: dict[str, SeriesForecast] = {}
        for i, (name, s) in enumerate(self.trained_.items()):
            mean = s.last + s.scale * change[i * h : (i + 1) * h]
            groups = group_of(h_feature.astype(np.int64), np.full(h, s.state))
            lower: dict[int, FloatArray] = {}
            upper: dict[int, FloatArray] = {}
            for level in levels:
                q_lo, q_hi = level_quantiles(level)
                lower[level] = mean + s.scale * self.bands_.offsets(groups, q_lo)
                upper[level] = mean + s.scale * self.bands_.offsets(groups, q_hi)
            if self.clip_to_range:
                lo_bound, hi_bound = s.low, s.high
            else:
                lo_bound = 0.0 if s.low >= 0 else -np.inf
                hi_bound = np.inf
            out[name] = SeriesForecast(
                mean=np.clip(mean, lo_bound, hi_bound),
                lower={k: np.clip(v, lo_bound, hi_bound) for k, v in lower.items()},
                upper={k: np.clip(v, lo_bound, hi_bound) for k, v in upper.items()},
                model=MODEL_NAME,
            )
        return out
