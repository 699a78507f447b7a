"""The autoscaling comparison on real demand: static, HPA, predictive, hybrid, oracle.

Series (issue 9): GenTD26 LoRA request concurrency per minute at one request per
replica, and the system QPS summed over containers per 57 s step with a capacity such
that the peak needs 20 replicas; start-up delay 2 steps (5 in the full run). Ratios are
replica-hours over the zero-delay oracle's (the lower bound); the oracle that pays the
start-up delay is a reference row. Also: the HPA at targets 60/80/100 %, and the LoRA
series under a 3x spike at its busiest hour, a forecast blackout and a level shift.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from foresize.evaluate import plots
from foresize.evaluate.report import Figure, Section
from foresize.ingest.sources import ReadOptions
from foresize.simulate.replicas.demand import DemandSeries, open_demand
from foresize.simulate.replicas.run import ServiceConfig, compare
from foresize.simulate.replicas.stress import apply_injections, parse_injection

POLICIES = ["static", "hpa", "predictive", "hybrid", "oracle"]
COLUMNS = [
    "policy",
    "replica_hours",
    "vs_oracle_nodelay",
    "vs_oracle",
    "unserved_frac",
    "violation_min",
    "latency_p95_s",
    "latency_p99_s",
    "actions",
]
PLOT_HOURS = 24.0  # replica curves show the busiest day, not two weeks of minutes


def service(series: DemandSeries, capacity: float, startup: int, *,
            queue: bool = True) -> ServiceConfig:
    """The service model for one demand series (``queue=False``: excess demand dropped,
    the model before the admission queue, for the numbers published before it).
    """
    return ServiceConfig(
        capacity=capacity,
        startup=startup,
        step_s=series.step_s,
        service_time_s=series.service_time_s or 1.0 / capacity,
        queue=queue,
    )


def policy_table(series: DemandSeries, cfg: ServiceConfig) -> tuple[pl.DataFrame, Any]:
    """Every policy plus the HPA at 60/80/100 % targets, one row each."""
    result = compare(series.values, POLICIES, cfg, offered=series.offered)
    rows = [dict(r) for r in result.rows]
    for target in (0.6, 1.0):
        other = compare(
            series.values,
            ["hpa"],
            cfg,
            settings={"hpa": {"target": target}},
            offered=series.offered,
        )
        row = next(r for r in other.rows if r["policy"] == "hpa")
        rows.append(dict(row, policy=f"hpa@{round(100 * target)}%"))
    frame = pl.DataFrame([{k: r.get(k) for k in COLUMNS} for r in rows])
    return frame, result


def stress_table(lora: DemandSeries) -> pl.DataFrame:
    """Unserved demand per policy under injected surprises (LoRA, start-up 2)."""
    busiest_h = int(lora.values.argmax()) * lora.step_s / 3600
    rows = []
    for text in (
        f"spike:3x:30m@{max(busiest_h - 0.25, 0):.2f}h",
        "blackout:24h@200h",
        "shift:+50%@276h",
    ):
        if lora.hours <= 276 and not text.startswith("spike"):
            continue  # smoke subsets are too short for these
        stressed, visible, factor = apply_injections(
            lora.values, lora.step_s, [parse_injection(text)]
        )
        offered = None if lora.offered is None else lora.offered * factor
        result = compare(
            stressed,
            ["hpa", "predictive", "hybrid"],
            service(lora, 1.0, 2),
            visible=visible,
            offered=offered,
        )
        by = {str(r["policy"]): r for r in result.rows}
        rows.append(
            {
                "injection": text,
                **{
                    f"{p}_unserved_frac": by[p]["unserved_frac"]
                    for p in ("hpa", "predictive", "hybrid")
                },
            }
        )
    return pl.DataFrame(rows)


def first_hours(series: DemandSeries, hours: float) -> DemandSeries:
    """The first ``hours`` of a demand series (at least 60 steps): smoke-mode subsets."""
    n = max(60, round(hours * 3600 / series.step_s))
    offered = None if series.offered is None else series.offered[:n]
    return DemandSeries(
        series.name,
        series.values[:n],
        series.step_s,
        series.start_us,
        series.unit,
        series.service_time_s,
        offered,
    )


def autoscale_sections(
    dataset: str,
    *,
    mirror: Path | None = None,
    smoke: int | None = None,
    plots_on: bool = True,
) -> list[Section]:
    """One section per demand series (LoRA, QPS) and one for the stress runs."""
    options = ReadOptions(mirror=mirror)
    lora = open_demand(f"{dataset}:lora", options)
    qps = open_demand(f"{dataset}:qps", options, metric="qps")
    if smoke is not None:  # smoke: the first `smoke` x 12 hours
        lora, qps = first_hours(lora, 12.0 * smoke), first_hours(qps, 12.0 * smoke)
    sections: list[Section] = []
    startups = (2,) if smoke is not None else (2, 5)
    for name, series, capacity in (
        ("LoRA concurrency", lora, 1.0),
        ("System QPS", qps, float(qps.values.max()) / 20),
    ):
        for startup in startups:
            frame, result = policy_table(series, service(series, capacity, startup))
            section = Section(
                f"Autoscaling: {name}, start-up {startup} steps",
                text=(
                    f"{series.values.size:,} steps of {series.step_s:g} s; capacity "
                    f"{capacity:.3g} per replica. `vs_oracle_nodelay` = replica-hours / the "
                    "zero-delay oracle's; `vs_oracle` = / the oracle that pays the start-up."
                ),
                tables={"Policies": frame},
            )
            if plots_on and startup == startups[0]:
                section.figures[f"replicas_{name.split()[0].lower()}"] = _curves(
                    series, result, name, capacity
                )
            sections.append(section)
    sections.append(
        Section(
            "Autoscaling under surprises (LoRA, start-up 2)",
            tables={"Unserved demand share": stress_table(lora)},
        )
    )
    return sections


def _curves(series: DemandSeries, result: Any, name: str, capacity: float) -> Figure:
    window = max(1, round(PLOT_HOURS * 3600 / series.step_s))
    busiest = int(series.values.argmax())
    lo = max(0, min(busiest - window // 2, series.values.size - window))
    hours = [(lo + i) * series.step_s / 3600 for i in range(min(window, series.values.size))]
    curves = {"demand / capacity": (hours, (series.values[lo : lo + window] / capacity).tolist())}
    for policy in ("hpa", "predictive", "hybrid", "oracle"):
        curves[policy] = (hours, result.runs[policy].billed[lo : lo + window].tolist())

    def draw(path: Path) -> None:
        plots.lines(
            path,
            curves,
            title=f"Replicas around the busiest hour: {name}",
            xlabel="hours from series start",
            ylabel="replicas",
            steps=True,
        )

    return draw
