"""Wavelet forecaster: a causal à trous Haar decomposition, one small AR per scale, recombined.

The decomposition is the redundant (undecimated) à trous Haar transform used for
prediction by Renaud, Starck & Murtagh (2005), "Wavelet-based combined signal
filtering and prediction": ``c_0 = y``, ``c_j(t) = a c_{j-1}(t) + b c_{j-1}(t - 2^(j-1))``
with ``(a, b)`` pywavelets' Haar low-pass filter normalised to sum one (so 1/2, 1/2),
``d_j = c_{j-1} - c_j``. It is shift-invariant and causal: each coefficient at ``t``
uses only ``y[0..t]`` (before the series starts the filter repeats the first value),
so a component never sees the future it is asked to forecast, and
``d_1 + ... + d_J + c_J = y`` exactly.

Each detail level is a short-memory oscillation around zero and gets an AR(p) by least
squares (mean-reverting; an explosive fit, with a characteristic root inside the unit
circle, is replaced by its mean); the smooth ``c_J`` gets an AR(p) on its KPSS-chosen
difference (``arima.ndiffs``, at most one: a second difference would extrapolate
curvature). The forecast is the sum of the component forecasts. Bands are empirical:
the quantiles of the recombined forecast's own h-step errors from up to
``max_origins`` origins over the history, with the parameters fitted once on the
whole history (``baselines.empirical_bands``), so they are a little optimistic in
sample. Fitting uses at most the last ``max_history`` points.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Self

import numpy as np
import polars as pl
import pywt

from foresize.core.errors import InputError
from foresize.forecast.arima import constant_forecast, is_constant, ndiffs, single_blas_thread
from foresize.forecast.baselines import clip_nonnegative, empirical_bands, naive_forecast
from foresize.forecast.panel import FloatArray
from foresize.forecast.protocol import LocalForecaster, SeriesForecast

IntArray = np.ndarray[tuple[int], np.dtype[np.int64]]


def haar_lowpass() -> tuple[float, float]:
    """The Haar low-pass filter of pywavelets, scaled to unit gain (an average)."""
    taps = np.asarray(pywt.Wavelet("haar").dec_lo, dtype=np.float64)
    taps = taps / taps.sum()
    return float(taps[0]), float(taps[1])


def causal_components(y: FloatArray, levels: int) -> FloatArray:
    """Rows ``d_1 .. d_levels`` (fine to coarse) then the smooth ``c_levels``; they sum to ``y``.

    Row ``k`` at index ``t`` depends on ``y[0..t]`` only, so ``causal_components(y[:t])``
    equals ``causal_components(y)[:, :t]``: safe as features for a forecaster.
    """
    check_levels_param(levels, "causal_components")
    a, b = haar_lowpass()
    c = np.asarray(y, dtype=np.float64)
    out = np.empty((levels + 1, c.size))
    for j in range(levels):
        shift = 2**j
        lagged = np.concatenate([np.full(min(shift, c.size), c[0] if c.size else 0.0), c[:-shift]])
        smooth = a * c + b * lagged[: c.size]
        out[j] = c - smooth
        c = smooth
    out[levels] = c
    return out


def check_levels_param(levels: int, owner: str) -> None:
    """``levels`` is a whole number of at least one."""
    if not isinstance(levels, int | np.integer) or isinstance(levels, bool) or levels < 1:
        raise InputError(
            f"The 'levels' parameter of {owner} must be a whole number >= 1. "
            f"Got {levels!r} instead."
        )


@dataclass(frozen=True, slots=True)
class ARModel:
    """``x_t = intercept + sum coef_i x_{t-i} + e_t`` on the ``d``-th difference of a component."""

    coef: FloatArray
    intercept: float
    d: int


def fit_ar(x: FloatArray, p: int, start: int, *, d: int = 0) -> ARModel:
    """Least-squares AR(p) on ``diff(x, d)[start:]``; explosive or degenerate fits become the mean.

    An intercept only on undifferenced components: a differenced one with a
    constant would drift for the whole horizon.
    """
    z = np.diff(x, n=d) if d else x
    z = z[max(0, start - d) :]
    rows = z.size - p
    if rows < 2 * p + 2 or is_constant(z):
        return ARModel(np.zeros(p), float(z.mean()) if (z.size and d == 0) else 0.0, d)
    cols = [z[p - i : z.size - i] for i in range(1, p + 1)]
    if d == 0:
        cols.append(np.ones(rows))
    design = np.column_stack(cols)
    solution = np.linalg.lstsq(design, z[p:], rcond=None)[0]
    coef = np.asarray(solution[:p], dtype=np.float64)
    intercept = float(solution[p]) if d == 0 else 0.0
    companion = np.zeros((p, p))
    companion[0] = coef
    companion[1:, :-1] = np.eye(p - 1)
    if not np.isfinite(solution).all() or np.max(np.abs(np.linalg.eigvals(companion))) > 1.001:
        return ARModel(np.zeros(p), float(z.mean()) if d == 0 else 0.0, d)
    return ARModel(coef, intercept, d)


def ar_paths(x: FloatArray, model: ARModel, origins: IntArray, h: int) -> FloatArray:
    """Forecasts of ``x`` from every origin (last observed index) at once: ``(origins, h)``."""
    p = model.coef.size
    z = np.diff(x, n=model.d) if model.d else x
    shift = model.d  # z[i] is the difference ending at x[i + d]
    idx = origins - shift
    buffer = np.stack([z[np.maximum(idx - i, 0)] for i in range(p)], axis=1)  # newest first
    paths = np.empty((origins.size, h))
    for k in range(h):
        nxt = model.intercept + buffer @ model.coef
        paths[:, k] = nxt
        buffer = np.concatenate([nxt[:, None], buffer[:, :-1]], axis=1)
    if model.d:
        paths = x[origins][:, None] + np.cumsum(paths, axis=1)
    return paths


class Wavelet(LocalForecaster):
    """Causal à trous Haar decomposition into ``levels`` details and a smooth, AR per part.

    ``detail_lags``/``smooth_lags`` are the AR orders; bands come from the recombined
    forecast's h-step errors at up to ``max_origins`` history origins; at most the last
    ``max_history`` points are used. See the module docstring.
    """

    name = "wavelet"

    def __init__(
        self,
        *,
        levels: int = 4,
        detail_lags: int = 3,
        smooth_lags: int = 4,
        max_history: int = 2000,
        max_origins: int = 400,
    ) -> None:
        self.levels = levels
        self.detail_lags = detail_lags
        self.smooth_lags = smooth_lags
        self.max_history = max_history
        self.max_origins = max_origins

    def check_params(self) -> None:
        """Reject bad parameters with the name and the value given."""
        check_levels_param(self.levels, "Wavelet")
        for name, low in (
            ("detail_lags", 1),
            ("smooth_lags", 1),
            ("max_history", 16),
            ("max_origins", 1),
        ):
            value = getattr(self, name)
            if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < low:
                raise InputError(
                    f"The {name!r} parameter of Wavelet must be a whole number >= {low}. "
                    f"Got {value!r} instead."
                )

    def fit(self, panel: pl.DataFrame) -> Self:
        """Check the parameters, keep the series."""
        self.check_params()
        return super().fit(panel)

    def min_points(self) -> int:
        """Shortest history worth decomposing: the coarsest filter's span plus AR room."""
        return int(2**self.levels + 4 * max(self.detail_lags, self.smooth_lags) + 8)

    def forecast_series(
        self, y: FloatArray, h: int, levels: Sequence[int], *, key: str
    ) -> SeriesForecast:
        """Decompose, forecast each component, recombine, add empirical bands."""
        self.check_params()
        y = np.asarray(y[-self.max_history :], dtype=np.float64)
        if y.size and is_constant(y):
            return constant_forecast(float(y[-1]), h, levels, "constant (no variation)")
        need = self.min_points()
        if y.size < need:
            fc = naive_forecast(y, h, levels)
            note = f"naive (fallback: {y.size} points < {need} for {self.levels} levels)"
            return SeriesForecast(fc.mean, fc.lower, fc.upper, note)
        with single_blas_thread():
            return self._forecast(y, h, levels)

    def _forecast(self, y: FloatArray, h: int, levels: Sequence[int]) -> SeriesForecast:
        """The model proper, on a series long enough and not constant."""
        comps = causal_components(y, self.levels)
        warmup = 2**self.levels
        smooth_d = min(ndiffs(comps[-1][warmup:], max_d=1), 1)
        models = [fit_ar(c, self.detail_lags, warmup) for c in comps[:-1]]
        models.append(fit_ar(comps[-1], self.smooth_lags, warmup, d=smooth_d))
        first = warmup + max(self.detail_lags, self.smooth_lags) + 1
        origins = np.unique(
            np.linspace(first, y.size - 2, num=self.max_origins).astype(np.int64)
        ).astype(np.int64)
        origins = np.append(origins[origins < y.size - 1], y.size - 1)
        paths = sum(
            (ar_paths(c, m, origins, h) for c, m in zip(comps, models, strict=True)),
            start=np.zeros((origins.size, h)),
        )
        mean = paths[-1]
        errors = []
        for k in range(1, h + 1):
            ok = origins[:-1] + k < y.size
            errors.append(y[origins[:-1][ok] + k] - paths[:-1][ok, k - 1])
        lower, upper = empirical_bands(errors, mean, levels)
        model = f"wavelet(haar, levels={self.levels}, smooth d={smooth_d})"
        return clip_nonnegative(SeriesForecast(mean, lower, upper, model), y)
