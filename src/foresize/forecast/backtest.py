"""Rolling-origin backtests: every forecaster is judged by the same protocol.

The protocol (issue 5, and the usual one for serving telemetry): the test region is
the last ``test_frac`` of each series; the first origin is where it starts and the
next ones follow every ``every`` steps; at each origin the forecaster is refit on
the history up to it and forecasts ``horizon`` steps, which are scored against what
happened (a horizon running past the series' end is cut). The same forecaster
instance is refit at every origin, so models that can reuse work across refits
(ARIMA's order search, for one) may do so; each refit still sees only the history.

Origins are counted per series, so a global model trained at origin k sees each
series up to that series' own k-th origin.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import polars as pl

from foresize.core.errors import InputError, InsufficientDataError
from foresize.forecast.metrics import naive_scale, score_points
from foresize.forecast.panel import check_panel, series_arrays
from foresize.forecast.protocol import Forecaster, check_horizon, check_levels

BACKTEST_LEVELS: tuple[int, ...] = (80, 90, 95)
MIN_TRAIN = 8  # fewer history points than this at the first origin: the series is not backtested


@dataclass(frozen=True, slots=True)
class BacktestResult:
    """The scored points of one forecaster's backtest and its panel metrics."""

    model: str
    points: pl.DataFrame
    scales: dict[str, float]
    seconds: float
    series: int
    origins: int
    skipped: dict[str, int] = field(default_factory=dict)

    @property
    def metrics(self) -> dict[str, float]:
        """MASE, WAPE, accuracy, pinball, coverage, per-bucket MASE, seconds per series."""
        out = score_points(self.points, self.scales, BACKTEST_LEVELS)
        out["seconds_per_series"] = self.seconds / self.series if self.series else float("nan")
        out["series"] = float(self.series)
        out["origins"] = float(self.origins)
        return out


def first_origins(lengths: dict[str, int], test_frac: float) -> dict[str, int]:
    """Index of each series' first test point (its training part is ``y[:origin]``)."""
    return {name: n - math.ceil(test_frac * n) for name, n in lengths.items()}


def backtest(
    panel: pl.DataFrame,
    forecaster: Forecaster,
    *,
    horizon: int = 30,
    every: int = 30,
    test_frac: float = 0.3,
    levels: Sequence[int] = BACKTEST_LEVELS,
    on_origin: Callable[[int, int], None] | None = None,
) -> BacktestResult:
    """Refit ``forecaster`` at every origin and score its forecasts; see the module docstring.

    ``on_origin(done, total)`` is called after each origin (for progress bars).
    """
    check_panel(panel, source="backtest")
    horizon = check_horizon(horizon)
    every = check_horizon(every)
    levels = check_levels(levels)
    if not 0 < test_frac < 1:
        raise InputError(f"backtest: test_frac must be between 0 and 1, got {test_frac}")
    ordered = panel.sort("series", "ts")
    arrays = series_arrays(ordered)
    starts = first_origins({k: v.size for k, v in arrays.items()}, test_frac)
    usable = {k: o for k, o in starts.items() if o >= MIN_TRAIN and o < arrays[k].size}
    skipped = {"too_short": len(arrays) - len(usable)} if len(usable) < len(arrays) else {}
    if not usable:
        raise InsufficientDataError(
            f"backtest: no series has {MIN_TRAIN} training points before its test region "
            f"(the last {test_frac:.0%}); the longest has {max(a.size for a in arrays.values())}"
        )
    scales = {k: naive_scale(arrays[k][:o]) for k, o in usable.items()}
    n_origins = max(math.ceil((arrays[k].size - o) / every) for k, o in usable.items())
    indexed = ordered.filter(pl.col("series").is_in(list(usable))).with_columns(
        idx=pl.int_range(pl.len()).over("series")
    )
    origin_frame = pl.DataFrame(
        {
            "series": list(usable),
            "first": list(usable.values()),
            "n": [arrays[k].size for k in usable],
        },
        schema={"series": pl.String, "first": pl.Int64, "n": pl.Int64},
    )
    indexed = indexed.join(origin_frame, on="series")
    parts: list[pl.DataFrame] = []
    seconds = 0.0
    for k in range(n_origins):
        cut = pl.col("first") + k * every
        live = indexed.filter(cut < pl.col("n"))
        if live.is_empty():
            break
        train = live.filter(pl.col("idx") < cut)
        test = live.filter((pl.col("idx") >= cut) & (pl.col("idx") < cut + horizon))
        train = train.select("series", "ts", "y")
        began = time.perf_counter()
        forecast = forecaster.fit(train).predict(horizon, levels)
        seconds += time.perf_counter() - began
        actual = test.select(
            "series", "y", step=(pl.col("idx") - cut + 1).cast(pl.Int64), origin=pl.lit(k)
        )
        parts.append(actual.join(forecast.drop("ts"), on=["series", "step"], how="left"))
        if on_origin is not None:
            on_origin(k + 1, n_origins)
    points = pl.concat(parts)
    missing = points.filter(pl.col("mean").is_null())
    if not missing.is_empty():
        row = missing.row(0, named=True)
        raise InputError(
            f"backtest: {getattr(forecaster, 'name', 'forecaster')} returned no forecast for "
            f"series {row['series']!r} step {row['step']}"
        )
    return BacktestResult(
        model=getattr(forecaster, "name", type(forecaster).__name__),
        points=points,
        scales=scales,
        seconds=seconds,
        series=len(usable),
        origins=n_origins,
        skipped=skipped,
    )


def compare(results: Sequence[BacktestResult]) -> pl.DataFrame:
    """One row per model with its panel metrics, best MASE first."""
    rows = [{"model": r.model, **r.metrics} for r in results]
    return pl.DataFrame(rows).sort("mase", nulls_last=True)
