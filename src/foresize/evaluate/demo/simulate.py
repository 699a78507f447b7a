"""Demo stages 6 and 7: the plan's scalers on recent demand, and its pods on a fleet.

``simulate.replicas.run.compare`` of static, HPA (at the plan's target), predictive and
oracle replica scalers on each service's recent demand; ``evaluate.fleet.compare_fleets``
of the workloads with the original requests and with the plan's, on identical GPU nodes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import polars as pl

from foresize.evaluate.demo.inputs import Assumptions
from foresize.evaluate.fleet import NodeShape, PodSize
from foresize.forecast.panel import to_panel
from foresize.recommend.placement import place_on
from foresize.recommend.plan import ModelSizing
from foresize.recommend.service import (
    demand_frame,
)
from foresize.simulate.replicas.run import ServiceConfig, compare

PLAN_HPA = "plan_hpa"  # the HPA with the plan's target, min and max


def _score_rows(
    workload: str, rows: Sequence[dict[str, Any]], steps: int, oracle_hours: float
) -> list[dict[str, Any]]:
    return [
        {
            "workload": workload,
            "policy": row["policy"],
            "steps": steps,
            "replica_hours": row["replica_hours"],
            "vs_oracle": row["replica_hours"] / oracle_hours if oracle_hours > 0 else None,
            "unserved_frac": row["unserved_frac"],
            "violation_min": row["violation_min"],
            "latency_p95_s": row["latency_p95_s"],
            "actions": row["actions"],
            "peak_replicas": row["peak_replicas"],
            "cost_usd": row["cost_usd"],
        }
        for row in rows
        if not row["reference"]
    ]


def simulate_autoscaling(
    frame: pl.DataFrame,
    plan: Mapping[str, Any],
    *,
    scalers: Sequence[str],
    startup_steps: int,
    window_s: float,
    source: str,
) -> pl.DataFrame:
    """Each planned service's recent demand under each scaler, scored against the oracle.

    ``scalers`` run with their defaults (``hpa``: Kubernetes' usual 80 % target); the
    ``plan_hpa`` row is the HPA the plan writes (its target, min and max replicas).
    Replica-hours are relative to the oracle with the same start-up delay.
    """
    rows: list[dict[str, Any]] = []
    for scaling in plan["scaling_plans"]:
        workload, metric = scaling["workload"], scaling["metric"]
        series = demand_frame(frame.filter(pl.col("workload") == workload), metric)
        panel, report = to_panel(series, metric=metric, source=source)
        values = panel.sort("ts")["y"].to_numpy().astype(np.float64)
        keep = max(2 * startup_steps + 2, math.ceil(window_s / report.step_s))
        demand = values[-keep:]
        cost = scaling.get("cost")
        price = 0.0 if cost is None else float(cost["per_replica"]["per_hour"]["on_demand"])
        capacity = float(scaling["schedule"]["capacity_per_replica"])
        config = ServiceConfig(
            capacity=capacity,
            startup=startup_steps,
            step_s=report.step_s,
            service_time_s=1.0 / capacity,
            price_per_replica_h=price,
        )
        result = compare(demand, list(scalers), config)
        oracle = next(r["replica_hours"] for r in result.rows if r["policy"] == "oracle")
        hpa = scaling["hpa"]
        capped = replace(config, min_replicas=hpa["min_replicas"], max_replicas=hpa["max_replicas"])
        planned = compare(
            demand,
            ["hpa"],
            capped,
            settings={"hpa": {"target": hpa["target_utilisation_pct"] / 100.0}},
        )
        plan_rows = [{**r, "policy": PLAN_HPA} for r in planned.rows if r["policy"] == "hpa"]
        rows += _score_rows(workload, result.rows, int(demand.size), oracle)
        rows += _score_rows(workload, plan_rows, int(demand.size), oracle)
    return pl.DataFrame(rows) if rows else pl.DataFrame({"workload": [], "policy": []})


def _recommended(plan: Mapping[str, Any], resource: str) -> dict[str, float]:
    return {
        r["workload"]: float(r["recommended"]["request"])
        for r in plan["recommendations"]
        if r["resource"] == resource and r["status"] == "ok" and r["recommended"]["request"]
    }


def _peaks(frame: pl.DataFrame, metric: str, q: float = 1.0) -> dict[str, float]:
    rows = frame.filter(pl.col("metric") == metric).group_by("workload")
    agg = rows.agg(pl.col("value").quantile(q).alias("v"))
    return {str(w): float(v) for w, v in agg.iter_rows()}


def pod_sizes(
    frame: pl.DataFrame,
    plan: Mapping[str, Any],
    model: ModelSizing,
    assumptions: Assumptions,
    node: NodeShape,
) -> tuple[list[PodSize], list[PodSize]]:
    """Original and right-sized pod requests, one per workload.

    Original: GPU-proportional requests (the node's CPU and memory per GPU times the
    pod's GPUs), raised to the observed peak where that is higher. Right-sized: the
    plan's CPU and memory requests (``mem_util_pct`` as a share of the original), the same
    whole GPUs for multi-GPU pods, and for one-GPU pods the placement of their GPU-memory
    request (or the model's need) at their own P95 utilisation on the node's GPU type.
    """
    workloads = sorted(frame["workload"].unique().to_list())
    cpu_peak, mem_peak = _peaks(frame, "cpu_cores"), _peaks(frame, "mem_bytes")
    util_p95 = _peaks(frame, "gpu_util_pct", 0.95)
    cpu_rec, mem_rec = _recommended(plan, "cpu_cores"), _recommended(plan, "mem_bytes")
    mem_pct, gpu_mem = _recommended(plan, "mem_util_pct"), _recommended(plan, "gpu_mem_bytes")
    original: list[PodSize] = []
    rightsized: list[PodSize] = []
    for w in workloads:
        gpus = float(assumptions.gpus.get(w, 1.0))
        share = max(gpus, 1.0) / node.gpus
        cpu = max(node.cpu_cores * share, cpu_peak.get(w, 0.0))
        memory = max(node.memory_bytes * share, mem_peak.get(w, 0.0))
        original.append(PodSize(w, cpu, memory, gpus))
        new_gpus = gpus
        if gpus == 1.0 and w in util_p95:
            placed = place_on(
                gpu_mem.get(w, model.need_bytes),
                node.gpu_model,
                util_p95=util_p95[w] / 100.0,
                dtype=model.dtype,
            )
            new_gpus = gpus if placed is None else min(gpus, placed.gpu_fraction)
        new_memory = mem_rec.get(w)
        if new_memory is None and w in mem_pct:
            new_memory = memory * min(1.0, mem_pct[w] / 100.0)
        rightsized.append(
            PodSize(w, cpu_rec.get(w, cpu), memory if new_memory is None else new_memory, new_gpus)
        )
    return original, rightsized
