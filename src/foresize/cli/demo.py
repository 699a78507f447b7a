"""``foresize demo``: the whole journey, offline, on the embedded synthetic telemetry.

The command only gathers the inputs (synthetic telemetry from ``--seed``, or a
registered dataset read from a mirror or the cache) and renders the summary; the
stages live in ``foresize.evaluate.demo``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from foresize.cli.options import (
    FormatOpt,
    MirrorOpt,
    OutputOpt,
    SeedOpt,
    output_file,
    output_folder,
)
from foresize.cli.output import SETTINGS, Result, emit, info, progress, text_table
from foresize.core.io import atomic_write
from foresize.core.units import parse_duration
from foresize.forecast.choices import FORECASTER_NAMES

EPILOG = """\
Examples:

  foresize demo

  foresize demo --duration 7d --seed 3 --output-dir demo-7d

  foresize demo -f json -o summary.json --quiet

  foresize demo --dataset alibaba-gentd26 --mirror ../shared/datasets/alibaba-clusterdata

  foresize demo --save-telemetry demo.parquet && foresize profile telemetry demo.parquet --by-phase
"""
DEFAULT_OUT = Path("foresize-demo")
DEFAULT_LIMIT = 20


def summary_table(result: Result) -> Table:
    """The terminal view: one small table per stage."""
    from foresize.evaluate.demo.tables import summary_tables

    grid = Table.grid(padding=(1, 0))
    if result.title:
        grid.add_row(result.title)
    for title, frame in summary_tables(result.document):
        grid.add_row(text_table(frame, title=title))
    if result.caption:
        grid.add_row(result.caption)
    return grid


def demo(
    fmt: FormatOpt = None,
    output: OutputOpt = None,
    out: Annotated[
        Path,
        typer.Option(
            "--output-dir", "--out",
            file_okay=False, callback=output_folder,
            help="Folder for every artefact (replaced atomically; its parent must exist): "
            "model, profile, phases, forecast, plan, autoscale, schedule. The default is "
            "git-ignored in a foresize checkout.",
        ),
    ] = DEFAULT_OUT,
    duration: Annotated[str, typer.Option(help="Span of synthetic telemetry, e.g. 2d.")] = "3d",
    step: Annotated[str, typer.Option(help="Sampling step, e.g. 1m, 30s.")] = "1m",
    save_telemetry: Annotated[
        Path | None,
        typer.Option(
            "--save-telemetry",
            callback=output_file,
            help="Also write the generated telemetry (canonical parquet) here.",
        ),
    ] = None,
    seed: SeedOpt = None,
    dataset: Annotated[
        str | None,
        typer.Option(
            "--dataset",
            help="Run on a registered dataset (NAME or NAME:TABLE, read "
            "from --mirror or the cache; never downloaded) instead of synthetic data.",
            rich_help_panel="Input",
        ),
    ] = None,
    mirror: MirrorOpt = None,
    limit: Annotated[
        int,
        typer.Option(
            "--limit",
            min=1,
            help="With --dataset: the workloads covered by the most metrics, at most this many.",
            rich_help_panel="Input",
        ),
    ] = DEFAULT_LIMIT,
    model: Annotated[
        Path | None,
        typer.Option(
            "--model",
            help="Model for the static analysis and placement: a "
            "config.json (or its folder) or an .onnx. Default: the bundled "
            "llama-2-7b config.",
            show_default=False,
        ),
    ] = None,
    forecaster: Annotated[
        str, typer.Option("--forecaster", help=f"Forecaster: {', '.join(FORECASTER_NAMES)}.")
    ] = "wavelet",
    horizon: Annotated[
        str | None,
        typer.Option(
            "--horizon",
            help="Planning horizon, e.g. 12h (default: 1 day, or 3/7 of the history when shorter).",
            show_default=False,
        ),
    ] = None,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No terminal summary and no messages.")
    ] = False,
) -> None:
    """Run the whole journey offline: static analysis of a reference model, profile and
    phases of the embedded synthetic telemetry (or --dataset), forecasts with intervals,
    a right-sizing and scaling plan (plan.json, plan.yaml), and an autoscaler and
    scheduler simulation of it; a summary here and every artefact in --output-dir.
    """
    from foresize.evaluate.demo.inputs import dataset_input, synthetic_input
    from foresize.evaluate.demo.run import REFERENCE_MODEL, DemoOptions, run_demo
    from foresize.evaluate.demo.summary import recommendation_rows
    from foresize.forecast.models import FORECASTERS

    began = time.perf_counter()
    if quiet:
        SETTINGS.quiet = True
    seed = SETTINGS.seed if seed is None else seed
    FORECASTERS.get(forecaster)
    options = DemoOptions(forecaster=forecaster,
                          horizon_s=None if horizon is None else parse_duration(horizon))
    if dataset is None:
        given = synthetic_input(seed=seed, duration=duration, step=step)
        if save_telemetry is not None:
            with atomic_write(save_telemetry) as tmp:
                given.telemetry.write_parquet(tmp)
            info(f"wrote {save_telemetry} ({given.telemetry.height:,} telemetry rows)")
    else:
        given = dataset_input(dataset, mirror=mirror, limit=limit)
    with progress("demo", 8) as bar:
        result = run_demo(given.telemetry, model_spec=model or REFERENCE_MODEL, out_dir=out,
                          seed=seed, source=given.label, assumptions=given.assumptions,
                          options=options, inputs=given.inputs, extra={"source": given.source},
                          on_stage=lambda _name: bar.advance())
    telemetry = given.telemetry
    n_workloads = telemetry["workload"].n_unique()
    title = (f"foresize demo · synthetic telemetry · seed {seed} · {duration}" if dataset is None
             else f"foresize demo · {given.label} · {n_workloads} workloads")
    info(f"wrote {out}/ ({len(result.paths)} artefacts) in {time.perf_counter() - began:.1f} s")
    if quiet and fmt is None and output is None:
        return
    caption = (f"{telemetry.height:,} samples · {n_workloads} workloads · "
               f"{result.summary['profile']['series']} series · artefacts in {out}/")
    emit(Result(recommendation_rows(result.plan), result.summary, table=summary_table,
                title=title, caption=caption), fmt=fmt, output=output)
