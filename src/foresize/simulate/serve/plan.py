"""``foresize recommend serve``: the cheapest device x TP x replica schedule that meets a
serving SLO, as a recommendation plan with the autoscaler settings that realise it.

Why by simulation: whether a configuration meets a TTFT/TPOT SLO depends on batching,
the KV cache, start-up and the trace's bursts, which no closed form captures; the
serving engine does. Every candidate (device, TP) whose replica fits
(``replica.build_replica``) and whose idle floor is within the SLO
(``study.check_slo_floor``) is run on the trace: its capacity is calibrated, then the
predictive policy (quantile level x capacity scale) and the reactive autoscalers a
cluster can run (HPA on requests in flight, KEDA on queue length, Knative KPA on
concurrency) are swept. A candidate costs its cheapest run that meets the SLO, in money
(GPU-hours x the device's on-demand price), so a dearer, faster GPU wins only where it
pays for itself. The winner's plan carries:

* the replica schedule: the tuned predictive run's most replicas in each minute (KEDA
  cron windows, which resolve minutes, realise it: ``recommend.scaling.cron_schedule``);
* the HPA: ``vllm_requests_in_flight`` per pod at the tuned in-flight target;
* the KEDA queue target and the Knative KPA concurrency target, each with the GPU-hours
  and attainment it reached (``ServingSection.autoscalers``).

MIG profiles are not candidates: a replica here is whole devices (``ReplicaSpec.tp``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from foresize.core.errors import InputError, UsageError
from foresize.recommend.plan import (
    CronSpec,
    Evidence,
    HpaSpec,
    ReplicaScheduleSpec,
    ScalingPlan,
    ServingAutoscaler,
    ServingCandidate,
    ServingSection,
)
from foresize.recommend.scaling import DemandPath, ReplicaSchedule, cron_schedule
from foresize.simulate.serve.engine import FloatArray
from foresize.simulate.serve.policies import POLICIES
from foresize.simulate.serve.study import (
    ServeSetup,
    Slo,
    calibrate,
    check_slo_floor,
    run_policy,
    sweep_policy,
    trace_from_frame,
    tuned,
)

SCHEDULE = "predictive"
REACTIVE = ("hpa_inflight", "keda", "kpa")
HPA_METRIC = "vllm_requests_in_flight"  # vllm:num_requests_running + num_requests_waiting
DEFAULT_TPS = (1, 2, 4, 8)
SCHEDULE_STEP_S = 60.0  # KEDA cron triggers resolve minutes: the schedule's step


@dataclass(frozen=True, slots=True)
class ServePlanRequest:
    """What to plan: the model, the trace and its replay, the SLO, the candidates."""

    trace: str
    model: str
    devices: tuple[str, ...]
    tps: tuple[int, ...] = DEFAULT_TPS
    dtype: str = "bf16"
    slo: Slo = field(default_factory=Slo)
    rate_scale: float = 1.0
    splice: int = 1
    warmup_s: float = 0.0
    mapping: dict[str, str] | None = None
    mirror: str | None = None
    prices: str | None = None
    overrides: dict[str, float] | None = None


@dataclass(slots=True)
class ServePlan:
    """The plan's body (the CLI adds provenance) and the inputs' digests."""

    scaling: ScalingPlan
    section: ServingSection
    parameters: dict[str, Any]
    hashes: dict[str, str | None]

    def document(self) -> dict[str, Any]:
        """The plan's body as JSON-ready dicts (no right-sizing recommendations)."""
        return {
            "parameters": self.parameters,
            "recommendations": [],
            "scaling_plans": [self.scaling.model_dump(mode="json")],
            "serving": self.section.model_dump(mode="json"),
        }

    def rows(self) -> list[dict[str, Any]]:
        """One row per candidate, cheapest first (the terminal table)."""
        rows = [c.model_dump() for c in self.section.candidates]
        return sorted(rows, key=lambda r: (r["cost"] is None, r["cost"] or 0.0))


@dataclass(slots=True)
class _Tried:
    """A candidate that ran: its setup, capacity and each policy's tuned row."""

    setup: ServeSetup
    capacity: float
    best: dict[str, dict[str, Any] | None]
    rows: dict[str, list[dict[str, Any]]]

    def cheapest(self) -> dict[str, Any] | None:
        """The cheapest tuned row of any policy (None: none meets the SLO)."""
        met = [r for r in self.best.values() if r is not None]
        return min(met, key=lambda r: r["gpu_hours"]) if met else None


def _candidate(device: str, tp: int, status: str, note: str = "",
               **values: Any) -> ServingCandidate:
    return ServingCandidate.model_validate(
        {"device": device, "tp": tp, "gpus_per_replica": tp, "status": status, "note": note,
         **values})


def _try(setup: ServeSetup, on_run: Callable[[str], None] | None) -> _Tried:
    capacity = calibrate(setup)
    best: dict[str, dict[str, Any] | None] = {}
    rows: dict[str, list[dict[str, Any]]] = {}
    for name in (SCHEDULE, *REACTIVE):
        rows[name] = sweep_policy(setup, name, capacity)
        best[name] = tuned(rows[name], setup.slo.attainment)
        if on_run is not None:
            on_run(name)
    return _Tried(setup, capacity, best, rows)


def _autoscaler(name: str, tried: _Tried) -> ServingAutoscaler:
    """The tuned row of ``name``, or its best attainment when no setting meets the SLO."""
    row = tried.best[name] or max(tried.rows[name], key=lambda r: r["attainment"])
    return ServingAutoscaler(policy=name, knob=POLICIES.get(name).knob, value=row["value"],
                             capacity_scale=row["capacity_scale"],
                             gpu_hours=row["gpu_hours"], attainment=row["attainment"],
                             meets_slo=tried.best[name] is not None)


def _per_step(series: FloatArray, per: int, how: str) -> FloatArray:
    """A per-tick series in control steps: each step's max or mean."""
    n = max(1, math.ceil(series.size / per))
    padded = np.full(n * per, np.nan)
    padded[: series.size] = series
    blocks = padded.reshape(n, per)
    out: FloatArray = np.nanmax(blocks, axis=1) if how == "max" else np.nanmean(blocks, axis=1)
    return out


def _scaling_plan(tried: _Tried, start: datetime, model_name: str) -> ScalingPlan:
    """The winner's schedule (the predictive run), its HPA and its KEDA cron windows."""
    setup = tried.setup
    chosen = _autoscaler(SCHEDULE, tried)
    result = run_policy(setup, SCHEDULE, chosen.value, tried.capacity, chosen.capacity_scale)[1]
    per = max(1, round(SCHEDULE_STEP_S / setup.tick_s))
    replicas = _per_step(result.ticks["replicas"], per, "max").astype(np.int64)
    in_flight = _per_step(result.ticks["in_flight"], per, "mean")
    hpa = _autoscaler("hpa_inflight", tried)
    target = float(hpa.value)
    ts = tuple(start + timedelta(seconds=SCHEDULE_STEP_S * j) for j in range(replicas.size))
    path = DemandPath(tuple(float(v) for v in in_flight), SCHEDULE_STEP_S, ts=ts,
                      column="in_flight")
    needed = np.maximum(np.ceil(in_flight / target - 1e-9), 1).astype(np.int64)
    schedule = ReplicaSchedule(
        demand=path, capacity=target, target_utilisation=1.0,
        startup_s=setup.model.startup_s, scale_down_delay_s=setup.model.startup_s,
        min_replicas=1, max_replicas=None, needed=tuple(int(n) for n in needed),
        replicas=tuple(max(1, int(r)) for r in replicas), capped_steps=0)
    peak = schedule.peak
    hpa_spec = HpaSpec(
        min_replicas=max(1, schedule.low), max_replicas=max(peak, math.ceil(peak * 1.2)),
        target_utilisation_pct=100, target_value_per_replica=target,
        scale_down_stabilisation_s=300, tolerance=0.1,
        rationale=f"{HPA_METRIC} per pod at {target:g} (" + (
            f"the in-flight target the sweep found cheapest at {100 * setup.slo.attainment:g}"
            " % attainment" if hpa.meets_slo else "no swept target met the SLO; the best")
        + f": {hpa.gpu_hours:.2f} GPU-h, {100 * hpa.attainment:.2f} % in simulation)")
    end = start + timedelta(seconds=float(setup.trace.arrival_s[-1]))
    return ScalingPlan(
        workload=f"serve/{model_name}", metric=HPA_METRIC, unit="requests",
        forecaster=f"predictive (empirical quantile {chosen.value:g}, capacity "
        f"x{chosen.capacity_scale:g})",
        evidence=Evidence(
            n_points=setup.trace.n, window_s=(end - start).total_seconds(),
            start=start.isoformat(), end=end.isoformat(),
            horizon_s=replicas.size * SCHEDULE_STEP_S,
            calibration={"capacity_work_per_replica": tried.capacity,
                         "attainment": chosen.attainment, "gpu_hours": chosen.gpu_hours}),
        horizon_steps=int(replicas.size),
        expected=[float(v) for v in in_flight],
        schedule=ReplicaScheduleSpec.model_validate(schedule.to_dict()),
        hpa=hpa_spec,
        cron=CronSpec.model_validate(cron_schedule(schedule).to_dict()),
        rationale=f"predictive schedule simulated at {100 * chosen.attainment:.2f} % SLO "
        f"attainment for {chosen.gpu_hours:.2f} GPU-h; peak {peak}, low {schedule.low} "
        f"replicas of {setup.model.gpus} x {setup.model.device.name}")


def n_sweeps(request: ServePlanRequest) -> int:
    """Policy sweeps ``recommend_serve`` runs: every policy on every device x TP (a
    candidate that does not fit counts its sweeps as done at once), for a progress total.
    """
    return len(request.devices) * len(request.tps) * (1 + len(REACTIVE))


def recommend_serve(request: ServePlanRequest,
                    on_run: Callable[[str], None] | None = None) -> ServePlan:
    """Simulate every candidate and plan the cheapest that meets the SLO.

    ``on_run(policy)`` follows each of the ``n_sweeps(request)`` policy sweeps.

    An ``InputError`` when no candidate fits, or none meets the SLO at any setting
    (the candidates and why each failed are in its message).
    """
    from foresize.core.io import sha256_file
    from foresize.graph.devices import device_name, get_device
    from foresize.graph.hf_config import read_hf_config
    from foresize.ingest.requests import read_request_source, replay
    from foresize.recommend.cost import load_prices
    from foresize.simulate.serve.replica import ReplicaSpec, build_replica

    if not request.devices:
        raise InputError("recommend serve: name at least one --device")
    devices = [get_device(d).name for d in request.devices]  # unknown names fail first
    arch = read_hf_config(request.model)
    prices = load_prices(request.prices)
    frame, report = read_request_source(request.trace, mapping=request.mapping,
                                        mirror=request.mirror)
    frame, info = replay(frame, rate_scale=request.rate_scale, splice=request.splice)
    trace = trace_from_frame(frame)
    if not 0 <= request.warmup_s < float(trace.arrival_s[-1]):
        raise UsageError(f"--warmup {request.warmup_s:g} s leaves no request to score")
    start: datetime = frame["ts"][0]  # the replay's first arrival: the schedule's clock
    model_name = _model_name(request.model)
    candidates: list[ServingCandidate] = []
    tried: dict[tuple[str, int], _Tried] = {}
    for device in devices:
        price = float(prices.gpu_price(device_name(device)).get("on_demand") or 0.0)
        for tp in request.tps:
            spec = ReplicaSpec(device=device, tp=tp, dtype=request.dtype)
            spec = spec.with_overrides(**(request.overrides or {}))
            try:
                model = build_replica(arch, spec, model=model_name)
                setup = ServeSetup(model, trace, request.slo, info, price,
                                   warmup_s=request.warmup_s)
                check_slo_floor(model, trace, request.slo)
            except InputError as exc:
                status = "slo_floor" if "cannot be met" in exc.message else "does_not_fit"
                candidates.append(_candidate(device, tp, status, exc.message))
                for name in (SCHEDULE, *REACTIVE):  # nothing to sweep: counted as done
                    if on_run is not None:
                        on_run(name)
                continue
            run = tried[(device, tp)] = _try(setup, on_run)
            row = run.cheapest()
            if row is None:
                candidates.append(_candidate(
                    device, tp, "slo_unmet", "no swept setting of "
                    f"{', '.join((SCHEDULE, *REACTIVE))} reaches the attainment target",
                    capacity_work_per_replica=run.capacity))
                continue
            candidates.append(_candidate(
                device, tp, "ok", capacity_work_per_replica=run.capacity,
                policy=row["policy"], gpu_hours=row["gpu_hours"],
                cost=row["gpu_hours"] * price, attainment=row["attainment"]))
    ok = [c for c in candidates if c.status == "ok"]
    if not ok:
        tried_text = "; ".join(f"{c.device} x{c.tp}: {c.status}" for c in candidates)
        raise InputError(f"recommend serve: no candidate meets the SLO ({tried_text})",
                         hint="relax the SLO or --attainment, or add devices or TP degrees")
    win = min(ok, key=lambda c: (c.cost or 0.0, c.gpu_hours or 0.0))
    best = tried[(win.device, win.tp)]
    scaling = _scaling_plan(best, start, model_name)
    m = best.setup.model
    section = ServingSection(
        model=model_name, trace=request.trace, replay=info.describe(), dtype=request.dtype,
        ttft_s=request.slo.ttft_s, tpot_s=request.slo.tpot_s,
        attainment=request.slo.attainment, warmup_s=request.warmup_s,
        device=win.device, tp=win.tp, currency=prices.currency,
        price_per_gpu_hour=best.setup.price_per_gpu_h, gpu_hours=win.gpu_hours or 0.0,
        cost=win.cost or 0.0, startup_s=m.startup_s, kv_capacity_tokens=m.kv_capacity_tokens,
        candidates=candidates,
        autoscalers=[_autoscaler(n, best) for n in (SCHEDULE, *REACTIVE)])
    parameters: dict[str, Any] = {"metric": HPA_METRIC, "slo": request.slo.to_dict(),
                  "devices": devices, "tps": list(request.tps), "dtype": request.dtype,
                  "rate_scale": request.rate_scale, "splice": request.splice,
                  "warmup_s": request.warmup_s}
    hashes = {request.trace: report.sha256,
              request.model: sha256_file(request.model) if Path(request.model).is_file()
              else None}
    return ServePlan(scaling, section, parameters, hashes)


def _model_name(path: str) -> str:
    p = Path(path)
    return p.parent.name if p.name == "config.json" else p.stem


def candidate_tps(text: str | None) -> tuple[int, ...]:
    """``1,2`` -> (1, 2); None: every TP degree a replica may have."""
    if not text:
        return DEFAULT_TPS
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise UsageError(f"--tp: {text!r} is not a comma-separated list of integers") from None
    if not values or any(v not in DEFAULT_TPS for v in values):
        raise UsageError(f"--tp: each degree must be one of 1, 2, 4, 8, got {text!r}")
    return values

