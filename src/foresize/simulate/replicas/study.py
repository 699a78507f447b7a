"""One replica-scaling study (``foresize simulate autoscale``): the settings given as text,
every scaler on the clean (and stressed) demand, and the result as rows and a document.

Callable from notebooks as from the CLI: :func:`service_config` reads the service from
the user's units, :func:`run_study` runs the scalers and :func:`study_document` describes it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from foresize.core.errors import InputError, UsageError
from foresize.core.io import atomic_write
from foresize.core.styles import line_style
from foresize.core.units import parse_duration, parse_steps
from foresize.simulate.replicas.demand import DemandSeries
from foresize.simulate.replicas.nodes import NodePlan, parse_plan
from foresize.simulate.replicas.run import ZERO_DELAY, Comparison, ServiceConfig, compare
from foresize.simulate.replicas.scalers import SCALERS
from foresize.simulate.replicas.service import FloatArray, IntArray
from foresize.simulate.replicas.stress import (
    Injection,
    apply_injections,
    warn_noop_injections,
)

NODE_COLUMNS = ("node_hours", "peak_nodes", "interruptions", "replicas_lost", "unserved_node_extra")
ROW_COLUMNS = ("scenario", "policy", "replica_hours", "vs_oracle", "vs_oracle_nodelay",
               "unserved_frac", "violation_min", "latency_p95_s", "latency_p99_s", "actions",
               "peak_replicas", "cost_usd")
LATENCY_MODEL = "M/M/c per step (Erlang C), ready replicas as servers"


def parse_capacity(text: str | None, series: DemandSeries) -> float:
    """``--capacity``: a number per replica, or ``peak/N`` (the peak needs N replicas)."""
    if text is None:
        if series.unit == "concurrent requests":
            return 1.0
        raise InputError(  # 3, not 2: whether it is needed depends on the source's unit
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
        raise UsageError(f"--capacity {text!r} is not a number or peak/N") from None
    if not (math.isfinite(value) and value > 0):
        raise UsageError(f"--capacity must be > 0 per replica, got {text!r}")
    return value


def check_scalers(text: str) -> list[str]:
    """Comma-separated scaler names, each known (UnknownNameError with "Did you mean")."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise UsageError("--policies names no policy", hint=f"e.g. {','.join(SCALERS.names())}")
    for name in names:
        SCALERS.get(name)
    return names


def node_plan(pools: Sequence[str] | None, *, replicas_per_node: int | None,
              gpus_per_replica: float, interruption_rate: float, seed: int,
              scale_down_after: str) -> NodePlan | None:
    """The node pools replicas run on (``--pool``), or None: replicas need no nodes."""
    if pools:
        return parse_plan(list(pools), replicas_per_node=replicas_per_node,
                          gpus_per_replica=gpus_per_replica,
                          interruption_rate=interruption_rate, seed=seed,
                          scale_down_after_s=parse_duration(scale_down_after))
    if replicas_per_node is not None or interruption_rate > 0:
        raise UsageError(
            "--replicas-per-node and --spot-interruptions need at least one --pool",
            hint="e.g. --pool name=a100,gpus=8,gpu_model=A100,price=32.8,delay=3m",
        )
    return None


def service_config(series: DemandSeries, *, capacity: str | None, startup: str, drain: str,
                   service_time: str | None, slo: str | None, **fixed: Any) -> ServiceConfig:
    """The service on ``series``: capacity, delays in steps (``2`` or ``2m``), latency model.

    ``fixed`` holds the plain numbers (``alpha``, ``beta``, replica bounds, price).
    """
    cap = parse_capacity(capacity, series)
    n, step_s = series.values.size, series.step_s
    startup_steps = parse_steps(startup, step_s, option="--startup")
    if startup_steps >= n:
        raise InputError(
            f"--startup {startup!r} ({startup_steps} steps) is longer than the "
            f"series ({n} steps of {step_s:g} s)"
        )
    service_s = (parse_duration(service_time) if service_time is not None
                 else series.service_time_s or 1.0 / cap)
    return ServiceConfig(capacity=cap, startup=startup_steps,
                         drain=parse_steps(drain, step_s, option="--drain"), step_s=step_s,
                         service_time_s=service_s,
                         slo_s=parse_duration(slo) if slo is not None else None, **fixed)


@dataclass(slots=True)
class Study:
    """Rows per scenario and scaler, the last comparison (for plots) and the degradation."""

    rows: list[dict[str, Any]]
    last: Comparison
    degradation: list[dict[str, Any]] = field(default_factory=list)
    interrupted: bool = False  # Ctrl-C: the runs that finished, scored

    def frame(self, nodes: NodePlan | None) -> pl.DataFrame:
        """The rows' shown columns (node columns with ``nodes``)."""
        columns = list(ROW_COLUMNS)
        if nodes is not None:
            columns += [*NODE_COLUMNS, *(f"node_hours:{p.name}" for p in nodes.pools)]
        return pl.DataFrame(self.rows).select(columns)


def n_runs(names: Sequence[str], injections: Sequence[Injection]) -> int:
    """Simulations a study runs: each scaler and the references, per scenario."""
    return (2 if injections else 1) * (len(names) + (1 if "oracle" in names else 2))


def run_study(series: DemandSeries, names: Sequence[str], config: ServiceConfig, *,
              settings: dict[str, dict[str, Any]], injections: Sequence[Injection] = (),
              nodes: NodePlan | None = None,
              on_policy: Callable[[str], None] | None = None) -> Study:
    """Every scaler on the clean demand and, with injections, on the stressed demand.

    Ctrl-C keeps the scored rows of the runs that finished (``interrupted``): the
    references of a scenario run first, so every kept row has its oracle ratios.
    """
    warn_noop_injections(series.values, series.step_s, list(injections))
    stressed, visible, factor = apply_injections(series.values, series.step_s, list(injections))
    offered = series.offered
    scenarios: list[tuple[str, FloatArray, IntArray | None, FloatArray | None]] = [
        ("clean", series.values, None, offered)
    ]
    if injections:
        scenarios.append(
            ("stressed", stressed, visible, None if offered is None else offered * factor))
    rows: list[dict[str, Any]] = []
    runs: list[Comparison] = []
    for scenario, demand, seen, load in scenarios:
        try:
            runs.append(compare(demand, list(names), config, settings=settings, visible=seen,
                                offered=load, on_policy=on_policy, nodes=nodes))
        except KeyboardInterrupt:  # during a scenario's references: keep the ones before
            if not runs:
                raise
            return Study(rows, runs[-1], interrupted=True)
        rows += [{"scenario": scenario, **row} for row in runs[-1].rows]
        if runs[-1].interrupted:
            return Study(rows, runs[-1], interrupted=True)
    return Study(rows, runs[-1], _degradation(rows) if injections else [])


def _degradation(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per scaler: what the stress cost against the clean run."""
    clean = {r["policy"]: r for r in rows if r["scenario"] == "clean"}
    out = []
    for row in (r for r in rows if r["scenario"] == "stressed"):
        base = clean[row["policy"]]
        out.append({
            "policy": row["policy"],
            "unserved_frac_clean": base["unserved_frac"],
            "unserved_frac_stressed": row["unserved_frac"],
            "violation_min_added": row["violation_min"] - base["violation_min"],
            "replica_hours_ratio": row["replica_hours"] / base["replica_hours"],
        })  # fmt: skip
    return out


def study_document(series: DemandSeries, config: ServiceConfig, study: Study, *,
                   names: Sequence[str], settings: dict[str, dict[str, Any]],
                   injections: Sequence[Injection], nodes: NodePlan | None) -> dict[str, Any]:
    """The study's JSON body: demand, service, nodes, scalers, stress, results."""
    return {
        "demand": series.describe(),
        "service": {
            "capacity": config.capacity, "startup_steps": config.startup,
            "drain_steps": config.drain, "step_s": config.step_s,
            "service_time_s": config.service_time_s, "usl_alpha": config.alpha,
            "usl_beta": config.beta, "min_replicas": config.min_replicas,
            "max_replicas": config.max_replicas, "price_per_replica_h": config.price_per_replica_h,
            "slo_s": config.slo_s, "queue": config.queue, "latency_model": LATENCY_MODEL,
        },
        "nodes": nodes.describe() if nodes is not None else None,
        "policies": {"names": list(names), "settings": settings},
        "injections": [i.text for i in injections],
        "results": study.rows,
        "degradation": study.degradation,
        "interrupted": study.interrupted,
        "partial": study.interrupted,
    }


BUSY_WINDOW_S = 86400.0  # the full-resolution panel: one screen of per-step time


def busiest_window(demand: FloatArray, step_s: float, window_s: float = BUSY_WINDOW_S
                   ) -> tuple[int, int]:
    """``[start, end)`` steps of the window of ``window_s`` with the most demand.

    The whole series when it is shorter; ties go to the earliest window, so the choice
    is stable from run to run.
    """
    width = max(1, round(window_s / step_s))
    if demand.size <= width:
        return 0, int(demand.size)
    sums = np.convolve(np.nan_to_num(demand), np.ones(width), mode="valid")
    start = int(np.argmax(sums))
    return start, start + width


def study_figure(series: DemandSeries, study: Study, capacity: float) -> Any:
    """The study's figure: the busiest day at full resolution, and every day in summary.

    Hundreds of hours of per-step replica curves drawn on one axis hide each other, so
    the top panel shows the 24 h with the most demand, step by step, and the bottom one
    each policy's replica-hours per day over the whole trace. Each policy keeps one
    colour and one line style in both panels; the legend sits outside the data.
    """
    try:
        import matplotlib as mpl

        mpl.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise InputError("--plot needs matplotlib", hint="pip install 'foresize[plot]'") from None
    runs = study.last.runs
    demand = runs[ZERO_DELAY].demand / capacity
    step_h = series.step_s / 3600.0
    hours = np.arange(demand.size) * step_h
    start, end = busiest_window(demand, series.step_s)
    per_day = max(1, round(86400.0 / series.step_s))
    days = np.arange(math.ceil(demand.size / per_day))

    def daily(values: FloatArray | IntArray) -> FloatArray:
        padded = np.zeros(days.size * per_day)
        padded[: values.size] = np.nan_to_num(values.astype(float))
        hours_per_day: FloatArray = padded.reshape(days.size, per_day).sum(axis=1) * step_h
        return hours_per_day

    fig, (busy, summary) = plt.subplots(2, 1, figsize=(10, 7), layout="constrained")
    busy.plot(hours[start:end], demand[start:end], color="black", lw=0.9,
              label="demand / capacity")
    summary.plot(days + 1, daily(demand), color="black", lw=0.9, marker="o", ms=3)
    policies = [name for name in runs if name != ZERO_DELAY]
    for i, name in enumerate(policies):
        style = line_style(i)
        billed = runs[name].billed
        busy.step(hours[start:end], billed[start:end], where="post", lw=1.2, label=name,
                  **style)
        summary.plot(days + 1, daily(billed), lw=1.2, marker="o", ms=3, **style)
    busy.set(xlabel="hours from the start of the series", ylabel="replicas",
             xlim=(hours[start], hours[end - 1] + step_h),
             title=f"{series.name}: the busiest {(end - start) * step_h:g} h, step by step")
    summary.set(xlabel="day of the series", ylabel="replica-hours per day",
                title="every day: replica-hours (demand: the hours of capacity it needed)")
    summary.xaxis.set_major_locator(mpl.ticker.MaxNLocator(integer=True))
    for ax in (busy, summary):
        ax.grid(alpha=0.3)
    fig.legend(loc="outside right upper", fontsize=8)
    return fig


def plot_study(series: DemandSeries, study: Study, capacity: float, path: Path) -> None:
    """The study's figure (:func:`study_figure`) as a PNG, written atomically."""
    import matplotlib.pyplot as plt

    fig = study_figure(series, study, capacity)
    with atomic_write(path) as tmp:
        fig.savefig(tmp, format=path.suffix.lstrip(".") or "png", dpi=120)
    plt.close(fig)
