"""Dominant periods of one series, from a periodogram on a regular grid.

Telemetry arrives irregularly (jitter, gaps), so samples are first binned onto a grid
at the series' median sampling interval, empty bins are interpolated, the linear trend
is removed, and the power spectrum is searched for peaks between three samples and
half the span (a period must repeat at least twice to be called one).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

MAX_GRID = 1 << 15  # coarser bins beyond this keep one series' FFT cheap and bounded
MIN_POINTS = 16


@dataclass(frozen=True, slots=True)
class Periodicity:
    """The strongest periods and the share of the detrended variance each explains."""

    periods_s: tuple[float, ...]
    strengths: tuple[float, ...]


NONE = Periodicity((), ())


def regular_grid(
    t_s: npt.NDArray[np.float64], values: npt.NDArray[np.float64], step_s: float
) -> npt.NDArray[np.float64]:
    """Mean of the samples in each ``step_s`` bin from the first sample; gaps interpolated."""
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
    return grid


def dominant_periods(
    t_s: npt.NDArray[np.float64],
    values: npt.NDArray[np.float64],
    step_s: float,
    *,
    top: int = 3,
    min_strength: float = 0.10,
) -> Periodicity:
    """Up to ``top`` periods (seconds) whose spectral peak explains ≥ ``min_strength``.

    Strength is the peak's share of the detrended signal's total spectral power, so a
    pure sinusoid scores close to 1 and white noise scores about 2/N per frequency.
    """
    if values.size < MIN_POINTS or step_s <= 0 or not np.isfinite(step_s):
        return NONE
    grid = regular_grid(t_s, values, step_s)
    n = grid.size
    if n < MIN_POINTS:
        return NONE
    step = (t_s[-1] - t_s[0]) / (n - 1)
    x = np.arange(n, dtype=np.float64)
    slope, intercept = np.polyfit(x, grid, 1)
    detrended = grid - (slope * x + intercept)
    power = np.abs(np.fft.rfft(detrended)) ** 2
    power[0] = 0.0
    if n % 2 == 0:
        power[-1] /= 2  # the Nyquist bin is not mirrored
    total = power[1:].sum()
    if total <= 0:
        return NONE
    k = np.arange(power.size)
    with np.errstate(divide="ignore"):
        period_bins = np.where(k > 0, n / np.maximum(k, 1), np.inf)
    allowed = (period_bins >= 3) & (period_bins <= n / 2)
    peaks = _local_maxima(power) & allowed
    candidates = np.flatnonzero(peaks)
    order = candidates[np.argsort(power[candidates])[::-1]]
    chosen = [int(i) for i in order[:top] if power[i] / total >= min_strength]
    return Periodicity(
        tuple(float(period_bins[i] * step) for i in chosen),
        tuple(float(power[i] / total) for i in chosen),
    )


def _local_maxima(power: npt.NDArray[np.float64]) -> npt.NDArray[np.bool_]:
    left = np.concatenate(([-np.inf], power[:-1]))
    right = np.concatenate((power[1:], [-np.inf]))
    return (power >= left) & (power >= right) & (power > 0)
