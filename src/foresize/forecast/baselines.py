"""Naive, seasonal naive, window-average and window-median forecasters: references and fallbacks.

Their intervals are empirical: the quantiles of the method's own h-step errors over
the series' history (for naive, ``y[t+h] - y[t]`` at every t). That needs no
distributional assumption, which matters on spiky, bounded utilisation series where
normal intervals are both too wide and too narrow. With fewer than ``MIN_ERRORS``
errors for a horizon, the horizon borrows the band of the shorter horizons (none at
all on a one-point series, said in ``model``). Bands never narrow as the horizon grows
and always hold the point forecast.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from foresize.core.errors import InputError
from foresize.forecast.panel import FloatArray
from foresize.forecast.protocol import LocalForecaster, SeriesForecast, level_quantiles

MIN_ERRORS = 5


#: Elements sorted at once when the bands' quantiles are taken (bounds the memory of a
#: long history forecast far ahead: steps are sorted in chunks of at most this size).
SORT_CHUNK = 1 << 22


def empirical_bands(
    errors_by_step: Sequence[FloatArray], mean: FloatArray, levels: Sequence[int]
) -> tuple[dict[int, FloatArray], dict[int, FloatArray]]:
    """Bands ``mean + quantile(errors)`` per step, widening only, holding ``mean``."""
    h = mean.size
    qs = [q for level in levels for q in level_quantiles(level)]
    steps = list(errors_by_step[:h])
    found = step_quantiles(steps, qs)  # (steps, 2 x levels); NaN under MIN_ERRORS errors
    lower: dict[int, FloatArray] = {}
    upper: dict[int, FloatArray] = {}
    for i, level in enumerate(levels):
        lo = np.zeros(h)
        hi = np.zeros(h)
        lo[: len(steps)] = found[:, 2 * i]
        hi[: len(steps)] = found[:, 2 * i + 1]
        # widening only, from a zero-width band; a step without enough errors keeps the
        # band of the steps before it
        lower[level] = mean + np.minimum.accumulate(np.minimum(np.nan_to_num(lo, nan=0.0), 0.0))
        upper[level] = mean + np.maximum.accumulate(np.maximum(np.nan_to_num(hi, nan=0.0), 0.0))
    return lower, upper


def step_quantiles(errors_by_step: Sequence[FloatArray], qs: Sequence[float]) -> FloatArray:
    """``np.quantile(errors, qs)`` (linear) for every step's errors at once, NaN for a
    step with fewer than ``MIN_ERRORS``: the steps are padded to one matrix and sorted
    row-wise in chunks, not one quantile call per step and level (a 1,442-step forecast
    of 143 series made 320k calls).
    """
    out = np.full((len(errors_by_step), len(qs)), np.nan)
    sizes = np.array([e.size for e in errors_by_step], dtype=np.int64)
    q = np.asarray(qs, dtype=np.float64)
    start = 0
    while start < sizes.size:
        width = max(int(sizes[start:].max(initial=0)), 1)
        stop = start + max(1, min(sizes.size - start, SORT_CHUNK // width))
        block = np.full((stop - start, width), np.inf)
        for row, errors in enumerate(errors_by_step[start:stop]):
            block[row, : errors.size] = errors
        block.sort(axis=1)
        n = sizes[start:stop]
        enough = np.flatnonzero(n >= MIN_ERRORS)
        # numpy's linear method: the virtual index (n - 1) q, and its lerp
        virtual = (n[enough, None] - 1) * q[None, :]
        below = np.floor(virtual).astype(np.int64)
        above = np.minimum(below + 1, n[enough, None] - 1)
        gamma = virtual - below
        a, b = block[enough[:, None], below], block[enough[:, None], above]
        diff = b - a
        value = np.where(gamma >= 0.5, b - diff * (1 - gamma), a + diff * gamma)
        out[start + enough] = value
        start = stop
    return out


def clip_nonnegative(forecast: SeriesForecast, y: FloatArray) -> SeriesForecast:
    """Usage never goes below zero: clip a forecast of a series that never did."""
    if y.size and float(y.min()) >= 0:
        return SeriesForecast(
            mean=np.maximum(forecast.mean, 0.0),
            lower={k: np.maximum(v, 0.0) for k, v in forecast.lower.items()},
            upper={k: np.maximum(v, 0.0) for k, v in forecast.upper.items()},
            model=forecast.model,
        )
    return forecast


def naive_forecast(y: FloatArray, h: int, levels: Sequence[int]) -> SeriesForecast:
    """Last value carried forward, with the empirical h-step change quantiles."""
    mean = np.full(h, float(y[-1]))
    errors = [y[k:] - y[:-k] for k in range(1, h + 1) if k < y.size]
    lower, upper = empirical_bands(errors, mean, levels)
    model = "naive" if y.size > MIN_ERRORS else f"naive ({y.size} points: no interval history)"
    return clip_nonnegative(SeriesForecast(mean, lower, upper, model), y)


class Naive(LocalForecaster):
    """The last value carried forward: the anchor that MASE divides by."""

    name = "naive"

    def forecast_series(
        self, y: FloatArray, h: int, levels: Sequence[int], *, key: str
    ) -> SeriesForecast:
        """Carry the last value forward."""
        return naive_forecast(y, h, levels)


class SeasonalNaive(LocalForecaster):
    """The value one season ago; naive (said in ``model``) on series shorter than two seasons."""

    name = "seasonal_naive"

    def __init__(self, season: int = 24) -> None:
        self.season = season

    def forecast_series(
        self, y: FloatArray, h: int, levels: Sequence[int], *, key: str
    ) -> SeriesForecast:
        """Repeat the last season."""
        m = self.season
        if m < 1:
            raise InputError(f"seasonal_naive: season must be at least 1 step, got {m}")
        if y.size < 2 * m:
            fc = naive_forecast(y, h, levels)
            return SeriesForecast(
                fc.mean, fc.lower, fc.upper, f"naive (fallback: {y.size} points < 2 seasons of {m})"
            )
        steps = np.arange(1, h + 1)
        lags = m * np.ceil(steps / m).astype(np.int64)
        mean = y[y.size - lags + steps - 1]
        errors = [y[lag:] - y[:-lag] for lag in lags if lag < y.size]
        lower, upper = empirical_bands(errors, mean, levels)
        return clip_nonnegative(SeriesForecast(mean, lower, upper, f"seasonal_naive(m={m})"), y)


class _WindowStatistic(LocalForecaster):
    """One statistic of the last ``window`` values (the whole series when shorter), with
    the empirical h-step error bands of that statistic computed at every earlier point.
    """

    name = "window"

    def __init__(self, window: int = 30) -> None:
        self.window = window

    def statistic(self, window: FloatArray) -> float:
        """The forecast from one window of values."""
        raise NotImplementedError

    def rolling(self, y: FloatArray, w: int) -> FloatArray:
        """The statistic of every window of ``w`` values, ending at ``w - 1``, ``w``, ..."""
        raise NotImplementedError

    def forecast_series(
        self, y: FloatArray, h: int, levels: Sequence[int], *, key: str
    ) -> SeriesForecast:
        """The last window's statistic, with the empirical h-step error bands."""
        w = self.window
        if w < 1:
            raise InputError(f"{self.name}: window must be at least 1 step, got {w}")
        w_eff = min(w, y.size)
        mean = np.full(h, self.statistic(y[-w_eff:]))
        errors: list[FloatArray] = []
        if y.size > w_eff:
            past = self.rolling(y, w_eff)
            for k in range(1, h + 1):
                n = y.size - (w_eff - 1) - k
                errors.append(y[w_eff - 1 + k :] - past[:n] if n > 0 else np.empty(0))
        lower, upper = empirical_bands(errors, mean, levels)
        model = f"{self.name}(w={w_eff})"
        return clip_nonnegative(SeriesForecast(mean, lower, upper, model), y)


class WindowAverage(_WindowStatistic):
    """Mean of the last ``window`` values; the whole series when it is shorter."""

    name = "window_average"

    def statistic(self, window: FloatArray) -> float:
        """The window's mean."""
        return float(window.mean())

    def rolling(self, y: FloatArray, w: int) -> FloatArray:
        """Running means from cumulative sums."""
        csum = np.concatenate([[0.0], np.cumsum(y)])
        out: FloatArray = (csum[w:] - csum[:-w]) / w
        return out


class WindowMedian(_WindowStatistic):
    """Median of the last ``window`` values; the whole series when it is shorter.

    Why beside the window average: MASE and WAPE score absolute errors, which the
    median minimises, not the mean. On a count that is mostly zero with bursts (requests
    per minute when traffic thins out) the mean of a window sits above the zeros and
    errs at every quiet step; the median is zero there, and equals the mean where the
    window is symmetric.
    """

    name = "window_median"

    def statistic(self, window: FloatArray) -> float:
        """The window's median."""
        return float(np.median(window))

    def rolling(self, y: FloatArray, w: int) -> FloatArray:
        """Running medians over sliding windows."""
        out: FloatArray = np.median(sliding_window_view(y, w), axis=1)
        return out
