"""``foresize evaluate``: the evaluation protocols on public traces, as markdown reports."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from foresize.cli.checks import check_gate_columns, enforce, parse_checks
from foresize.cli.errors import INTERRUPTED
from foresize.cli.options import (
    CheckOpt,
    EngineOpt,
    FormatOpt,
    MirrorOpt,
    RayAddressOpt,
    SeedOpt,
    output_folder,
)
from foresize.cli.output import SETTINGS, Result, emit, info, progress
from foresize.core.io import check_writable_folder
from foresize.core.parallel import check_engine
from foresize.evaluate.runner import DOCS, KINDS, Run, check_kind, run_evaluation
from foresize.ingest.datasets import get_dataset

app = typer.Typer(help="Evaluate forecasting, right-sizing, autoscaling and scheduling on "
                  "public traces; write a markdown report with tables and PNG plots.",
                  no_args_is_help=True)

DatasetOpt = Annotated[
    str,
    typer.Option("--dataset", "-d", help="Registered dataset (see foresize datasets list).",
                 rich_help_panel="Input"),
]
OutputDirOpt = Annotated[
    Path | None,
    typer.Option("--output-dir", file_okay=False, callback=output_folder,
                 help="Report folder, replaced atomically; its parent must exist "
                 "(default: report-KIND).", rich_help_panel="Output"),
]
# -o names a file on every other command (cli.md): here it is the old spelling of
# --output-dir, kept for one release with a warning
LegacyOutOpt = Annotated[
    Path | None,
    typer.Option("--out", "-o", file_okay=False, callback=output_folder, hidden=True),
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


def _evaluate(kinds: list[str], *, dataset: str, out: Path | None, smoke: int | None,
              plots: bool, engine: str, ray_address: str | None, mirror: Path | None,
              seed: int | None, fmt: str | None, anchors: str | None,
              checks: list[str] | None = None) -> None:
    import polars as pl

    from foresize.evaluate.report import write_report

    engine = check_engine(engine)
    dataset = get_dataset(dataset).name  # aliases resolve; unknown names list the valid ones
    for kind in kinds:
        if kind != "schedule" or len(kinds) == 1:
            check_kind(kind, dataset)
    folder = out or Path(f"report-{kinds[0] if len(kinds) == 1 else 'all'}")
    check_writable_folder(folder)
    chosen = None if anchors is None else tuple(
        a.strip() for a in anchors.split(",") if a.strip() and a.strip() != "none")
    run = Run(dataset, mirror, smoke, plots, engine, ray_address,
              SETTINGS.seed if seed is None else seed, chosen)
    parameters = {"dataset": dataset, "kinds": ",".join(kinds), "smoke": smoke,
                  "engine": engine, "seed": run.seed, "anchors": anchors or "default"}
    with progress("evaluating", len(kinds), unit="kinds") as bar:
        report = run_evaluation(kinds, run, parameters, on_kind=lambda _kind: bar.advance())
    done = list(report.parameters["seconds"])
    if report.parameters.get("interrupted") and not done:
        raise KeyboardInterrupt  # nothing finished: nothing to keep
    gates = [] if report.parameters.get("interrupted") else parse_checks(checks)
    tables = [table for section in report.sections for table in section.tables.values()]
    check_gate_columns(tables, gates)  # a typo is refused before anything is written
    written = write_report(report, folder)
    frame = pl.DataFrame({"file": [str(p) for p in written],
                          "bytes": [p.stat().st_size for p in written]})
    emit(Result(frame, {"report": str(folder), "files": frame.to_dicts(),
                        "seconds": report.parameters["seconds"], "parameters": parameters},
                title=f"Report written to {folder}",
                summary=f"report in {folder}/report.md "
                f"({sum(report.parameters['seconds'].values()):.0f} s)"),
         fmt=fmt, output=None)
    enforce(tables, gates)
    if report.parameters.get("interrupted"):
        info(f"interrupted: {len(done)}/{len(kinds)} kinds done ({', '.join(done)}), kept in "
             f"{folder} and marked partial")
        raise typer.Exit(INTERRUPTED)


def _command(kind: str) -> Callable[..., None]:
    def command(
        dataset: DatasetOpt = "alibaba-gentd26",
        output_dir: OutputDirOpt = None,
        legacy_out: LegacyOutOpt = None,
        smoke: SmokeOpt = None,
        plots: PlotsOpt = True,
        engine: EngineOpt = "local",
        ray_address: RayAddressOpt = None,
        mirror: MirrorOpt = None,
        seed: SeedOpt = None,
        fmt: FormatOpt = None,
        anchors: AnchorsOpt = None,
        checks: CheckOpt = None,
    ) -> None:
        if legacy_out is not None:
            if output_dir is not None:
                raise typer.BadParameter("give the folder once, as --output-dir",
                                         param_hint="-o/--out")
            warnings.warn("evaluate -o/--out is deprecated and goes in the next release; "
                          "use --output-dir DIR", FutureWarning, stacklevel=2)
        out = output_dir or legacy_out
        _evaluate(list(KINDS) if kind == "all" else [kind], dataset=dataset, out=out,
                  smoke=smoke, plots=plots, engine=engine, ray_address=ray_address,
                  mirror=mirror, seed=seed, fmt=fmt, anchors=anchors, checks=checks)

    command.__doc__ = DOCS[kind]
    return command


EPILOG = """\
Examples:

  foresize evaluate all --dataset alibaba-gentd26 --output-dir report

  foresize evaluate rightsize --dataset alibaba-gentd26 --smoke 20 --no-plots
"""

for _kind in (*KINDS, "all"):
    app.command(_kind, epilog=EPILOG)(_command(_kind))
