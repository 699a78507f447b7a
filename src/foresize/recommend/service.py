"""One plan from telemetry: right-sizing, scaling plans, placement and cost, composed.

``build_plan`` is what ``foresize recommend`` runs. The metric decides the kind of plan:

* a resource (memory, CPU, GPU memory, utilisation) gets a request and a limit per
  workload (:func:`foresize.recommend.rightsize.recommend_rightsizing`);
* a demand metric (``qps``, ``arrivals``, ``concurrency``) gets a scaling plan **per
  workload** (each workload is a service that scales on its own demand): the demand is
  forecast (default ``window_average``, any registered forecaster by name), the replica
  schedule covers the forecast's upper quantile, and HPA and KEDA cron settings follow.
  Rows of one workload at the same instant (GenTD26 splits QPS by request type in
  ``tenant``) are summed first: demand adds up, it does not average.

With a model (a Hugging Face config.json or an ONNX graph) the static analysis gives the
GPU memory one replica needs; the placement picks the cheapest GPU type that holds it
(whole GPUs, a MIG slice or a milli share, by the P95 of the measured ``gpu_util_pct``
when the telemetry has it), each sized workload gets its own placement on that type,
and cost follows from the price table -- with a one-year commitment for the baseline of a
replica schedule.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl

from foresize.core.errors import InputError, InsufficientDataError, UsageError
from foresize.core.metrics import metric_info
from foresize.core.paths import missing_file
from foresize.core.units import human_duration
from foresize.forecast.models import make_forecaster
from foresize.forecast.panel import horizon_too_long, to_panel
from foresize.graph.devices import DEVICES, device_name
from foresize.recommend import placement as placing
from foresize.recommend.choices import DEFAULT_FORECASTER
from foresize.recommend.cost import (
    PriceTable,
    commitment_plan,
    hourly_cost,
    load_prices,
    placement_cost,
)
from foresize.recommend.plan import (
    Commitment,
    CostSection,
    CronSpec,
    Evidence,
    GpuPlacement,
    HourlyCost,
    HpaSpec,
    ModelSizing,
    PerHour,
    PlacementSection,
    ReplicaScheduleSpec,
    ResourceRecommendation,
    ScalingPlan,
    ScheduleCost,
)
from foresize.recommend.rightsize import (
    DEFAULT_HORIZON_FRAC,
    RightsizingResult,
    pick_metric,
    recommend_rightsizing,
)
from foresize.recommend.scaling import (
    cron_schedule,
    demand_from_forecast,
    hpa_settings,
    replica_schedule,
)
from foresize.recommend.strategies import (
    MIN_POINTS,
    STRATEGIES,
    check_chance_option,
    check_risk,
)

DEMAND_METRICS = ("qps", "arrivals", "concurrency")
# Metrics that are a percentage of the container's current limit: Kubernetes quantities
# need that limit (``current_limit``, bytes or cores) to be written.
LIMIT_RELATIVE = {"mem_util_pct": "bytes", "cpu_util_pct": "cores"}
DTYPES = ("fp32", "bf16", "fp16")
MAX_HORIZON_STEPS = 20_000


def is_demand_metric(metric: str) -> bool:
    """Whether ``metric`` is service demand (scaled by replicas) rather than a resource."""
    return metric in DEMAND_METRICS


def size_model(
    spec: str,
    *,
    batch: int = 1,
    context: int | None = None,
    dtype: str | None = None,
    dims: Mapping[str, int] | None = None,
) -> ModelSizing:
    """GPU memory one replica of a model needs for inference, by the static analysis.

    ``spec`` is a Hugging Face config.json (or its folder), sized for ``batch`` sequences
    of ``context`` tokens in ``dtype`` (default bf16): weights + activations + KV cache; or
    an ONNX graph with its symbolic ``dims`` bound: weights + the activation peak by
    liveness (``dtype`` re-prices it, default the graph's own).
    """
    if dtype is not None and dtype not in DTYPES:
        raise UsageError(f"--dtype {dtype!r} is not one of {', '.join(DTYPES)}")
    path = Path(spec)
    if path.is_dir():
        path = path / "config.json"
    if not path.exists():
        raise missing_file(spec, what="model (pass a config.json, its folder or an .onnx)")
    if path.suffix.lower() == ".onnx":
        from foresize.graph.liveness import graph_precision, inference_memory
        from foresize.graph.onnx_reader import read_onnx

        graph = read_onnx(path, dims=dims or None)
        memory = inference_memory(graph, dtype=dtype)
        return ModelSizing(
            source=str(path),
            kind="onnx",
            need_bytes=float(memory.total_bytes),
            dtype=dtype or graph_precision(graph),
            parameters=graph.n_params,
        )
    if dims:
        raise UsageError(f"{spec}: --dim binds ONNX dimensions; a config takes --batch/--context")
    from foresize.graph.hf_config import read_hf_config
    from foresize.graph.sizing import SizingRequest, size_architecture

    precision: Literal["fp32", "bf16", "fp16"] = dtype or "bf16"  # type: ignore[assignment]
    report = size_architecture(
        read_hf_config(path), SizingRequest(batch=batch, context=context, dtype=precision)
    )
    inference = report["inference"]
    return ModelSizing(
        source=str(path),
        kind="hf_config",
        need_bytes=float(inference["total_bytes"]),
        dtype=str(inference["dtype"]),
        batch=int(inference["batch"]),
        context=int(inference["context"]),
        parameters=int(report["parameters"]["total"]),
    )


def gpu_util_p95(frame: pl.DataFrame) -> tuple[float | None, dict[str, float]]:
    """P95 of ``gpu_util_pct`` as a fraction of one GPU: pooled over all rows, and per
    workload. ``(None, {})`` when the telemetry has no GPU utilisation.
    """
    rows = frame.filter(pl.col("metric") == "gpu_util_pct")
    if rows.is_empty():
        return None, {}
    pooled = float(np.quantile(rows["value"].to_numpy(), 0.95)) / 100.0
    per = rows.group_by("workload").agg(pl.col("value").quantile(0.95).alias("p95"))
    return pooled, {str(w): float(p) / 100.0 for w, p in per.iter_rows()}


def _gpu_placement(p: placing.Placement) -> GpuPlacement:
    return GpuPlacement.model_validate(p.to_dict())


def _hourly(cost: Any) -> HourlyCost:
    return HourlyCost.model_validate(cost.to_dict())


def candidate_devices(prices: PriceTable, devices: Sequence[str] | None) -> list[str]:
    """GPU types to place on: the ones asked for, else every catalogue GPU the table prices.

    Each candidate must be priced; a missing one is an InputError naming the type and the
    prices file(s).
    """
    names = (
        [device_name(d) for d in devices]
        if devices
        else [n for n in DEVICES.names() if n != "cpu" and n in prices.gpu]
    )
    if not names:
        raise InputError(
            f"prices file {' + '.join(prices.files)} prices no GPU type of the catalogue "
            f"({', '.join(n for n in DEVICES.names() if n != 'cpu')})"
        )
    for name in names:
        DEVICES.get(name)
        prices.gpu_price(name)
    return names


@dataclass(frozen=True, slots=True)
class Placed:
    """The plan-level placement and the placement object cost is computed from."""

    section: PlacementSection
    best: placing.Placement


def plan_placement(
    model: ModelSizing,
    prices: PriceTable,
    *,
    util_p95: float | None,
    devices: Sequence[str] | None = None,
) -> Placed:
    """Place one replica: the cheapest (on demand) GPU type and share that holds it."""
    names = candidate_devices(prices, devices)
    plan = placing.place(
        model.need_bytes,
        util_p95=util_p95,
        dtype=model.dtype,
        devices=names,
        hourly_price=prices.hourly("on_demand"),
    )
    section = PlacementSection(
        model=model,
        need_bytes=plan.need_bytes,
        util_p95=plan.util_p95,
        dtype=plan.dtype,
        best=_gpu_placement(plan.best),
        options=[_gpu_placement(o) for o in plan.options],
    )
    return Placed(section, plan.best)


def _per_hour(cost: HourlyCost, factor: float) -> PerHour:
    h = cost.per_hour
    return PerHour(
        on_demand=h.on_demand * factor,
        reserved_1y=None if h.reserved_1y is None else h.reserved_1y * factor,
        spot=None if h.spot is None else h.spot * factor,
    )


@dataclass(frozen=True, slots=True)
class ScalingRequest:
    """How to turn a demand forecast into replicas.

    ``capacity`` is the demand one replica serves at 100 % of its request; the schedule
    keeps each replica at ``target_utilisation`` of it on the forecast's ``hi_{level}``
    quantile (``level`` 95: the 97.5 % quantile). ``horizon_s`` defaults to 3/7 of the
    median history (the benchmarks' 70/30 split).
    """

    capacity: float
    target_utilisation: float = 0.7
    startup_s: float = 0.0
    scale_down_delay_s: float = 0.0
    forecaster: str = DEFAULT_FORECASTER
    horizon_s: float | None = None
    level: int = 95
    max_windows: int = 6
    min_points: int = MIN_POINTS
    force: bool = False  # a horizon longer than the history

    def check(self) -> None:
        """Reject impossible settings before any forecasting is done."""
        if not (math.isfinite(self.capacity) and self.capacity > 0):
            raise UsageError(
                f"--capacity must be > 0 (the demand one replica serves), got {self.capacity:g}"
            )
        if not 0 < self.target_utilisation <= 1:
            raise UsageError(
                f"--target-utilisation must be in (0, 1], got {self.target_utilisation:g}"
            )
        if self.horizon_s is not None and self.horizon_s <= 0:
            raise UsageError(f"--horizon must be positive, got {self.horizon_s:g} s")
        if not 50 < self.level < 100:
            raise InputError(f"interval level must be in (50, 100), got {self.level}")


def demand_frame(frame: pl.DataFrame, metric: str) -> pl.DataFrame:
    """One row per workload and instant: demand split by tenant (request type) summed."""
    return (
        frame.filter(pl.col("metric") == metric)
        .group_by("workload", "metric", "ts")
        .agg(pl.col("value").sum().alias("value"))
        .sort("workload", "ts")
    )


def _iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat()


def _horizon_steps(request: ScalingRequest, lengths: Sequence[int], step_s: float) -> int:
    if request.horizon_s is not None:
        steps = math.ceil(request.horizon_s / step_s - 1e-9)
    else:
        frac = DEFAULT_HORIZON_FRAC / (1 - DEFAULT_HORIZON_FRAC)
        steps = round(float(np.median(lengths)) * frac)
    if steps > MAX_HORIZON_STEPS:
        raise UsageError(
            f"--horizon is {steps:,} steps of {step_s:g} s; at most {MAX_HORIZON_STEPS:,}"
        )
    if request.horizon_s is not None and steps > max(lengths) and not request.force:
        raise horizon_too_long(human_duration(request.horizon_s), steps, step_s, max(lengths),
                               longest="workload")
    return max(1, steps)


def plan_scaling(
    frame: pl.DataFrame, request: ScalingRequest, *, metric: str, source: str = "telemetry"
) -> list[ScalingPlan]:
    """A scaling plan per workload with ``request.min_points`` samples of ``metric``."""
    request.check()
    rows = demand_frame(frame, metric)
    counts = rows.group_by("workload").agg(
        pl.len().alias("n"), pl.col("ts").min().alias("start"), pl.col("ts").max().alias("end")
    )
    kept = counts.filter(pl.col("n") >= request.min_points).sort("workload")
    if kept.is_empty():
        longest = int(counts["n"].max() or 0) if counts.height else 0  # type: ignore[arg-type]
        raise InsufficientDataError(
            f"{source}: no workload has {request.min_points} samples of {metric} "
            f"(longest: {longest}); a scaling plan needs at least {request.min_points}"
        )
    panel, report = to_panel(
        rows.filter(pl.col("workload").is_in(kept["workload"].to_list())),
        metric=metric,
        source=source,
    )
    lengths = panel.group_by("series").len()["len"].to_list()
    h = _horizon_steps(request, lengths, report.step_s)
    forecaster = make_forecaster(request.forecaster)
    forecast = forecaster.fit(panel).predict(h, (80, request.level))
    column = f"hi_{request.level}"
    unit = metric_info(metric).unit
    plans: list[ScalingPlan] = []
    for row in kept.iter_rows(named=True):
        workload = str(row["workload"])
        part = forecast.filter(pl.col("series") == workload).sort("step")
        path = demand_from_forecast(part, column=column)
        schedule = replica_schedule(
            path,
            request.capacity,
            target_utilisation=request.target_utilisation,
            startup_s=request.startup_s,
            scale_down_delay_s=request.scale_down_delay_s,
        )
        history = panel.filter(pl.col("series") == workload).sort("ts")["y"].to_numpy()
        hpa = hpa_settings(schedule, observed=history)
        cron = cron_schedule(schedule, max_windows=request.max_windows)
        model_name = str(part["model"][0]) if "model" in part.columns else request.forecaster
        start, end = row["start"], row["end"]
        plans.append(
            ScalingPlan(
                workload=workload,
                metric=metric,
                unit=unit,
                forecaster=model_name,
                evidence=Evidence(
                    n_points=int(row["n"]),
                    window_s=(end - start).total_seconds(),
                    start=_iso(start),
                    end=_iso(end),
                    horizon_s=h * report.step_s,
                    calibration={"step_s": report.step_s},
                ),
                horizon_steps=h,
                expected=list(path.expected or ()),
                schedule=ReplicaScheduleSpec.model_validate(schedule.to_dict()),
                hpa=HpaSpec.model_validate(hpa.to_dict()),
                cron=CronSpec.model_validate(cron.to_dict()),
                rationale=(
                    f"{model_name} {column} peaks at {max(path.values):.3g} {unit}: "
                    f"{schedule.peak} replica(s) of {request.capacity:g} at "
                    f"{request.target_utilisation:.0%}, low {schedule.low}; "
                    f"{schedule.saving_vs_static:.0%} fewer replica-hours than a static peak"
                ),
            )
        )
    return plans


def schedule_cost(
    plan: ScalingPlan, best: placing.Placement, prices: PriceTable, per_replica: HourlyCost
) -> ScheduleCost:
    """Cost of a replica schedule on the chosen placement, and the commitment to buy."""
    spec = plan.schedule
    price = prices.gpu_price(best.device)
    commitment = None
    if price.reserved_1y is not None:
        replicas = np.asarray(spec.replicas, dtype=np.float64)
        chosen = commitment_plan(
            replicas,
            price,
            step_hours=spec.step_s / 3600.0,
            units_per_replica=best.gpu_fraction,
            currency=prices.currency,
        )
        commitment = Commitment.model_validate({**chosen.to_dict(), "unit": "gpu"})
    return ScheduleCost(
        per_replica=per_replica,
        peak_per_hour=_per_hour(per_replica, spec.peak),
        low_per_hour=_per_hour(per_replica, spec.low),
        horizon_on_demand=per_replica.per_hour.on_demand * spec.replica_hours,
        commitment=commitment,
    )


@dataclass(frozen=True, slots=True)
class PlanRequest:
    """Everything ``build_plan`` needs besides the telemetry (the CLI's options)."""

    metric: str | None = None
    strategy: str = "foresize"
    risk: float | None = None
    max_chance: float | None = None  # the foresize strategy's ceiling per workload
    horizon_s: float | None = None
    min_points: int = MIN_POINTS
    model: ModelSizing | None = None
    prices: PriceTable | None = None
    devices: tuple[str, ...] = ()
    scaling: ScalingRequest | None = None
    current_limit: float | None = None
    ceiling: Mapping[str, float] | None = None  # per workload: what its hardware holds
    source: str = "telemetry"
    force: bool = False  # a horizon longer than the history
    phases: bool = True  # per-phase request schedules (phase detection per workload)

    def check(self) -> None:
        """Reject bad or contradicting options before the telemetry is read."""
        STRATEGIES.get(self.strategy)
        if self.risk is not None:
            check_risk(self.risk)
        check_chance_option(self.strategy, self.max_chance)
        if self.scaling is not None and self.max_chance is not None:
            raise UsageError("--max-chance caps right-sizing's limits; --capacity plans "
                             "replicas, whose risk is the forecast's quantile")
        if self.scaling is not None:
            self.scaling.check()
        if self.current_limit is not None and not (
            math.isfinite(self.current_limit) and self.current_limit > 0
        ):
            raise UsageError(f"--current-limit must be > 0, got {self.current_limit:g}")
        if self.prices is not None and self.model is None:
            raise UsageError("--prices prices the GPU placement of --model; give --model too")


@dataclass(slots=True)
class PlanBody:
    """A plan without its provenance header: the CLI adds inputs, versions and time."""

    metric: str
    parameters: dict[str, Any]
    rightsizing: RightsizingResult | None = None
    recommendations: list[ResourceRecommendation] = field(default_factory=list)
    scaling_plans: list[ScalingPlan] = field(default_factory=list)
    placement: PlacementSection | None = None
    cost: CostSection | None = None

    def document(self) -> dict[str, Any]:
        """The plan's body as JSON-ready dicts."""
        return {
            "parameters": self.parameters,
            "recommendations": [r.model_dump(mode="json") for r in self.recommendations],
            "scaling_plans": [s.model_dump(mode="json") for s in self.scaling_plans],
            "placement": None if self.placement is None else self.placement.model_dump(),
            "cost": None if self.cost is None else self.cost.model_dump(),
        }


def _check_metric(request: PlanRequest, metric: str) -> None:
    """Options that contradict the metric fail before any work, each with one line."""
    if is_demand_metric(metric) and request.scaling is None:
        raise InputError(
            f"{metric} is a demand metric: give --capacity, the {metric} one replica serves, "
            "to plan replicas"
        )
    if request.scaling is not None and not is_demand_metric(metric):
        raise InputError(
            f"--capacity plans replicas from a demand metric ({', '.join(DEMAND_METRICS)}), "
            f"not {metric}"
        )
    if request.current_limit is not None and metric not in LIMIT_RELATIVE:
        raise InputError(
            f"--current-limit converts {' or '.join(LIMIT_RELATIVE)} to quantities; "
            f"{metric} needs none"
        )


def build_plan(frame: pl.DataFrame, request: PlanRequest) -> PlanBody:
    """Right-sizing or scaling plans for the telemetry, with placement and cost."""
    request.check()
    metric = pick_metric(frame, request.metric, source=request.source)
    _check_metric(request, metric)
    model = request.model
    floor = model.need_bytes if model is not None and metric == "gpu_mem_bytes" else None
    body = PlanBody(
        metric=metric,
        parameters={
            "metric": metric,
            "strategy": request.strategy,
            "risk": request.risk,
            "max_chance": request.max_chance,
            "horizon_s": request.horizon_s,
            "min_points": request.min_points,
            "floor": floor,
            "current_limit": request.current_limit,
            "devices": list(request.devices) or None,
        },
    )
    if request.scaling is not None:
        scaling = request.scaling
        body.scaling_plans = plan_scaling(frame, scaling, metric=metric, source=request.source)
        body.parameters.update(
            strategy=None,
            capacity=scaling.capacity,
            target_utilisation=scaling.target_utilisation,
            startup_s=scaling.startup_s,
            scale_down_delay_s=scaling.scale_down_delay_s,
            forecaster=scaling.forecaster,
            level=scaling.level,
        )
    else:
        result = recommend_rightsizing(
            frame,
            metric=metric,
            strategy=request.strategy,
            risk=request.risk,
            max_chance=request.max_chance,
            horizon_s=request.horizon_s,
            floor=floor,
            ceiling=request.ceiling,
            min_points=request.min_points,
            source=request.source,
            force=request.force,
            include_phases=request.phases,
        )
        body.rightsizing = result
        body.recommendations = list(result.recommendations)
        body.parameters["risk"] = result.risk
        body.parameters["max_chance"] = result.max_chance
    if model is not None:
        _place_and_price(frame, body, model, request)
    return body


def _place_and_price(
    frame: pl.DataFrame, body: PlanBody, model: ModelSizing, request: PlanRequest
) -> None:
    """Fill placement and cost: one replica, each sized workload, each scaling plan."""
    prices = request.prices or load_prices()
    pooled, per_workload = gpu_util_p95(frame)
    placed = plan_placement(model, prices, util_p95=pooled, devices=request.devices or None)
    best = placed.best
    per_replica = _hourly(placement_cost(best, prices))
    fleet_fraction = 0.0
    fleet = 0
    for i, rec in enumerate(body.recommendations):
        util = per_workload.get(rec.workload)
        if rec.status != "ok" or util is None:
            continue
        own = placing.place_on(model.need_bytes, best.device, util_p95=util, dtype=model.dtype)
        if own is None:
            continue
        fleet_fraction += own.gpu_fraction
        fleet += 1
        body.recommendations[i] = rec.model_copy(
            update={
                "placement": _gpu_placement(own),
                "cost": _hourly(placement_cost(own, prices)),
            }
        )
    body.placement = placed.section
    body.cost = CostSection(
        currency=prices.currency,
        source=prices.source,
        as_of=prices.as_of,
        files=list(prices.files),
        gpu_type=best.device,
        per_replica=per_replica,
        fleet=(
            _hourly(hourly_cost(prices, gpu_type=best.device, gpus=fleet_fraction))
            if fleet
            else None
        ),
        fleet_replicas=fleet or None,
    )
    body.scaling_plans = [
        plan.model_copy(update={"cost": schedule_cost(plan, best, prices, per_replica)})
        for plan in body.scaling_plans
    ]
