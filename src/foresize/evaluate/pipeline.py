"""The whole foresize journey on one telemetry frame: what ``foresize demo`` runs.

Seven stages, each the library piece that owns it, composed without logic of their own
where a piece exists:

1. **model**: static analysis of a model config (``recommend.service.size_model`` and
   ``graph.sizing.size_architecture``): parameters, FLOPs, inference memory.
2. **profile**: ``profile.telemetry.profile_telemetry`` per workload and metric.
3. **phases**: ``profile.phases.detect_phases`` + ``phase_summary``.
4. **forecast**: one forecaster (``forecast.models``) per metric over the planning
   horizon with 80/95 % intervals, and its rolling-origin backtest
   (``forecast.backtest``) as the accuracy figure.
5. **plan**: ``recommend.service.build_plan`` per resource metric (request and limit per
   workload) and per service (replica schedule, HPA, KEDA; each service scaled with its
   own per-replica capacity), the model placed and priced on the services; merged into
   one plan document validated against the published schema, and its k8s YAML.
6. **autoscale**: ``simulate.autoscale.run.compare`` of static, HPA (at the plan's
   target), predictive and oracle scalers on each service's recent demand.
7. **schedule**: ``evaluate.fleet.compare_fleets``: a fleet of the workloads with the
   original requests and with the plan's requests, on identical GPU nodes.

``run_pipeline`` returns every stage's product and writes them into one folder
atomically (``core.io.atomic_folder``): all artefacts, or none.
"""

from __future__ import annotations

import json
import math
import os
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from foresize import __version__
from foresize.core.errors import InputError, InsufficientDataError
from foresize.core.io import atomic_folder, sha256_file
from foresize.evaluate.fleet import GIB, NodeShape, PodSize, compare_fleets
from foresize.evaluate.report import Report, Section, render_markdown
from foresize.forecast.backtest import backtest
from foresize.forecast.models import make_forecaster
from foresize.forecast.panel import to_panel
from foresize.graph.devices import get_device
from foresize.ingest.synthetic import GPU_MEM_GIB, SERVICE_KINDS, TRAINING_KINDS
from foresize.profile.phases import detect_phases, phase_summary
from foresize.profile.telemetry import profile_telemetry
from foresize.recommend.export import plan_yaml
from foresize.recommend.placement import place_on
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
from foresize.simulate.replicas.run import ServiceConfig, compare

REFERENCE_MODEL = Path(__file__).resolve().parents[1] / "graph" / "reference" / "llama-2-7b.json"
RESOURCE_METRICS = ("mem_bytes", "gpu_mem_bytes", "cpu_cores", "mem_util_pct")
UTIL_METRIC = "gpu_util_pct"  # right-sized (and the model placed on it) only without demand
FORECAST_METRICS = (*DEMAND_METRICS, *RESOURCE_METRICS, UTIL_METRIC)
SCALERS = ("static", "hpa", "predictive", "oracle")
PLAN_HPA = "plan_hpa"  # the HPA with the plan's target, min and max
ACCURACY_HORIZON_S = 6 * 3600.0
LEVELS = (80, 95)
DAY_S = 86400.0
HISTORY_SHARE = 3 / 7  # the default horizon is at most 3/7 of the history (the 70/30 split)
BACKTEST_ORIGINS = 3
DEFAULT_FLEET_PODS = 48
ARTEFACTS = (
    "model.json",
    "profile.parquet",
    "profile.json",
    "phases.json",
    "forecast.parquet",
    "plan.json",
    "plan.yaml",
    "autoscale.json",
    "schedule.json",
    "summary.json",
    "summary.md",
)


@dataclass(frozen=True, slots=True)
class Assumptions:
    """What telemetry cannot say and the plan needs: replica capacity and today's GPUs.

    ``capacity[w]`` is the demand one replica of service ``w`` serves at 100 %; a service
    without one gets its observed peak / ``peak_replicas`` (its peak needs that many).
    ``gpus[w]`` is the GPUs a pod of ``w`` holds today (default 1, a whole GPU).
    """

    capacity: Mapping[str, float] = field(default_factory=dict)
    gpus: Mapping[str, float] = field(default_factory=dict)
    peak_replicas: int = 8
    notes: tuple[str, ...] = ()


def synthetic_assumptions(workloads: Sequence[str]) -> Assumptions:
    """The synthetic generator's own sizes: capacity = nominal peak / peak load per service
    kind (``infer-chat``: 40 qps at 80 % -> 50 qps a replica), GPUs per training kind.
    """
    services = {f"infer-{k.name}": k.peak_qps / k.peak_load for k in SERVICE_KINDS}
    training = {f"train-{k.name}": float(k.gpus) for k in TRAINING_KINDS}
    capacity: dict[str, float] = {}
    gpus: dict[str, float] = {}
    for name in workloads:
        kind = name.rsplit("-", 1)[0]
        if kind in services:
            capacity[name] = services[kind]
            gpus[name] = 1.0
        elif kind in training:
            gpus[name] = training[kind]
    return Assumptions(
        capacity=capacity,
        gpus=gpus,
        notes=(
            "replica capacity = the synthetic service's nominal peak / its load at peak "
            + ", ".join(f"{k} {v:g} qps" for k, v in services.items()),
            f"original pods hold whole {GPU_MEM_GIB:g} GiB GPUs: "
            + ", ".join(f"{k} {v:g}" for k, v in training.items())
            + ", services 1",
        ),
    )


@dataclass(frozen=True, slots=True)
class PipelineOptions:
    """Knobs of the pipeline; the defaults keep the demo well under a minute on 2 cores."""

    forecaster: str = "wavelet"
    strategy: str = "foresize"
    horizon_s: float | None = None  # default min(1 day, 3/7 of the history)
    accuracy: bool = True
    scalers: tuple[str, ...] = SCALERS
    startup_steps: int = 2
    autoscale_window_s: float = DAY_S
    node: NodeShape = field(default_factory=NodeShape)
    fleet_pods: int = DEFAULT_FLEET_PODS
    batch: int = 1
    context: int | None = None


@dataclass(slots=True)
class PipelineResult:
    """What each stage produced, the summary document and the artefact paths."""

    model: dict[str, Any]
    profile: pl.DataFrame
    phases: pl.DataFrame
    forecast: pl.DataFrame
    accuracy: pl.DataFrame
    plan: dict[str, Any]
    plan_yaml: str
    autoscale: pl.DataFrame
    schedule: pl.DataFrame
    summary: dict[str, Any]
    paths: dict[str, Path]
    timings: dict[str, float]


Stage = Callable[[str], None]


@dataclass(slots=True)
class _Clock:
    """Wall time per stage, and the caller's progress hook."""

    on_stage: Stage | None
    timings: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        if self.on_stage is not None:
            self.on_stage(name)
        began = time.perf_counter()
        yield
        self.timings[name] = round(time.perf_counter() - began, 3)


def check_out_dir(out_dir: Path) -> None:
    """Fail before any work when the output folder cannot be written (exit 3, one line)."""
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"{out_dir}: exists and is not a folder")
    parent = out_dir.resolve().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"{out_dir}: cannot write here ({parent} is not writable)")


def default_horizon_s(frame: pl.DataFrame) -> float:
    """One day, or 3/7 of the median history when that is shorter."""
    spans = frame.group_by("workload", "metric").agg(
        (pl.col("ts").max() - pl.col("ts").min()).dt.total_seconds().alias("span")
    )
    median = float(spans["span"].median() or 0.0)  # type: ignore[arg-type]
    return max(60.0, min(DAY_S, HISTORY_SHARE * median))


# --- stage 1: the model ------------------------------------------------------------------


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


# --- stages 2-4: history and forecasts ---------------------------------------------------


def _metric_rows(frame: pl.DataFrame, metric: str) -> pl.DataFrame:
    """One row per workload and instant (demand split by tenant summed)."""
    if metric in DEMAND_METRICS:
        return demand_frame(frame, metric).select("workload", "metric", "ts", "value")
    return frame.filter(pl.col("metric") == metric).select("workload", "metric", "ts", "value")


def _long_enough(rows: pl.DataFrame, min_points: int) -> pl.DataFrame:
    counts = rows.group_by("workload").len()
    keep = counts.filter(pl.col("len") >= min_points)["workload"]
    return rows.filter(pl.col("workload").is_in(keep.to_list()))


def forecast_metrics(
    frame: pl.DataFrame,
    *,
    forecaster: str,
    horizon_s: float,
    accuracy: bool,
    source: str,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Forecasts with intervals per metric, and the backtest accuracy per metric."""
    present = set(frame["metric"].unique().to_list())
    forecasts: list[pl.DataFrame] = []
    scores: list[dict[str, Any]] = []
    for metric in (m for m in FORECAST_METRICS if m in present):
        rows = _long_enough(_metric_rows(frame, metric), MIN_POINTS)
        if rows.is_empty():
            continue
        panel, report = to_panel(rows, metric=metric, source=source)
        h = max(1, math.ceil(horizon_s / report.step_s - 1e-9))
        predicted = make_forecaster(forecaster).fit(panel).predict(h, LEVELS)
        forecasts.append(predicted.with_columns(metric=pl.lit(metric)))
        if accuracy:
            short = max(1, math.ceil(min(horizon_s, ACCURACY_HORIZON_S) / report.step_s - 1e-9))
            scores.append({"metric": metric, **_accuracy(panel, forecaster, short)})
    if not forecasts:
        raise InsufficientDataError(
            f"{source}: no series has {MIN_POINTS} samples of a metric foresize forecasts "
            f"({', '.join(FORECAST_METRICS)})"
        )
    frame_out = pl.concat(forecasts, how="diagonal_relaxed")
    head = ["metric", "series", "ts", "step"]
    return frame_out.select(*head, pl.exclude(head)), pl.DataFrame(scores)


def _accuracy(panel: pl.DataFrame, forecaster: str, h: int) -> dict[str, Any]:
    """A short rolling-origin backtest: ``BACKTEST_ORIGINS`` origins over the last 30 %,
    each forecasting ``h`` steps (at most the test region).
    """
    lengths = panel.group_by("series").len()["len"]
    test = math.ceil(0.3 * int(lengths.median() or 0))  # type: ignore[arg-type]
    horizon = max(1, min(h, test))
    every = max(1, math.ceil(test / BACKTEST_ORIGINS))
    result = backtest(panel, make_forecaster(forecaster), horizon=horizon, every=every)
    metrics = result.metrics
    return {
        "model": result.model,
        "series": result.series,
        "origins": result.origins,
        "horizon_steps": horizon,
        **{k: metrics.get(k) for k in ("mase", "wape", "coverage_80", "coverage_95")},
    }


# --- stage 5: the plan -------------------------------------------------------------------


def _capacity(rows: pl.DataFrame, workload: str, assumptions: Assumptions) -> float:
    given = assumptions.capacity.get(workload)
    if given is not None:
        return given
    peak = float(rows["value"].max() or 0.0)  # type: ignore[arg-type]
    return max(peak, 1e-9) / assumptions.peak_replicas


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
) -> tuple[list[PlanBody], list[str]]:
    """Plan bodies: one per resource metric, one per service; and what was left out.

    Resources are right-sized over their history's default horizon (the 70/30 split the
    strategies are calibrated on); services are planned over ``horizon_s``. The model is
    placed and priced on the services (the reference model stands for what they serve);
    with no demand metric, on the right-sizing of GPU utilisation instead.
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
        rows = _long_enough(demand_frame(frame, metric), MIN_POINTS)
        services = sorted(rows["workload"].unique().to_list())
        util_rows = util.filter(pl.col("workload").is_in(services))
        skipped = demand_frame(frame, metric)["workload"].n_unique() - len(services)
        if skipped:
            notes.append(f"{metric}: {skipped} workload(s) with < {MIN_POINTS} samples not planned")
        for workload in services:
            mine = rows.filter(pl.col("workload") == workload)
            scaling = ScalingRequest(
                capacity=_capacity(mine, workload, assumptions),
                forecaster=forecaster,
                horizon_s=horizon_s,
            )
            request = PlanRequest(
                metric=metric, horizon_s=horizon_s, model=model, scaling=scaling, source=source
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


# --- stage 6: autoscaling ----------------------------------------------------------------


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


# --- stage 7: scheduling ------------------------------------------------------------------


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


# --- the summary -------------------------------------------------------------------------


def _records(frame: pl.DataFrame) -> list[dict[str, Any]]:
    return [{k: _finite(v) for k, v in row.items()} for row in frame.to_dicts()]


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def recommendation_rows(plan: Mapping[str, Any]) -> pl.DataFrame:
    """One row per workload and resource: request, limit, slack, rationale."""
    rows = [
        {
            "workload": r["workload"],
            "resource": r["resource"],
            "unit": r["unit"],
            "status": r["status"],
            "request": r["recommended"]["request"],
            "limit": r["recommended"]["limit"],
            "expected_slack": r["risk"]["expected_slack"],
            "rationale": r["rationale"],
        }
        for r in plan["recommendations"]
    ]
    schema = {"request": pl.Float64, "limit": pl.Float64, "expected_slack": pl.Float64}
    return pl.DataFrame(rows, schema_overrides=schema, infer_schema_length=None)


def scaling_rows(plan: Mapping[str, Any]) -> pl.DataFrame:
    """One row per service: capacity, replicas, HPA, saving, cost over the horizon."""
    rows = []
    for s in plan["scaling_plans"]:
        sched, hpa, cost = s["schedule"], s["hpa"], s.get("cost")
        rows.append(
            {
                "workload": s["workload"],
                "metric": s["metric"],
                "forecaster": s["forecaster"],
                "capacity_per_replica": sched["capacity_per_replica"],
                "demand_peak": max(sched["demand"]) if sched["demand"] else None,
                "replicas_low": sched["low"],
                "replicas_peak": sched["peak"],
                "hpa": f"{hpa['min_replicas']}/{hpa['max_replicas']}/"
                f"{hpa['target_utilisation_pct']}%",
                "saving_vs_static": sched["saving_vs_static"],
                "cost_horizon_usd": None if cost is None else cost["horizon_on_demand"],
                "rationale": s["rationale"],
            }
        )
    return pl.DataFrame(rows, schema_overrides={"cost_horizon_usd": pl.Float64})


def model_summary(model: Mapping[str, Any]) -> dict[str, Any]:
    """The few numbers of the static analysis the summary shows."""
    sizing = model["sizing"]
    out: dict[str, Any] = {
        "source": Path(sizing["source"]).name,
        "kind": sizing["kind"],
        "parameters": sizing.get("parameters"),
        "dtype": sizing["dtype"],
        "batch": sizing.get("batch"),
        "context": sizing.get("context"),
        "need_bytes": sizing["need_bytes"],
    }
    analysis = model.get("analysis")
    if analysis is not None:
        inference = analysis["inference"]
        out["components_bytes"] = inference["components_bytes"]
        out["forward_flops_per_token"] = analysis["flops"]["forward_per_token"]
        out["decode_tokens_per_s"] = inference.get("decode_tokens_per_s")
        out["device"] = analysis["device"]["name"]
        out["devices_needed"] = inference["devices_needed"]
    return out


def _placement_summary(plan: Mapping[str, Any]) -> dict[str, Any] | None:
    place, cost = plan.get("placement"), plan.get("cost")
    if place is None:
        return None
    best = place["best"]
    return {
        "device": best["device"],
        "mode": best["mode"],
        "gpu_fraction": best["gpu_fraction"],
        "rationale": best["rationale"],
        "util_p95": place["util_p95"],
        "per_replica_per_hour_usd": None
        if cost is None
        else cost["per_replica"]["per_hour"]["on_demand"],
    }


def summarise(
    *,
    header: Mapping[str, Any],
    model: Mapping[str, Any],
    profile: pl.DataFrame,
    phases: pl.DataFrame,
    forecast: pl.DataFrame,
    accuracy: pl.DataFrame,
    plan: Mapping[str, Any],
    autoscale: pl.DataFrame,
    schedule: pl.DataFrame,
    extra: Mapping[str, Any],
) -> dict[str, Any]:
    """The summary document: each stage's headline numbers (JSON-ready)."""
    profile_cols = ["workload", "metric", "unit", "n_samples", "p50", "p95", "max", "idle_frac"]
    phase_cols = ["workload", "metric", "phase", "time_share", "n_visits", "mean_dwell_s", "p95"]
    return {
        "schema_version": "1.0",
        "foresize_version": header["foresize_version"],
        "generated_at": header["generated_at"],
        "seed": header["seed"],
        "inputs": header["inputs"],
        **extra,
        "model": model_summary(model),
        "profile": {
            "workloads": profile["workload"].n_unique(),
            "series": profile.height,
            "rows": _records(profile.select([c for c in profile_cols if c in profile.columns])),
        },
        "phases": {
            "series": phases.select("workload", "metric").unique().height,
            "rows": _records(phases.select(phase_cols)),
        },
        "forecast": {
            "series": forecast.select("metric", "series").unique().height,
            "metrics": sorted(forecast["metric"].unique().to_list()),
            "horizon_steps": int(forecast["step"].max() or 0),  # type: ignore[arg-type]
            "model": str(forecast["model"][0]) if "model" in forecast.columns else None,
            "accuracy": _records(accuracy),
        },
        "plan": {
            "metrics": plan["parameters"]["metrics"],
            "recommendations": _records(recommendation_rows(plan)),
            "scaling_plans": _records(scaling_rows(plan)),
            "placement": _placement_summary(plan),
        },
        "autoscale": _records(autoscale),
        "schedule": _records(schedule),
    }


def summary_markdown(summary: Mapping[str, Any], parameters: dict[str, Any]) -> str:
    """summary.md: the summary document as headed markdown tables."""
    report = Report("foresize demo", parameters)
    model = summary["model"]
    report.add(
        Section(
            "Model (static analysis)",
            text=f"{model['source']}: {model['parameters']:,} parameters, "
            f"{model['need_bytes'] / GIB:.1f} GiB per replica ({model['dtype']}, batch "
            f"{model['batch']}, context {model['context']})."
            if model.get("parameters")
            else f"{model['source']}: {model['need_bytes'] / GIB:.1f} GiB per replica.",
        )
    )
    tables = [
        ("Profile", "Per workload and metric", summary["profile"]["rows"]),
        ("Phases", "Detected phases", summary["phases"]["rows"]),
        ("Forecast", "Backtest accuracy", summary["forecast"]["accuracy"]),
        ("Plan", "Right-sizing", summary["plan"]["recommendations"]),
        ("Scaling", "Scaling plans", summary["plan"]["scaling_plans"]),
        ("Autoscaling simulation", "Scalers on recent demand", summary["autoscale"]),
        ("Scheduling simulation", "Fleet on identical GPU nodes", summary["schedule"]["rows"]),
    ]
    for heading, caption, rows in tables:
        frame = pl.DataFrame(rows, infer_schema_length=None) if rows else pl.DataFrame()
        report.add(Section(heading, tables={caption: frame} if rows else {}))
    return render_markdown(report, {})


# --- the pipeline ------------------------------------------------------------------------


def _header(seed: int, inputs: Mapping[str, str | None]) -> dict[str, Any]:
    return {
        "foresize_version": __version__,
        "generated_at": datetime.now(UTC).replace(microsecond=0).isoformat(),
        "seed": seed,
        "inputs": [{"source": s, "sha256": h} for s, h in inputs.items()],
    }


def _dump(value: Any) -> str:
    return json.dumps(_plain(value), indent=2, default=str) + "\n"


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return _finite(value)


def run_pipeline(
    telemetry: pl.DataFrame,
    *,
    model_spec: str | Path = REFERENCE_MODEL,
    out_dir: str | Path,
    seed: int = 0,
    source: str = "telemetry",
    assumptions: Assumptions | None = None,
    options: PipelineOptions | None = None,
    inputs: Mapping[str, str | None] | None = None,
    extra: Mapping[str, Any] | None = None,
    on_stage: Stage | None = None,
) -> PipelineResult:
    """Run every stage on canonical ``telemetry`` and write the artefacts into ``out_dir``.

    ``assumptions`` give replica capacities and today's GPUs (default: none, so each
    service's peak needs ``peak_replicas`` replicas and every pod holds one GPU);
    ``inputs`` (source -> sha256) and ``extra`` (e.g. the synthetic parameters) go into
    the headers. ``on_stage(name)`` is called as each stage starts. Nothing is written
    unless every stage succeeds.
    """
    out = Path(out_dir)
    check_out_dir(out)
    options = options or PipelineOptions()
    assumptions = assumptions or Assumptions()
    clock = _Clock(on_stage)
    model_path = Path(model_spec)
    sources = {str(model_path): sha256_file(model_path) if model_path.is_file() else None}
    header = _header(seed, {**(inputs or {}), **sources})
    frame = telemetry.select(
        "workload", "metric", "ts", "value", *(c for c in ("tenant",) if c in telemetry.columns)
    )
    horizon_s = options.horizon_s or default_horizon_s(frame)
    with clock.stage("model"):
        model = analyse_model(model_spec, batch=options.batch, context=options.context)
        sizing = ModelSizing.model_validate(model["sizing"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with clock.stage("profile"):
            profile, _ = profile_telemetry(telemetry, source=source)
        with clock.stage("phases"):
            phases = phase_summary(detect_phases(frame.select("workload", "metric", "ts", "value")))
        with clock.stage("forecast"):
            forecast, accuracy = forecast_metrics(
                frame,
                forecaster=options.forecaster,
                horizon_s=horizon_s,
                accuracy=options.accuracy,
                source=source,
            )
        with clock.stage("plan"):
            bodies, notes = build_demo_plan(
                frame,
                model=sizing,
                assumptions=assumptions,
                forecaster=options.forecaster,
                strategy=options.strategy,
                horizon_s=horizon_s,
                source=source,
                node=options.node,
            )
            plan = plan_document(bodies, header)
            manifests = plan_yaml(validate_plan(plan))
        with clock.stage("autoscale"):
            autoscale = simulate_autoscaling(
                frame,
                plan,
                scalers=options.scalers,
                startup_steps=options.startup_steps,
                window_s=options.autoscale_window_s,
                source=source,
            )
    with clock.stage("schedule"):
        original, rightsized = pod_sizes(frame, plan, sizing, assumptions, options.node)
        copies = max(1, math.ceil(options.fleet_pods / len(original)))
        schedule = compare_fleets(
            {"original": original, "right-sized": rightsized},
            options.node,
            copies=copies,
            seed=seed,
        )
    schedule_doc = {
        "node": options.node.describe(),
        "copies": copies,
        "placement": "best_fit",
        "queue": "fifo",
        "pods": {
            "original": [p.to_dict() for p in original],
            "right-sized": [p.to_dict() for p in rightsized],
        },
        "rows": _records(schedule),
    }
    parameters = {
        "source": source,
        "seed": seed,
        "model": model_path.name,
        "forecaster": options.forecaster,
        "horizon_s": horizon_s,
        "levels": list(LEVELS),
        "scalers": list(options.scalers),
        "startup_steps": options.startup_steps,
        "fleet_copies": copies,
    }
    summary = summarise(
        header=header,
        model=model,
        profile=profile,
        phases=phases,
        forecast=forecast,
        accuracy=accuracy,
        plan=plan,
        autoscale=autoscale,
        schedule=schedule,
        extra={**(extra or {}), "parameters": parameters},
    )
    summary["schedule"] = {k: v for k, v in schedule_doc.items() if k != "pods"}
    summary["notes"] = [*assumptions.notes, *notes]
    summary["timings_s"] = dict(clock.timings)
    paths = {name: out / name for name in ARTEFACTS}
    summary["artefacts"] = {name: str(path) for name, path in paths.items()}
    with clock.stage("write"):
        _write(
            out,
            model=model,
            profile=profile,
            phases=phases,
            forecast=forecast,
            plan=plan,
            manifests=manifests,
            autoscale={"parameters": parameters, "rows": _records(autoscale)},
            schedule=schedule_doc,
            summary=summary,
            markdown=summary_markdown(summary, parameters),
        )
    return PipelineResult(
        model=model,
        profile=profile,
        phases=phases,
        forecast=forecast,
        accuracy=accuracy,
        plan=plan,
        plan_yaml=manifests,
        autoscale=autoscale,
        schedule=schedule,
        summary=summary,
        paths=paths,
        timings=clock.timings,
    )


def _write(
    out: Path,
    *,
    model: dict[str, Any],
    profile: pl.DataFrame,
    phases: pl.DataFrame,
    forecast: pl.DataFrame,
    plan: dict[str, Any],
    manifests: str,
    autoscale: dict[str, Any],
    schedule: dict[str, Any],
    summary: dict[str, Any],
    markdown: str,
) -> None:
    """Every artefact into a temporary folder that replaces ``out`` only when complete."""
    try:
        with atomic_folder(out) as tmp:
            (tmp / "model.json").write_text(_dump(model), encoding="utf-8")
            profile.write_parquet(tmp / "profile.parquet")
            (tmp / "profile.json").write_text(_dump(_records(profile)), encoding="utf-8")
            (tmp / "phases.json").write_text(_dump(_records(phases)), encoding="utf-8")
            forecast.write_parquet(tmp / "forecast.parquet")
            (tmp / "plan.json").write_text(_dump(plan), encoding="utf-8")
            (tmp / "plan.yaml").write_text(manifests, encoding="utf-8")
            (tmp / "autoscale.json").write_text(_dump(autoscale), encoding="utf-8")
            (tmp / "schedule.json").write_text(_dump(schedule), encoding="utf-8")
            (tmp / "summary.json").write_text(_dump(summary), encoding="utf-8")
            (tmp / "summary.md").write_text(markdown, encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{out}: cannot write the demo folder ({exc.strerror or exc})") from exc
