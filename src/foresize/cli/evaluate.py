"""``foresize evaluate``: the evaluation protocols on public traces, as markdown reports."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import polars as pl
import typer

from foresize.cli.options import EngineOpt, FormatOpt, MirrorOpt, RayAddressOpt, SeedOpt
from foresize.cli.output import SETTINGS, Result, emit, progress
from foresize.core.errors import InputError
from foresize.core.io import check_writable_folder
from foresize.core.parallel import check_engine
from foresize.evaluate.report import Report, Section, write_report
from foresize.ingest.datasets import get_dataset

app = typer.Typer(help="Evaluate forecasting, right-sizing, autoscaling and scheduling on "
                  "public traces; write a markdown report with tables and PNG plots.",
                  no_args_is_help=True)

DatasetOpt = Annotated[
    str,
    typer.Option("--dataset", "-d", help="Registered dataset (see foresize datasets list).",
                 rich_help_panel="Input"),
]
OutOpt = Annotated[
    Path | None,
    typer.Option("--out", "-o", file_okay=False, help="Report folder, replaced atomically "
                 "(default: report-KIND).", rich_help_panel="Output"),
]
SmokeOpt = Annotated[
    int | None,
    typer.Option("--smoke", min=1, help="Quick run on the first N series of each table, one "
                 "seed, fewer models: for CI and notebooks.", rich_help_panel="Scale-out"),
]
AnchorsOpt = Annotated[
    str | None,
    typer.Option("--anchors", help="Forecast anchors to run, comma-separated (sf_naive, "
                 "sf_seasonal_naive, sf_auto_arima, sf_auto_ets, sf_auto_theta, mlf_lgbm) or "
                 "'none'; default: all when statsforecast/mlforecast are installed.",
                 rich_help_panel="Scale-out"),
]
PlotsOpt = Annotated[
    bool,
    typer.Option("--plots/--no-plots", help="Draw PNG figures (needs matplotlib).",
                 rich_help_panel="Output"),
]


@dataclass(frozen=True, slots=True)
class Run:
    """What every evaluation section builder is given."""

    dataset: str
    mirror: Path | None
    smoke: int | None
    plots: bool
    engine: str
    address: str | None
    seed: int
    anchors: tuple[str, ...] | None = None


def _forecast(run: Run) -> list[Section]:
    from foresize.evaluate.forecasting import forecast_sections

    return forecast_sections(run.dataset, mirror=run.mirror, smoke=run.smoke,
                             plots_on=run.plots, engine=run.engine, address=run.address,
                             seed=run.seed, anchors=run.anchors)


def _rightsize(run: Run) -> list[Section]:
    if run.dataset == "alibaba-pai-2020":
        from foresize.evaluate.pai import pai_sections

        return pai_sections(mirror=run.mirror)
    from foresize.evaluate.rightsizing import rightsize_sections

    return rightsize_sections(run.dataset, mirror=run.mirror, smoke=run.smoke,
                              plots_on=run.plots)


def _autoscale(run: Run) -> list[Section]:
    from foresize.evaluate.autoscaling import autoscale_sections

    return autoscale_sections(run.dataset, mirror=run.mirror, smoke=run.smoke,
                              plots_on=run.plots)


def _schedule(run: Run) -> list[Section]:
    from foresize.evaluate.scheduling import schedule_sections

    return schedule_sections(mirror=run.mirror, smoke=run.smoke is not None, plots_on=run.plots,
                             engine=run.engine, address=run.address, seed=run.seed)


# kind -> (section builder, datasets it runs on; None = any, it brings its own trace)
KINDS: dict[str, tuple[Callable[[Run], list[Section]], tuple[str, ...] | None]] = {
    "forecast": (_forecast, ("alibaba-gentd26",)),
    "rightsize": (_rightsize, ("alibaba-gentd26", "alibaba-pai-2020")),
    "autoscale": (_autoscale, ("alibaba-gentd26",)),
    "schedule": (_schedule, None),
}


def _check(kind: str, dataset: str) -> None:
    supported = KINDS[kind][1]
    if supported is not None and dataset not in supported:
        raise InputError(f"evaluate {kind}: runs on {', '.join(supported)}, not {dataset!r}",
                         hint=f"foresize evaluate {kind} --dataset {supported[0]}")


def _evaluate(kinds: list[str], *, dataset: str, out: Path | None, smoke: int | None,
              plots: bool, engine: str, ray_address: str | None, mirror: Path | None,
              seed: int | None, fmt: str | None, anchors: str | None) -> None:
    engine = check_engine(engine)
    dataset = get_dataset(dataset).name  # aliases resolve; unknown names list the valid ones
    for kind in kinds:
        if kind != "schedule" or len(kinds) == 1:
            _check(kind, dataset)
    folder = out or Path(f"report-{kinds[0] if len(kinds) == 1 else 'all'}")
    check_writable_folder(folder)
    chosen = None if anchors is None else tuple(
        a.strip() for a in anchors.split(",") if a.strip() and a.strip() != "none")
    run = Run(dataset, mirror, smoke, plots, engine, ray_address,
              SETTINGS.seed if seed is None else seed, chosen)
    parameters = {"dataset": dataset, "kinds": ",".join(kinds), "smoke": smoke,
                  "engine": engine, "seed": run.seed, "anchors": anchors or "default"}
    report = Report(f"foresize evaluation: {', '.join(kinds)} on {dataset}", parameters)
    timings: dict[str, float] = {}
    with progress("evaluating", len(kinds)) as bar:
        for kind in kinds:
            began = time.perf_counter()
            for section in KINDS[kind][0](run):
                report.add(section)
            timings[kind] = time.perf_counter() - began
            bar.advance()
    report.parameters["seconds"] = {k: round(v, 1) for k, v in timings.items()}
    written = write_report(report, folder)
    frame = pl.DataFrame({"file": [str(p) for p in written],
                          "bytes": [p.stat().st_size for p in written]})
    emit(Result(frame, {"report": str(folder), "files": frame.to_dicts(),
                        "seconds": report.parameters["seconds"], "parameters": parameters},
                title=f"Report written to {folder}",
                summary=f"report in {folder}/report.md ({sum(timings.values()):.0f} s)"),
         fmt=fmt, output=None)


def _command(kind: str) -> Callable[..., None]:
    def command(
        dataset: DatasetOpt = "alibaba-gentd26",
        out: OutOpt = None,
        smoke: SmokeOpt = None,
        plots: PlotsOpt = True,
        engine: EngineOpt = "local",
        ray_address: RayAddressOpt = None,
        mirror: MirrorOpt = None,
        seed: SeedOpt = None,
        fmt: FormatOpt = None,
        anchors: AnchorsOpt = None,
    ) -> None:
        _evaluate(list(KINDS) if kind == "all" else [kind], dataset=dataset, out=out,
                  smoke=smoke, plots=plots, engine=engine, ray_address=ray_address,
                  mirror=mirror, seed=seed, fmt=fmt, anchors=anchors)

    command.__doc__ = DOCS[kind]
    return command


DOCS = {
    "forecast": "Rolling-origin forecast backtest of foresize's forecasters against "
                "statsforecast/mlforecast anchors (when installed).",
    "rightsize": "Right-sizing protocol: recommend on 70%, score on 30%; foresize against "
                 "VPA-style, KRR-style, history max and the oracle.",
    "autoscale": "Autoscaling comparison on demand series: static, HPA, predictive, hybrid "
                 "and the oracle.",
    "schedule": "Scheduler placement policies under the FGD inflation protocol (openb).",
    "all": "Every evaluation above, into one report.",
}

EPILOG = """\
Examples:

  foresize evaluate all --dataset alibaba-gentd26 -o report

  foresize evaluate rightsize --dataset alibaba-gentd26 --smoke 20 --no-plots
"""

for _kind in (*KINDS, "all"):
    app.command(_kind, epilog=EPILOG)(_command(_kind))
