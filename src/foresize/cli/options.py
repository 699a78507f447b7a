"""Options shared by many commands: one name and one meaning everywhere."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from foresize.cli.output import FORMATS


def _complete_format(incomplete: str) -> list[str]:
    return [name for name in FORMATS.names() if name.startswith(incomplete)]


FormatOpt = Annotated[
    str | None,
    typer.Option(
        "--format", "-f",
        help="Output format: table, json, csv or parquet. Default: from the -o suffix, else table.",
        autocompletion=_complete_format, rich_help_panel="Output",
    ),
]
OutputOpt = Annotated[
    Path | None,
    typer.Option(
        "--output", "-o",
        help="Write the result to this file (atomically); '-' for stdout.",
        rich_help_panel="Output", dir_okay=False,
    ),
]
MapOpt = Annotated[
    str | None,
    typer.Option(
        "--map",
        help="Column mapping for generic files: ts=COL,workload=COL[,metric=COL][,value=COL].",
        rich_help_panel="Input",
    ),
]
TsUnitOpt = Annotated[
    str,
    typer.Option("--ts-unit", help="Unit of numeric timestamps: s, ms, us or ns.",
                 rich_help_panel="Input"),
]
TsFormatOpt = Annotated[
    str | None,
    typer.Option("--ts-format", help="strftime format of text timestamps, e.g. '%Y-%m-%d %H:%M'.",
                 rich_help_panel="Input"),
]
StrictOpt = Annotated[
    bool,
    typer.Option("--strict", help="Fail (exit 3) instead of dropping invalid rows with a count.",
                 rich_help_panel="Input"),
]
MirrorOpt = Annotated[
    Path | None,
    typer.Option(
        "--mirror", envvar="FORESIZE_DATA_MIRROR",
        help="Read datasets from this local mirror of the upstream layout instead of downloading.",
        rich_help_panel="Input", file_okay=False,
    ),
]
SeedOpt = Annotated[
    int | None,
    typer.Option("--seed", help="Seed for this command (overrides the global --seed).",
                 show_default=False),
]
QueryOpt = Annotated[
    str | None,
    typer.Option("--query", help="PromQL for a prometheus://HOST:PORT source.",
                 rich_help_panel="Prometheus"),
]
SinceOpt = Annotated[
    str,
    typer.Option("--since", help="How far back to read from Prometheus, e.g. 7d, 12h.",
                 rich_help_panel="Prometheus"),
]
UntilOpt = Annotated[
    datetime | None,
    typer.Option("--until", help="End of the Prometheus window (UTC; default: now).",
                 rich_help_panel="Prometheus"),
]
StepOpt = Annotated[
    str,
    typer.Option("--step", help="Prometheus query resolution, e.g. 1m, 30s.",
                 rich_help_panel="Prometheus"),
]
SourcesArg = Annotated[
    list[str],
    typer.Argument(help="Telemetry files (parquet, CSV, tar.gz; - for stdin), dataset names, "
                   "NAME:TABLE, or prometheus://HOST:PORT with --query.", show_default=False),
]
AsMetricOpt = Annotated[
    str | None,
    typer.Option("--as-metric", help="Metric name for a generic file whose rows name none.",
                 rich_help_panel="Input"),
]
WorkloadOpt = Annotated[
    list[str] | None,
    typer.Option("--workload", help="Keep workloads matching this glob (repeatable).",
                 rich_help_panel="Filter"),
]
MetricFilterOpt = Annotated[
    list[str] | None,
    typer.Option("--metric", help="Keep only this metric (repeatable).", rich_help_panel="Filter"),
]
EngineOpt = Annotated[
    str,
    typer.Option("--engine", help="Where independent work runs: serial (here), local (all "
                 "cores, processes) or ray (a Ray cluster; see --ray-address). Results do not "
                 "depend on it.", rich_help_panel="Scale-out"),
]
RayAddressOpt = Annotated[
    str | None,
    typer.Option("--ray-address", envvar="RAY_ADDRESS", help="Ray cluster to join with "
                 "--engine ray (e.g. ray://head:10001 or auto); default: a local Ray instance.",
                 rich_help_panel="Scale-out"),
]
