"""``foresize forecast``: demand forecasts with intervals and phases, and their backtests."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer

from foresize.cli.checks import parse_checks
from foresize.cli.common import read_telemetry
from foresize.cli.errors import INTERRUPTED
from foresize.cli.options import (
    CheckOpt,
    EngineOpt,
    ForceOpt,
    FormatOpt,
    OutputOpt,
    RayAddressOpt,
    WideOpt,
    telemetry_options,
)
from foresize.cli.output import (
    Col,
    FitTable,
    Result,
    Rows,
    emit,
    fit_table,
    frame_table,
    info,
    progress,
)
from foresize.core.errors import PartialInterrupt, UsageError
from foresize.core.parallel import check_engine
from foresize.core.units import human_duration, parse_duration, parse_levels, parse_steps

if TYPE_CHECKING:  # the forecasters load polars, numpy and lightgbm: --help does not
    import polars as pl

    from foresize.forecast.backtest import BacktestResult
    from foresize.forecast.panel import PanelReport
    from foresize.ingest.sources import TelemetrySource


class _DefaultRun(typer.core.TyperGroup):
    """``foresize forecast SOURCE`` runs ``forecast run SOURCE``: the subcommand is optional."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        """Insert ``run`` unless the first word names a subcommand or asks for help."""
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


app = typer.Typer(
    cls=_DefaultRun,
    help="Forecast demand per series with intervals (and phases); backtest the forecasters.",
    no_args_is_help=True,
)


def _complete_model(incomplete: str) -> list[str]:
    from foresize.forecast.models import FORECASTERS

    return [name for name in FORECASTERS.names() if name.startswith(incomplete)]


MetricOpt = Annotated[
    str | None,
    typer.Option("--metric", help="The metric to forecast (needed when the source holds several).",
                 rich_help_panel="Forecast"),
]
HorizonOpt = Annotated[
    str,
    typer.Option("--horizon", "-H", rich_help_panel="Forecast",
                 help="How far ahead: a duration (30m, 2h) or a number of steps."),
]
RUN_HORIZON, BACKTEST_HORIZON = "30m", "30"  # defaults: a duration, and steps
BacktestHorizonOpt = Annotated[
    str,
    typer.Option("--horizon", "-H", rich_help_panel="Forecast", show_default="30 steps",
                 help="How far ahead each origin forecasts: a number of steps, as the "
                 "protocol's --every is, or a duration (30m)."),
]
LevelsOpt = Annotated[
    str,
    typer.Option("--levels", help="Central interval levels in percent, comma-separated.",
                 rich_help_panel="Forecast"),
]
GridOpt = Annotated[
    str | None,
    typer.Option("--grid", help="Regular step to resample onto (e.g. 1m); default: the median "
                 "sampling interval.", rich_help_panel="Forecast"),
]

RUN_EPILOG = """\
Examples:

  foresize forecast gentd26:gpu_duty_cycle --horizon 30m --model hybrid

  foresize forecast telemetry.parquet --metric mem_util_pct --model auto --by-phase -o fc.parquet

Telemetry is put on a regular grid per series first (the median sampling interval;
samples averaged per grid point, gaps interpolated; counts on stderr).
"""


def horizon_steps(text: str, step_s: float) -> int:
    """A horizon given as steps ("30") or as a duration ("30m"), in whole steps."""
    steps = parse_steps(text, step_s, option="--horizon")
    if steps < 1:
        raise UsageError(f"--horizon: must be at least one step ({human_duration(step_s)}), "
                         f"got {text!r}")
    return steps


def _panel(telemetry: TelemetrySource, *, metric: str | None, grid: str | None,
           ) -> tuple[pl.DataFrame, PanelReport, dict[str, Any]]:
    """The series of one metric on a regular grid, and the document header."""
    from foresize.forecast.panel import to_panel

    chosen = replace(telemetry, metrics=(metric,) if metric else ())
    read, header = read_telemetry(chosen)
    step_s = parse_duration(grid) if grid else None
    panel, report = to_panel(read.frame, metric=metric, step_s=step_s, source=telemetry.label)
    return panel, report, header


def _forecast_table(result: Result) -> FitTable:
    import polars as pl

    frame = result.frame
    last = frame.group_by("series", maintain_order=True).agg(
        pl.col("model").first(),
        pl.col("mean").first().alias("next"),
        pl.col("mean").last().alias("at_horizon"),
        pl.col("mean").max().alias("peak"),
        *([pl.col("hi_95").max().alias("peak_hi_95")] if "hi_95" in frame.columns else []),
        *([pl.col("phase").first().alias("next_phase")] if "phase" in frame.columns else []),
    )
    return frame_table(Result(last, result.document, title=result.title,
                              caption=result.caption, wide=result.wide),
                       columns=[c for c in FORECAST_COLUMNS if c.key in last.columns])


FORECAST_COLUMNS = [Col("series"), Col("model"), Col("next"), Col("at_horizon", "at horizon"),
                    Col("peak"), Col("peak_hi_95", "peak hi95"), Col("next_phase", "next phase")]


@app.command("run", epilog=RUN_EPILOG)
@telemetry_options()
def run(
    *,
    metric: MetricOpt = None,
    horizon: HorizonOpt = RUN_HORIZON,
    model: Annotated[str, typer.Option("--model", "-m", help="Forecaster: "
                     "hybrid, arima, wavelet, naive, auto, ... (see forecast models).",
                     autocompletion=_complete_model, rich_help_panel="Forecast")] = "auto",
    levels: LevelsOpt = "80,95",
    by_phase: Annotated[bool, typer.Option("--by-phase", help="Add each step's expected phase "
                        "and the demand quantiles within it.", rich_help_panel="Forecast")] = False,
    grid: GridOpt = None,
    force: ForceOpt = False,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
    wide: WideOpt = False,
    telemetry: TelemetrySource,
) -> None:
    """Forecast each series of one metric HORIZON ahead with central intervals."""
    import polars as pl

    from foresize.core.metrics import percent_cap
    from foresize.forecast.fanout import forecast_in_chunks
    from foresize.forecast.models import make_forecaster
    from foresize.forecast.panel import check_horizon_fits
    from foresize.forecast.phased import phase_forecast
    from foresize.forecast.protocol import cap_frame

    forecaster = make_forecaster(model)
    wanted = parse_levels(levels)
    panel, report, header = _panel(telemetry, metric=metric, grid=grid)
    h = horizon_steps(horizon, report.step_s)
    check_horizon_fits(panel, h, report.step_s, text=horizon, force=force,
                  typed=horizon != RUN_HORIZON)
    interrupted = False
    with progress(f"forecasting with {model}", report.series, unit="series") as bar:
        try:
            frame = forecast_in_chunks(panel, forecaster, h, wanted, on_chunk=bar.advance)
        except PartialInterrupt as stop:  # a per-series model keeps its finished series
            frame, interrupted = cast("pl.DataFrame", stop.partial), True
    frame = cap_frame(frame, percent_cap(report.metric))  # no device is more than fully busy
    if by_phase:
        phases = phase_forecast(panel, h, metric=report.metric)
        frame = frame.join(phases.drop("ts"), on=["series", "step"], how="left")
    fallbacks = frame.filter(pl.col("model").str.contains("fallback|naive \\(")).select(
        pl.col("series").n_unique()
    ).item()
    document = {
        **header,
        "parameters": {"metric": report.metric, "model": model, "horizon_steps": h,
                       "step_s": report.step_s, "levels": list(wanted), "by_phase": by_phase},
        "panel": report.to_dict(),
        "interrupted": interrupted,
        "partial": interrupted,
        "forecasts": Rows(frame),
    }
    emit(
        Result(
            frame, document, table=_forecast_table, wide=wide,
            title=f"{model} forecast of {report.metric} from {telemetry.label}",
            caption=f"{report.series:,} series · {h} steps of {human_duration(report.step_s)}",
            summary=(f"{report.series:,} series, {report.points:,} grid points "
                     f"({report.filled:,} interpolated, {report.merged:,} merged); "
                     f"{fallbacks:,} series on a fallback model"),
        ),
        fmt=fmt, output=output,
    )
    if interrupted:
        kept = frame["series"].n_unique()
        info(f"interrupted: {kept:,}/{report.series:,} series forecast, kept in the output and "
             "marked partial")
        raise typer.Exit(INTERRUPTED)


BACKTEST_EPILOG = """\
Examples:

  foresize forecast backtest gentd26:gpu_duty_cycle --models naive,arima,wavelet,hybrid

  foresize forecast backtest gentd26:memory_util --models naive,hybrid -f json -o bt.json

Protocol: the test region is the last 30% of each series; origins every --every steps;
the model is refit at each origin and forecasts --horizon steps. MASE is scaled by the
in-sample one-step naive MAE; pinball 0.95 scores the 95% quantile (hi_90).
"""

METRIC_COLUMNS = ("mase", "accuracy", "wape", "pinball_90", "pinball_95", "coverage_80",
                  "coverage_95", "mase_h1_5", "mase_h6_15", "mase_h16_30", "seconds_per_series",
                  "series", "origins")


PAIRS = "(model, series) pairs"


def _backtest_all(panel: pl.DataFrame, names: list[str], *, engine: str, address: str | None,
                  **protocol: Any) -> tuple[list[BacktestResult], bool]:
    """Each forecaster's backtest in turn, every (model, series) pair counted on one bar.

    Ctrl-C stops the run and keeps what finished: each model's finished chunks, merged.
    Returns those results and whether the run was interrupted; re-raises
    ``KeyboardInterrupt`` only when nothing had finished.
    """
    from foresize.forecast.fanout import backtest_fanout, merge_backtests

    n_series = panel["series"].n_unique()
    kept: dict[str, list[BacktestResult]] = {name: [] for name in names}
    with progress("backtest", n_series * len(names), unit=PAIRS) as bar:
        for name in names:
            credited = [0]  # pairs of this model shown as done while a global model runs

            def on_origin(done: int, total: int, credited: list[int] = credited) -> None:
                target = n_series * done // total
                bar.advance(max(0, target - credited[0]))
                credited[0] = max(credited[0], target)

            def on_chunk(n: int, result: BacktestResult | None, name: str = name,
                         credited: list[int] = credited) -> None:
                if result is not None:
                    kept[name].append(result)
                bar.advance(max(0, n - credited[0]))
                credited[0] = 0

            try:
                backtest_fanout(panel, name, engine=engine, address=address,
                                on_chunk=on_chunk, on_origin=on_origin, **protocol)
            except KeyboardInterrupt:
                finished = [merge_backtests(parts) for parts in kept.values() if parts]
                if not finished:
                    raise
                return finished, True
    return [merge_backtests(kept[name]) for name in names], False


@app.command("backtest", epilog=BACKTEST_EPILOG)
@telemetry_options()
def backtest_command(
    *,
    metric: MetricOpt = None,
    models: Annotated[str, typer.Option("--models", help="Comma-separated forecasters.",
                      rich_help_panel="Forecast")] = "naive,window_average,arima,wavelet,hybrid",
    horizon: BacktestHorizonOpt = BACKTEST_HORIZON,
    every: Annotated[int, typer.Option("--every", help="Steps between origins.",
                     rich_help_panel="Forecast")] = 30,
    test_frac: Annotated[float, typer.Option("--test-frac", help="Share of each series held "
                         "out as the test region.", rich_help_panel="Forecast")] = 0.3,
    grid: GridOpt = None,
    force: ForceOpt = False,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
    wide: WideOpt = False,
    checks: CheckOpt = None,
    telemetry: TelemetrySource,
    engine: EngineOpt = "serial",
    ray_address: RayAddressOpt = None,
) -> None:
    """Rolling-origin backtest of forecasters: MASE, accuracy, pinball, coverage, speed."""
    import polars as pl

    from foresize.forecast.models import make_forecaster
    from foresize.forecast.panel import check_horizon_fits

    engine = check_engine(engine)
    names = [name.strip() for name in models.split(",") if name.strip()]
    for name in names:
        make_forecaster(name)  # unknown names fail before reading
    panel, report, header = _panel(telemetry, metric=metric, grid=grid)
    h = horizon_steps(horizon, report.step_s)
    check_horizon_fits(panel, h, report.step_s, text=horizon, force=force,
                  typed=horizon != BACKTEST_HORIZON)
    began = time.perf_counter()
    results, interrupted = _backtest_all(panel, names, engine=engine, address=ray_address,
                                         horizon=h, every=every, test_frac=test_frac)
    wall = time.perf_counter() - began
    rows = [{"model": r.model, **r.metrics} for r in results]
    table = pl.DataFrame(rows).select("model", *(c for c in METRIC_COLUMNS if c in rows[0]))
    table = table.sort("mase", nulls_last=True)
    best = table.row(0, named=True)
    done = sum(r.series + sum(r.skipped.values()) for r in results)
    total = report.series * len(names)
    document = {
        **header,
        "parameters": {"metric": report.metric, "models": names, "horizon_steps": h,
                       "every": every, "test_frac": test_frac, "step_s": report.step_s,
                       "engine": engine},
        "wall_s": wall,
        "interrupted": interrupted,
        "partial": interrupted,
        "pairs_done": done,
        "pairs_total": total,
        "panel": report.to_dict(),
        "skipped": results[0].skipped,
        "results": table.to_dicts(),
    }
    partial = (f"partial: interrupted after {done:,}/{total:,} {PAIRS}; each model's row "
               "covers its finished series only · " if interrupted else "")
    emit(
        Result(
            table, document, table=_metrics_table, wide=wide,
            title=f"Backtest of {report.metric} from {telemetry.label}",
            caption=(f"{partial}{int(best['series']):,} series · horizon {h} steps · origins "
                     f"every {every} · last {test_frac:.0%} held out"),
            summary=None if interrupted else
            f"best MASE: {best['model']} ({best['mase']:.3f}); {wall:.1f} s wall on engine "
            f"{engine}",
        ),
        fmt=fmt, output=output,
        checks=() if interrupted else parse_checks(checks),
    )
    if interrupted:
        per_model = ", ".join(f"{r.model} {r.series:,}" for r in results)
        info(f"interrupted: {done:,}/{total:,} {PAIRS} done, kept in the output and marked "
             f"partial (series per model: {per_model})")
        raise typer.Exit(INTERRUPTED)


def _fraction(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}"


BACKTEST_COLUMNS = {  # summary first: the error and coverage a choice of model rests on
    "model": Col("model"), "mase": Col("mase", "MASE", show=_fraction),
    "coverage_80": Col("coverage_80", "cov80 %", show=_share),
    "coverage_95": Col("coverage_95", "cov95 %", show=_share),
    "accuracy": Col("accuracy", "accuracy", show=_fraction),
    "seconds_per_series": Col("seconds_per_series", "s/series", show=_fraction),
    "series": Col("series", show=lambda v: f"{v:,.0f}"),
    "wape": Col("wape", "WAPE", show=_fraction, summary=False),
    "pinball_90": Col("pinball_90", "pinball90", show=_fraction, summary=False),
    "pinball_95": Col("pinball_95", "pinball95", show=_fraction, summary=False),
    "mase_h1_5": Col("mase_h1_5", "MASE h1-5", show=_fraction, summary=False),
    "mase_h6_15": Col("mase_h6_15", "MASE h6-15", show=_fraction, summary=False),
    "mase_h16_30": Col("mase_h16_30", "MASE h16-30", show=_fraction, summary=False),
    "origins": Col("origins", show=lambda v: f"{v:,.0f}", summary=False),
}


def _metrics_table(result: Result) -> FitTable:
    return fit_table(result, [c for k, c in BACKTEST_COLUMNS.items() if k in result.frame.columns])


@app.command("models")
def models_command(fmt: FormatOpt = None, output: OutputOpt = None,
                   wide: WideOpt = False) -> None:
    """List the forecasters --model and --models accept."""
    import polars as pl

    from foresize.forecast.models import FORECASTERS

    rows = [
        {"model": name, "description": (FORECASTERS.get(name).__doc__ or "").strip().split("\n")[0]}
        for name in FORECASTERS.names()
    ]
    frame = pl.DataFrame(rows)
    emit(Result(frame, {"models": rows}, title="Forecasters", wide=wide,
                table=lambda result: frame_table(result, columns=[
                    "model", Col("description", prose=True)])), fmt=fmt, output=output)
