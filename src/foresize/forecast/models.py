"""The forecaster registry: every model ``--model`` can name, built from keyword parameters."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from foresize.core.registry import Registry
from foresize.forecast.arima import Arima
from foresize.forecast.baselines import Naive, SeasonalNaive, WindowAverage
from foresize.forecast.hybrid import Hybrid
from foresize.forecast.protocol import Forecaster
from foresize.forecast.wavelet import Wavelet

FORECASTERS: Registry[Callable[..., Forecaster]] = Registry("forecaster")
FORECASTERS.add("naive", Naive)
FORECASTERS.add("seasonal_naive", SeasonalNaive)
FORECASTERS.add("window_average", WindowAverage)
FORECASTERS.add("arima", Arima)
FORECASTERS.add("wavelet", Wavelet)
FORECASTERS.add("hybrid", Hybrid)


def _auto(**params: Any) -> Forecaster:
    """Per series, the candidate with the lowest backtest error, refit on all history."""
    from foresize.forecast.auto import Auto  # auto.py uses this registry: import on demand

    return Auto(**params)


FORECASTERS.add("auto", _auto)


def make_forecaster(name: str, **params: Any) -> Forecaster:
    """A fresh forecaster ``name`` built with ``params``; unknown names list the valid ones."""
    return FORECASTERS.get(name)(**params)
