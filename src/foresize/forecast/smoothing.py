"""Simple exponential smoothing: the level, smoothed at a rate fitted to the series.

Why beside the window statistics (``baselines``): a window of fixed length averages a
series whose level holds for hours no better than one whose level moves every few
minutes, while exponential smoothing fits its rate per series, on the series' own
one-step errors. It is the ETS model without trend or season (statsforecast's AutoETS
picks it on noisy request counts, where a level that forgets slowly beats the last
value). The rate minimises the mean absolute one-step error, as MASE scores, over a
grid (``ALPHAS``) rather than by an optimiser: the grid is cheap to search for every
series at once, and a rate closer than one grid step changes no forecast that matters.
Bands are empirical, the quantiles of the smoothed level's own ``k``-step errors over
the history, as the baselines' are.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from foresize.forecast.baselines import clip_nonnegative, empirical_bands
from foresize.forecast.panel import FloatArray
from foresize.forecast.protocol import LocalForecaster, SeriesForecast

#: The rates searched: 1 % to 100 % of each new value, evenly on a log scale (1 is naive).
ALPHAS = np.geomspace(0.01, 1.0, 25)
#: The fewest points a rate is fitted on; shorter histories forecast naive (rate 1).
MIN_FIT = 4

IntArray = npt.NDArray[np.int64]


def smoothed_levels(y: FloatArray, alpha: float) -> FloatArray:
    """``level[t] = alpha y[t] + (1 - alpha) level[t - 1]`` from ``level[0] = y[0]``: the
    forecast made at ``t`` reads ``y[: t + 1]`` only.
    """
    from scipy.signal import lfilter

    if y.size == 0:
        return np.empty(0)
    start = np.array([(1.0 - alpha) * float(y[0])])
    levels, _ = lfilter([alpha], [1.0, alpha - 1.0], y, zi=start)
    return np.asarray(levels, dtype=np.float64)


def fit_alpha(y: FloatArray) -> float:
    """The rate in ``ALPHAS`` with the least mean absolute one-step error on ``y``; 1
    (naive) under ``MIN_FIT`` points. Ties go to the smaller rate.
    """
    if y.size < MIN_FIT:
        return 1.0
    errors = [float(np.mean(np.abs(y[1:] - smoothed_levels(y, a)[:-1]))) for a in ALPHAS]
    return float(ALPHAS[int(np.argmin(errors))])


def ses_paths(y: FloatArray, origins: IntArray, h: int, alpha: float) -> FloatArray:
    """``(origins, h)`` forecasts: the level at each origin at rate ``alpha``, carried on."""
    levels = smoothed_levels(y, alpha)
    return np.repeat(levels[origins][:, None], h, axis=1)


class ExponentialSmoothing(LocalForecaster):
    """The smoothed level carried forward, at the rate fitted to the series (``fit_alpha``)."""

    name = "ses"

    def forecast_series(
        self, y: FloatArray, h: int, levels: Sequence[int], *, key: str
    ) -> SeriesForecast:
        """The last smoothed level, with the empirical ``k``-step error bands."""
        alpha = fit_alpha(y)
        smoothed = smoothed_levels(y, alpha)
        mean = np.full(h, float(smoothed[-1]))
        errors = [y[k:] - smoothed[:-k] for k in range(1, h + 1) if k < y.size]
        lower, upper = empirical_bands(errors, mean, levels)
        return clip_nonnegative(SeriesForecast(mean, lower, upper, f"ses(a={alpha:.3f})"), y)
