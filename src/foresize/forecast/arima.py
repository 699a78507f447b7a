"""Automatic ARIMA on statsmodels: a cheap stepwise order search, one proper fit, warm refits.

Order selection follows Hyndman & Khandakar (2008): ``d`` by repeated KPSS tests
(statsmodels ``kpss``, 5 %, at most ``max_d``), ``D`` by the seasonal-strength rule
(> 0.64) when a season is given, then a stepwise walk over (p, q[, P, Q]) from four
starting orders, moving to any neighbour (one or both of p, q changed by one) that
improves the criterion (AICc by default). Like statsforecast's ``approximation`` mode,
the walk scores candidates with a fast estimate, here Hannan-Rissanen regressions on
a sample common to all candidates (one long-AR pass shared by the whole walk), and
only the winner is fitted by exact maximum likelihood (statsmodels ``SARIMAX``, scale
concentrated out). ``d + D = 0`` models carry an intercept; differenced ones carry none
(no drift: a drift extrapolates a local slope of utilisation for the whole horizon).

Refits are cheap: the instance keeps, per series id, the selected order and its
parameters, and a later ``fit`` with a longer history (the backtest refits at every
origin) re-estimates that order from the previous parameters; the search reruns every
``research_every`` refits or when the warm fit fails. Fitting uses at most the last
``max_history`` points of each series. Failures never escape: a constant series gets
its constant with zero-width bands, a series shorter than ``min_points`` gets naive, and
a fit that raises or does not converge falls back to a simpler order, ending at naive;
each case is said in ``model``. Bands come from the fitted model
(``get_forecast(h).conf_int(alpha)``) and are clipped at zero on non-negative series.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, replace
from typing import Literal, Self, TypeVar

import numpy as np
import polars as pl

from foresize.core.errors import InputError, NotFittedError
from foresize.core.parallel import run_tasks
from foresize.forecast.baselines import clip_nonnegative, naive_forecast
from foresize.forecast.panel import FloatArray
from foresize.forecast.protocol import (
    DEFAULT_LEVELS,
    LocalForecaster,
    SeriesForecast,
    check_horizon,
    check_levels,
    forecast_frame,
)

Criterion = Literal["aicc", "aic"]
STEPS: tuple[tuple[int, int], ...] = (
    (-1, 0),
    (1, 0),
    (0, -1),
    (0, 1),
    (-1, -1),
    (1, 1),
    (-1, 1),
    (1, -1),
)


@dataclass(frozen=True, slots=True)
class Spec:
    """An ARIMA(p, d, q)(P, D, Q)[m] order; ``m = 0`` means no seasonal part."""

    p: int
    d: int
    q: int
    P: int = 0
    D: int = 0
    Q: int = 0
    m: int = 0

    @property
    def trend(self) -> str:
        """Intercept only on undifferenced models."""
        return "c" if self.d + self.D == 0 else "n"

    def label(self) -> str:
        """``arima(p,d,q)`` plus ``(P,D,Q)[m]`` when seasonal."""
        base = f"arima({self.p},{self.d},{self.q})"
        return base + (f"({self.P},{self.D},{self.Q})[{self.m}]" if self.m else "")


@dataclass(frozen=True, slots=True)
class ArimaConfig:
    """Everything a worker needs to fit one series: the Arima parameters, frozen."""

    max_p: int = 3
    max_q: int = 3
    max_d: int = 2
    season: int = 0
    criterion: Criterion = "aicc"
    max_history: int = 2000
    min_points: int = 16
    maxiter: int = 50
    warm_maxiter: int = 15
    warm_start: bool = True
    research_every: int = 5
    max_models: int = 40


@dataclass(frozen=True, slots=True)
class ArimaState:
    """What a series' last fit leaves for the next: its order, parameters, refit count."""

    spec: Spec
    params: FloatArray
    refits: int = 0


def check_config(cfg: ArimaConfig) -> None:
    """Reject bad parameters with the parameter's name and the value given."""
    whole = {
        "max_p": (cfg.max_p, 0),
        "max_q": (cfg.max_q, 0),
        "max_d": (cfg.max_d, 0),
        "season": (cfg.season, 0),
        "max_history": (cfg.max_history, 8),
        "min_points": (cfg.min_points, 3),
        "maxiter": (cfg.maxiter, 1),
        "warm_maxiter": (cfg.warm_maxiter, 1),
        "research_every": (cfg.research_every, 1),
        "max_models": (cfg.max_models, 1),
    }
    for name, (value, low) in whole.items():
        if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < low:
            raise InputError(
                f"The {name!r} parameter of Arima must be a whole number >= {low}. "
                f"Got {value!r} instead."
            )
    if cfg.max_d > 2:
        raise InputError(f"The 'max_d' parameter of Arima must be at most 2. Got {cfg.max_d}.")
    if cfg.season == 1:
        raise InputError("The 'season' parameter of Arima must be 0 (off) or >= 2. Got 1.")
    if cfg.criterion not in ("aicc", "aic"):
        raise InputError(
            f"The 'criterion' parameter of Arima must be 'aicc' or 'aic'. Got {cfg.criterion!r}."
        )


def is_constant(y: FloatArray) -> bool:
    """No variation beyond rounding noise relative to the series' magnitude."""
    return y.size > 0 and float(np.ptp(y)) <= 1e-9 * max(1.0, float(np.abs(y).max()))


def constant_forecast(value: float, h: int, levels: Sequence[int], model: str) -> SeriesForecast:
    """The constant with zero-width bands: a series that never moved gives no spread."""
    mean = np.full(h, value)
    return SeriesForecast(
        mean, {lv: mean.copy() for lv in levels}, {lv: mean.copy() for lv in levels}, model
    )


def ndiffs(y: FloatArray, max_d: int, alpha: float = 0.05) -> int:
    """Differences needed by repeated KPSS tests (null: level-stationary)."""
    from statsmodels.tsa.stattools import kpss

    x = y
    for d in range(max_d + 1):
        if x.size < 10 or is_constant(x):
            return d
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                lags = int(4 * (x.size / 100) ** 0.25)  # the "short" lag of R's forecast::ndiffs
                p_value = float(kpss(x, regression="c", nlags=lags)[1])
            except (ValueError, ZeroDivisionError, np.linalg.LinAlgError):
                return d
        if not p_value < alpha or d == max_d:
            return d
        x = np.diff(x)
    return max_d


def nsdiffs(y: FloatArray, m: int) -> int:
    """One seasonal difference when the seasonal strength (Wang, Smith & Hyndman) exceeds 0.64."""
    if m < 2 or y.size < 3 * m:
        return 0
    trend = np.convolve(y, np.ones(m) / m, mode="same")
    detrended = y - trend
    phase = np.arange(y.size) % m
    profile = np.bincount(phase, weights=detrended, minlength=m) / np.bincount(phase, minlength=m)
    seasonal = profile[phase]
    remainder = detrended - seasonal
    var_sr = float(np.var(detrended))
    if var_sr <= 0:
        return 0
    strength = max(0.0, 1.0 - float(np.var(remainder)) / var_sr)
    return 1 if strength > 0.64 else 0


def difference(y: FloatArray, d: int, sd: int, m: int) -> FloatArray:
    """Apply ``sd`` seasonal differences at lag ``m`` then ``d`` ordinary ones."""
    x = y
    for _ in range(sd):
        x = x[m:] - x[:-m]
    for _ in range(d):
        x = np.diff(x)
    return x


def _lags(order: int, seasonal: int, m: int) -> list[int]:
    """Additive stand-in for the multiplicative lag set of (1-B..B^p)(1-B^m..B^Pm)."""
    out = set(range(1, order + 1))
    for k in range(1, seasonal + 1):
        out.update(k * m + j for j in range(order + 1))
    return sorted(out)


class _Scorer:
    """Hannan-Rissanen scores of candidate orders on one differenced series.

    The long AR that estimates the innovations is fitted once; every candidate is
    then one least-squares regression on the same rows, so criteria are comparable.
    """

    def __init__(self, x: FloatArray, cfg: ArimaConfig, spec0: Spec) -> None:
        self.x = x
        self.cfg = cfg
        self.spec0 = spec0
        m = spec0.m
        max_lag = max(
            max(_lags(cfg.max_p, 1 if m else 0, m), default=0),
            max(_lags(cfg.max_q, 1 if m else 0, m), default=0),
        )
        n = x.size
        self.long = max(2, min(int(math.log(n) ** 2), n // 5, 40))
        lag_rows = np.lib.stride_tricks.sliding_window_view(x, self.long + 1)[:, ::-1]
        design = np.column_stack([np.ones(lag_rows.shape[0]), lag_rows[:, 1:]])
        coef = np.linalg.lstsq(design, lag_rows[:, 0], rcond=None)[0]
        self.e = np.zeros(n)
        self.e[self.long :] = lag_rows[:, 0] - design @ coef
        self.start = self.long + max_lag
        self.rows = n - self.start
        self.scores: dict[Spec, tuple[float, FloatArray]] = {}

    def feasible(self, spec: Spec) -> bool:
        """Enough rows to estimate the candidate's parameters and its AICc correction."""
        k = len(_lags(spec.p, spec.P, spec.m)) + len(_lags(spec.q, spec.Q, spec.m)) + 1
        return self.rows - k - 2 > 0

    def score(self, spec: Spec) -> float:
        """The criterion of ``spec`` (lower is better); cached."""
        if spec in self.scores:
            return self.scores[spec][0]
        x, e, s = self.x, self.e, self.start
        cols = [x[s - lag : x.size - lag] for lag in _lags(spec.p, spec.P, spec.m)]
        cols += [e[s - lag : e.size - lag] for lag in _lags(spec.q, spec.Q, spec.m)]
        if spec.trend == "c":
            cols.insert(0, np.ones(self.rows))
        target = x[s:]
        if cols:
            design = np.column_stack(cols)
            coef: FloatArray = np.linalg.lstsq(design, target, rcond=None)[0].astype(np.float64)
            resid = self._css_residuals(spec, coef)
        else:
            coef, resid = np.empty(0), target
        n, k = self.rows, len(cols) + 1
        with np.errstate(over="ignore", invalid="ignore"):
            sse = float(resid @ resid)
        if not math.isfinite(sse):  # an explosive MA recursion: this order is not a candidate
            self.scores[spec] = (math.inf, coef)
            return math.inf
        sigma2 = max(sse / n, 1e-300)
        value = n * math.log(sigma2) + 2 * k
        if self.cfg.criterion == "aicc":
            value += 2 * k * (k + 1) / max(n - k - 1, 1)
        self.scores[spec] = (value, coef)
        return value

    def _css_residuals(self, spec: Spec, coef: FloatArray) -> FloatArray:
        """Recursive ARMA residuals at the HR estimates (conditional sum of squares).

        The HR regression itself scores MA terms with innovations taken from the long
        AR, which flatters them; filtering the series through the candidate's own MA
        recursion does not, so larger orders have to earn their parameters.
        """
        from scipy.signal import lfilter

        x, s = self.x, self.start
        offset = 1 if spec.trend == "c" else 0
        ar_lags = _lags(spec.p, spec.P, spec.m)
        ma_lags = _lags(spec.q, spec.Q, spec.m)
        u = x[s:] - (coef[0] if offset else 0.0)
        for lag, phi in zip(ar_lags, coef[offset : offset + len(ar_lags)], strict=True):
            u = u - phi * x[s - lag : x.size - lag]
        if not ma_lags:
            return np.asarray(u, dtype=np.float64)
        poly = np.zeros(max(ma_lags) + 1)
        poly[0] = 1.0
        poly[ma_lags] = coef[offset + len(ar_lags) :]
        with np.errstate(over="ignore", invalid="ignore"):
            resid = np.asarray(lfilter([1.0], poly, u), dtype=np.float64)
        return resid if np.isfinite(resid).all() else np.full(u.size, 1e150)

    def start_params(self, spec: Spec) -> FloatArray | None:
        """HR coefficients in SARIMAX's order, when non-seasonal, stationary and invertible."""
        if spec.m or spec not in self.scores:
            return None
        coef = self.scores[spec][1]
        offset = 1 if spec.trend == "c" else 0
        ar, ma = coef[offset : offset + spec.p], coef[offset + spec.p :]
        if not (_stable(ar) and _stable(-ma)):
            return None
        return coef


def _stable(ar: FloatArray) -> bool:
    """All roots of 1 - ar_1 z - ... outside the unit circle (companion eigenvalues < 1)."""
    if ar.size == 0:
        return True
    companion = np.zeros((ar.size, ar.size))
    companion[0] = ar
    companion[1:, :-1] = np.eye(ar.size - 1)
    return bool(np.max(np.abs(np.linalg.eigvals(companion))) < 0.99)


def search_order(y: FloatArray, cfg: ArimaConfig) -> tuple[list[Spec], _Scorer | None]:
    """Stepwise search; returns candidates best first (the walk's visited orders)."""
    m = cfg.season
    sd = nsdiffs(y, m) if m else 0
    d = ndiffs(difference(y, 0, sd, m), cfg.max_d)
    x = difference(y, d, sd, m)
    base = Spec(0, d, 0, 0, sd, 0, m)
    if x.size < 12 or is_constant(x):
        return [base], None
    scorer = _Scorer(x, cfg, base)
    if scorer.rows < 8:
        return [base], None
    seasonal = 1 if m else 0

    def make(p: int, q: int, sp: int, sq: int) -> Spec | None:
        spec = Spec(p, d, q, sp, sd, sq, m)
        ok = 0 <= p <= cfg.max_p and 0 <= q <= cfg.max_q and 0 <= sp <= seasonal
        ok = ok and 0 <= sq <= seasonal
        return spec if ok and scorer.feasible(spec) else None

    starts = [(2, 2, 1, 1), (0, 0, 0, 0), (1, 0, 1, 0), (0, 1, 0, 1)]
    candidates = [
        s
        for s in (
            make(min(p, cfg.max_p), min(q, cfg.max_q), P * seasonal, Q * seasonal)
            for p, q, P, Q in starts
        )
        if s
    ]
    best = min(candidates or [base], key=scorer.score)
    for _ in range(cfg.max_models):
        moves: list[Spec | None] = [
            make(best.p + dp, best.q + dq, best.P, best.Q) for dp, dq in STEPS
        ]
        if m:
            moves += [make(best.p, best.q, best.P + dP, best.Q + dQ) for dP, dQ in STEPS]
        fresh = [s for s in moves if s is not None and s not in scorer.scores]
        if not fresh or len(scorer.scores) >= cfg.max_models:
            break
        challenger = min(fresh, key=scorer.score)
        if scorer.score(challenger) >= scorer.score(best):
            break
        best = challenger
    ranked = sorted(scorer.scores, key=scorer.score)
    ranked.remove(best)
    return [best, *ranked], scorer


@dataclass(frozen=True, slots=True)
class _Fit:
    """A successful SARIMAX fit: forecasts and the parameters to warm-start the next."""

    mean: FloatArray
    lower: dict[int, FloatArray]
    upper: dict[int, FloatArray]
    params: FloatArray


def fit_spec(
    y: FloatArray,
    spec: Spec,
    h: int,
    levels: Sequence[int],
    *,
    start: FloatArray | None,
    maxiter: int,
    strict: bool = True,
) -> _Fit | str:
    """Fit ``spec`` by exact ML and forecast; a string saying why on any failure.

    ``strict=False`` (warm refits) accepts an optimiser that stopped at ``maxiter``:
    it started at the previous optimum, so a few steps are all a longer history needs.
    """
    from statsmodels.tools.sm_exceptions import ConvergenceWarning
    from statsmodels.tsa.statespace.sarimax import SARIMAX

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            # Estimate on the differenced series (simple differencing: the same likelihood
            # without the diffuse states, ~5x cheaper per evaluation), then filter the
            # model in levels once at those parameters so forecasts and bands integrate.
            def model(*, simple: bool) -> SARIMAX:
                return SARIMAX(
                    y,
                    order=(spec.p, spec.d, spec.q),
                    seasonal_order=(spec.P, spec.D, spec.Q, spec.m) if spec.m else (0, 0, 0, 0),
                    trend=spec.trend,
                    concentrate_scale=True,
                    simple_differencing=simple,
                )

            estimator = model(simple=spec.d + spec.D > 0)
            if estimator.k_params == 0:
                params = np.empty(0)
            else:
                if start is not None and start.size != estimator.k_params:
                    start = None
                fitted = estimator.fit(start_params=start, disp=False, maxiter=maxiter)
                params = np.asarray(fitted.params, dtype=np.float64)
            res = model(simple=False).filter(params)
            forecast = res.get_forecast(h)
            mean = np.asarray(forecast.predicted_mean, dtype=np.float64)
            bands = {lv: np.asarray(forecast.conf_int(alpha=1 - lv / 100)) for lv in levels}
        except (ValueError, np.linalg.LinAlgError, IndexError, OverflowError) as exc:
            return f"{type(exc).__name__}"
    if strict and any(issubclass(w.category, ConvergenceWarning) for w in caught):
        return "did not converge"
    if not (np.isfinite(mean).all() and np.isfinite(params).all()):
        return "non-finite estimates"
    if not all(np.isfinite(b).all() for b in bands.values()):
        return "non-finite intervals"
    return _Fit(
        mean,
        {lv: b[:, 0].astype(np.float64) for lv, b in bands.items()},
        {lv: b[:, 1].astype(np.float64) for lv, b in bands.items()},
        params,
    )


def _simpler(spec: Spec) -> Spec | None:
    """The next order down a fallback chain: seasonal terms first, then the larger of p, q."""
    if spec.P or spec.Q:
        return replace(spec, P=0, Q=0)
    if spec.p == spec.q == 0:
        return None
    if spec.p >= spec.q:
        return replace(spec, p=spec.p - 1)
    return replace(spec, q=spec.q - 1)


def _result(fit: _Fit, y: FloatArray, model: str) -> SeriesForecast:
    """A clipped SeriesForecast from a fit."""
    return clip_nonnegative(SeriesForecast(fit.mean, fit.lower, fit.upper, model), y)


def arima_series(
    y: FloatArray,
    h: int,
    levels: Sequence[int],
    cfg: ArimaConfig,
    state: ArimaState | None,
) -> tuple[SeriesForecast, ArimaState | None]:
    """Forecast one series; returns the forecast and the state for its next refit."""
    y = np.asarray(y[-cfg.max_history :], dtype=np.float64)
    if y.size and is_constant(y):
        return constant_forecast(float(y[-1]), h, levels, "constant (no variation)"), None
    if y.size < cfg.min_points:
        fc = naive_forecast(y, h, levels)
        note = f"naive (fallback: {y.size} points < {cfg.min_points})"
        return SeriesForecast(fc.mean, fc.lower, fc.upper, note), None
    if cfg.warm_start and state is not None and state.refits < cfg.research_every:
        warm = fit_spec(
            y, state.spec, h, levels, start=state.params, maxiter=cfg.warm_maxiter, strict=False
        )
        if isinstance(warm, _Fit):
            next_state = ArimaState(state.spec, warm.params, state.refits + 1)
            return _result(warm, y, state.spec.label()), next_state
    ranked, scorer = search_order(y, cfg)
    spec: Spec | None = ranked[0]
    reason = ""
    while spec is not None:
        start = scorer.start_params(spec) if scorer else None
        fit = fit_spec(y, spec, h, levels, start=start, maxiter=cfg.maxiter)
        if isinstance(fit, _Fit):
            model = spec.label() + (
                f" (fallback from {ranked[0].label()}: {reason})" if reason else ""
            )
            return _result(fit, y, model), ArimaState(spec, fit.params, 0)
        reason = reason or fit
        spec = _simpler(spec)
    fc = naive_forecast(y, h, levels)
    return SeriesForecast(fc.mean, fc.lower, fc.upper, f"naive (fallback: arima {reason})"), None


Item = tuple[str, FloatArray]
S = TypeVar("S")
R = TypeVar("R")


def map_chunks(
    work: Callable[[S, list[Item]], list[R]],
    setup: S,
    items: list[Item],
    n_jobs: int,
) -> list[R]:
    """Run ``work(setup, chunk)`` over chunks of series, in-process or in ``n_jobs`` processes.

    Chunks are balanced by series length (longest first, dealt round-robin) so one
    long series does not leave the other workers idle.
    """
    if n_jobs <= 1 or len(items) < 2:
        return work(setup, items)
    n_chunks = min(len(items), 4 * n_jobs)
    order = sorted(range(len(items)), key=lambda i: -items[i][1].size)
    chunks: list[list[Item]] = [[] for _ in range(n_chunks)]
    for rank, i in enumerate(order):
        chunks[rank % n_chunks].append(items[i])
    parts = run_tasks(work, [(setup, c) for c in chunks], engine="local", workers=n_jobs)
    return [result for part in parts for result in part]


ArimaSetup = tuple[ArimaConfig, int, tuple[int, ...], dict[str, ArimaState]]
ArimaOut = tuple[str, SeriesForecast, ArimaState | None]


def single_blas_thread() -> AbstractContextManager[object]:
    """Limit BLAS to one thread while fitting, when threadpoolctl is installed.

    The matrices here are tiny (state dimension <= 5, regressions of ~40 columns); a
    threaded BLAS spends far more on spinning than on work, and on a busy machine the
    spinning costs 10-30x (measured: 1.08 s against 0.034 s for one GenTD26 series).
    """
    try:
        from threadpoolctl import threadpool_limits  # type: ignore[import-untyped,import-not-found,unused-ignore]
    except ImportError:  # optional: then the caller's BLAS settings stand
        return nullcontext()
    limiter: AbstractContextManager[object] = threadpool_limits(limits=1, user_api="blas")
    return limiter


def _arima_chunk(setup: ArimaSetup, items: list[Item]) -> list[ArimaOut]:
    """Worker: forecast a chunk of series (top level so process pools can pickle it)."""
    cfg, h, levels, states = setup
    with single_blas_thread():
        return [(key, *arima_series(y, h, levels, cfg, states.get(key))) for key, y in items]


def check_jobs(n_jobs: int, owner: str) -> None:
    """``n_jobs`` is a positive whole number."""
    if not isinstance(n_jobs, int | np.integer) or isinstance(n_jobs, bool) or n_jobs < 1:
        raise InputError(
            f"The 'n_jobs' parameter of {owner} must be a whole number >= 1. Got {n_jobs!r}."
        )


class Arima(LocalForecaster):
    """Automatic (S)ARIMA per series: stepwise AICc search, exact ML fit, warm refits.

    ``max_p``/``max_q`` bound the search, ``max_d`` the KPSS differencing, ``season``
    (0 = off) adds a seasonal part with P, Q <= 1. Fitting uses at most the last
    ``max_history`` points of each series. ``warm_start`` reuses each series' order and
    parameters across refits of this instance, re-searching every ``research_every``
    refits; ``n_jobs`` processes share the series. See the module docstring.
    """

    name = "arima"

    def __init__(
        self,
        *,
        max_p: int = 3,
        max_q: int = 3,
        max_d: int = 2,
        season: int = 0,
        criterion: Criterion = "aicc",
        max_history: int = 2000,
        min_points: int = 16,
        warm_start: bool = True,
        research_every: int = 5,
        n_jobs: int = 1,
    ) -> None:
        self.max_p = max_p
        self.max_q = max_q
        self.max_d = max_d
        self.season = season
        self.criterion = criterion
        self.max_history = max_history
        self.min_points = min_points
        self.warm_start = warm_start
        self.research_every = research_every
        self.n_jobs = n_jobs

    def config(self) -> ArimaConfig:
        """The parameters as a frozen, picklable config (checked)."""
        cfg = ArimaConfig(
            max_p=self.max_p,
            max_q=self.max_q,
            max_d=self.max_d,
            season=self.season,
            criterion=self.criterion,
            max_history=self.max_history,
            min_points=self.min_points,
            warm_start=self.warm_start,
            research_every=self.research_every,
        )
        check_config(cfg)
        check_jobs(self.n_jobs, "Arima")
        return cfg

    def fit(self, panel: pl.DataFrame) -> Self:
        """Check the parameters, keep the series; the per-series cache survives refits."""
        self.config()
        super().fit(panel)
        if not self.warm_start or not hasattr(self, "cache_"):
            self.cache_: dict[str, ArimaState] = {}
        return self

    def predict(self, h: int, levels: Sequence[int] = DEFAULT_LEVELS) -> pl.DataFrame:
        """Fit and forecast every series (in ``n_jobs`` processes), updating the cache."""
        if not hasattr(self, "series_"):
            raise NotFittedError(f"{self.name}: call fit() before predict()")
        h = check_horizon(h)
        levels = check_levels(levels)
        setup: ArimaSetup = (self.config(), h, levels, self.cache_)
        items = list(self.series_.items())
        results = map_chunks(_arima_chunk, setup, items, self.n_jobs)
        self._remember(results)
        forecasts = {key: fc for key, fc, _ in results}
        return forecast_frame({k: forecasts[k] for k, _ in items}, self.steps_, levels)

    def forecast_series(
        self, y: FloatArray, h: int, levels: Sequence[int], *, key: str
    ) -> SeriesForecast:
        """One series in-process, through the same cache."""
        if not hasattr(self, "cache_"):
            self.cache_ = {}
        with single_blas_thread():
            fc, state = arima_series(y, h, levels, self.config(), self.cache_.get(key))
        self._remember([(key, fc, state)])
        return fc

    def _remember(self, results: Iterable[ArimaOut]) -> None:
        """Store each series' state for its next refit (or forget it when it fell back)."""
        for key, _, state in results:
            if state is None:
                self.cache_.pop(key, None)
            else:
                self.cache_[key] = state
