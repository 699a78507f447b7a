"""``foresize recommend``: right-size workloads, plan replicas, place and price a model."""

from __future__ import annotations

import json
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import polars as pl
import typer
from rich.table import Table

from foresize.cli.common import announce, ingest_reports, open_filtered, provenance, read_options
from foresize.cli.model import _parse_dims
from foresize.cli.options import (
    AsMetricOpt,
    FormatOpt,
    MapOpt,
    MirrorOpt,
    OutputOpt,
    QueryOpt,
    SinceOpt,
    StepOpt,
    StrictOpt,
    TsFormatOpt,
    TsUnitOpt,
    UntilOpt,
    WorkloadOpt,
)
from foresize.cli.output import FORMATS, Result, emit, progress, titled_table, to_json
from foresize.cli.profile import _scaled, short_id
from foresize.core.errors import InputError
from foresize.core.io import sha256_file
from foresize.core.units import human_bytes, parse_duration
from foresize.ingest.tabular import collect_input
from foresize.ingest.validate import canonicalize
from foresize.recommend.cost import load_prices
from foresize.recommend.export import parse_quantity, plan_yaml
from foresize.recommend.plan import SCHEMA_VERSION, recommendation_schema, validate_plan
from foresize.recommend.service import (
    DEFAULT_FORECASTER,
    PlanBody,
    PlanRequest,
    ScalingRequest,
    build_plan,
    size_model,
)
from foresize.recommend.strategies import MIN_POINTS, STRATEGIES

EPILOG = """\
Examples:

  foresize recommend gentd26:memory_util

  foresize recommend gentd26:memory_util --strategy vpa -f json -o plan.json

  foresize recommend gentd26:memory_util --current-limit 16Gi -f k8s -o patches.yaml

  foresize recommend gentd26:qps --capacity 5 --startup 2m -f k8s -o scaling.yaml

  foresize recommend gentd26:gpu_duty_cycle --model config.json --prices prices.toml

  foresize recommend --schema
"""
YAML_SUFFIXES = (".yaml", ".yml")


def _write_k8s(result: Result, handle: Any) -> None:
    """The ``k8s`` format: a recommend plan's Kubernetes manifests as one YAML stream."""
    if "recommendations" not in result.document:
        raise InputError("-f k8s writes the manifests of a plan; only `foresize recommend` has one")
    handle.write(plan_yaml(validate_plan(result.document)))


FORMATS.add("k8s", _write_k8s)


def plan_frame(body: PlanBody) -> pl.DataFrame:
    """Rows for CSV/parquet: one per workload and resource, or one per scaling plan."""
    if body.scaling_plans:
        return pl.DataFrame(
            [
                {
                    "workload": s.workload,
                    "metric": s.metric,
                    "forecaster": s.forecaster,
                    "horizon_steps": s.horizon_steps,
                    "demand_peak": max(s.schedule.demand),
                    "replicas_peak": s.schedule.peak,
                    "replicas_low": s.schedule.low,
                    "replica_hours": s.schedule.replica_hours,
                    "saving_vs_static": s.schedule.saving_vs_static,
                    "hpa_min": s.hpa.min_replicas,
                    "hpa_max": s.hpa.max_replicas,
                    "hpa_target_pct": s.hpa.target_utilisation_pct,
                    "cron_windows": len(s.cron.windows),
                    "cost_on_demand": None if s.cost is None else s.cost.horizon_on_demand,
                    "rationale": s.rationale,
                }
                for s in body.scaling_plans
            ],
            schema_overrides={"cost_on_demand": pl.Float64},
        )
    rows: list[dict[str, Any]] = []
    for rec in body.recommendations:
        place = rec.placement
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
                "gpu": None if place is None else _gpu_label(place.device, place),
                "gpu_fraction": None if place is None else place.gpu_fraction,
                "cost_on_demand_per_h": None if rec.cost is None else rec.cost.per_hour.on_demand,
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
            "gpu": pl.String,
            "gpu_fraction": pl.Float64,
            "cost_on_demand_per_h": pl.Float64,
        },
    )


def _gpu_label(device: str, place: Any) -> str:
    if place.mode == "whole":
        return f"{place.devices} x {device}"
    if place.mode == "mig":
        return f"{device} MIG {place.profile}"
    return f"{device} {place.gpu_milli}m"


def _money(value: float | None, currency: str = "") -> str:
    if value is None:
        return "-"
    return f"{value:,.2f}{' ' + currency if currency else ''}"


def rightsizing_table(result: Result, body: PlanBody) -> Table:
    """Request, limit, slack and risk with a one-line rationale per workload x resource."""
    table = titled_table(result)
    headers = ["workload", "resource", "request", "limit", "slack", "risk", "rationale"]
    placed = any(r.placement is not None for r in body.recommendations)
    if placed:
        headers[-1:-1] = ["gpu", "$/h"]
    for header in headers:
        table.add_column(
            header,
            justify="left" if header in ("workload", "resource", "gpu", "rationale") else "right",
            no_wrap=header != "rationale",
        )
    for rec in body.recommendations:
        slack = rec.risk.expected_slack
        cells = [
            short_id(rec.workload),
            rec.resource,
            _scaled(rec.resource, rec.recommended.request),
            _scaled(rec.resource, rec.recommended.limit),
            "-" if slack is None else f"{slack:.1%}",
            f"{rec.risk.p_exceed:g}",
            rec.rationale,
        ]
        if placed:
            gpu = "-" if rec.placement is None else _gpu_label(rec.placement.device, rec.placement)
            cost = None if rec.cost is None else rec.cost.per_hour.on_demand
            cells[-1:-1] = [gpu, _money(cost)]
        table.add_row(*cells)
    return table


def scaling_table(body: PlanBody, title: str | None = None) -> Table:
    """One row per scaling plan: replicas, HPA settings, cron windows, cost."""
    table = Table(title=title, title_justify="left")
    for header in (
        "workload",
        "forecaster",
        "demand peak",
        "replicas",
        "HPA min/max/target",
        "cron",
        "replica-h",
        "vs static",
        "cost",
        "rationale",
    ):
        table.add_column(
            header,
            justify="left" if header in ("workload", "forecaster", "rationale") else "right",
            no_wrap=header != "rationale",
        )
    for s in body.scaling_plans:
        sched = s.schedule
        table.add_row(
            short_id(s.workload),
            s.forecaster,
            f"{max(sched.demand):.3g} {s.unit}",
            f"{sched.low}-{sched.peak}",
            f"{s.hpa.min_replicas}/{s.hpa.max_replicas}/{s.hpa.target_utilisation_pct}%",
            f"{len(s.cron.windows)} windows",
            f"{sched.replica_hours:,.1f}",
            f"-{sched.saving_vs_static:.0%}",
            "-" if s.cost is None else _money(s.cost.horizon_on_demand),
            s.rationale,
        )
    return table


def placement_table(body: PlanBody) -> Table | None:
    """Placement of one replica, the fleet's cost per hour and the commitment advice."""
    if body.placement is None or body.cost is None:
        return None
    place, cost = body.placement, body.cost
    table = Table(title="Placement and cost", title_justify="left")
    table.add_column("item", justify="left", no_wrap=True)
    table.add_column("value", justify="left")
    model = place.model
    table.add_row(
        "model", f"{model.source} ({model.kind}, {model.dtype}): {human_bytes(model.need_bytes)}"
    )
    util = "unknown (whole GPUs)" if place.util_p95 is None else f"{place.util_p95:.0%}"
    table.add_row("GPU utilisation P95", util)
    table.add_row(
        "placement", f"{_gpu_label(place.best.device, place.best)}: {place.best.rationale}"
    )
    table.add_row("fits on", ", ".join(sorted({o.device for o in place.options})))
    hour = cost.per_replica.per_hour
    table.add_row(
        "per replica / h",
        f"on demand {_money(hour.on_demand)}, 1y {_money(hour.reserved_1y)}, "
        f"spot {_money(hour.spot)} {cost.currency}",
    )
    if cost.fleet is not None:
        fleet = cost.fleet.per_hour
        table.add_row(
            f"fleet ({cost.fleet_replicas} workloads) / h",
            f"on demand {_money(fleet.on_demand)}, 1y {_money(fleet.reserved_1y)}, "
            f"spot {_money(fleet.spot)} {cost.currency}",
        )
    for s in body.scaling_plans:
        commit = None if s.cost is None else s.cost.commitment
        if commit is not None:
            table.add_row(
                f"commit ({short_id(s.workload)})",
                f"{commit.committed_units:g} GPU(s) for 1y covers {commit.coverage:.0%} of the "
                f"horizon; {_money(commit.mixed_cost)} vs {_money(commit.all_on_demand_cost)} "
                f"all on demand ({commit.saving_fraction:.0%} saved)",
            )
    table.add_row("prices", f"{cost.source} (as of {cost.as_of})")
    return table


def plan_table(result: Result, body: PlanBody) -> Table:
    """The terminal view: the main table, then scaling/placement/cost when present."""
    if body.scaling_plans:
        main = scaling_table(body, title=result.title)
        if result.caption:
            main.caption = result.caption
    else:
        main = rightsizing_table(result, body)
    extra = placement_table(body)
    if extra is None:
        return main
    grid = Table.grid(padding=(1, 0))
    grid.add_row(main)
    grid.add_row(extra)
    return grid


def _model_inputs(model: str | None) -> dict[str, str | None]:
    if model is None:
        return {}
    path = Path(model) / "config.json" if Path(model).is_dir() else Path(model)
    return {str(path): sha256_file(path)} if path.is_file() else {}


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
    as_metric: AsMetricOpt = None,
    ts_unit: TsUnitOpt = "s",
    ts_format: TsFormatOpt = None,
    mirror: MirrorOpt = None,
    query: QueryOpt = None,
    since: SinceOpt = "7d",
    until: UntilOpt = None,
    step: StepOpt = "1m",
    strict: StrictOpt = False,
    workload: WorkloadOpt = None,
    metric: Annotated[
        str | None,
        typer.Option(
            "--metric",
            help="The resource to size, or the demand to plan replicas for, when the source "
            "holds several (e.g. mem_util_pct, gpu_mem_bytes, cpu_cores, qps).",
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
            "Default: 0.05 (chosen on pod_memory_util; see benchmarks/bench_rightsize.py).",
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
    min_points: Annotated[
        int, typer.Option("--min-points", min=2, help="Fewest samples a workload needs.")
    ] = MIN_POINTS,
    current_limit: Annotated[
        str | None,
        typer.Option(
            "--current-limit",
            help="The containers' current limit (e.g. 16Gi, or 2 cores): turns mem_util_pct / "
            "cpu_util_pct recommendations into quantities for -f k8s.",
            show_default=False,
        ),
    ] = None,
    capacity: Annotated[
        float | None,
        typer.Option(
            "--capacity",
            help="Demand one replica serves at 100% of its request (qps, arrivals or "
            "concurrency): plan replicas, HPA and KEDA settings from the demand forecast.",
            rich_help_panel="Scaling",
            show_default=False,
        ),
    ] = None,
    target_utilisation: Annotated[
        float,
        typer.Option(
            "--target-utilisation",
            help="Share of --capacity a replica may run at on the forecast's upper quantile.",
            rich_help_panel="Scaling",
        ),
    ] = 0.7,
    startup: Annotated[
        str,
        typer.Option(
            "--startup", help="Replica start-up delay, e.g. 2m.", rich_help_panel="Scaling"
        ),
    ] = "0s",
    scale_down_delay: Annotated[
        str,
        typer.Option(
            "--scale-down-delay",
            help="Keep a replica this long after the need falls, e.g. 5m.",
            rich_help_panel="Scaling",
        ),
    ] = "0s",
    forecaster: Annotated[
        str,
        typer.Option(
            "--forecaster",
            help="Demand forecaster (see `foresize forecast models`); auto is slower.",
            rich_help_panel="Scaling",
        ),
    ] = DEFAULT_FORECASTER,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            help="A model config.json (or its folder) or an .onnx: place one replica on the "
            "cheapest GPU type that holds it and price it; with gpu_mem_bytes also the "
            "floor of the request.",
            rich_help_panel="Model",
        ),
    ] = None,
    batch: Annotated[
        int,
        typer.Option("--batch", min=1, help="Sequences per step.", rich_help_panel="Model"),
    ] = 1,
    context: Annotated[
        int | None,
        typer.Option(
            "--context",
            min=1,
            help="Tokens per sequence (default: the model's maximum).",
            rich_help_panel="Model",
        ),
    ] = None,
    dtype: Annotated[
        str | None,
        typer.Option(
            "--dtype",
            help="fp32, bf16 or fp16 (default: bf16 for a config, the graph's own for ONNX).",
            rich_help_panel="Model",
        ),
    ] = None,
    dim: Annotated[
        list[str] | None,
        typer.Option(
            "--dim",
            help="ONNX: bind a symbolic dimension, NAME=VALUE (repeatable).",
            rich_help_panel="Model",
        ),
    ] = None,
    device: Annotated[
        list[str] | None,
        typer.Option(
            "--device",
            help="GPU types to place on (repeatable; default: every priced type).",
            rich_help_panel="Model",
        ),
    ] = None,
    prices: Annotated[
        Path | None,
        typer.Option(
            "--prices",
            help="A prices TOML merged over the default table (see prices.toml).",
            rich_help_panel="Model",
            dir_okay=False,
        ),
    ] = None,
    prices_only: Annotated[
        bool,
        typer.Option(
            "--prices-only",
            help="Use only the --prices file, not merged over the default table.",
            rich_help_panel="Model",
        ),
    ] = False,
    schema: Annotated[
        bool, typer.Option("--schema", help="Print the plan's JSON Schema and exit.")
    ] = False,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
) -> None:
    """Right-size each workload (request and limit from a fleet-calibrated, VPA-style,
    KRR-style or history-max strategy, with risk, margin, slack, evidence and phases), or
    plan replicas for a demand metric (HPA and KEDA from a demand forecast); with --model,
    place and price it. -f json is validated against --schema; -f k8s writes manifests.
    """
    if schema:
        typer.echo(json.dumps(recommendation_schema(), indent=2))
        return
    if not sources:
        raise typer.BadParameter("give a telemetry SOURCE (or --schema)", param_hint="SOURCES")
    if fmt is None and output is not None and output.suffix.lower() in YAML_SUFFIXES:
        fmt = "k8s"
    scaling = (
        None
        if capacity is None
        else ScalingRequest(
            capacity=capacity,
            target_utilisation=target_utilisation,
            startup_s=parse_duration(startup),
            scale_down_delay_s=parse_duration(scale_down_delay),
            forecaster=forecaster,
            horizon_s=parse_duration(horizon) if horizon is not None else None,
            min_points=min_points,
        )
    )
    if prices_only and prices is None:
        raise InputError("--prices-only needs --prices FILE")
    price_table = None if prices is None else load_prices(prices, merge_defaults=not prices_only)
    sizing = (
        None
        if model is None
        else size_model(model, batch=batch, context=context, dtype=dtype, dims=_parse_dims(dim))
    )
    request = PlanRequest(
        metric=metric,
        strategy=strategy,
        risk=risk,
        horizon_s=parse_duration(horizon) if horizon is not None else None,
        min_points=min_points,
        model=sizing,
        prices=price_table,
        devices=tuple(device or ()),
        scaling=scaling,
        current_limit=None if current_limit is None else parse_quantity(current_limit),
    )
    request.check()
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
    opened = open_filtered(sources, options, workloads=workload, metrics=None)
    raw = collect_input(opened.frame, source=opened.label)
    frame, report = canonicalize(raw, source=opened.label, strict=strict)
    announce(ingest_reports(opened, report), all_reports=False)
    request = replace(request, source=opened.label)
    with progress("planning", None):
        body = build_plan(frame, request)
    inputs: dict[str, str | None] = {**opened.sha256, **_model_inputs(model)}
    if prices is not None:
        inputs[str(prices)] = sha256_file(prices)
    document = {**provenance(inputs), "schema_version": SCHEMA_VERSION, **body.document()}
    document = json.loads(to_json(document))
    validate_plan(document)
    emit(
        Result(
            plan_frame(body),
            document,
            table=partial(plan_table, body=body),
            title=_title(body, opened.label),
            caption=_caption(body),
            summary=_summary(body, min_points),
        ),
        fmt=fmt,
        output=output,
    )


def _title(body: PlanBody, label: str) -> str:
    kind = "Scaling plan" if body.scaling_plans else "Right-sizing"
    return f"{kind} of {body.metric} in {label}"


def _caption(body: PlanBody) -> str:
    params = body.parameters
    if body.scaling_plans:
        return (
            f"per workload · {params['forecaster']} forecast, replicas cover hi_{params['level']}"
            f" · {params['capacity']:g} per replica at {params['target_utilisation']:.0%}"
        )
    return f"strategy {params['strategy']} · risk {params['risk']:g} · limit = enforced cap"


def _summary(body: PlanBody, min_points: int) -> str:
    if body.scaling_plans:
        peak = sum(s.schedule.peak for s in body.scaling_plans)
        text = f"{len(body.scaling_plans):,} scaling plans ({body.metric}); {peak:,} replicas"
        text += " at peak"
    else:
        n_ok = sum(r.status == "ok" for r in body.recommendations)
        skipped = len(body.recommendations) - n_ok
        params = body.parameters
        text = f"{n_ok:,} workloads sized ({params['strategy']}, risk {params['risk']:g})" + (
            f"; {skipped:,} skipped: fewer than {min_points} samples" if skipped else ""
        )
    if body.placement is not None:
        best = body.placement.best
        text += f"; placed on {_gpu_label(best.device, best)}"
    return text
