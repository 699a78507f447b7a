"""The shape of one series: its dominant periods and its trend.

Telemetry arrives irregularly (jitter, gaps), so samples are first binned onto a grid
at the series' median sampling interval and empty bins are interpolated. Periods come
from the periodogram of the linearly detrended grid, searched between three samples
and half the span (a period must repeat at least twice to be called one). The trend
is the least-squares slope of the series smoothed over its dominant period, because
a raw slope over a few daily cycles mostly measures where the cycles start and end.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

MAX_GRID = 1 << 15  # coarser bins beyond this keep one series' FFT cheap and bounded
MIN_POINTS = 16
SECONDS_PER_DAY = 86400.0

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Shape:
    """Strongest periods (seconds) with the share of detrended variance each explains,
    and the trend of the deseasonalised series (units per day, with its r²).
    """

    periods_s: tuple[float, ...] = ()
    strengths: tuple[float, ...] = ()
    trend_per_day: float | None = None
    trend_r2: float | None = None


def regular_grid(t_s: FloatArray, values: FloatArray, step_s: float) -> tuple[FloatArray, float]:
    """Mean of the samples in each bin from the first sample, gaps interpolated.

    Returns the grid and its bin width, which exceeds ``step_s`` only for very long
    series (``MAX_GRID`` bins at most).
    """
    span = t_s[-1] - t_s[0]
    step = max(step_s, span / MAX_GRID)
    index = np.floor((t_s - t_s[0]) / step + 0.5).astype(np.int64)
    n_bins = int(index[-1]) + 1
    sums = np.bincount(index, weights=values, minlength=n_bins)
    counts = np.bincount(index, minlength=n_bins)
    filled = counts > 0
    grid = np.empty(n_bins)
    grid[filled] = sums[filled] / counts[filled]
    if not filled.all():
        positions = np.arange(n_bins)
        grid[~filled] = np.interp(positions[~filled], positions[filled], grid[filled])
    return grid, step


def periodogram_peaks(
    grid: FloatArray, *, top: int = 3, min_strength: float = 0.10, harmonics: int = 4
) -> tuple[list[float], list[float]]:
    """Periods in bins of up to ``top`` spectral peaks explaining ≥ ``min_strength``.

    A peak is scored with the power of its first ``harmonics`` multiples, because
    periodic spikes (checkpoints, batch jobs) spread their power over harmonics and
    the strongest single bin is often the second or third harmonic, not the period.
    Strength is that harmonic power's share of the detrended signal's total power, so
    a pure sinusoid scores close to 1 and white noise about 2/N per frequency.
    """
    n = grid.size
    slope, _ = _line(grid)
    detrended = grid - grid.mean() - slope * (np.arange(n) - (n - 1) / 2)
    power = np.abs(np.fft.rfft(detrended)) ** 2
    power[0] = 0.0
    if n % 2 == 0:
        power[-1] /= 2  # the Nyquist bin is not mirrored
    total = power.sum()
    if total <= 0:
        return [], []
    k = np.arange(power.size)
    score = power.copy()
    for multiple in range(2, harmonics + 1):
        index = k * multiple
        inside = index < power.size
        score[inside] += power[index[inside]]
    period_bins = n / np.maximum(k, 1)
    left = np.concatenate(([-np.inf], power[:-1]))
    right = np.concatenate((power[1:], [-np.inf]))
    peaks = (power >= left) & (power >= right) & (power > 0) & (k > 0)
    peaks &= (period_bins >= 3) & (period_bins <= n / 2)
    candidates = np.flatnonzero(peaks)
    chosen: list[int] = []
    for i in candidates[np.argsort(score[candidates])[::-1]]:
        if score[i] / total < min_strength or len(chosen) == top:
            break
        if not any(_is_multiple(int(i), j) for j in chosen):
            chosen.append(int(i))
    return [float(period_bins[i]) for i in chosen], [float(score[i] / total) for i in chosen]


def _is_multiple(k: int, base: int) -> bool:
    """Whether frequency bin ``k`` is a harmonic of ``base`` (±1 bin for leakage)."""
    ratio = round(k / base)
    return ratio >= 2 and abs(k - ratio * base) <= 1


def _line(y: FloatArray) -> tuple[float, float]:
    """Least-squares slope per index step, and r², in closed form (no lstsq per series)."""
    x = np.arange(y.size, dtype=np.float64) - (y.size - 1) / 2
    centred = y - y.mean()
    sxx = float(x @ x)
    syy = float(centred @ centred)
    sxy = float(x @ centred)
    if sxx == 0:
        return 0.0, 0.0
    r2 = sxy * sxy / (sxx * syy) if syy > 0 else 0.0
    return sxy / sxx, r2


def _moving_average(y: FloatArray, window: int) -> FloatArray:
    sums = np.cumsum(np.concatenate(([0.0], y)))
    averaged: FloatArray = (sums[window:] - sums[:-window]) / window
    return averaged


def _trend(grid: FloatArray, step_s: float, period_bins: float | None) -> tuple[float, float]:
    smoothed = grid if period_bins is None else _moving_average(grid, max(1, round(period_bins)))
    if smoothed.size < 2:
        return 0.0, 0.0
    slope, r2 = _line(smoothed)
    return slope / step_s * SECONDS_PER_DAY, r2


def describe_shape(t_s: FloatArray, values: FloatArray, step_s: float) -> Shape:
    """Periods and trend of one series sampled at times ``t_s`` (seconds, sorted)."""
    if values.size < 2 or not np.isfinite(step_s) or step_s <= 0:
        return Shape()
    grid, step = regular_grid(t_s, values, step_s)
    periods: list[float] = []
    strengths: list[float] = []
    if grid.size >= MIN_POINTS:
        periods, strengths = periodogram_peaks(grid)
    trend, r2 = _trend(grid, step, periods[0] if periods else None)
    return Shape(tuple(p * step for p in periods), tuple(strengths), trend, r2)
