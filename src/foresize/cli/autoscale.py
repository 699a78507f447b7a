"""``foresize simulate autoscale``: reactive vs predictive horizontal scaling on a demand series."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import polars as pl
import typer

from foresize.cli.common import provenance, read_options
from foresize.cli.options import FormatOpt, MapOpt, MirrorOpt, OutputOpt, TsFormatOpt, TsUnitOpt
from foresize.cli.output import Result, emit, info, progress
from foresize.core.errors import InputError
from foresize.core.io import atomic_write
from foresize.core.units import parse_duration
from foresize.simulate.autoscale.demand import DemandSeries, is_lora, open_demand
from foresize.simulate.autoscale.policies import SCALERS
from foresize.simulate.autoscale.run import ZERO_DELAY, Comparison, ServiceConfig, compare
from foresize.simulate.autoscale.service import FloatArray, IntArray
from foresize.simulate.autoscale.stress import apply_injections, parse_injection

EPILOG = """\
Examples:

  foresize simulate autoscale alibaba-gentd26:lora --capacity 1 --startup 2

  foresize simulate autoscale alibaba-gentd26:qps --metric qps --capacity peak/20 \
      --policies static,hpa,predictive,hybrid,oracle --startup 5 -o qps.json

  foresize simulate autoscale alibaba-gentd26:lora --capacity 1 \
      --inject spike:3x:10m@12h --inject blackout:2h@100h --plot lora.png

  foresize simulate autoscale demand.csv --map ts=time,workload=pod,value=rps \
      --as-metric qps --capacity 5 --target 0.6 --price 2.5 -f json
"""

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
    fmt: FormatOpt = None,
    output: OutputOpt = None,
) -> None:
    """Simulate horizontal autoscaling policies on a demand series and compare replica-hours,
    unserved demand, modelled latency and scaling actions against an oracle.
    """
    names = _policies(policies)
    injections = [parse_injection(text) for text in inject or []]
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
            )
            rows += _rows(last, scenario)
    assert last is not None
    frame = pl.DataFrame(rows).select(ROW_COLUMNS)
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
            "vs_oracle_nodelay: / zero-delay oracle",
        ),
        fmt=fmt,
        output=output,
    )
