"""``foresize simulate autoscale`` (horizontal scaling on a demand series, optionally on node
pools) and ``foresize simulate vertical`` (per-phase resizing of a resource series).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import polars as pl
import typer

from foresize.cli.common import provenance, read_canonical, read_options
from foresize.cli.options import (
    AsMetricOpt,
    FormatOpt,
    MapOpt,
    MirrorOpt,
    OutputOpt,
    StrictOpt,
    TsFormatOpt,
    TsUnitOpt,
    WorkloadOpt,
)
from foresize.cli.output import Result, emit, info, progress
from foresize.core.errors import InputError
from foresize.core.io import atomic_write
from foresize.core.units import parse_duration
from foresize.recommend.plan import read_plan
from foresize.simulate.replicas.demand import DemandSeries, is_lora, open_demand
from foresize.simulate.replicas.nodes import NodePlan, parse_plan
from foresize.simulate.replicas.run import ZERO_DELAY, Comparison, ServiceConfig, compare
from foresize.simulate.replicas.scalers import SCALERS
from foresize.simulate.replicas.service import FloatArray, IntArray
from foresize.simulate.replicas.stress import apply_injections, parse_injection
from foresize.simulate.replicas.vertical import (
    PlannedSizes,
    VerticalConfig,
    plan_sizes,
    totals,
    vertical_sizing,
)

EPILOG = """\
Examples:

  foresize simulate autoscale alibaba-gentd26:lora --capacity 1 --startup 2

  foresize simulate autoscale alibaba-gentd26:qps --metric qps --capacity peak/20 \
      --policies static,hpa,predictive,hybrid,oracle --startup 5 -o qps.json

  foresize simulate autoscale alibaba-gentd26:lora --capacity 1 \
      --inject spike:3x:10m@12h --inject blackout:2h@100h --plot lora.png

  foresize simulate autoscale demand.csv --map ts=time,workload=pod,value=rps \
      --as-metric qps --capacity 5 --target 0.6 --price 2.5 -f json

  foresize simulate autoscale alibaba-gentd26:lora --capacity 1 \
      --pool name=a100,gpus=8,gpu_model=A100,price=32.8,delay=3m,max=4 \
      --pool name=a100-spot,gpus=8,gpu_model=A100,spot_price=9.8,delay=3m,max=2 \
      --spot-interruptions 0.05 --seed 1
"""

NODE_COLUMNS = ("node_hours", "peak_nodes", "interruptions", "replicas_lost", "unserved_node_extra")

ROW_COLUMNS = (
    "scenario",
    "policy",
    "replica_hours",
    "vs_oracle",
    "vs_oracle_nodelay",
    "unserved_frac",
    "violation_min",
    "latency_p95_s",
    "latency_p99_s",
    "actions",
    "peak_replicas",
    "cost_usd",
)


def _capacity(text: str | None, series: DemandSeries) -> float:
    """``--capacity``: a number per replica, or ``peak/N`` (the peak needs N replicas)."""
    if text is None:
        if series.unit == "concurrent requests":
            return 1.0
        raise InputError(
            "--capacity is required for this source",
            hint="demand units one replica serves, e.g. --capacity 5 or --capacity peak/20",
        )
    spec = text.strip()
    try:
        if spec.startswith("peak/"):
            value = float(series.values.max()) / float(spec.removeprefix("peak/"))
        else:
            value = float(spec)
    except (ValueError, ZeroDivisionError):
        raise InputError(f"--capacity {text!r} is not a number or peak/N") from None
    if not (math.isfinite(value) and value > 0):
        raise InputError(f"--capacity must be > 0 per replica, got {text!r}")
    return value


def _steps(text: str, step_s: float, option: str) -> int:
    """A delay as whole steps: ``2`` is 2 steps, ``2m`` is rounded up to steps."""
    spec = text.strip()
    if spec.isdigit():
        return int(spec)
    try:
        seconds = parse_duration(spec)
    except InputError:
        raise InputError(
            f"{option} {text!r} is neither a number of steps nor a duration like 2m"
        ) from None
    return math.ceil(seconds / step_s - 1e-9)


def _policies(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise InputError("--policies names no policy", hint=f"e.g. {','.join(SCALERS.names())}")
    for name in names:
        SCALERS.get(name)  # UnknownNameError with "Did you mean"
    return names


def _rows(comparison: Comparison, scenario: str) -> list[dict[str, Any]]:
    return [{"scenario": scenario, **row} for row in comparison.rows]


def _plot(series: DemandSeries, comparison: Comparison, capacity: float, path: Path) -> None:
    try:
        import matplotlib as mpl

        mpl.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise InputError("--plot needs matplotlib", hint="pip install 'foresize[plot]'") from None
    hours = np.arange(series.values.size) * series.step_s / 3600.0
    fig, ax = plt.subplots(figsize=(10, 4.5))
    ax.plot(
        hours,
        comparison.runs[ZERO_DELAY].demand / capacity,
        color="black",
        lw=0.8,
        label="demand / capacity",
    )
    for name, run in comparison.runs.items():
        if name != ZERO_DELAY:
            ax.step(hours, run.billed, where="post", lw=0.9, label=f"{name} replicas")
    ax.set_xlabel("hours from the start of the series")
    ax.set_ylabel("replicas")
    ax.set_title(series.name)
    ax.legend(fontsize=8, ncol=3)
    ax.grid(alpha=0.3)
    with atomic_write(path) as tmp:
        fig.savefig(tmp, format=path.suffix.lstrip(".") or "png", dpi=120)
    plt.close(fig)
    info(f"wrote {path}")


def autoscale(
    source: Annotated[
        str,
        typer.Argument(
            help="Demand: a telemetry file, a dataset table (alibaba-gentd26:lora gives the LoRA "
            "request concurrency per minute, alibaba-gentd26:qps the system QPS), or "
            "prometheus://HOST:PORT.",
            show_default=False,
        ),
    ],
    metric: Annotated[
        str | None,
        typer.Option(
            "--metric",
            help="The metric to use when the source holds several; summed over workloads per step.",
            rich_help_panel="Input",
        ),
    ] = None,
    capacity: Annotated[
        str | None,
        typer.Option(
            "--capacity",
            help="Demand one replica serves (requests, or requests/s), or peak/N "
            "so the peak needs N replicas. Default 1 for request concurrency.",
            rich_help_panel="Service",
        ),
    ] = None,
    policies: Annotated[
        str,
        typer.Option(
            "--policies",
            help="Comma-separated: static, hpa, predictive, hybrid, oracle. The "
            "oracle and a zero-delay oracle always run as references.",
            rich_help_panel="Policy",
        ),
    ] = "static,hpa,predictive,hybrid,oracle",
    startup: Annotated[
        str,
        typer.Option(
            "--startup",
            help="Replica start-up delay: steps (2) or a duration (2m, rounded up "
            "to steps). GenTD26's model-loading latency tables are not in the dataset "
            "catalog, so there is no from-trace mode.",
            rich_help_panel="Service",
        ),
    ] = "2",
    drain: Annotated[
        str,
        typer.Option(
            "--drain",
            help="A removed ready replica is billed this long while it drains (steps "
            "or a duration).",
            rich_help_panel="Service",
        ),
    ] = "0",
    service_time: Annotated[
        str | None,
        typer.Option(
            "--service-time",
            help="Mean service time per request for the M/M/c latency model "
            "(a duration). Default: the trace's mean execution time for LoRA, else "
            "1 / capacity seconds.",
            rich_help_panel="Service",
        ),
    ] = None,
    usl_alpha: Annotated[
        float,
        typer.Option(
            "--usl-alpha",
            min=0.0,
            help="Universal scalability law contention coefficient.",
            rich_help_panel="Service",
        ),
    ] = 0.0,
    usl_beta: Annotated[
        float,
        typer.Option(
            "--usl-beta",
            min=0.0,
            help="Universal scalability law coherency coefficient.",
            rich_help_panel="Service",
        ),
    ] = 0.0,
    min_replicas: Annotated[
        int,
        typer.Option(
            "--min-replicas",
            min=0,
            help="Fewest replicas any policy runs.",
            rich_help_panel="Service",
        ),
    ] = 1,
    max_replicas: Annotated[
        int,
        typer.Option(
            "--max-replicas",
            min=1,
            help="Most replicas any policy runs.",
            rich_help_panel="Service",
        ),
    ] = 10_000,
    price: Annotated[
        float,
        typer.Option(
            "--price",
            min=0.0,
            help="Price per replica-hour (USD) for the cost column.",
            rich_help_panel="Service",
        ),
    ] = 0.0,
    slo: Annotated[
        str | None,
        typer.Option(
            "--slo",
            help="Also count a step as in violation when its modelled P95 latency "
            "exceeds this duration.",
            rich_help_panel="Service",
        ),
    ] = None,
    target: Annotated[
        float,
        typer.Option(
            "--target",
            min=0.01,
            help="HPA target utilisation (0.8 = 80 %).",
            rich_help_panel="Policy",
        ),
    ] = 0.8,
    forecaster: Annotated[
        str,
        typer.Option(
            "--forecaster",
            help="Predictive and hybrid: 'empirical' (online conditional quantiles of the "
            "replicas needed start-up steps ahead) or a forecaster name (naive, ...).",
            rich_help_panel="Policy",
        ),
    ] = "empirical",
    level: Annotated[
        float,
        typer.Option(
            "--level",
            min=0.5,
            max=0.999,
            help="Predictive: provision for this quantile of the demand start-up steps "
            "ahead (the starting level when --slo-unserved is set).",
            rich_help_panel="Policy",
        ),
    ] = 0.95,
    slo_unserved: Annotated[
        float | None,
        typer.Option(
            "--slo-unserved",
            min=0.0001,
            max=0.5,
            help="Predictive: adapt the quantile level online so the realised unserved "
            "share of demand tracks this target (e.g. 0.03).",
            rich_help_panel="Policy",
        ),
    ] = None,
    refit_every: Annotated[
        int,
        typer.Option(
            "--refit-every",
            min=1,
            help="Predictive: refit the forecaster every N steps.",
            rich_help_panel="Policy",
        ),
    ] = 30,
    inject: Annotated[
        list[str] | None,
        typer.Option(
            "--inject",
            help="A surprise: spike:3x:10m@12h, shift:+50%@6h or blackout:2h@10h "
            "(repeatable). Runs clean and stressed and reports both.",
            rich_help_panel="Stress",
            show_default=False,
        ),
    ] = None,
    plot: Annotated[
        Path | None,
        typer.Option(
            "--plot",
            dir_okay=False,
            help="Write a PNG of demand and replica curves.",
            rich_help_panel="Output",
        ),
    ] = None,
    pool: Annotated[
        list[str] | None,
        typer.Option(
            "--pool",
            help="Run replicas on an autoscaled node pool (repeatable): name=N,gpus=G,"
            "gpu_model=M,price=USD_PER_NODE_H,delay=3m,min=0,max=10[,replicas=K]; on-demand "
            "unless spot=1 or spot_price=USD (a spot pool). New nodes come from the cheapest "
            "pool with room. Cost is then node-hours x price.",
            rich_help_panel="Nodes",
            show_default=False,
        ),
    ] = None,
    replicas_per_node: Annotated[
        int | None,
        typer.Option(
            "--replicas-per-node",
            min=1,
            help="Replicas one node holds (default: the node's GPUs // --gpus-per-replica).",
            rich_help_panel="Nodes",
        ),
    ] = None,
    gpus_per_replica: Annotated[
        float,
        typer.Option(
            "--gpus-per-replica",
            min=0.001,
            help="GPUs one replica uses, to fit replicas on a pool's GPUs.",
            rich_help_panel="Nodes",
        ),
    ] = 1.0,
    spot_interruptions: Annotated[
        float,
        typer.Option(
            "--spot-interruptions",
            min=0.0,
            help="Spot interruptions per spot node-hour (seeded): an interrupted node's "
            "replicas are lost and re-created on a new node after its delay.",
            rich_help_panel="Nodes",
        ),
    ] = 0.0,
    seed: Annotated[
        int,
        typer.Option("--seed", help="Seed of the spot interruptions.", rich_help_panel="Nodes"),
    ] = 0,
    scale_down_after: Annotated[
        str,
        typer.Option(
            "--scale-down-after",
            help="Remove a pool node empty this long (Cluster Autoscaler's "
            "--scale-down-unneeded-time default is 10m).",
            rich_help_panel="Nodes",
        ),
    ] = "10m",
    mapping: MapOpt = None,
    as_metric: AsMetricOpt = None,
    ts_unit: TsUnitOpt = "s",
    ts_format: TsFormatOpt = None,
    mirror: MirrorOpt = None,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
) -> None:
    """Simulate horizontal autoscaling policies on a demand series and compare replica-hours,
    unserved demand, modelled latency and scaling actions against an oracle.
    """
    names = _policies(policies)
    injections = [parse_injection(text) for text in inject or []]
    nodes: NodePlan | None = None
    if pool:
        nodes = parse_plan(
            pool,
            replicas_per_node=replicas_per_node,
            gpus_per_replica=gpus_per_replica,
            interruption_rate=spot_interruptions,
            seed=seed,
            scale_down_after_s=parse_duration(scale_down_after),
        )
    elif replicas_per_node is not None or spot_interruptions > 0:
        raise InputError(
            "--replicas-per-node and --spot-interruptions need at least one --pool",
            hint="e.g. --pool name=a100,gpus=8,gpu_model=A100,price=32.8,delay=3m",
        )
    options = read_options(
        mapping=mapping, as_metric=as_metric, ts_unit=ts_unit, ts_format=ts_format, mirror=mirror
    )
    series = open_demand(source, options, metric=metric)
    for note in series.notes:
        info(f"{series.name}: {note}")
    cap = _capacity(capacity, series)
    n, step_s = series.values.size, series.step_s
    startup_steps = _steps(startup, step_s, "--startup")
    if startup_steps >= n:
        raise InputError(
            f"--startup {startup!r} ({startup_steps} steps) is longer than the "
            f"series ({n} steps of {step_s:g} s)"
        )
    service_s = (
        parse_duration(service_time)
        if service_time is not None
        else series.service_time_s or 1.0 / cap
    )
    config = ServiceConfig(
        capacity=cap,
        startup=startup_steps,
        drain=_steps(drain, step_s, "--drain"),
        step_s=step_s,
        service_time_s=service_s,
        alpha=usl_alpha,
        beta=usl_beta,
        min_replicas=min_replicas,
        max_replicas=max_replicas,
        price_per_replica_h=price,
        slo_s=parse_duration(slo) if slo is not None else None,
    )
    forecast: dict[str, Any] = {
        "forecaster": forecaster,
        "level": level,
        "slo_unserved": slo_unserved,
        "refit_every": refit_every,
    }
    settings: dict[str, dict[str, Any]] = {
        "hpa": {"target": target},
        "predictive": forecast,
        "hybrid": forecast,
    }
    stressed_demand, visible, factor = apply_injections(series.values, step_s, injections)
    offered = series.offered
    scenarios: list[tuple[str, FloatArray, IntArray | None, FloatArray | None]] = [
        ("clean", series.values, None, offered)
    ]
    if injections:
        scenarios.append(
            ("stressed", stressed_demand, visible, None if offered is None else offered * factor)
        )
    rows: list[dict[str, Any]] = []
    last: Comparison | None = None
    runs_total = len(scenarios) * (len(names) + (1 if "oracle" in names else 2))
    with progress("autoscale runs", runs_total) as bar:
        for scenario, demand, seen, load in scenarios:
            last = compare(
                demand,
                names,
                config,
                settings=settings,
                visible=seen,
                offered=load,
                on_policy=lambda _: bar.advance(),
                nodes=nodes,
            )
            rows += _rows(last, scenario)
    assert last is not None
    columns = list(ROW_COLUMNS)
    if nodes is not None:
        columns += [*NODE_COLUMNS, *(f"node_hours:{p.name}" for p in nodes.pools)]
    frame = pl.DataFrame(rows).select(columns)
    degradation = []
    if injections:
        clean = {r["policy"]: r for r in rows if r["scenario"] == "clean"}
        for row in (r for r in rows if r["scenario"] == "stressed"):
            base = clean[row["policy"]]
            degradation.append(
                {
                    "policy": row["policy"],
                    "unserved_frac_clean": base["unserved_frac"],
                    "unserved_frac_stressed": row["unserved_frac"],
                    "violation_min_added": row["violation_min"] - base["violation_min"],
                    "replica_hours_ratio": row["replica_hours"] / base["replica_hours"],
                }
            )
    if plot is not None:
        _plot(series, last, cap, plot)
    document = {
        **provenance(series.sha256),
        "demand": series.describe(),
        "service": {
            "capacity": cap,
            "startup_steps": startup_steps,
            "drain_steps": config.drain,
            "step_s": step_s,
            "service_time_s": service_s,
            "usl_alpha": usl_alpha,
            "usl_beta": usl_beta,
            "min_replicas": min_replicas,
            "max_replicas": max_replicas,
            "price_per_replica_h": price,
            "slo_s": config.slo_s,
            "latency_model": "M/M/c per step (Erlang C), ready replicas as servers",
        },
        "nodes": nodes.describe() if nodes is not None else None,
        "policies": {"names": names, "settings": settings},
        "injections": [i.text for i in injections],
        "results": rows,
        "degradation": degradation,
    }
    kind = "LoRA request concurrency" if is_lora(source) else series.unit
    emit(
        Result(
            frame,
            document,
            title=f"Autoscaling on {series.name} ({kind}, {n:,} steps of "
            f"{step_s:g} s, capacity {cap:g}/replica, start-up {startup_steps} steps)",
            caption="vs_oracle: replica-hours / oracle with start-up delay; "
            "vs_oracle_nodelay: / zero-delay oracle"
            + (
                "; cost_usd: node-hours x price; unserved_node_extra: unserved share "
                "added by node provisioning and interruptions"
                if nodes is not None
                else ""
            ),
        ),
        fmt=fmt,
        output=output,
    )


VERTICAL_EPILOG = """\
Examples:

  foresize simulate vertical alibaba-gentd26:memory_util --metric mem_util_pct

  foresize simulate vertical alibaba-gentd26:memory_util --risk 0.02 --resize-delay 5 \
      --multi-phase -o vertical.json

  foresize simulate vertical memory.csv --map ts=time,workload=pod,value=rss \
      --as-metric mem_used_gib
"""

VERTICAL_COLUMNS = (
    "workload",
    "n_phases",
    "resizes",
    "reserved_h_fixed",
    "reserved_h_per_phase",
    "reserved_h_oracle",
    "per_phase_vs_fixed",
    "under_frac_fixed",
    "under_frac_per_phase",
    "overshoot_fixed",
    "overshoot_per_phase",
)


def _planned_sizes(path: Path, metric: str) -> dict[str, PlannedSizes]:
    """The plan file's sizes for ``metric``; a plan for another resource is an input error."""
    recommendations = read_plan(path).recommendations
    sizes = plan_sizes(recommendations, metric)
    if not sizes:
        resources = sorted({r.resource for r in recommendations}) or ["nothing"]
        raise InputError(
            f"{path}: the plan sizes {', '.join(resources)}, not {metric}",
            hint="pass the plan made from this metric's earlier telemetry",
        )
    return sizes


def vertical(
    source: Annotated[
        list[str],
        typer.Argument(
            help="Resource telemetry per replica or container: a file or a dataset table "
            "(alibaba-gentd26:memory_util).",
            show_default=False,
        ),
    ],
    metric: Annotated[
        str | None,
        typer.Option(
            "--metric",
            help="The metric to size (required when the source holds several).",
            rich_help_panel="Input",
        ),
    ] = None,
    risk: Annotated[
        float,
        typer.Option(
            "--risk",
            help="Share of time a size may be exceeded, in (0, 0.5]: each size is the "
            "1 - risk quantile of its phase (or of all samples, for the fixed size).",
            rich_help_panel="Sizing",
        ),
    ] = 0.05,
    resize_delay: Annotated[
        int,
        typer.Option(
            "--resize-delay",
            help="Steps a phase change takes to apply (an in-place VPA resize).",
            rich_help_panel="Sizing",
        ),
    ] = 2,
    train_frac: Annotated[
        float,
        typer.Option(
            "--train-frac",
            help="Learn the sizes on this first share of each series, apply on the rest.",
            rich_help_panel="Sizing",
        ),
    ] = 0.7,
    min_dwell: Annotated[
        int,
        typer.Option(
            "--min-dwell",
            help="Fewest samples a phase lasts (detect_phases).",
            rich_help_panel="Sizing",
        ),
    ] = 3,
    plan: Annotated[
        Path | None,
        typer.Option(
            "--plan",
            help="Replay a recommender plan (foresize recommend -o plan.json) instead of "
            "learning sizes: its per-phase requests and overall request, applied over the "
            "whole source (give the telemetry that came after the plan's).",
            rich_help_panel="Sizing",
            show_default=False,
        ),
    ] = None,
    multi_phase: Annotated[
        bool,
        typer.Option(
            "--multi-phase",
            help="Show only series with two or more phases.",
            rich_help_panel="Output",
        ),
    ] = False,
    workload: WorkloadOpt = None,
    mapping: MapOpt = None,
    as_metric: AsMetricOpt = None,
    ts_unit: TsUnitOpt = "s",
    ts_format: TsFormatOpt = None,
    mirror: MirrorOpt = None,
    strict: StrictOpt = False,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
) -> None:
    """Size replicas vertically by phase: per-phase sizes learned on the first 70 % of each
    series, applied with a resize delay on the rest, against a fixed size and the per-step
    oracle (reserved resource-hours, share of time under-sized, overshoot).
    """
    config = VerticalConfig(
        risk=risk, train_frac=train_frac, resize_delay=resize_delay, min_dwell=min_dwell
    )
    options = read_options(
        mapping=mapping, as_metric=as_metric, ts_unit=ts_unit, ts_format=ts_format, mirror=mirror
    )
    frame, header = read_canonical(
        source, options, strict=strict, workload=workload, metric=None, all_reports=False
    )
    chosen = metric or str(frame["metric"].first())
    planned = None if plan is None else _planned_sizes(plan, chosen)
    rows, _ = vertical_sizing(frame, metric=metric, config=config, plan=planned)
    shown = rows.filter(pl.col("n_phases") >= 2) if multi_phase else rows
    if shown.height == 0:
        raise InputError("no series has two or more phases", hint="drop --multi-phase")
    summary = totals(shown)
    learned = {"risk": risk, "train_frac": train_frac}
    document = {
        **header,
        "metric": chosen,
        "sizing": {
            **(learned if plan is None else {"plan": str(plan)}),
            "resize_delay_steps": resize_delay,
            "min_dwell": min_dwell,
        },
        "totals": summary,
        "results": shown.to_dicts(),
    }
    emit(
        Result(
            shown.select(VERTICAL_COLUMNS).sort("per_phase_vs_fixed"),
            document,
            title=f"Per-phase vertical sizing of {chosen} ({shown.height} series, "
            f"{f'risk {risk:g}' if plan is None else f'sizes from {plan.name}'}, resize delay "
            f"{resize_delay} steps)",
            caption=f"all series: per-phase reserves {summary['per_phase_vs_fixed']:.3f}x "
            f"the fixed size, under-sized {100 * summary['under_frac_per_phase']:.1f}% of the "
            f"time (fixed {100 * summary['under_frac_fixed']:.1f}%); reserved_h in "
            f"{chosen} x hours",
        ),
        fmt=fmt,
        output=output,
    )
