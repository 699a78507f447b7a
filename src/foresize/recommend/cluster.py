"""Cluster mode: right-size every workload container of a cluster read from Prometheus.

``plan_cluster`` takes what ``ingest.cluster.read_cluster`` read (pooled usage per
``namespace/Kind/name/container`` and the containers' current requests and limits) and
sizes each resource with the same ``recommend_rightsizing`` a file source gets, so a
history gives the same numbers whether it came from a cluster or a file. It then adds
what a per-metric plan cannot say:

* **per owner and container**: CPU and memory, current -> recommended request and limit;
* **the GPU decision**: from the container's GPU memory (the ``gpu_mem_bytes``
  recommendation's limit, at most what its current GPUs hold) and its P95 utilisation,
  on the GPU type DCGM reports (``modelName``): whole GPUs, a MIG profile or a milli
  share (``placement.place_on``);
* **money**: the requests' cost per hour over the owner's running replicas, now and
  recommended (vCPU-hours, GiB-hours and GPU-hours from the price table);
* **severity**, as KRR grades it: per resource by the relative change of the request
  (``GOOD`` < 25 % <= ``OK`` < 50 % <= ``WARNING`` < 100 % <= ``CRITICAL``), ``WARNING``
  where no request is set; changes under 10 millicores or 16 MiB are ``GOOD`` whatever
  their ratio. A container takes its worst resource, an owner its worst container.

A container with no CPU or memory recommendation (too little history) is listed in
``skipped`` with the reason; one resource short of data keeps its current values.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import polars as pl

from foresize.core.errors import InsufficientDataError
from foresize.graph.devices import DEVICES, USABLE_MEMORY_FRACTION
from foresize.ingest.cluster import ClusterRequest, ClusterTelemetry, read_cluster
from foresize.recommend import placement as placing
from foresize.recommend.cost import PriceTable, load_prices
from foresize.recommend.plan import (
    ClusterSection,
    ContainerPlan,
    CostChange,
    GpuDecision,
    GpuPlacement,
    OwnerPlan,
    Reason,
    ResourceChange,
    ResourceRecommendation,
    Severity,
    Skipped,
    Values,
)
from foresize.recommend.rightsize import recommend_rightsizing
from foresize.recommend.strategies import MIN_POINTS

SEVERITIES: tuple[Severity, ...] = ("GOOD", "OK", "WARNING", "CRITICAL")
THRESHOLDS: tuple[tuple[float, Severity], ...] = ((1.0, "CRITICAL"), (0.5, "WARNING"),
                                                  (0.25, "OK"))
NEGLIGIBLE = {"cpu": 0.010, "memory": 16 * 2**20}
RESOURCES: dict[str, tuple[Literal["cpu", "memory"], Literal["cores", "bytes"]]] = {
    "cpu_cores": ("cpu", "cores"),
    "mem_bytes": ("memory", "bytes"),
}
GIB = 2**30


@dataclass(frozen=True, slots=True)
class ClusterPlanRequest:
    """How to size: the strategy settings a file source takes, plus the price table."""

    strategy: str = "foresize"
    risk: float | None = None
    max_chance: float | None = None  # the foresize strategy's ceiling per workload
    horizon_s: float | None = None
    min_points: int = MIN_POINTS
    prices: PriceTable | None = None
    force: bool = False  # a horizon longer than the history
    # per-phase request schedules: off by default here, where phase detection over every
    # container is ~90 % of the planning time and no cluster output (table, patches, VPA
    # objects, html) can express a schedule; -f json has them with --phases
    phases: bool = False


@dataclass(slots=True)
class ClusterPlan:
    """Recommendations per metric (with evidence) and the per-owner section."""

    recommendations: list[ResourceRecommendation]
    section: ClusterSection
    parameters: dict[str, Any] = field(default_factory=dict)
    usage: pl.DataFrame = field(default_factory=pl.DataFrame, repr=False)  # for the charts

    def document(self) -> dict[str, Any]:
        """The plan's body as JSON-ready dicts (the CLI adds the provenance header)."""
        return {
            "parameters": self.parameters,
            "recommendations": [r.model_dump(mode="json") for r in self.recommendations],
            "scaling_plans": [],
            "placement": None,
            "cost": None,
            "cluster": self.section.model_dump(mode="json"),
        }


def recommend_cluster(read: ClusterRequest, request: ClusterPlanRequest) -> ClusterPlan:
    """Read a cluster from Prometheus and plan it: ``foresize recommend prometheus://...``."""
    return plan_cluster(read_cluster(read), request, source=read.url, scope=read.scope.to_dict())


def plan_cluster(
    telemetry: ClusterTelemetry,
    request: ClusterPlanRequest,
    *,
    source: str,
    scope: Mapping[str, Any] | None = None,
) -> ClusterPlan:
    """Size every workload container of ``telemetry``; see the module doc."""
    frame = telemetry.frame
    present = set(frame["metric"].unique().to_list()) if frame.height else set()
    recs: dict[tuple[str, str], ResourceRecommendation] = {}
    risk, max_chance = request.risk, request.max_chance
    for metric in ("cpu_cores", "mem_bytes", "gpu_mem_bytes", "gpu_util_pct"):
        if metric not in present:
            continue
        try:
            result = recommend_rightsizing(
                frame, metric=metric, strategy=request.strategy, risk=request.risk,
                max_chance=request.max_chance, horizon_s=request.horizon_s,
                min_points=request.min_points, source=source, force=request.force,
                include_phases=request.phases)
        except InsufficientDataError:
            if metric in RESOURCES:
                continue
            raise
        risk, max_chance = result.risk, result.max_chance
        recs.update({(r.workload, metric): r for r in result.recommendations})
    prices = request.prices or load_prices()
    util = _gpu_p95(frame)
    owners: dict[tuple[str | None, str, str, str], list[ContainerPlan]] = {}
    skipped: list[Skipped] = []
    for row in telemetry.containers.iter_rows(named=True):
        plan = _container(row, recs, util.get(row["workload"]), prices,
                          min_points=request.min_points)
        if isinstance(plan, Skipped):
            skipped.append(plan)
            continue
        key = (row["cluster"], row["namespace"], row["owner_kind"],
               row["owner_name"])
        owners.setdefault(key, []).append(plan)
    if not owners:
        reasons = "; ".join(f"{s.workload}: {s.reasons[0].message}" for s in skipped[:3])
        raise InsufficientDataError(
            f"{source}: no workload container has {request.min_points} samples of CPU or "
            f"memory usage ({len(skipped):,} skipped: {reasons})",
            hint="widen --since, or lower --min-points")
    owner_plans = [_owner(key, containers) for key, containers in owners.items()]
    totals = [c.cost for o in owner_plans for c in o.containers if c.cost is not None]
    section = ClusterSection(
        source=source, start=telemetry.start.isoformat(), end=telemetry.end.isoformat(),
        step_s=telemetry.step_s, scope=dict(scope or {}), owners=owner_plans, skipped=skipped,
        currency=prices.currency,
        current_per_hour=sum(c.current_per_hour for c in totals),
        recommended_per_hour=sum(c.recommended_per_hour for c in totals),
        delta_per_hour=sum(c.delta_per_hour for c in totals),
    )
    parameters = {"mode": "cluster", "strategy": request.strategy, "risk": risk,
                  "max_chance": max_chance,
                  "horizon_s": request.horizon_s, "min_points": request.min_points,
                  "prices": prices.source}
    ordered = sorted(recs.values(), key=lambda r: (r.resource, r.workload))
    return ClusterPlan(ordered, section, parameters, frame)


def severity(current: float | None, recommended: float | None, resource: str) -> Severity:
    """KRR's grading of one change (module doc)."""
    if current is None and recommended is None:
        return "GOOD"
    if current is None or recommended is None or current <= 0:
        return "WARNING"
    change = abs(recommended - current)
    if change < NEGLIGIBLE.get(resource, 0.0):
        return "GOOD"
    ratio = change / current
    return next((grade for bound, grade in THRESHOLDS if ratio >= bound), "GOOD")


def worst(grades: Iterable[Severity]) -> Severity:
    """The most severe grade (GOOD for none)."""
    return max(grades, key=SEVERITIES.index, default="GOOD")


def _gpu_p95(frame: pl.DataFrame) -> dict[str, float]:
    rows = frame.filter(pl.col("metric") == "gpu_util_pct")
    per = rows.group_by("workload").agg(pl.col("value").quantile(0.95).alias("p95"))
    return {str(w): float(p) / 100.0 for w, p in per.iter_rows()}


def _container(
    row: Mapping[str, Any],
    recs: Mapping[tuple[str, str], ResourceRecommendation],
    util_p95: float | None,
    prices: PriceTable,
    *,
    min_points: int,
) -> ContainerPlan | Skipped:
    workload = str(row["workload"])
    changes: list[ResourceChange] = []
    reasons: list[Reason] = []
    for metric, (resource, unit) in RESOURCES.items():
        current = Values(request=row[f"{resource}_request"], limit=row[f"{resource}_limit"])
        rec = recs.get((workload, metric))
        if rec is None or rec.status != "ok":
            message = (rec.reasons[0].message if rec is not None and rec.reasons
                       else f"no {metric} samples")
            reasons.append(Reason(code="insufficient_data", message=f"{resource}: {message}"))
            continue
        recommended = _limit_over_request(rec.recommended, current)
        note = rec.rationale
        if recommended.limit != rec.recommended.limit:
            note += "; no limit recommended, the current one is below the new request: raised"
        changes.append(ResourceChange(
            resource=resource, unit=unit, current=current, recommended=recommended,
            lower=rec.bounds.lower, upper=rec.bounds.upper,
            severity=severity(current.request, recommended.request, resource), note=note))
    if not changes:
        return Skipped(workload=workload, reasons=reasons or [Reason(
            code="insufficient_data", message=f"fewer than {min_points} samples")])
    gpu = _gpu(row, recs.get((workload, "gpu_mem_bytes")), util_p95)
    return ContainerPlan(
        container=str(row["container"]), workload=workload, pods=int(row["pods"]),
        replicas=int(row["replicas"]), resources=changes, gpu=gpu,
        cost=_cost(row, changes, gpu, prices),
        severity=worst([*(c.severity for c in changes), *([gpu.severity] if gpu else [])]),
        reasons=reasons)


def _limit_over_request(recommended: Values, current: Values) -> Values:
    """No recommended limit keeps the current one, unless it is below the new request: a
    limit under the request is refused by the API server, so it is raised to the request.
    """
    if recommended.limit is not None or current.limit is None or recommended.request is None:
        return recommended
    if current.limit < recommended.request:
        return Values(request=recommended.request, limit=recommended.request)
    return recommended


def gpu_device(model: str | None) -> str | None:
    """The catalogue name of DCGM's ``modelName`` (``NVIDIA A100-SXM4-80GB`` ->
    ``a100_80gb``): the device whose every name part occurs in it, the most specific first.
    """
    if not model:
        return None
    text = model.lower().replace("-", "").replace("_", "").replace(" ", "")
    matches = [name for name in DEVICES.names() if name != "cpu"
               and all(part in text for part in name.split("_"))]
    return max(matches, key=len, default=None)


def _gpu(row: Mapping[str, Any], memory: ResourceRecommendation | None,
         util_p95: float | None) -> GpuDecision | None:
    current = row.get("gpu_request")
    if memory is None and util_p95 is None and current is None:
        return None
    model = row.get("gpu_model")
    device = gpu_device(model)
    need = None if memory is None or memory.status != "ok" else (
        memory.recommended.limit or memory.recommended.request)
    if device is None or need is None:
        why = (f"GPU model {model!r} is not in the device catalogue" if device is None
               else "too little GPU memory history")
        return GpuDecision(model=model, device=device, current_gpus=current, placement=None,
                           severity="GOOD", note=f"no GPU decision: {why}")
    held = None if not current else current * DEVICES.get(device).memory_bytes * \
        USABLE_MEMORY_FRACTION
    capped = held is not None and need > held
    if capped and held is not None:
        need = held  # usage never passed what its GPUs hold: the margin above it is no need
    placed = placing.place_on(need, device, util_p95=util_p95)
    if placed is None:
        return GpuDecision(model=model, device=device, current_gpus=current, placement=None,
                           severity="CRITICAL",
                           note=f"{need / GIB:.1f} GiB of GPU memory does not fit {device}")
    same = placed.mode == "whole" and current is not None and placed.devices == current
    return GpuDecision(model=model, device=device, current_gpus=current,
                       placement=GpuPlacement.model_validate(placed.to_dict()),
                       severity="GOOD" if same else "WARNING",
                       note=placed.rationale + ("; the GPU memory limit was capped at what the "
                                                "current GPUs hold" if capped else ""))


def _cost(row: Mapping[str, Any], changes: list[ResourceChange], gpu: GpuDecision | None,
          prices: PriceTable) -> CostChange | None:
    """Requests priced per hour over the running replicas; None without CPU/memory prices."""
    if prices.cpu is None or prices.memory is None:
        return None
    unit = {"cpu": prices.cpu.on_demand, "memory": prices.memory.on_demand / GIB}
    now = later = 0.0
    for change in changes:
        now += (change.current.request or 0.0) * unit[change.resource]
        later += (change.recommended.request or 0.0) * unit[change.resource]
    if gpu is not None and gpu.device is not None and gpu.device in prices.gpu:
        price = prices.gpu[gpu.device].on_demand
        now += (gpu.current_gpus or 0.0) * price
        later += (gpu.placement.gpu_fraction if gpu.placement else gpu.current_gpus or 0.0) * price
    replicas = int(row["replicas"])
    now, later = now * replicas, later * replicas
    if not (math.isfinite(now) and math.isfinite(later)):
        return None
    return CostChange(currency=prices.currency, current_per_hour=now,
                      recommended_per_hour=later, delta_per_hour=later - now)


def _owner(key: tuple[str | None, str, str, str], containers: list[ContainerPlan]) -> OwnerPlan:
    cluster, namespace, kind, name = key
    costs = [c.cost.delta_per_hour for c in containers if c.cost is not None]
    return OwnerPlan(cluster=cluster, namespace=namespace, kind=kind, name=name,
                     severity=worst(c.severity for c in containers), containers=containers,
                     delta_per_hour=sum(costs) if costs else None)
