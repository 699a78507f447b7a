"""``foresize recommend``: right-size workloads from their telemetry (request and limit)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import polars as pl
import typer
from rich.table import Table

from foresize.cli.common import announce, ingest_reports, open_filtered, provenance, read_options
from foresize.cli.options import (
    FormatOpt,
    MapOpt,
    MirrorOpt,
    OutputOpt,
    QueryOpt,
    SinceOpt,
    StepOpt,
    TsFormatOpt,
    TsUnitOpt,
    UntilOpt,
)
from foresize.cli.output import Result, emit, progress, titled_table
from foresize.cli.profile import _scaled, short_id
from foresize.core.errors import InputError
from foresize.core.io import sha256_file
from foresize.core.units import parse_duration
from foresize.ingest.tabular import collect_input
from foresize.ingest.validate import canonicalize
from foresize.recommend.plan import recommendation_schema, validate_plan
from foresize.recommend.rightsize import RightsizingResult, recommend_rightsizing
from foresize.recommend.strategies import MIN_POINTS, STRATEGIES, check_risk

EPILOG = """\
Examples:

  foresize recommend gentd26:memory_util

  foresize recommend gentd26:memory_util --strategy vpa -f json -o plan.json

  foresize recommend telemetry.parquet --metric gpu_mem_bytes --model config.json --risk 0.01

  foresize recommend --schema
"""


def model_floor(spec: str) -> float:
    """GPU memory a model needs to serve one request (weights + activations + KV cache),
    from a Hugging Face-style config.json or its folder, by the static analysis.
    """
    from foresize.graph.hf_config import read_hf_config
    from foresize.graph.sizing import SizingRequest, size_architecture

    path = Path(spec)
    path = path / "config.json" if path.is_dir() else path
    if not path.exists():
        raise InputError(f"{spec}: no such model config (pass a config.json or its folder)")
    report = size_architecture(read_hf_config(path), SizingRequest())
    return float(report["inference"]["total_bytes"])


def plan_frame(result: RightsizingResult) -> pl.DataFrame:
    """One row per workload: the numbers a table or CSV shows."""
    rows: list[dict[str, Any]] = []
    for rec in result.recommendations:
        rows.append(
            {
                "workload": rec.workload,
                "resource": rec.resource,
                "status": rec.status,
                "request": rec.recommended.request,
                "limit": rec.recommended.limit,
                "base": rec.method.base,
                "margin_pct": rec.method.margin_pct,
                "quantile": rec.method.quantile,
                "risk": rec.risk.p_exceed,
                "expected_slack": rec.risk.expected_slack,
                "n_points": rec.evidence.n_points,
                "n_phases": len(rec.phases),
                "rationale": rec.rationale,
            }
        )
    return pl.DataFrame(
        rows,
        schema_overrides={
            "request": pl.Float64,
            "limit": pl.Float64,
            "base": pl.Float64,
            "margin_pct": pl.Float64,
            "quantile": pl.Float64,
            "expected_slack": pl.Float64,
        },
    )


def plan_table(result: Result) -> Table:
    """Terminal view: request, limit, margin, slack and a one-line rationale per row."""
    table = titled_table(result)
    for header in ("workload", "request", "limit", "margin", "slack", "points", "rationale"):
        table.add_column(
            header,
            justify="left" if header in ("workload", "rationale") else "right",
            no_wrap=header != "rationale",
        )
    for row in result.frame.iter_rows(named=True):
        metric = row["resource"]
        slack = row["expected_slack"]
        table.add_row(
            short_id(row["workload"]),
            _scaled(metric, row["request"]),
            _scaled(metric, row["limit"]),
            "-" if row["margin_pct"] is None else f"{row['margin_pct']:+.1f}%",
            "-" if slack is None else f"{slack:.1%}",
            f"{row['n_points']:,}",
            row["rationale"],
        )
    return table


def recommend(
    sources: Annotated[
        list[str] | None,
        typer.Argument(
            help="Telemetry files (parquet, CSV, tar.gz; - for stdin), dataset names, NAME:TABLE, "
            "or prometheus://HOST:PORT with --query.",
            show_default=False,
        ),
    ] = None,
    mapping: MapOpt = None,
    as_metric: Annotated[
        str | None,
        typer.Option(
            "--as-metric",
            help="Metric name for a generic file whose rows name none.",
            rich_help_panel="Input",
        ),
    ] = None,
    ts_unit: TsUnitOpt = "s",
    ts_format: TsFormatOpt = None,
    mirror: MirrorOpt = None,
    query: QueryOpt = None,
    since: SinceOpt = "7d",
    until: UntilOpt = None,
    step: StepOpt = "1m",
    metric: Annotated[
        str | None,
        typer.Option(
            "--metric",
            help="The resource to size when the source holds several "
            "(e.g. mem_util_pct, gpu_mem_bytes, cpu_cores).",
        ),
    ] = None,
    strategy: Annotated[
        str, typer.Option("--strategy", help=f"Right-sizer: {', '.join(STRATEGIES.names())}.")
    ] = "foresize",
    risk: Annotated[
        float | None,
        typer.Option(
            "--risk",
            help="Target chance of exceeding the limit over the horizon, in (0, 0.5]. "
            "Default: 0.01 for memory, 0.05 for CPU and GPU utilisation.",
            show_default=False,
        ),
    ] = None,
    horizon: Annotated[
        str | None,
        typer.Option(
            "--horizon",
            help="Planning horizon, e.g. 7d or 12h (default: 3/7 of the history, "
            "the benchmark's 70/30 split).",
            show_default=False,
        ),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            help="A model config.json (or its folder): never recommend less GPU "
            "memory than its weights + activations (gpu_mem_bytes only).",
        ),
    ] = None,
    min_points: Annotated[
        int, typer.Option("--min-points", min=2, help="Fewest samples a workload needs.")
    ] = MIN_POINTS,
    schema: Annotated[
        bool, typer.Option("--schema", help="Print the plan's JSON Schema and exit.")
    ] = False,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
) -> None:
    """Right-size each workload: request and limit from a fleet-calibrated (foresize),
    VPA-style, KRR-style or history-max strategy, with the risk, margin, expected slack,
    evidence and a per-phase schedule; the JSON plan is validated against its schema.
    """
    if schema:
        typer.echo(json.dumps(recommendation_schema(), indent=2))
        return
    if not sources:
        raise typer.BadParameter("give a telemetry SOURCE (or --schema)", param_hint="SOURCES")
    STRATEGIES.get(strategy)
    if risk is not None:
        check_risk(risk)
    options = read_options(
        mapping=mapping,
        as_metric=as_metric,
        ts_unit=ts_unit,
        ts_format=ts_format,
        mirror=mirror,
        query=query,
        since=since,
        until=until,
        step=step,
    )
    opened = open_filtered(sources, options, workloads=None, metrics=None)
    raw = collect_input(opened.frame, source=opened.label)
    frame, report = canonicalize(raw, source=opened.label, strict=False)
    announce(ingest_reports(opened, report), all_reports=False)
    floor = None
    inputs: dict[str, str | None] = dict(opened.sha256)
    if model is not None:
        if metric is not None and metric != "gpu_mem_bytes":
            raise InputError(
                f"--model gives a GPU memory floor; it needs --metric gpu_mem_bytes, not {metric!r}"
            )
        floor = model_floor(model)
        config = Path(model) / "config.json" if Path(model).is_dir() else Path(model)
        inputs[str(config)] = sha256_file(config)
    horizon_s = parse_duration(horizon) if horizon is not None else None
    with progress("right-sizing", None):
        result = recommend_rightsizing(
            frame,
            metric=metric,
            strategy=strategy,
            risk=risk,
            horizon_s=horizon_s,
            floor=floor,
            min_points=min_points,
            source=opened.label,
        )
    document = {
        **provenance(inputs),
        "parameters": {
            "metric": result.metric,
            "strategy": strategy,
            "risk": result.risk,
            "horizon_s": horizon_s,
            "min_points": min_points,
            "floor": floor,
        },
        "recommendations": [r.model_dump(mode="json") for r in result.recommendations],
    }
    validate_plan(document)
    skipped = len(result.recommendations) - result.n_ok
    summary = f"{result.n_ok:,} workloads sized ({strategy}, risk {result.risk:g})" + (
        f"; {skipped:,} skipped: fewer than {min_points} samples" if skipped else ""
    )
    emit(
        Result(
            plan_frame(result),
            document,
            table=plan_table,
            title=f"Right-sizing of {result.metric} in {opened.label}",
            caption=f"strategy {strategy} · risk {result.risk:g} · limit = enforced cap",
            summary=summary,
        ),
        fmt=fmt,
        output=output,
    )
