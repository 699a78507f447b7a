"""Demo stages 1 and 5: the model's static analysis, and one plan for every metric.

``recommend.service.build_plan`` per resource metric (request and limit per workload) and
per service (replica schedule, HPA, KEDA; each service scaled with its own per-replica
capacity), the model placed and priced on the services; merged into one plan document
validated against the published schema.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import polars as pl

from foresize.core.errors import InsufficientDataError
from foresize.evaluate.demo.forecast import RESOURCE_METRICS, UTIL_METRIC, long_enough
from foresize.evaluate.demo.inputs import Assumptions
from foresize.evaluate.fleet import NodeShape
from foresize.graph.devices import get_device
from foresize.recommend.plan import SCHEMA_VERSION, ModelSizing, validate_plan
from foresize.recommend.service import (
    DEMAND_METRICS,
    PlanBody,
    PlanRequest,
    ScalingRequest,
    build_plan,
    demand_frame,
    size_model,
)
from foresize.recommend.strategies import MIN_POINTS


def analyse_model(spec: str | Path, *, batch: int, context: int | None) -> dict[str, Any]:
    """The static analysis of the reference (or given) model, as model.json holds it."""
    sizing = size_model(str(spec), batch=batch, context=context)
    document: dict[str, Any] = {"sizing": sizing.model_dump(mode="json")}
    if sizing.kind == "hf_config":
        from foresize.graph.hf_config import read_hf_config
        from foresize.graph.sizing import SizingRequest, size_architecture

        path = Path(spec) / "config.json" if Path(spec).is_dir() else Path(spec)
        report = size_architecture(
            read_hf_config(path), SizingRequest(batch=batch, context=context)
        )
        document["analysis"] = report
    return document


def _capacity(rows: pl.DataFrame, workload: str, assumptions: Assumptions) -> float:
    given = assumptions.capacity.get(workload)
    if given is not None:
        return given
    peak = float(rows["value"].max() or 0.0)  # type: ignore[arg-type]
    return max(peak, 1e-9) / assumptions.peak_replicas


def _step_s(rows: pl.DataFrame) -> float:
    """The median interval between a service's samples, in seconds."""
    gaps = rows.sort("ts")["ts"].diff().dt.total_seconds().drop_nulls()
    return float(gaps.median() or 0.0)  # type: ignore[arg-type]


def build_demo_plan(
    frame: pl.DataFrame,
    *,
    model: ModelSizing,
    assumptions: Assumptions,
    forecaster: str,
    strategy: str,
    horizon_s: float,
    source: str,
    node: NodeShape,
    startup_steps: int = 0,
    force: bool = False,
) -> tuple[list[PlanBody], list[str]]:
    """Plan bodies: one per resource metric, one per service; and what was left out.

    ``force`` lets ``horizon_s`` pass a service's history (the demo's own default is 3/7
    of the median history of every series, which a shorter service may not reach).

    Resources are right-sized over their history's default horizon (the 70/30 split the
    strategies are calibrated on); services are planned over ``horizon_s``. The model is
    placed and priced on the services (the reference model stands for what they serve);
    with no demand metric, on the right-sizing of GPU utilisation instead. Replicas
    take ``startup_steps`` samples to start, as in the demo's replay, so the planned HPA
    target is chosen for the delay it will meet.
    """
    present = set(frame["metric"].unique().to_list())
    demand = [m for m in DEMAND_METRICS if m in present]
    resources = [m for m in RESOURCE_METRICS if m in present]
    if not demand and UTIL_METRIC in present:
        resources.append(UTIL_METRIC)
    notes: list[str] = []
    bodies: list[PlanBody] = []
    gpu_bytes = get_device(node.gpu_model).memory_bytes
    for metric in resources:
        placed = model if metric == UTIL_METRIC else None
        ceiling = (
            {w: n * gpu_bytes for w, n in assumptions.gpus.items()}
            if metric == "gpu_mem_bytes" else None
        )
        request = PlanRequest(metric=metric, strategy=strategy, model=placed, ceiling=ceiling,
                              source=source)
        try:
            bodies.append(build_plan(frame.filter(pl.col("metric") == metric), request))
        except InsufficientDataError as exc:
            notes.append(f"{metric}: not sized ({exc.message})")
    util = frame.filter(pl.col("metric") == UTIL_METRIC)
    for metric in demand:
        rows = long_enough(demand_frame(frame, metric), MIN_POINTS)
        services = sorted(rows["workload"].unique().to_list())
        util_rows = util.filter(pl.col("workload").is_in(services))
        skipped = demand_frame(frame, metric)["workload"].n_unique() - len(services)
        if skipped:
            notes.append(f"{metric}: {skipped} workload(s) with < {MIN_POINTS} samples not planned")
        for workload in services:
            mine = rows.filter(pl.col("workload") == workload)
            scaling = ScalingRequest(
                capacity=_capacity(mine, workload, assumptions),
                startup_s=startup_steps * _step_s(mine),
                forecaster=forecaster,
                horizon_s=horizon_s,
                force=force,
            )
            request = PlanRequest(
                metric=metric, horizon_s=horizon_s, model=model, scaling=scaling, source=source,
                force=force,
            )
            bodies.append(build_plan(pl.concat([mine, util_rows], how="diagonal"), request))
    if not bodies:
        raise InsufficientDataError(f"{source}: nothing to plan ({'; '.join(notes)})")
    return bodies, notes


def plan_document(bodies: Sequence[PlanBody], header: Mapping[str, Any]) -> dict[str, Any]:
    """One plan from several bodies: all recommendations and scaling plans, one placement."""
    by_metric: dict[str, list[dict[str, Any]]] = {}
    for body in bodies:
        by_metric.setdefault(body.metric, []).append(body.parameters)
    placed = next((b for b in bodies if b.placement is not None), None)
    document = {
        **header,
        "schema_version": SCHEMA_VERSION,
        "parameters": {
            "metric": ", ".join(by_metric),
            "metrics": list(by_metric),
            "by_metric": {
                m: params[0] if len(params) == 1 else params for m, params in by_metric.items()
            },
        },
        "recommendations": [r.model_dump(mode="json") for b in bodies for r in b.recommendations],
        "scaling_plans": [s.model_dump(mode="json") for b in bodies for s in b.scaling_plans],
        "placement": None,
        "cost": None,
    }
    if placed is not None and placed.placement is not None:
        document["placement"] = placed.placement.model_dump(mode="json")
        document["cost"] = None if placed.cost is None else placed.cost.model_dump(mode="json")
    parsed: dict[str, Any] = json.loads(json.dumps(document, default=str))
    validate_plan(parsed)
    return parsed
