"""``foresize demo``: the main job, offline, on the embedded synthetic telemetry."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from foresize.cli.options import FormatOpt, OutputOpt, SeedOpt
from foresize.cli.output import SETTINGS, Result, emit, info
from foresize.cli.profile import profile_table
from foresize.core.io import atomic_write
from foresize.ingest.synthetic import describe_synthetic, generate_telemetry
from foresize.profile.telemetry import profile_telemetry

EPILOG = """\
Examples:

  foresize demo

  foresize demo --duration 7d --seed 3 -f json -o demo-profile.json

  foresize demo --save-telemetry demo.parquet && foresize profile telemetry demo.parquet --by-phase
"""


def demo(
    fmt: FormatOpt = None,
    output: OutputOpt = None,
    duration: Annotated[str, typer.Option(help="Span of synthetic telemetry, e.g. 2d.")] = "3d",
    step: Annotated[str, typer.Option(help="Sampling step, e.g. 1m, 30s.")] = "1m",
    save_telemetry: Annotated[
        Path | None,
        typer.Option("--save-telemetry", dir_okay=False,
                     help="Also write the generated telemetry (canonical parquet) here."),
    ] = None,
    seed: SeedOpt = None,
) -> None:
    """Generate realistic synthetic telemetry (training jobs with phases, inference services
    with daily load and bursts) from --seed and profile it: no download needed.
    """
    seed = SETTINGS.seed if seed is None else seed
    telemetry = generate_telemetry(seed=seed, duration=duration, step=step)
    if save_telemetry is not None:
        with atomic_write(save_telemetry) as tmp:
            telemetry.write_parquet(tmp)
        info(f"wrote {save_telemetry} ({telemetry.height:,} telemetry rows)")
    profile, _ = profile_telemetry(telemetry, source="synthetic")
    n_workloads = profile["workload"].n_unique()
    document = {
        "schema_version": "1.0",
        "source": {"synthetic": {"seed": seed, "duration": duration, "step": step,
                                 "workload_kinds": describe_synthetic()}},
        "profiles": profile.to_dicts(),
    }
    emit(
        Result(profile, document, table=profile_table,
               title=f"foresize demo · synthetic telemetry · seed {seed} · {duration}",
               caption=f"{telemetry.height:,} samples · {n_workloads} workloads · "
               f"{profile.height} series"),
        fmt=fmt, output=output,
    )
