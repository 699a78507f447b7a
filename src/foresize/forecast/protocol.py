"""The Forecaster contract and the machinery every per-series forecaster shares.

A forecaster is configured by its constructor (parameters only, scikit-learn style),
learns from a panel with ``fit(panel)`` (long format: ``series, ts, y`` on a regular
grid per series, see ``panel.to_panel``) and returns ``predict(h, levels)``: one row
per series and future step with ``series, ts, step, mean`` and ``lo_L``/``hi_L`` for
each central interval level L in percent (``lo_80`` is the 10 % quantile, ``hi_95``
the 97.5 % one). A phase-aware forecaster adds ``phase``.

Per-series models subclass ``LocalForecaster`` and implement ``forecast_series``
on a numpy array; global models (one model over all series) implement the protocol
directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, Self, runtime_checkable

import numpy as np
import numpy.typing as npt
import polars as pl

from foresize.core.errors import InputError, NotFittedError
from foresize.forecast.panel import FloatArray, check_panel, series_arrays

DEFAULT_LEVELS: tuple[int, ...] = (80, 95)


@dataclass(frozen=True, slots=True)
class SeriesForecast:
    """One series' forecast: the mean path and, per level, the lower and upper paths."""

    mean: FloatArray
    lower: dict[int, FloatArray]
    upper: dict[int, FloatArray]
    model: str  # what actually produced it, e.g. "arima(1,0,1)" or "naive (fallback: 3 points)"


@runtime_checkable
class Forecaster(Protocol):
    """Fit on a panel, predict ``h`` steps ahead with central intervals at ``levels``."""

    name: str

    def fit(self, panel: pl.DataFrame) -> Self:
        """Learn from a ``series, ts, y`` panel on a regular grid per series."""
        ...

    def predict(self, h: int, levels: Sequence[int] = DEFAULT_LEVELS) -> pl.DataFrame:
        """``h`` steps per series: ``series, ts, step, mean, lo_L, hi_L, model``."""
        ...


def check_levels(levels: Sequence[int]) -> tuple[int, ...]:
    """Interval levels in percent, strictly between 0 and 100, sorted and unique."""
    out = tuple(sorted({int(level) for level in levels}))
    for level in out:
        if not 0 < level < 100:
            raise InputError(f"levels: each must be between 0 and 100 (exclusive), got {level}")
    return out


def check_horizon(h: int) -> int:
    """A horizon in steps: a positive whole number."""
    if not isinstance(h, int | np.integer) or h < 1:
        raise InputError(f"horizon: must be a positive whole number of steps, got {h!r}")
    return int(h)


def level_quantiles(level: int) -> tuple[float, float]:
    """The lower and upper quantile of a central interval of ``level`` percent."""
    tail = (100 - level) / 200
    return tail, 1 - tail


def series_steps(panel: pl.DataFrame) -> dict[str, tuple[int, int]]:
    """Per series: (last ts in epoch microseconds, step in microseconds)."""
    stats = panel.group_by("series", maintain_order=True).agg(
        last=pl.col("ts").max().dt.epoch("us"),
        step=pl.col("ts").sort().diff().median().dt.total_microseconds(),
    )
    out: dict[str, tuple[int, int]] = {}
    for name, last, step in stats.iter_rows():
        out[str(name)] = (int(last), int(step) if step is not None else 60_000_000)
    return out


def cap_frame(frame: pl.DataFrame, ceiling: float | None) -> pl.DataFrame:
    """``frame`` with its mean and every band at or below ``ceiling`` (none: as it is).

    Why after the models: a model's band can pass what the metric can read (a duty
    cycle at 100 % that has jumped by 30 points gets a naive band up to 130 %), and no
    model is told the metric's physical range.
    """
    if ceiling is None:
        return frame
    columns = [c for c in frame.columns if c == "mean" or c.startswith(("lo_", "hi_"))]
    return frame.with_columns(pl.col(columns).clip(upper_bound=ceiling))


def forecast_frame(
    forecasts: dict[str, SeriesForecast],
    steps: dict[str, tuple[int, int]],
    levels: Sequence[int],
) -> pl.DataFrame:
    """Assemble per-series forecasts into the protocol's long output frame."""
    columns: dict[str, list[npt.NDArray[np.generic]]] = {
        "series": [],
        "ts": [],
        "step": [],
        "mean": [],
        "model": [],
    }
    for level in levels:
        columns[f"lo_{level}"] = []
        columns[f"hi_{level}"] = []
    for name, fc in forecasts.items():
        h = fc.mean.size
        last, step = steps[name]
        columns["series"].append(np.full(h, name, dtype=object))
        columns["ts"].append(last + step * np.arange(1, h + 1, dtype=np.int64))
        columns["step"].append(np.arange(1, h + 1, dtype=np.int64))
        columns["mean"].append(fc.mean)
        columns["model"].append(np.full(h, fc.model, dtype=object))
        for level in levels:
            columns[f"lo_{level}"].append(np.minimum(fc.lower[level], fc.mean))
            columns[f"hi_{level}"].append(np.maximum(fc.upper[level], fc.mean))
    data = {key: np.concatenate(parts) if parts else np.array([]) for key, parts in columns.items()}
    frame = pl.DataFrame(
        {
            "series": pl.Series(data["series"], dtype=pl.String),
            "ts": pl.Series(data["ts"].astype(np.int64))
            .cast(pl.Datetime("us"))
            .dt.replace_time_zone("UTC"),
            "step": pl.Series(data["step"].astype(np.int64)),
            "mean": pl.Series(data["mean"].astype(np.float64)),
            **{
                key: pl.Series(data[key].astype(np.float64))
                for key in columns
                if key.startswith(("lo_", "hi_"))
            },
            "model": pl.Series(data["model"], dtype=pl.String),
        }
    )
    return frame


class LocalForecaster:
    """Base of forecasters that model each series on its own.

    Subclasses set ``name`` and implement ``forecast_series``; ``fit`` keeps the
    arrays, ``predict`` runs the per-series model and assembles the frame.
    """

    name: str = "local"

    def fit(self, panel: pl.DataFrame) -> Self:
        """Keep each series' values and time step."""
        check_panel(panel, source=f"{self.name} fit")
        self.series_ = series_arrays(panel)
        self.steps_ = series_steps(panel)
        return self

    def predict(self, h: int, levels: Sequence[int] = DEFAULT_LEVELS) -> pl.DataFrame:
        """Run ``forecast_series`` on every series and assemble the frame."""
        if not hasattr(self, "series_"):
            raise NotFittedError(f"{self.name}: call fit() before predict()")
        h = check_horizon(h)
        levels = check_levels(levels)
        forecasts = {
            name: self.forecast_series(y, h, levels, key=name) for name, y in self.series_.items()
        }
        return forecast_frame(forecasts, self.steps_, levels)

    def forecast_series(
        self, y: FloatArray, h: int, levels: Sequence[int], *, key: str
    ) -> SeriesForecast:
        """Forecast one series ``y`` (time order, no gaps) ``h`` steps ahead."""
        raise NotImplementedError
