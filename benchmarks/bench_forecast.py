"""Forecast accuracy on real GenTD26 panels: the hybrid against Nixtla's anchors.

Protocol (issue 5): ``foresize.forecast.backtest.backtest`` -- test region = the
last 30 % of each series, origins every 30 steps, horizons 1..30, refit at every
origin, MASE scaled by the in-sample one-step naive MAE. Every model, anchors
included, runs through that same loop (the anchors behind a thin Forecaster
adapter), so the numbers are comparable.

Panels (from the mirror, ``FORESIZE_DATA_MIRROR``):

* ``gpu``: ``alibaba-gentd26:gpu_duty_cycle``, gpu_util_pct per container, 57 s grid.
* ``mem``: ``alibaba-gentd26:memory_util``, mem_util_pct per container, 57 s grid.
* ``qps``: ``alibaba-gentd26:qps`` holds a row only when a workload saw requests, so
  it is summed over all workloads per 57 s step on a full grid, absent steps being
  0 requests: three series, ``generative_requests`` (107 workloads),
  ``api_requests`` (the gateway) and ``total``.
* ``lora``: ``alibaba-gentd26:lora`` arrivals per minute per workload (3) plus their
  sum, averaged over 10-minute bins (still arrivals per minute). At one-minute
  resolution the 23 days give 331 origins per series, which the AutoARIMA anchor
  cannot refit in a sane time; 10-minute bins keep the full history and the daily
  cycle (144 bins), with 34 origins.

Anchors: statsforecast Naive, SeasonalNaive (season per panel), AutoARIMA, AutoETS,
AutoTheta (non-seasonal: the 57 s panels span at most a day), and mlforecast
LightGBM (lags 1..30, recursive, conformal intervals with 2 windows when every
series is long enough, else none). Seconds per series = the backtest's fit+predict
time over all origins / series.

Run: ``python benchmarks/bench_forecast.py [--panels gpu mem qps lora] [--series N]
[--models hybrid arima sf_naive ...] [--seed 0]``. The panels and the anchor adapters
live in ``foresize.evaluate.panels`` / ``foresize.evaluate.anchors`` (shared with
``foresize evaluate forecast``).
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from foresize.evaluate.anchors import ANCHORS, make_anchors, warm_up
from foresize.evaluate.panels import SEASONS, load_panel
from foresize.forecast.backtest import BacktestResult, backtest
from foresize.forecast.models import FORECASTERS, make_forecaster
from foresize.forecast.protocol import Forecaster

DEFAULT_MIRROR = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "alibaba-clusterdata"


def make_models(names: Sequence[str], panel_name: str, seed: int) -> list[Forecaster]:
    """foresize's forecasters by registry name, the anchors by ``sf_*``/``mlf_*`` name."""
    ours = [
        make_forecaster(n, **({"seed": seed} if n == "hybrid" else {}))
        for n in names
        if n in FORECASTERS
    ]
    anchors = [n for n in names if n not in FORECASTERS]
    return ours + make_anchors(anchors, season=SEASONS[panel_name], seed=seed)


def subset(panel: pl.DataFrame, n: int | None, seed: int) -> pl.DataFrame:
    """``n`` series drawn at random (seeded), or the whole panel."""
    names = panel["series"].unique().sort().to_list()
    if n is None or n >= len(names):
        return panel
    rng = np.random.default_rng(seed)
    keep = sorted(rng.choice(names, size=n, replace=False).tolist())
    return panel.filter(pl.col("series").is_in(keep))


def row_of(panel_name: str, result: BacktestResult) -> dict[str, Any]:
    """The printed metrics of one backtest."""
    m = result.metrics
    return {
        "panel": panel_name,
        "model": result.model,
        "series": int(m["series"]),
        "mase": m["mase"],
        "accuracy": m["accuracy"],
        "pinball_95": m.get("pinball_95", float("nan")),
        "cov_80": m.get("coverage_80", float("nan")),
        "cov_95": m.get("coverage_95", float("nan")),
        "s_per_series": m["seconds_per_series"],
    }


def main() -> None:
    """Run the backtests and print one table per panel plus the hybrid's ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--panels", nargs="+", default=["gpu", "mem", "qps", "lora"])
    parser.add_argument(
        "--models",
        nargs="+",
        default=["hybrid", *ANCHORS],
    )
    parser.add_argument("--series", type=int, default=None, help="random subset per panel")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    os.environ.setdefault("FORESIZE_DATA_MIRROR", str(DEFAULT_MIRROR))
    warm_up()
    pl.Config.set_tbl_rows(100)
    pl.Config.set_tbl_cols(20)
    pl.Config.set_tbl_width_chars(140)
    rows: list[dict[str, Any]] = []
    for panel_name in args.panels:
        panel = subset(load_panel(panel_name), args.series, args.seed)
        for model in make_models(args.models, panel_name, args.seed):
            began = time.perf_counter()
            result = backtest(panel, model)
            rows.append(row_of(panel_name, result))
            print(
                f"{panel_name:5s} {result.model:15s} mase={rows[-1]['mase']:.3f} "
                f"cov95={rows[-1]['cov_95']:.3f} ({time.perf_counter() - began:.1f} s)",
                flush=True,
            )
    table = pl.DataFrame(rows)
    print(table.with_columns(pl.col(pl.Float64).round(4)))
    anchors = table.filter(pl.col("model").is_in(list(ANCHORS)))
    hybrid = table.filter(pl.col("model") == "hybrid")
    if anchors.height and hybrid.height:
        best = anchors.group_by("panel").agg(
            best_mase=pl.col("mase").min(),
            best_anchor=pl.col("model").sort_by("mase").first(),
            best_pinball_95=pl.col("pinball_95").min(),
        )
        ratio = hybrid.join(best, on="panel").select(
            "panel",
            "best_anchor",
            mase_ratio=pl.col("mase") / pl.col("best_mase"),
            pinball_95_ratio=pl.col("pinball_95") / pl.col("best_pinball_95"),
            cov_95="cov_95",
            s_per_series="s_per_series",
        )
        print(ratio.with_columns(pl.col(pl.Float64).round(4)))


if __name__ == "__main__":
    main()
