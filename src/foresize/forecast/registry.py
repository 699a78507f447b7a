"""The single models: every forecaster that forecasts on its own, by registry name.

This is the bottom of the registry stack. ``auto`` chooses among these models, and
``models.FORECASTERS`` (what ``--model`` names) is these plus ``auto``; keeping them
here, below ``auto``, is what lets ``auto`` import them without importing itself back
through the full registry.
"""

from __future__ import annotations

from collections.abc import Callable

from foresize.core.registry import Registry
from foresize.forecast.arima import Arima
from foresize.forecast.baselines import Naive, SeasonalNaive, WindowAverage, WindowMedian
from foresize.forecast.hybrid import Hybrid
from foresize.forecast.protocol import Forecaster
from foresize.forecast.smoothing import ExponentialSmoothing
from foresize.forecast.wavelet import Wavelet

SINGLE_MODELS: Registry[Callable[..., Forecaster]] = Registry("forecaster")
SINGLE_MODELS.add("naive", Naive)
SINGLE_MODELS.add("seasonal_naive", SeasonalNaive)
SINGLE_MODELS.add("window_average", WindowAverage)
SINGLE_MODELS.add("window_median", WindowMedian)
SINGLE_MODELS.add("ses", ExponentialSmoothing)
SINGLE_MODELS.add("arima", Arima)
SINGLE_MODELS.add("wavelet", Wavelet)
SINGLE_MODELS.add("hybrid", Hybrid)
