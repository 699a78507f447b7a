"""The forecasters' names, in a module that imports nothing: help texts list them
without loading polars, numpy and the models, which ``forecast.models`` imports.
"""

from __future__ import annotations

#: Every name ``FORECASTERS`` registers, in its order (a test keeps the two equal).
FORECASTER_NAMES = ("naive", "seasonal_naive", "window_average", "window_median", "ses",
                    "arima", "wavelet", "hybrid", "auto")
