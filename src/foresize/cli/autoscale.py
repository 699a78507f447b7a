"""``foresize simulate autoscale`` (replica scaling on a demand series, optionally on node
pools) and ``foresize simulate vertical`` (per-phase resizing of a resource series).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from foresize.cli.checks import parse_checks
from foresize.cli.common import provenance, read_telemetry
from foresize.cli.errors import INTERRUPTED
from foresize.cli.options import (
    PROMETHEUS,
    CheckOpt,
    FormatOpt,
    OutputOpt,
    WideOpt,
    opt,
    output_file,
    telemetry_options,
)
from foresize.cli.output import Col, Result, emit, frame_table, info, progress
from foresize.core.errors import InputError
from foresize.core.metrics import metric_info
from foresize.core.units import human_bytes

if TYPE_CHECKING:  # the simulators load polars and numpy when a command runs: --help does not
    from foresize.ingest.sources import TelemetrySource

EPILOG = """\
Examples:

  foresize simulate autoscale alibaba-gentd26:lora --capacity 1 --startup 2

  foresize simulate autoscale alibaba-gentd26:qps --metric qps --capacity peak/20 \
      --policies static,hpa,predictive,hybrid,oracle --startup 5 -o qps.json

  foresize simulate autoscale alibaba-gentd26:lora --capacity 1 \
      --inject spike:3x:10m@415h --inject blackout:2h@100h --plot lora.png

  foresize simulate autoscale demand.csv --map ts=time,workload=pod,value=rps \
      --as-metric qps --capacity 5 --target 0.6 --price 2.5 -f json

  foresize simulate autoscale alibaba-gentd26:lora --capacity 1 \
      --pool name=a100,gpus=8,gpu_model=A100,price=32.8,delay=3m,max=4 \
      --pool name=a100-spot,gpus=8,gpu_model=A100,spot_price=9.8,delay=3m,max=2 \
      --spot-interruptions 0.05 --seed 1
"""


@telemetry_options(omit=(*PROMETHEUS, "strict", "workload"), name="source",
                   sources=Annotated[str, typer.Argument(
    help="Demand: a telemetry file, a dataset table (alibaba-gentd26:lora gives the LoRA "
    "request concurrency per minute, alibaba-gentd26:qps the system QPS), or "
    "prometheus://HOST:PORT.", show_default=False)])
def autoscale(
    *,
    metric: Annotated[str | None, opt(
        "--metric", "The metric to use when the source holds several; summed over workloads "
        "per step.", "Input")] = None,
    capacity: Annotated[str | None, opt(
        "--capacity", "Demand one replica serves (requests, or requests/s), or peak/N so the "
        "peak needs N replicas. Default 1 for request concurrency.", "Service")] = None,
    policies: Annotated[str, opt(
        "--policies", "Comma-separated: static, hpa, predictive, hybrid, oracle. The oracle "
        "and a zero-delay oracle always run as references.", "Policy",
    )] = "static,hpa,predictive,hybrid,oracle",
    startup: Annotated[str, opt(
        "--startup", "Replica start-up delay: steps (2) or a duration (2m, rounded up to "
        "steps). GenTD26's model-loading latency tables are not in the dataset catalog, so "
        "there is no from-trace mode.", "Service")] = "2",
    drain: Annotated[str, opt(
        "--drain", "A removed ready replica is billed this long while it drains (steps or a "
        "duration).", "Service")] = "0",
    service_time: Annotated[str | None, opt(
        "--service-time", "Mean service time per request for the M/M/c latency model (a "
        "duration). Default: the trace's mean execution time for LoRA, else 1 / capacity "
        "seconds.", "Service")] = None,
    usl_alpha: Annotated[float, opt(
        "--usl-alpha", "Universal scalability law contention coefficient.", "Service",
        min=0.0)] = 0.0,
    usl_beta: Annotated[float, opt(
        "--usl-beta", "Universal scalability law coherency coefficient.", "Service",
        min=0.0)] = 0.0,
    min_replicas: Annotated[int, opt(
        "--min-replicas", "Fewest replicas any policy runs.", "Service", min=0)] = 1,
    max_replicas: Annotated[int, opt(
        "--max-replicas", "Most replicas any policy runs.", "Service", min=1)] = 10_000,
    price: Annotated[float, opt(
        "--price", "Price per replica-hour (USD) for the cost column.", "Service",
        min=0.0)] = 0.0,
    slo: Annotated[str | None, opt(
        "--slo", "Also count a step as in violation when its modelled P95 latency exceeds "
        "this duration.", "Service")] = None,
    queue: Annotated[bool, opt(
        "--queue/--no-queue", "Demand beyond the ready replicas waits in one admission "
        "queue and counts as unserved when it waits longer than --slo (any wait past its "
        "step without one), as in `simulate serve`; --no-queue drops it instead (the "
        "numbers before the queue).", "Service")] = True,
    target: Annotated[float, opt(
        "--target", "HPA target utilisation (0.8 = 80 %).", "Policy", min=0.01)] = 0.8,
    forecaster: Annotated[str, opt(
        "--forecaster", "Predictive and hybrid: 'empirical' (online conditional quantiles of "
        "the replicas needed start-up steps ahead) or a forecaster name (naive, ...).",
        "Policy")] = "empirical",
    level: Annotated[float, opt(
        "--level", "Predictive: provision for this quantile of the demand start-up steps "
        "ahead (the starting level when --slo-unserved is set).", "Policy", min=0.5,
        max=0.999)] = 0.95,
    slo_unserved: Annotated[float | None, opt(
        "--slo-unserved", "Predictive: adapt the quantile level online so the realised "
        "unserved share of demand tracks this target (e.g. 0.03).", "Policy", min=0.0001,
        max=0.5)] = None,
    refit_every: Annotated[int, opt(
        "--refit-every", "Predictive: refit the forecaster every N steps.", "Policy",
        min=1)] = 30,
    inject: Annotated[list[str] | None, opt(
        "--inject", "A surprise: spike:3x:10m@12h, shift:+50%@6h or blackout:2h@10h "
        "(repeatable). Runs clean and stressed and reports both.", "Stress",
        show_default=False)] = None,
    plot: Annotated[Path | None, opt(
        "--plot", "Write a PNG: the busiest 24 h step by step, and replica-hours per day.",
        "Output", callback=output_file)] = None,
    pool: Annotated[list[str] | None, opt(
        "--pool", "Run replicas on an autoscaled node pool (repeatable): name=N,gpus=G,"
        "gpu_model=M,price=USD_PER_NODE_H,delay=3m,min=0,max=10[,replicas=K]; on-demand "
        "unless spot=1 or spot_price=USD (a spot pool). New nodes come from the cheapest "
        "pool with room. Cost is then node-hours x price.", "Nodes", show_default=False)] = None,
    replicas_per_node: Annotated[int | None, opt(
        "--replicas-per-node", "Replicas one node holds (default: the node's GPUs // "
        "--gpus-per-replica).", "Nodes", min=1)] = None,
    gpus_per_replica: Annotated[float, opt(
        "--gpus-per-replica", "GPUs one replica uses, to fit replicas on a pool's GPUs.",
        "Nodes", min=0.001)] = 1.0,
    spot_interruptions: Annotated[float, opt(
        "--spot-interruptions", "Spot interruptions per spot node-hour (seeded): an "
        "interrupted node's replicas are lost and re-created on a new node after its delay.",
        "Nodes", min=0.0)] = 0.0,
    seed: Annotated[int, opt("--seed", "Seed of the spot interruptions.", "Nodes")] = 0,
    scale_down_after: Annotated[str, opt(
        "--scale-down-after", "Remove a pool node empty this long (Cluster Autoscaler's "
        "--scale-down-unneeded-time default is 10m).", "Nodes")] = "10m",
    telemetry: TelemetrySource,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
    wide: WideOpt = False,
    checks: CheckOpt = None,
) -> None:
    """Simulate replica (horizontal) scaling policies on a demand series and compare
    replica-hours, unserved demand, modelled latency and scaling actions against an oracle.
    """
    from foresize.simulate.replicas.demand import is_lora, open_demand
    from foresize.simulate.replicas.stress import parse_injection
    from foresize.simulate.replicas.study import (
        check_scalers,
        n_runs,
        node_plan,
        plot_study,
        run_study,
        service_config,
        study_document,
    )

    names = check_scalers(policies)
    injections = [parse_injection(text) for text in inject or []]
    nodes = node_plan(pool, replicas_per_node=replicas_per_node,
                      gpus_per_replica=gpus_per_replica, interruption_rate=spot_interruptions,
                      seed=seed, scale_down_after=scale_down_after)
    source = telemetry.sources[0]
    series = open_demand(source, telemetry.options, metric=metric)
    for note in series.notes:
        info(f"{series.name}: {note}")
    config = service_config(series, capacity=capacity, startup=startup, drain=drain,
                            service_time=service_time, slo=slo, alpha=usl_alpha, beta=usl_beta,
                            min_replicas=min_replicas, max_replicas=max_replicas,
                            price_per_replica_h=price, queue=queue)
    forecast: dict[str, Any] = {"forecaster": forecaster, "level": level,
                                "slo_unserved": slo_unserved, "refit_every": refit_every}
    settings: dict[str, dict[str, Any]] = {"hpa": {"target": target}, "predictive": forecast,
                                           "hybrid": forecast}
    total = n_runs(names, injections)
    with progress("autoscale runs", total) as bar:
        study = run_study(series, names, config, settings=settings, injections=injections,
                          nodes=nodes, on_policy=lambda _: bar.advance())
    if plot is not None and not study.interrupted:
        plot_study(series, study, config.capacity, plot)
        info(f"wrote {plot}")
    document = {**provenance(series.sha256), **study_document(
        series, config, study, names=names, settings=settings, injections=injections,
        nodes=nodes)}
    kind = "LoRA request concurrency" if is_lora(source) else series.unit
    node_note = ("; cost: node-hours x price; unserved node extra: unserved share added "
                 "by node provisioning and interruptions")
    emit(Result(study.frame(nodes), document,
                title=f"Autoscaling on {series.name} ({kind}, {series.values.size:,} steps of "
                f"{config.step_s:g} s, capacity {config.capacity:g}/replica, start-up "
                f"{config.startup} steps)",
                caption="vs oracle: replica-hours / oracle with start-up delay; "
                "vs no-delay: / zero-delay oracle" + (node_note if nodes else ""),
                wide=wide, table=lambda result: frame_table(result, columns=AUTOSCALE_SUMMARY)),
         fmt=fmt, output=output, checks=() if study.interrupted else parse_checks(checks))
    if study.interrupted:
        info(f"interrupted: {bar.done}/{total} runs done; their rows (with the oracle ratios) "
             "kept in the output and marked partial")
        raise typer.Exit(INTERRUPTED)


def _times(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _whole(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


AUTOSCALE_SUMMARY = [  # what a policy costs and what it leaves unserved, then the rest
    Col("scenario"), Col("policy"), Col("replica_hours", "replica h", show=_whole),
    Col("vs_oracle", "vs oracle", show=_times), Col("unserved_frac", "unserved %"),
    Col("cost_usd", "cost $", show=_whole), Col("latency_p95_s", "P95 latency"),
    Col("peak_replicas", "peak"), Col("vs_oracle_nodelay", "vs no-delay", show=_times),
    Col("violation_min", "violation min", show=_whole),
    Col("latency_p99_s", "P99 latency"), Col("actions"),
]


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


@telemetry_options(omit=PROMETHEUS, name="source", sources=Annotated[list[str], typer.Argument(
    help="Resource telemetry per replica or container: a file or a dataset table "
    "(alibaba-gentd26:memory_util).", show_default=False)])
def vertical(
    *,
    metric: Annotated[str | None, opt(
        "--metric", "The metric to size (required when the source holds several).",
        "Input")] = None,
    risk: Annotated[float, opt(
        "--risk", "Share of time a size may be exceeded, in (0, 0.5]: each size is the "
        "1 - risk quantile of its phase (or of all samples, for the fixed size).",
        "Sizing")] = 0.05,
    resize_delay: Annotated[int, opt(
        "--resize-delay", "Steps a phase change takes to apply (an in-place VPA resize).",
        "Sizing")] = 2,
    train_frac: Annotated[float, opt(
        "--train-frac", "Learn the sizes on this first share of each series, apply on the "
        "rest.", "Sizing")] = 0.7,
    min_dwell: Annotated[int, opt(
        "--min-dwell", "Fewest samples a phase lasts (detect_phases).", "Sizing")] = 3,
    plan: Annotated[Path | None, opt(
        "--plan", "Replay a recommender plan (foresize recommend -o plan.json) instead of "
        "learning sizes: its per-phase requests and overall request, applied over the whole "
        "source (give the telemetry that came after the plan's).", "Sizing",
        show_default=False)] = None,
    multi_phase: Annotated[bool, opt(
        "--multi-phase", "Show only series with two or more phases.", "Output")] = False,
    telemetry: TelemetrySource,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
    wide: WideOpt = False,
    checks: CheckOpt = None,
) -> None:
    """Size replicas vertically by phase: per-phase sizes learned on the first 70 % of each
    series, applied with a resize delay on the rest, against a fixed size and the per-step
    oracle (reserved resource-hours, share of time under-sized, overshoot).
    """
    import polars as pl

    from foresize.simulate.replicas.vertical import (
        VerticalConfig,
        read_planned_sizes,
        totals,
        vertical_sizing,
    )

    config = VerticalConfig(
        risk=risk, train_frac=train_frac, resize_delay=resize_delay, min_dwell=min_dwell
    )
    read, header = read_telemetry(telemetry)
    chosen = metric or str(read.frame["metric"].first())
    planned = None if plan is None else read_planned_sizes(plan, chosen)
    rows, _ = vertical_sizing(read.frame, metric=metric, config=config, plan=planned)
    shown = rows.filter(pl.col("n_phases") >= 2) if multi_phase else rows
    if shown.height == 0:
        raise InputError("no series has two or more phases", hint="drop --multi-phase")
    summary = totals(shown)
    sizing = {"risk": risk, "train_frac": train_frac} if plan is None else {"plan": str(plan)}
    document = {
        **header, "metric": chosen,
        "sizing": {**sizing, "resize_delay_steps": resize_delay, "min_dwell": min_dwell},
        "totals": summary, "results": shown.to_dicts(),
    }
    how = f"risk {risk:g}" if plan is None else f"sizes from {plan.name}"
    emit(Result(
        shown.select(VERTICAL_COLUMNS).sort("per_phase_vs_fixed"), document,
        title=f"Per-phase vertical sizing of {chosen} ({shown.height} series, {how}, resize "
        f"delay {resize_delay} steps)",
        caption=f"all series: per-phase reserves {summary['per_phase_vs_fixed']:.3f}x the "
        f"fixed size, under-sized {100 * summary['under_frac_per_phase']:.1f}% of the time "
        f"(fixed {100 * summary['under_frac_fixed']:.1f}%); fixed, phased, oracle: reserved "
        f"{chosen} x hours", wide=wide,
        table=lambda result: frame_table(result, columns=_vertical_columns(chosen)),
    ), fmt=fmt, output=output, checks=parse_checks(checks))


def _vertical_columns(metric: str) -> list[Col]:
    """Reserved resource-hours in the metric's unit (bytes humanised), shares as %."""
    in_bytes = metric_info(metric).unit == "bytes"

    def hours(value: float | None) -> str:
        if value is None:
            return "-"
        return human_bytes(value) if in_bytes else f"{value:,.1f}"

    def share(value: float | None) -> str:
        return "-" if value is None else f"{100 * value:.1f}"

    return [
        Col("workload"), Col("n_phases", "phases"),
        Col("reserved_h_fixed", "fixed", show=hours),
        Col("reserved_h_per_phase", "phased", show=hours),
        Col("per_phase_vs_fixed", "phased/fixed", show=_times),
        Col("under_frac_fixed", "under fixed %", show=share),
        Col("under_frac_per_phase", "under phased %", show=share),
        Col("reserved_h_oracle", "oracle", show=hours), Col("resizes"),
        Col("overshoot_fixed", "overshoot fixed", show=_times),
        Col("overshoot_per_phase", "overshoot phased", show=_times),
    ]
