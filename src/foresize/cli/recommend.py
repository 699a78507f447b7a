"""``foresize recommend``: right-size workloads, plan replicas, place and price a model."""

from __future__ import annotations

import json
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import RenderableType
from rich.table import Table

from foresize.cli import recommend_serve
from foresize.cli.common import provenance, read_telemetry
from foresize.cli.options import (
    ForceOpt,
    FormatOpt,
    OutputOpt,
    WideOpt,
    opt,
    parse_dims,
    telemetry_options,
)
from foresize.cli.output import (
    FORMATS,
    Result,
    emit,
    progress,
    text_table,
    to_json,
)
from foresize.core.errors import InputError, UsageError
from foresize.core.units import parse_duration
from foresize.recommend.choices import DEFAULT_FORECASTER, MIN_POINTS, STRATEGY_NAMES

if TYPE_CHECKING:  # planners (polars, numpy) and plan schema load when a command runs
    from foresize.ingest.sources import TelemetrySource
    from foresize.recommend.cluster import ClusterPlanRequest
    from foresize.recommend.service import PlanBody

EPILOG = """\
Examples:

  foresize recommend gentd26:memory_util

  foresize recommend gentd26:memory_util --strategy vpa -f json -o plan.json

  foresize recommend gentd26:memory_util --current-limit 16Gi -f k8s -o patches.yaml

  foresize recommend prometheus://localhost:9090 --namespace 'team-*' -f k8s -o patches.yaml

  foresize recommend prometheus://localhost:9090 --since 14d -f vpa -o vpa.yaml

  foresize recommend gentd26:qps --capacity 5 --startup 2m -f k8s -o scaling.yaml

  foresize recommend gentd26:gpu_duty_cycle --model config.json --prices prices.toml

  foresize recommend --schema
"""
YAML_SUFFIXES = (".yaml", ".yml")


def _write_k8s(result: Result, handle: Any) -> None:
    """The ``k8s`` format: a recommend plan's Kubernetes manifests as one YAML stream (a
    cluster plan: one patch per owner).
    """
    from foresize.recommend.cluster_export import cluster_patches_yaml
    from foresize.recommend.export import plan_yaml
    from foresize.recommend.plan import validate_plan

    if "recommendations" not in result.document:
        raise InputError("-f k8s writes the manifests of a plan; only `foresize recommend` has one")
    plan = validate_plan(result.document)
    handle.write(cluster_patches_yaml(plan) if plan.cluster else plan_yaml(plan))


def _write_vpa(result: Result, handle: Any) -> None:
    """The ``vpa`` format: a cluster plan as VerticalPodAutoscalers (updateMode Off)."""
    from foresize.recommend.cluster_export import vpa_yaml
    from foresize.recommend.plan import validate_plan

    if "recommendations" not in result.document:
        raise InputError("-f vpa writes the VerticalPodAutoscalers of a cluster plan")
    handle.write(vpa_yaml(validate_plan(result.document)))


def _write_yaml(result: Result, handle: Any) -> None:
    """The ``yaml`` format: the JSON document's tree as YAML."""
    from foresize.recommend.k8s import to_yaml

    handle.write(to_yaml(json.loads(to_json(result.document))))


def _write_html(result: Result, handle: Any) -> None:
    """The ``html`` format: a cluster plan's self-contained report."""
    from foresize.recommend.cluster_report import cluster_html
    from foresize.recommend.plan import validate_plan

    if "recommendations" not in result.document:
        raise InputError("-f html writes the report of a cluster plan")
    plan = validate_plan(result.document)
    if plan.cluster is None or "usage" not in result.extra:
        raise InputError("-f html writes the report of a cluster plan "
                         "(foresize recommend prometheus://HOST:PORT)")
    handle.write(cluster_html(plan.cluster, result.extra["usage"], title=result.title or ""))


FORMATS.add("k8s", _write_k8s)
FORMATS.add("vpa", _write_vpa)
FORMATS.add("yaml", _write_yaml)
FORMATS.add("html", _write_html)



RIGHTSIZING_SUMMARY = ("workload", "resource", "request", "limit", "slack", "risk", "gpu", "$/h")
SCALING_SUMMARY = ("workload", "demand peak", "replicas", "HPA min/max/target", "replica-h",
                   "vs static", "cost")
CLUSTER_SUMMARY = ("namespace", "owner", "container", "severity", "cpu request",
                   "memory request", "$/h change")


def plan_table(result: Result, body: PlanBody) -> RenderableType:
    """The terminal view: the main table (the numbers to apply; the rationale with
    --wide), then placement and cost when present.
    """
    from foresize.recommend.describe import placement_view, rightsizing_view, scaling_view

    if body.scaling_plans:
        main = text_table(scaling_view(body), title=result.title, caption=result.caption,
                          wide=result.wide, summary=SCALING_SUMMARY)
    else:
        main = text_table(rightsizing_view(body), title=result.title, caption=result.caption,
                          wide=result.wide, summary=RIGHTSIZING_SUMMARY)
    placed = placement_view(body)
    if placed is None:
        return main
    grid = Table.grid(padding=(1, 0))
    grid.add_row(main)
    grid.add_row(text_table(placed, title="Placement and cost", wide=result.wide))
    return grid


def _seconds(text: str | None) -> float | None:
    return None if text is None else parse_duration(text)


@telemetry_options(
    sources=Annotated[list[str] | None, typer.Argument(
        help="Telemetry files (parquet, CSV, tar.gz; - for stdin), dataset names, NAME:TABLE, "
        "or prometheus://HOST:PORT (a whole cluster; one query with --query).",
        show_default=False)],
    default=None,
)
def recommend(
    *,
    telemetry: TelemetrySource,
    metric: Annotated[str | None, opt(
        "--metric", "The resource to size, or the demand to plan replicas for, when the source "
        "holds several (e.g. mem_util_pct, gpu_mem_bytes, cpu_cores, qps).")] = None,
    strategy: Annotated[str, opt(
        "--strategy", f"Right-sizer: {', '.join(STRATEGY_NAMES)}.")] = "foresize",
    risk: Annotated[float | None, opt(
        "--risk", "Share of workloads expected to exceed their limit over the horizon, in "
        "(0, 0.5]; the foresize strategy spends it where covering costs most (each "
        "rationale states the workload's own chance). Default: 0.05 (chosen on "
        "pod_memory_util; see benchmarks/bench_rightsize.py).", show_default=False)] = None,
    max_chance: Annotated[float | None, opt(
        "--max-chance", "No workload's own chance of exceeding above this, in (0, 0.5] "
        "(foresize strategy; e.g. 2 x --risk to spread the risk evenly). Default: 0.5.",
        show_default=False)] = None,
    horizon: Annotated[str | None, opt(
        "--horizon", "Planning horizon, e.g. 7d or 12h (default: 3/7 of the history, "
        "the benchmark's 70/30 split).", show_default=False)] = None,
    force: ForceOpt = False,
    phases: Annotated[bool | None, opt(
        "--phases/--no-phases", "Per-phase request schedules (phase detection per workload). "
        "Default: on for files and datasets; off for a whole cluster, where detection over "
        "every container dominates the run and no manifest can express a schedule.",
        show_default=False)] = None,
    min_points: Annotated[int, opt(
        "--min-points", "Fewest samples a workload needs.", min=2)] = MIN_POINTS,
    current_limit: Annotated[str | None, opt(
        "--current-limit", "The containers' current limit (e.g. 16Gi, or 2 cores): turns "
        "mem_util_pct / cpu_util_pct recommendations into quantities for -f k8s.",
        show_default=False)] = None,
    capacity: Annotated[float | None, opt(
        "--capacity", "Demand one replica serves at 100% of its request (qps, arrivals or "
        "concurrency): plan replicas, HPA and KEDA settings from the demand forecast.",
        "Scaling", show_default=False)] = None,
    target_utilisation: Annotated[float, opt(
        "--target-utilisation", "Share of --capacity a replica may run at on the forecast's "
        "upper quantile.", "Scaling")] = 0.7,
    startup: Annotated[str, opt(
        "--startup", "Replica start-up delay, e.g. 2m.", "Scaling")] = "0s",
    scale_down_delay: Annotated[str, opt(
        "--scale-down-delay", "Keep a replica this long after the need falls, e.g. 5m.",
        "Scaling")] = "0s",
    forecaster: Annotated[str, opt(
        "--forecaster", "Demand forecaster (see `foresize forecast models`); auto is slower.",
        "Scaling")] = DEFAULT_FORECASTER,
    model: Annotated[str | None, opt(
        "--model", "A model config.json (or its folder) or an .onnx: place one replica on the "
        "cheapest GPU type that holds it and price it; with gpu_mem_bytes also the floor of "
        "the request.", "Model")] = None,
    batch: Annotated[int, opt("--batch", "Sequences per step.", "Model", min=1)] = 1,
    context: Annotated[int | None, opt(
        "--context", "Tokens per sequence (default: the model's maximum).", "Model",
        min=1)] = None,
    dtype: Annotated[str | None, opt(
        "--dtype", "fp32, bf16 or fp16 (default: bf16 for a config, the graph's own for ONNX).",
        "Model")] = None,
    dim: Annotated[list[str] | None, opt(
        "--dim", "ONNX: bind a symbolic dimension, NAME=VALUE (repeatable).", "Model")] = None,
    device: Annotated[list[str] | None, opt(
        "--device", "GPU types to place on (repeatable; default: every priced type).",
        "Model")] = None,
    prices: Annotated[Path | None, opt(
        "--prices", "A prices TOML merged over the default table (see prices.toml).", "Model",
        dir_okay=False)] = None,
    prices_only: Annotated[bool, opt(
        "--prices-only", "Use only the --prices file, not merged over the default table.",
        "Model")] = False,
    schema: Annotated[bool, opt("--schema", "Print the plan's JSON Schema and exit.")] = False,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
    wide: WideOpt = False,
) -> None:
    """Right-size each workload (request and limit from a fleet-calibrated, VPA-style,
    KRR-style or history-max strategy, with risk, margin, slack, evidence and phases), or
    plan replicas for a demand metric (HPA and KEDA from a demand forecast); with --model,
    place and price it. -f json is validated against --schema; -f k8s writes manifests.
    """
    from foresize.ingest.sources import is_cluster_source
    from foresize.recommend.cluster import ClusterPlanRequest
    from foresize.recommend.cost import load_prices
    from foresize.recommend.describe import (
        plan_caption,
        plan_inputs,
        plan_rows,
        plan_summary,
        plan_title,
    )
    from foresize.recommend.export import parse_quantity
    from foresize.recommend.plan import SCHEMA_VERSION, recommendation_schema, validate_plan
    from foresize.recommend.service import PlanRequest, ScalingRequest, build_plan, size_model
    from foresize.recommend.strategies import check_chance_option

    if schema:
        typer.echo(json.dumps(recommendation_schema(), indent=2))
        return
    if not telemetry.sources:
        raise typer.BadParameter("give a telemetry SOURCE (or --schema)", param_hint="SOURCES")
    if fmt is None and output is not None and output.suffix.lower() in YAML_SUFFIXES:
        fmt = "k8s"
    if fmt is None and output is not None and output.suffix.lower() == ".html":
        fmt = "html"
    check_chance_option(strategy, max_chance)  # before any source is read
    if is_cluster_source(telemetry):
        _recommend_cluster(telemetry, ClusterPlanRequest(
            strategy=strategy, risk=risk, max_chance=max_chance, horizon_s=_seconds(horizon),
            min_points=min_points, force=force, phases=bool(phases),
            prices=None if prices is None else load_prices(prices,
                                                           merge_defaults=not prices_only)),
            fmt=fmt, output=output, wide=wide)
        return
    scaling = None if capacity is None else ScalingRequest(
        capacity=capacity, target_utilisation=target_utilisation,
        startup_s=parse_duration(startup), scale_down_delay_s=parse_duration(scale_down_delay),
        forecaster=forecaster, horizon_s=_seconds(horizon), min_points=min_points, force=force)
    if prices_only and prices is None:
        raise UsageError("--prices-only needs --prices FILE")
    price_table = None if prices is None else load_prices(prices, merge_defaults=not prices_only)
    sizing = None if model is None else size_model(
        model, batch=batch, context=context, dtype=dtype, dims=parse_dims(dim))
    request = PlanRequest(
        metric=metric, strategy=strategy, risk=risk, max_chance=max_chance,
        horizon_s=_seconds(horizon), force=force, phases=phases is not False,
        min_points=min_points, model=sizing,
        prices=price_table, devices=tuple(device or ()), scaling=scaling,
        current_limit=None if current_limit is None else parse_quantity(current_limit),
    )
    request.check()
    read, _ = read_telemetry(telemetry)
    with progress("planning", None):
        body = build_plan(read.frame, replace(request, source=read.label))
    inputs = plan_inputs(read.sha256, model=model, prices=prices)
    document = {**provenance(inputs), "schema_version": SCHEMA_VERSION, **body.document()}
    document = json.loads(to_json(document))
    validate_plan(document)
    emit(Result(plan_rows(body), document, table=partial(plan_table, body=body),
                title=plan_title(body, read.label), caption=plan_caption(body),
                summary=plan_summary(body, min_points), wide=wide), fmt=fmt, output=output)


def _recommend_cluster(telemetry: TelemetrySource, request: ClusterPlanRequest, *,
                       fmt: str | None, output: Path | None, wide: bool) -> None:
    """Cluster mode: read the cluster, plan every owner, emit (library does the work)."""
    from foresize.ingest.sources import cluster_request
    from foresize.recommend.cluster import recommend_cluster
    from foresize.recommend.cluster_report import cluster_rows, cluster_summary, cluster_view
    from foresize.recommend.plan import SCHEMA_VERSION, validate_plan

    source = telemetry.sources[0]
    with progress("reading the cluster", None):
        plan = recommend_cluster(cluster_request(source, telemetry.options), request)
    document = {**provenance({source: None}), "schema_version": SCHEMA_VERSION,
                **plan.document()}
    document = json.loads(to_json(document))
    validate_plan(document)
    section = plan.section
    emit(Result(cluster_rows(section), document,
                table=lambda result: text_table(cluster_view(section), title=result.title,
                                                caption=result.caption, wide=result.wide,
                                                summary=CLUSTER_SUMMARY),
                title=f"Right-sizing {source} ({section.start} .. {section.end})",
                caption=f"strategy {request.strategy}; severity as KRR grades the change",
                summary=cluster_summary(section), extra={"usage": plan.usage}, wide=wide),
         fmt=fmt, output=output)


class RecommendGroup(typer.core.TyperGroup):
    """``recommend serve TRACE`` plans an LLM service; any other ``recommend ...`` is
    ``recommend plan ...`` (telemetry right-sizing and scaling), so every earlier
    invocation keeps working unchanged.
    """

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        """Route to ``plan`` unless a subcommand or the group's help is asked for."""
        if not (args and (args[0] in self.commands
                          or (len(args) == 1 and args[0] in ("--help", "-h")))):
            args = ["plan", *args]
        return super().parse_args(ctx, args)


app = typer.Typer(
    cls=RecommendGroup,
    help="Right-size workloads and plan replicas from telemetry (`recommend SOURCES`, the "
    "same as `recommend plan SOURCES`), or plan an LLM service on a request trace by "
    "simulation (`recommend serve TRACE`).",
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.command("plan", epilog=EPILOG)(recommend)
app.command("serve", epilog=recommend_serve.EPILOG)(recommend_serve.serve)
