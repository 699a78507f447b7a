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
[--models hybrid naive ...] [--seed 0]``.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Self

import numpy as np
import polars as pl

from foresize.forecast.backtest import BacktestResult, backtest
from foresize.forecast.baselines import Naive
from foresize.forecast.hybrid import Hybrid
from foresize.forecast.panel import to_panel
from foresize.forecast.protocol import Forecaster
from foresize.ingest.sources import open_telemetry

DEFAULT_MIRROR = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "alibaba-clusterdata"
STEP_S = 57
SEASONS = {"gpu": 60, "mem": 60, "qps": 60, "lora": 144}


def read_telemetry(address: str) -> pl.DataFrame:
    """Canonical telemetry of one GenTD26 address, eager, without the dropped-rows noise."""
    os.environ.setdefault("FORESIZE_DATA_MIRROR", str(DEFAULT_MIRROR))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frame = open_telemetry([address]).frame
        if hasattr(frame, "collect"):
            frame = frame.collect()
    return frame


def binned_sum(frame: pl.DataFrame, key: pl.Expr, step_s: int) -> pl.DataFrame:
    """Sum of ``value`` per ``key`` and ``step_s`` bin on a full grid (absent bins are 0)."""
    t0 = frame["ts"].min()
    binned = frame.with_columns(
        series=key,
        b=((pl.col("ts") - pl.lit(t0)).dt.total_seconds() // step_s).cast(pl.Int64),
    )
    sums = binned.group_by("series", "b").agg(y=pl.col("value").sum())
    n_bins = int(sums["b"].max()) + 1  # type: ignore[arg-type]
    grid = pl.DataFrame({"series": sums["series"].unique().sort()}).join(
        pl.DataFrame({"b": np.arange(n_bins)}), how="cross"
    )
    out = grid.join(sums, on=["series", "b"], how="left").with_columns(pl.col("y").fill_null(0.0))
    return out.with_columns(
        ts=pl.lit(t0) + pl.duration(seconds=pl.col("b") * step_s),
    ).select("series", "ts", "y")


def load_panel(name: str) -> pl.DataFrame:
    """One benchmark panel ``series, ts, y`` (see the module docstring)."""
    if name in ("gpu", "mem"):
        address = {"gpu": "gpu_duty_cycle", "mem": "memory_util"}[name]
        panel, _ = to_panel(read_telemetry(f"alibaba-gentd26:{address}"))
        return panel
    if name == "qps":
        frame = read_telemetry("alibaba-gentd26:qps")
        by_tenant = binned_sum(frame, pl.col("tenant"), STEP_S)
        total = (
            by_tenant.group_by("ts").agg(y=pl.col("y").sum()).with_columns(series=pl.lit("total"))
        )
        return pl.concat([by_tenant, total.select("series", "ts", "y")]).sort("series", "ts")
    if name == "lora":
        frame = read_telemetry("alibaba-gentd26:lora")
        total = (
            frame.group_by("ts")
            .agg(value=pl.col("value").sum())
            .with_columns(workload=pl.lit("total"))
        )
        columns = ["workload", "ts", "value"]
        both = pl.concat([frame.select(columns), total.select(columns)])
        per_bin = binned_sum(both, pl.col("workload"), 600)
        return per_bin.with_columns(pl.col("y") / 10.0).sort("series", "ts")
    msg = f"unknown panel {name!r}"
    raise ValueError(msg)


def nixtla_frame(panel: pl.DataFrame) -> tuple[Any, dict[str, int]]:
    """Pandas ``unique_id, ds, y`` with integer ds, and each series' last ds."""
    indexed = panel.sort("series", "ts").with_columns(ds=pl.int_range(pl.len()).over("series"))
    last = dict(indexed.group_by("series").agg(pl.col("ds").max()).iter_rows())
    return indexed.select(unique_id="series", ds="ds", y="y").to_pandas(), last


def long_forecast(
    wide: Any, last: dict[str, int], column: str, levels: Sequence[int], model: str
) -> pl.DataFrame:
    """A Nixtla wide forecast -> the protocol's long frame (``ts`` is a dummy)."""
    frame = pl.from_pandas(wide.reset_index() if "unique_id" not in wide.columns else wide)
    frame = frame.with_columns(
        series=pl.col("unique_id").cast(pl.String),
        step=(pl.col("ds") - pl.col("unique_id").cast(pl.String).replace_strict(last)).cast(
            pl.Int64
        ),
    )
    cols = {"mean": pl.col(column)}
    for level in levels:
        lo, hi = f"{column}-lo-{level}", f"{column}-hi-{level}"
        cols[f"lo_{level}"] = pl.col(lo) if lo in frame.columns else pl.lit(None, pl.Float64)
        cols[f"hi_{level}"] = pl.col(hi) if hi in frame.columns else pl.lit(None, pl.Float64)
    return frame.select(
        "series",
        ts=pl.lit(0).cast(pl.Datetime("us", "UTC")),
        step="step",
        **cols,
        model=pl.lit(model),
    )


def with_naive_fallback(
    forecast: pl.DataFrame, panel: pl.DataFrame, h: int, levels: Sequence[int]
) -> pl.DataFrame:
    """Fill what an anchor left empty (e.g. SeasonalNaive on a series < 2 seasons) with naive."""
    naive = Naive().fit(panel).predict(h, levels)
    value_cols = ["mean", *[f"{side}_{lv}" for lv in levels for side in ("lo", "hi")]]
    joined = naive.select("series", "step", *value_cols).join(
        forecast.select("series", "step", *value_cols, "model"),
        on=["series", "step"],
        how="left",
        suffix="_anchor",
    )
    return joined.select(
        "series",
        ts=pl.lit(0).cast(pl.Datetime("us", "UTC")),
        step="step",
        **{c: pl.col(f"{c}_anchor").fill_nan(None).fill_null(pl.col(c)) for c in value_cols},
        model=pl.col("model").fill_null("naive (fallback)"),
    )


class StatsAnchor:
    """A statsforecast model behind the Forecaster protocol (refit on every ``fit``)."""

    def __init__(self, name: str, model: Any) -> None:
        self.name = name
        self.model = model

    def fit(self, panel: pl.DataFrame) -> Self:
        """Keep the panel; statsforecast fits inside ``forecast``."""
        self.panel_ = panel
        return self

    def predict(self, h: int, levels: Sequence[int] = (80, 95)) -> pl.DataFrame:
        """Fit and forecast every series with statsforecast."""
        from statsforecast import StatsForecast

        df, last = nixtla_frame(self.panel_)
        sf = StatsForecast(models=[self.model], freq=1, n_jobs=1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            wide = sf.forecast(df=df, h=h, level=list(levels))
        return with_naive_fallback(
            long_forecast(wide, last, str(self.model), levels, self.name), self.panel_, h, levels
        )


class MLAnchor:
    """mlforecast LightGBM, lags 1..30, recursive; conformal intervals where possible."""

    name = "mlf_lgbm"

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def fit(self, panel: pl.DataFrame) -> Self:
        """Fit one global recursive LightGBM on all series."""
        import lightgbm as lgb
        from mlforecast import MLForecast
        from mlforecast.utils import PredictionIntervals

        self.panel_ = panel
        df, self.last_ = nixtla_frame(panel)
        model = lgb.LGBMRegressor(n_estimators=100, verbose=-1, random_state=self.seed, n_jobs=1)
        self.mlf_ = MLForecast(models={"lgbm": model}, freq=1, lags=list(range(1, 31)))
        shortest = int(df.groupby("unique_id").size().min())
        self.intervals_ = shortest > 2 * 30 + 30
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if self.intervals_:
                self.mlf_.fit(df, prediction_intervals=PredictionIntervals(n_windows=2, h=30))
            else:
                self.mlf_.fit(df)
        return self

    def predict(self, h: int, levels: Sequence[int] = (80, 95)) -> pl.DataFrame:
        """Recursive forecast of every series."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            wide = self.mlf_.predict(h, level=list(levels) if self.intervals_ else None)
        return with_naive_fallback(
            long_forecast(wide, self.last_, "lgbm", levels, self.name), self.panel_, h, levels
        )


def make_models(names: Sequence[str], panel_name: str, seed: int) -> list[Forecaster]:
    """The models to run, by name."""
    from statsforecast.models import AutoARIMA, AutoETS, AutoTheta, Naive, SeasonalNaive

    factories: dict[str, Any] = {
        "hybrid": lambda: Hybrid(seed=seed),
        "naive": lambda: StatsAnchor("naive", Naive()),
        "seasonal_naive": lambda: StatsAnchor(
            "seasonal_naive", SeasonalNaive(season_length=SEASONS[panel_name])
        ),
        "auto_arima": lambda: StatsAnchor("auto_arima", AutoARIMA()),
        "auto_ets": lambda: StatsAnchor("auto_ets", AutoETS()),
        "auto_theta": lambda: StatsAnchor("auto_theta", AutoTheta()),
        "mlf_lgbm": lambda: MLAnchor(seed),
    }
    return [factories[n]() for n in names]


def warm_up() -> None:
    """Compile statsforecast's numba kernels once so timings measure fitting, not JIT."""
    from statsforecast import StatsForecast
    from statsforecast.models import AutoARIMA, AutoETS, AutoTheta, Naive, SeasonalNaive

    y = np.sin(np.arange(200) / 5.0) + np.random.default_rng(0).normal(0, 0.1, 200)
    df = pl.DataFrame({"unique_id": ["a"] * 200, "ds": np.arange(200), "y": y}).to_pandas()
    models = [Naive(), SeasonalNaive(season_length=12), AutoARIMA(), AutoETS(), AutoTheta()]
    StatsForecast(models=models, freq=1, n_jobs=1).forecast(df=df, h=5, level=[80])


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
        default=[
            "hybrid",
            "naive",
            "seasonal_naive",
            "auto_arima",
            "auto_ets",
            "auto_theta",
            "mlf_lgbm",
        ],
    )
    parser.add_argument("--series", type=int, default=None, help="random subset per panel")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
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
    anchors = table.filter(pl.col("model") != "hybrid")
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
