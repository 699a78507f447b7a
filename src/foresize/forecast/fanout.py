"""Backtests fanned out over workers: ``backtest`` by registry name, series split in chunks.

It sits above the registry (``forecast.models``) because a worker rebuilds the
forecaster from its name and parameters (a fitted model does not travel well).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import polars as pl

from foresize.core.errors import InsufficientDataError, PartialInterrupt
from foresize.core.parallel import default_workers, run_tasks
from foresize.forecast.backtest import BACKTEST_LEVELS, BacktestResult, backtest
from foresize.forecast.models import make_forecaster
from foresize.forecast.panel import check_panel
from foresize.forecast.protocol import Forecaster, LocalForecaster


def _backtest_chunk(
    panel: pl.DataFrame, name: str, params: dict[str, Any], protocol: dict[str, Any]
) -> BacktestResult:
    return backtest(panel, make_forecaster(name, **params), **protocol)


SERIAL_CHUNKS = 16  # a serial run of a per-series model still finishes in steps one can count


def backtest_fanout(
    panel: pl.DataFrame,
    name: str,
    params: dict[str, Any] | None = None,
    *,
    engine: str = "serial",
    workers: int | None = None,
    address: str | None = None,
    horizon: int = 30,
    every: int = 30,
    test_frac: float = 0.3,
    levels: Sequence[int] = BACKTEST_LEVELS,
    on_chunk: Callable[[int, BacktestResult | None], None] | None = None,
    on_origin: Callable[[int, int], None] | None = None,
) -> BacktestResult:
    """``backtest`` of forecaster ``name`` with its series split in chunks over ``engine``.

    Per-series forecasters (``LocalForecaster``) are split into chunks of series (two
    per worker; ``SERIAL_CHUNKS`` on the serial engine); a global model (one model
    across series, like the hybrid) is one task, since splitting its training set would
    change its forecasts. Either way the points are those of one serial ``backtest``,
    whatever the engine. ``seconds`` is the sum of the chunks' fit+predict time
    (compute, not wall time).

    ``on_chunk(n_series, result)`` is called as each chunk finishes (``None`` when all
    its series were too short), so progress advances and an interrupted caller keeps
    the finished chunks (``merge_backtests`` joins them). ``on_origin(done, total)``
    reports the origins of a global model run on the serial engine.
    """
    params = params or {}
    protocol: dict[str, Any] = {
        "horizon": horizon,
        "every": every,
        "test_frac": test_frac,
        "levels": levels,
    }
    check_panel(panel, source="backtest")
    names = panel["series"].unique(maintain_order=True).to_list()
    local = isinstance(make_forecaster(name, **params), LocalForecaster)
    if not local and engine == "serial":
        result = backtest(panel, make_forecaster(name, **params), on_origin=on_origin, **protocol)
        if on_chunk is not None:
            on_chunk(len(names), result)
        return result
    wanted = SERIAL_CHUNKS if engine == "serial" else (workers or default_workers()) * 2
    n_chunks = min(len(names), wanted) if local else 1
    chunks = [names[i::n_chunks] for i in range(n_chunks)]
    items = [(panel.filter(pl.col("series").is_in(c)), name, params, protocol) for c in chunks]

    def finished(index: int, result: BacktestResult | None) -> None:
        if on_chunk is not None:
            on_chunk(len(chunks[index]), result)

    done = run_tasks(_backtest_chunk_safe, items, engine=engine, workers=workers,
                     address=address, on_result=finished)
    results = [r for r in done if r is not None]
    if not results:
        return backtest(panel, make_forecaster(name, **params), **protocol)  # raises the reason
    return merge_backtests(results)


def merge_backtests(results: Sequence[BacktestResult]) -> BacktestResult:
    """One result from the backtests of disjoint sets of series (chunks) of one model."""
    skipped: dict[str, int] = {}
    for r in results:
        for reason, count in r.skipped.items():
            skipped[reason] = skipped.get(reason, 0) + count
    return BacktestResult(
        model=results[0].model,
        points=pl.concat([r.points for r in results]).sort("series", "origin", "step"),
        scales={k: v for r in results for k, v in r.scales.items()},
        seconds=sum(r.seconds for r in results),
        series=sum(r.series for r in results),
        origins=max(r.origins for r in results),
        skipped=skipped,
    )


def _backtest_chunk_safe(
    panel: pl.DataFrame, name: str, params: dict[str, Any], protocol: dict[str, Any]
) -> BacktestResult | None:
    """A chunk whose series are all too short yields None instead of failing the run."""
    try:
        return _backtest_chunk(panel, name, params, protocol)
    except InsufficientDataError:
        return None


def forecast_in_chunks(
    panel: pl.DataFrame,
    forecaster: Forecaster,
    h: int,
    levels: Sequence[int],
    *,
    on_chunk: Callable[[int], None] | None = None,
) -> pl.DataFrame:
    """``forecaster.fit(panel).predict(h, levels)``, in steps one can count and keep.

    A per-series forecaster (``LocalForecaster``) runs on ``SERIAL_CHUNKS`` contiguous
    chunks of series (each series' forecast is the same as in one call, and so is the
    order); ``on_chunk(n_series)`` follows each, and Ctrl-C raises ``PartialInterrupt``
    carrying the finished chunks' frame. A global model (one model across series) is
    one step: splitting its training set would change its forecasts.
    """
    names = panel["series"].unique(maintain_order=True).to_list()
    if not isinstance(forecaster, LocalForecaster):
        frame = forecaster.fit(panel).predict(h, levels)
        if on_chunk is not None:
            on_chunk(len(names))
        return frame
    size = -(-len(names) // SERIAL_CHUNKS)
    frames: list[pl.DataFrame] = []
    try:
        for start in range(0, len(names), size):
            chunk = names[start:start + size]
            part = panel.filter(pl.col("series").is_in(chunk))
            frames.append(forecaster.fit(part).predict(h, levels))
            if on_chunk is not None:
                on_chunk(len(chunk))
    except KeyboardInterrupt:
        if not frames:
            raise
        raise PartialInterrupt(pl.concat(frames)) from None
    return pl.concat(frames)
