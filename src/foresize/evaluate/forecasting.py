"""The forecast evaluation: foresize's forecasters against Nixtla's anchors on GenTD26.

Protocol (issue 5, ``forecast.backtest``): the last 30 % of each series is the test
region, origins every 30 steps, horizons 1..30, refit at every origin; MASE scaled by
the in-sample one-step naive MAE. foresize's models fan out over ``engine`` (the
results do not depend on it); the statsforecast/mlforecast anchors run when the
``bench`` extra is installed, through the same loop. The full run is long (AutoARIMA
refits hundreds of series at every origin): ``smoke`` keeps the first N series of each
panel and the fast models.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from foresize.core.errors import InputError, UnknownNameError
from foresize.evaluate import plots
from foresize.evaluate.anchors import ANCHORS, anchors_available, make_anchors, warm_up
from foresize.evaluate.panels import PANELS, SEASONS, load_panel
from foresize.evaluate.report import Figure, Section
from foresize.forecast.backtest import BacktestResult, backtest, first_origins
from foresize.forecast.fanout import backtest_fanout

TEST_FRAC, EVERY = 0.3, 30  # the backtest's defaults, which these sections use
OURS: tuple[str, ...] = ("hybrid", "arima", "wavelet", "window_average", "naive")
SMOKE_OURS = ("hybrid", "window_average", "naive")
SMOKE_ANCHORS = ("sf_naive", "sf_auto_ets")
COLUMNS = (
    "mase",
    "accuracy",
    "pinball_95",
    "coverage_80",
    "coverage_95",
    "mase_h1_5",
    "mase_h6_15",
    "mase_h16_30",
    "seconds_per_series",
    "series",
)


def subset(panel: pl.DataFrame, n: int | None) -> pl.DataFrame:
    """The first ``n`` series by name (all when None)."""
    if n is None:
        return panel
    names = panel["series"].unique().sort().to_list()[:n]
    return panel.filter(pl.col("series").is_in(names))


def run_panel(
    panel: pl.DataFrame,
    name: str,
    *,
    ours: tuple[str, ...],
    anchors: tuple[str, ...],
    engine: str = "serial",
    address: str | None = None,
    seed: int = 0,
) -> list[BacktestResult]:
    """Every model's backtest on one panel, foresize's first."""
    results = [
        backtest_fanout(
            panel,
            model,
            {"seed": seed} if model == "hybrid" else {},
            engine=engine,
            address=address,
        )
        for model in ours
    ]
    results += [
        backtest(panel, anchor) for anchor in make_anchors(anchors, season=SEASONS[name], seed=seed)
    ]
    return results


def metrics_table(results: list[BacktestResult]) -> pl.DataFrame:
    """One row per model, best MASE first."""
    rows = [{"model": r.model, **{c: r.metrics.get(c) for c in COLUMNS}} for r in results]
    return pl.DataFrame(rows).sort("mase", nulls_last=True)


def target_row(table: pl.DataFrame, anchors: tuple[str, ...]) -> dict[str, Any]:
    """Issue 5's targets for the hybrid against the best anchor on this panel."""
    hybrid = table.filter(pl.col("model") == "hybrid")
    rivals = table.filter(pl.col("model").is_in(list(anchors)))
    if hybrid.is_empty() or rivals.is_empty():
        return {}
    h = hybrid.row(0, named=True)
    best = rivals.sort("mase").row(0, named=True)
    return {
        "best_anchor": best["model"],
        "mase_ratio": h["mase"] / best["mase"],
        "mase_target_met": h["mase"] <= 0.9 * best["mase"],
        "coverage_95": h["coverage_95"],
        "coverage_target_met": 0.93 <= h["coverage_95"] <= 0.97,
        "pinball_95_below_every_anchor": bool(h["pinball_95"] < rivals["pinball_95"].min()),
        "hybrid_seconds_per_series": h["seconds_per_series"],
    }


def horizon_figure(results: list[BacktestResult], title: str) -> Figure:
    """MASE by horizon step, one curve per model."""
    curves: dict[str, tuple[list[float], list[float]]] = {}
    for r in results:
        scaled = r.points.join(
            pl.DataFrame({"series": list(r.scales), "scale": list(r.scales.values())}),
            on="series",
        ).filter(pl.col("scale") > 0)
        by_step = (
            scaled.group_by("series", "step")
            .agg(e=((pl.col("y") - pl.col("mean")).abs() / pl.col("scale")).mean())
            .group_by("step")
            .agg(pl.col("e").mean())
            .sort("step")
        )
        curves[r.model] = (by_step["step"].cast(pl.Float64).to_list(), by_step["e"].to_list())

    def draw(path: Path) -> None:
        plots.lines(path, curves, title=title, xlabel="horizon (steps)", ylabel="MASE")

    return draw


def sample_series(result: BacktestResult, n: int = 3) -> list[str]:
    """The series whose last-origin forecast shows the model at work.

    The first names in sort order are often idle containers whose actuals are all zero,
    where every forecast is trivially right and the figure teaches nothing. Only series
    whose actuals move at the last origin (and whose MASE scale is positive) qualify;
    the first is the one of median MASE (a typical forecast), the second the one whose
    actuals vary most (the hardest), then those nearest the median.
    """
    points = result.points
    scales = pl.DataFrame({"series": list(result.scales), "scale": list(result.scales.values())},
                          schema={"series": points.schema["series"], "scale": pl.Float64})
    errors = (points.join(scales, on="series").filter(pl.col("scale") > 0)
              .group_by("series")
              .agg(mase=((pl.col("y") - pl.col("mean")).abs() / pl.col("scale")).mean()))
    moving = (points.filter(pl.col("origin") == pl.col("origin").max().over("series"))
              .group_by("series").agg(var=pl.col("y").var())
              .filter(pl.col("var") > 0))
    stats = errors.join(moving, on="series").sort("mase", "series")
    names = stats["series"].to_list()
    if not names:
        return []
    middle = len(names) // 2
    hardest = stats.sort("var", "series", descending=[True, False])["series"][0]
    by_typicality = sorted(range(len(names)), key=lambda i: (abs(i - middle), i))
    return list(dict.fromkeys([names[middle], hardest, *(names[i] for i in by_typicality)]))[:n]


def fan_figure(panel: pl.DataFrame, result: BacktestResult, title: str) -> Figure:
    """Forecast, intervals and actuals of three series at their last backtest origin."""
    points = result.points
    last = points.group_by("series").agg(pl.col("origin").max())
    names = sample_series(result)
    samples = []
    for name in names:
        origin = int(last.filter(pl.col("series") == name)["origin"][0])
        fc = points.filter((pl.col("series") == name) & (pl.col("origin") == origin)).sort("step")
        ys = panel.filter(pl.col("series") == name).sort("ts")["y"].to_numpy()
        cut = first_origins({name: ys.size}, TEST_FRAC)[name] + origin * EVERY
        samples.append(
            {
                "name": np.array(name),
                "history": ys[max(0, cut - 90) : cut],
                "actual": fc["y"].to_numpy(),
                "mean": fc["mean"].to_numpy(),
                **{c: fc[c].to_numpy() for c in ("lo_80", "hi_80", "lo_95", "hi_95")},
            }
        )

    def draw(path: Path) -> None:
        plots.forecast_fan(path, samples, title=title)

    return draw


def forecast_sections(
    dataset: str,
    *,
    mirror: Path | None = None,
    smoke: int | None = None,
    plots_on: bool = True,
    engine: str = "serial",
    address: str | None = None,
    seed: int = 0,
    anchors: Sequence[str] | None = None,
) -> list[Section]:
    """One section per GenTD26 panel: the metrics table, target check and figures.

    ``anchors`` names the Nixtla anchors to run (``None``: all of them when installed,
    two fast ones in smoke mode; AutoARIMA and AutoTheta take most of a full run).
    """
    ours = SMOKE_OURS if smoke is not None else OURS
    if anchors is None:
        anchors = (SMOKE_ANCHORS if smoke is not None else ANCHORS) if anchors_available() else ()
    anchors = tuple(anchors)
    for name in anchors:
        if name not in ANCHORS:
            raise UnknownNameError("anchor", name, list(ANCHORS))
    if anchors:
        if not anchors_available():
            raise InputError(
                "the anchors need statsforecast and mlforecast",
                hint="pip install -e '.[bench]', or --anchors none",
            )
        warm_up()
    sections = []
    for name in PANELS:
        panel = subset(load_panel(name, dataset=dataset, mirror=mirror), smoke)
        results = run_panel(
            panel, name, ours=ours, anchors=anchors, engine=engine, address=address, seed=seed
        )
        table = metrics_table(results)
        check = target_row(table, anchors)
        note = (
            ""
            if anchors
            else "statsforecast/mlforecast are not installed "
            "(pip install -e '.[bench]'): foresize's models only. "
        )
        section = Section(
            f"Forecasting: {name} panel",
            text=(
                f"{note}{panel['series'].n_unique():,} series. Hybrid vs best anchor: "
                + (
                    ", ".join(
                        f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}"
                        for k, v in check.items()
                    )
                    or "n/a"
                )
            ),
            tables={"Backtest": table},
            data={"target": check},
        )
        if plots_on:
            section.figures[f"forecast_{name}_by_horizon"] = horizon_figure(
                results, f"{name}: error by horizon"
            )
            hybrid = next((r for r in results if r.model == "hybrid"), results[0])
            if sample_series(hybrid):  # none when every series was too short to backtest
                section.figures[f"forecast_{name}_samples"] = fan_figure(
                    panel, hybrid, f"{name}: {hybrid.model} at the last origin"
                )
        sections.append(section)
    return sections
