"""One ``simulate serve`` study: a trace, a replica model, an SLO, policies and their sweeps.

The SLO is per request: its time to first token within ``ttft_s`` and its mean time per
later output token within ``tpot_s``; attainment is the share of requests that meet
both (a request that waits in the queue beyond the SLO is what "unserved" was). A policy
is tuned by sweeping its knob: the cheapest run (GPU-hours) at or above the target
attainment is its tuned result. Ratios compare tuned results: a predictive policy to
the best tuned reactive one (HPA, KPA, KEDA) and to the tuned oracle.

A warm-up (``ServeSetup.warmup_s``) is run but not scored: its requests count in no
attainment and its replica-seconds in no GPU-hours. It is the history every policy
starts from; without it the forecast-driven policies spend their first minutes with no
history (reactive, no hold) and a trace that bursts in those minutes (the code trace
does) is scored on a start-up transient rather than on the policy.

Capacity, the one number the forecast-driven policies size with, is calibrated on the
engine: the Poisson arrival rate of this trace's request mix (token pairs drawn from the
trace) at which ``CALIBRATION_REPLICAS`` replicas just meet the SLO, in work units
(replica-seconds of service per second, ``engine.work_per_request``) per replica.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from foresize.core.errors import InputError, UsageError
from foresize.core.units import parse_duration
from foresize.ingest.requests import ReplayInfo
from foresize.simulate.serve.engine import (
    FloatArray,
    RunResult,
    ServeEngine,
    Trace,
    billed_s,
    energy_kwh,
    work_per_request,
)
from foresize.simulate.serve.policies import (
    CONTROL_S,
    POLICIES,
    RATE_WINDOW_S,
    PolicyContext,
    Static,
    build_policy,
    sweep_grid,
    sweep_values,
)
from foresize.simulate.serve.replica import ReplicaModel

CALIBRATION_REPLICAS = 4
CALIBRATION_REQUESTS = 4_000
REACTIVE = ("hpa", "hpa_kv", "hpa_inflight", "kpa", "keda")
PREDICTIVE = ("predictive", "hybrid")


@dataclass(frozen=True, slots=True)
class Slo:
    """Per-request service levels and the share of requests that must meet them."""

    ttft_s: float = 2.0
    tpot_s: float = 0.1
    attainment: float = 0.99

    def to_dict(self) -> dict[str, float]:
        """JSON-ready."""
        return {"ttft_s": self.ttft_s, "tpot_s": self.tpot_s, "attainment": self.attainment}


def parse_slo(text: str, *, attainment: float = 0.99) -> Slo:
    """``ttft=2s,tpot=100ms`` -> Slo (either may be left out: its default stays)."""
    values: dict[str, float] = {}
    for part in text.split(","):
        key, sep, value = (s.strip() for s in part.partition("="))
        if not sep or key not in ("ttft", "tpot"):
            raise UsageError(f"--slo: {part!r} is not ttft=DURATION or tpot=DURATION")
        seconds = parse_duration(value) if re.search(r"[a-z]$", value) else float(value)
        if not seconds > 0:
            raise UsageError(f"--slo: {key} must be > 0, got {value}")
        values[f"{key}_s"] = seconds
    if not 0 < attainment < 1:
        raise UsageError(f"--attainment must be in (0, 1), got {attainment}")
    return Slo(**values, attainment=attainment)


def trace_from_frame(frame: pl.DataFrame) -> Trace:
    """A ``REQUEST_TRACE`` frame as engine arrays (seconds from the first arrival)."""
    us = frame["ts"].dt.epoch("us").to_numpy().astype(np.int64)
    return Trace((us - us[0]) / 1e6 if us.size else us.astype(np.float64),
                 frame["input_tokens"].to_numpy().astype(np.int64),
                 frame["output_tokens"].to_numpy().astype(np.int64))


def check_slo_floor(model: ReplicaModel, trace: Trace, slo: Slo) -> dict[str, float]:
    """The best TTFT and TPOT an idle replica gives this trace; an SLO below it is an error.

    TTFT floor: the prefill of the prompt at the attainment quantile of prompt lengths
    (fewer than that share of requests could meet a tighter TTFT even alone). TPOT
    floor: one decode step of a single sequence at that prompt's context.
    """
    prompt = int(np.quantile(trace.input_tokens, slo.attainment)) if trace.n else 1
    floor = {"ttft_s": model.prefill_s(prompt), "tpot_s": model.decode_step_s(1, prompt)}
    for key, label in (("ttft_s", "TTFT"), ("tpot_s", "TPOT")):
        if getattr(slo, key) < floor[key]:
            raise InputError(
                f"a {label} SLO of {getattr(slo, key) * 1e3:g} ms cannot be met even on an "
                f"idle replica: its floor for the p{100 * slo.attainment:g} prompt "
                f"({prompt:,} tokens) is {floor[key] * 1e3:.1f} ms on {model.device.name} "
                f"at TP {model.gpus}", hint="relax the SLO, or use more TP or a faster device")
    return floor


def attained(result: RunResult, trace: Trace, slo: Slo, since_s: float = 0.0
             ) -> tuple[FloatArray, FloatArray, float]:
    """TTFT and TPOT of the requests arriving from ``since_s`` on, and the share of them
    within both SLOs (requests of a warm-up before ``since_s`` are run, not scored).
    """
    keep = trace.arrival_s >= since_s
    first, finish = result.first_token_s[keep], result.finish_s[keep]
    out = trace.output_tokens[keep]
    ttft = first - trace.arrival_s[keep]
    later = np.maximum(out - 1, 1)
    tpot = np.where(out > 1, (finish - first) / later, 0.0)
    ok = (ttft <= slo.ttft_s) & (tpot <= slo.tpot_s)
    return ttft, tpot, float(ok.mean()) if ok.size else math.nan


@dataclass(frozen=True, slots=True)
class ServeSetup:
    """Everything a run needs besides the policy."""

    model: ReplicaModel
    trace: Trace
    slo: Slo
    replay: ReplayInfo
    price_per_gpu_h: float
    tick_s: float = 1.0
    max_replicas: int = 1_000
    warmup_s: float = 0.0  # run but not scored: the history every policy starts from
    rate_window_s: float = RATE_WINDOW_S  # what ``rate_oracle`` knows: the rate per window
    rate_plan: FloatArray | None = None  # per control step: what ``rate_oracle`` sizes to


def _poisson_trace(trace: Trace, rate: float, n: int, seed: int = 0) -> Trace:
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, trace.n, n)
    arrival = np.cumsum(rng.exponential(1.0 / rate, n))
    return Trace(arrival - arrival[0], trace.input_tokens[pick], trace.output_tokens[pick])


def calibrate(setup: ServeSetup) -> float:
    """Work per second one replica serves at the SLO (see the module docstring)."""
    trace, model = setup.trace, setup.model
    mean_work = float(work_per_request(model, trace).mean())
    n = CALIBRATION_REPLICAS

    def ok(rate: float) -> bool:
        sample = _poisson_trace(trace, rate, CALIBRATION_REQUESTS)
        result = ServeEngine(model, sample, tick_s=setup.tick_s).run(Static(n))
        return attained(result, sample, setup.slo)[2] >= setup.slo.attainment

    lo, hi = 0.0, n / mean_work  # at most n replicas' worth of work per second
    while ok(hi):
        lo, hi = hi, hi * 2
    for _ in range(12):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if ok(mid) else (lo, mid)
    if lo == 0.0:
        raise InputError("no arrival rate meets the SLO on idle replicas",
                         hint="relax the SLO or use a faster device")
    return lo * mean_work / n


def work_series(setup: ServeSetup) -> FloatArray:
    """Arriving work per second, in ``CONTROL_S`` steps (the oracle's truth)."""
    work = work_per_request(setup.model, setup.trace)
    steps = (setup.trace.arrival_s // CONTROL_S).astype(np.int64)
    size = int(steps.max()) + 1 if steps.size else 1
    series: FloatArray = np.bincount(steps, weights=work, minlength=size) / CONTROL_S
    return series


def context(setup: ServeSetup, capacity: float) -> PolicyContext:
    """The policy context of a setup at a calibrated capacity."""
    return PolicyContext(capacity, setup.model.kv_capacity_tokens, setup.model.startup_s,
                         setup.tick_s, work_series(setup), setup.max_replicas,
                         setup.slo.ttft_s, setup.rate_window_s, setup.rate_plan)


def score(setup: ServeSetup, result: RunResult) -> dict[str, Any]:
    """One run's row: cost, service levels, queue and scaling."""
    since = setup.warmup_s
    ttft, tpot, share = attained(result, setup.trace, setup.slo, since)
    gpu_h = billed_s(result, since) * setup.model.gpus / 3600
    many = setup.trace.output_tokens[setup.trace.arrival_s >= since] > 1
    ticks = {k: v[int(since // result.tick_s):] for k, v in result.ticks.items()}
    return {
        "gpu_hours": gpu_h,
        "cost_usd": gpu_h * setup.price_per_gpu_h,
        "energy_kwh": energy_kwh(setup.model, result, since),
        "attainment": share,
        "ttft_p50_s": float(np.quantile(ttft, 0.5)),
        "ttft_p99_s": float(np.quantile(ttft, 0.99)),
        "tpot_p50_ms": 1e3 * float(np.quantile(tpot[many], 0.5)) if many.any() else math.nan,
        "tpot_p99_ms": 1e3 * float(np.quantile(tpot[many], 0.99)) if many.any() else math.nan,
        "queue_mean": float(ticks["queue"].mean()) if ticks["queue"].size else 0.0,
        "queue_max": float(ticks["queue"].max()) if ticks["queue"].size else 0.0,
        "replicas_max": float(ticks["replicas"].max()) if ticks["replicas"].size else 0.0,
        "cold_starts": result.n_cold_starts,
        "preemptions": int(result.preemptions.sum()),
    }


def run_policy(setup: ServeSetup, name: str, knob: float | None, capacity: float,
               scale: float = 1.0) -> tuple[dict[str, Any], RunResult]:
    """Run one policy at one knob setting and capacity scale; the row and the raw result."""
    kind = POLICIES.get(name)
    value = kind.default if knob is None else knob
    policy = build_policy(name, value, context(setup, capacity * scale))
    engine = ServeEngine(setup.model, setup.trace, tick_s=setup.tick_s,
                         max_replicas=setup.max_replicas)
    result = engine.run(policy)
    return {"policy": name, "knob": kind.knob, "value": value, "capacity_scale": scale,
            **score(setup, result)}, result


def sweep_policy(setup: ServeSetup, name: str, capacity: float,
                 grid: Sequence[tuple[float, float]] | None = None, *,
                 refine: int = 0) -> list[dict[str, Any]]:
    """Rows for each (knob, capacity scale) of ``name`` (its registered sweep by default),
    then ``refine`` bisections of the knob toward the next cheaper swept value.

    Why refine: a coarse sweep tunes a policy only to its grid, and the step from the
    last setting that misses the target to the first that meets it can be most of a
    comparison's margin; every policy gets the same number of bisections.
    """
    rows = [run_policy(setup, name, v, capacity, c)[0] for v, c in (grid or sweep_grid(name))]
    if refine:
        rows += _refine(setup, name, capacity, rows, refine)
    return rows


def _refine(setup: ServeSetup, name: str, capacity: float, rows: list[dict[str, Any]],
            steps: int) -> list[dict[str, Any]]:
    """Bisect the tuned row's knob toward its cheaper neighbour in the sweep that missed,
    then (for a policy that also sweeps a capacity scale) the scale the same way.
    """
    best = tuned(rows, setup.slo.attainment)
    if best is None:
        return []
    kind = POLICIES.get(name)
    out: list[dict[str, Any]] = []
    order = list(sweep_values(name))  # safest last: the cheaper neighbour comes before
    at = order.index(best["value"]) if best["value"] in order else 0
    if at:
        out += _bisect(setup, name, capacity, best, "value", float(order[at - 1]), steps,
                       whole=kind.knob == "replicas")
    scales = list(kind.scales)  # largest (cheapest) first
    at = scales.index(best["capacity_scale"]) if best["capacity_scale"] in scales else 0
    if at:
        best = tuned([*rows, *out], setup.slo.attainment) or best
        out += _bisect(setup, name, capacity, best, "capacity_scale", float(scales[at - 1]),
                       steps)
    return out


def _bisect(setup: ServeSetup, name: str, capacity: float, best: dict[str, Any], field: str,
            misses: float, steps: int, *, whole: bool = False) -> list[dict[str, Any]]:
    """Bisect ``field`` of ``best`` (which meets the target) toward ``misses`` (which
    does not), keeping the other knob; whole-number knobs stop when no integer is left.
    """
    meets = float(best[field])
    out: list[dict[str, Any]] = []
    for _ in range(steps):
        mid = 0.5 * (meets + misses)
        if whole:
            mid = float(round(mid))
            if mid in (meets, misses):
                break
        value, scale = (mid, best["capacity_scale"]) if field == "value" \
            else (best["value"], mid)
        row = run_policy(setup, name, value, capacity, scale)[0]
        out.append(row)
        meets, misses = (mid, misses) if row["attainment"] >= setup.slo.attainment \
            else (meets, mid)
    return out


def tuned(rows: Sequence[dict[str, Any]], target: float) -> dict[str, Any] | None:
    """The cheapest row at or above ``target`` attainment (None: no knob value reaches it)."""
    meeting = [r for r in rows if r["attainment"] >= target]
    return min(meeting, key=lambda r: r["gpu_hours"]) if meeting else None


def compare(best: dict[str, dict[str, Any] | None]) -> dict[str, Any]:
    """Tuned predictive policies against the best tuned reactive one and the oracle."""
    reactive = [r for n, r in best.items() if n in REACTIVE and r is not None]
    top = min(reactive, key=lambda r: r["gpu_hours"]) if reactive else None
    oracle = best.get("oracle")
    out: dict[str, Any] = {"best_reactive": None if top is None else top["policy"]}
    for name in PREDICTIVE:
        row = best.get(name)
        if row is None:
            continue
        out[name] = {
            "vs_best_reactive": row["gpu_hours"] / top["gpu_hours"] if top else None,
            "saving_vs_best_reactive": 1 - row["gpu_hours"] / top["gpu_hours"] if top else None,
            "vs_oracle": row["gpu_hours"] / oracle["gpu_hours"] if oracle else None,
        }
    return out


@dataclass(slots=True)
class ServeStudy:
    """Rows of every run, each policy's tuned row, the comparison and the speed."""

    capacity: float
    rows: list[dict[str, Any]]
    best: dict[str, dict[str, Any] | None]
    comparison: dict[str, Any]
    floor: dict[str, float]
    requests_per_s: float
    results: dict[str, RunResult]
    interrupted: bool = False  # Ctrl-C: the policies whose runs all finished


def run_study(setup: ServeSetup, names: Sequence[str], *, sweep: bool,
              knobs: dict[str, float] | None = None,
              on_run: Callable[[str], None] | None = None) -> ServeStudy:
    """Run (or sweep) each policy on the setup; the oracle is always run as the reference.

    The oracle runs first, so that Ctrl-C keeps every policy whose runs all finished,
    compared with it (``interrupted``); rows keep the order of ``names``.
    """
    floor = check_slo_floor(setup.model, setup.trace, setup.slo)
    capacity = calibrate(setup)
    order = list(names) if "oracle" in names else [*names, "oracle"]
    swept: dict[str, list[dict[str, Any]]] = {}
    best: dict[str, dict[str, Any] | None] = {}
    results: dict[str, RunResult] = {}
    simulated, spent = 0, 0.0
    interrupted = False
    try:
        for name in ["oracle", *(n for n in order if n != "oracle")]:
            grid: list[tuple[float | None, float]] = list(sweep_grid(name)) if sweep \
                else [((knobs or {}).get(name), 1.0)]
            mine: list[dict[str, Any]] = []
            for value, scale in grid:
                start = time.perf_counter()
                row, result = run_policy(setup, name, value, capacity, scale)
                spent += time.perf_counter() - start
                simulated += setup.trace.n
                mine.append(row)
                if on_run is not None:
                    on_run(name)
            pick = tuned(mine, setup.slo.attainment) if sweep else mine[0]
            chosen = pick or max(mine, key=lambda r: r["attainment"])
            if sweep:  # the tuned setting again, for its trajectory (counted as a run)
                results[name] = run_policy(setup, name, chosen["value"], capacity,
                                           chosen["capacity_scale"])[1]
                if on_run is not None:
                    on_run(name)
            else:
                results[name] = result
            swept[name], best[name] = mine, pick
    except KeyboardInterrupt:
        if "oracle" not in swept:
            raise
        interrupted = True
    done = [n for n in order if n in swept]
    best = {n: best[n] for n in done}
    return ServeStudy(capacity, [row for n in done for row in swept[n]], best,
                      compare(best) if sweep else {}, floor,
                      simulated / spent if spent else math.nan,
                      {n: results[n] for n in done}, interrupted)


@dataclass(frozen=True, slots=True)
class ServeInputs:
    """What ``simulate serve`` was asked, as the user typed it (for the document)."""

    trace: str
    model: str
    device: str
    tp: int
    dtype: str
    slo: Slo
    rate_scale: float = 1.0
    splice: int = 1
    mapping: dict[str, str] | None = None
    mirror: str | None = None
    price_per_gpu_h: float | None = None
    overrides: dict[str, float] | None = None
    warmup_s: float = 0.0


def open_setup(inputs: ServeInputs) -> tuple[ServeSetup, dict[str, str | None], list[str]]:
    """Read the trace and the model, build the replica, replay the trace; check the floor.

    Returns the setup, the inputs' sha256 by source, and notes for stderr (what the
    reader sorted or dropped). Every check runs before any simulation, so a bad input
    fails fast with one line.
    """
    from pathlib import Path

    from foresize.core.io import sha256_file
    from foresize.graph.devices import device_name, get_device
    from foresize.graph.hf_config import read_hf_config
    from foresize.ingest.requests import read_request_source, replay
    from foresize.recommend.cost import load_prices
    from foresize.simulate.serve.replica import ReplicaSpec, build_replica

    device = get_device(inputs.device)  # an unknown device fails before any reading
    arch = read_hf_config(inputs.model)
    spec = ReplicaSpec(device=device.name, tp=inputs.tp, dtype=inputs.dtype)
    spec = spec.with_overrides(**(inputs.overrides or {}))
    name = Path(inputs.model).stem if Path(inputs.model).name != "config.json" \
        else Path(inputs.model).parent.name
    model = build_replica(arch, spec, model=name)
    frame, report = read_request_source(inputs.trace, mapping=inputs.mapping,
                                        mirror=inputs.mirror)
    frame, info = replay(frame, rate_scale=inputs.rate_scale, splice=inputs.splice)
    price = inputs.price_per_gpu_h
    if price is None:
        price = load_prices().gpu_price(device_name(device.name)).get("on_demand") or 0.0
    setup = ServeSetup(model, trace_from_frame(frame), inputs.slo, info, price,
                       warmup_s=inputs.warmup_s)
    check_slo_floor(model, setup.trace, setup.slo)
    if setup.trace.n and not 0 <= inputs.warmup_s < setup.trace.arrival_s[-1]:
        raise UsageError(f"--warmup {inputs.warmup_s:g} s leaves no request to score: the "
                         f"replay's last arrival is at {setup.trace.arrival_s[-1]:.0f} s")
    notes = [report.summary()] if report.n_dropped or report.reordered else []
    notes += report.notes
    hashes = {inputs.trace: report.sha256,
              inputs.model: sha256_file(inputs.model) if Path(inputs.model).is_file() else None}
    return setup, hashes, notes


def summary_frame(study: ServeStudy) -> pl.DataFrame:
    """One row per policy: its tuned run (or its only run), with the ratio to the oracle."""
    oracle = study.best.get("oracle")
    rows: list[dict[str, Any]] = []
    for name, row in study.best.items():
        if row is None:
            rows.append({"policy": name, "status": "no knob value reaches the target"})
            continue
        vs = row["gpu_hours"] / oracle["gpu_hours"] if oracle and oracle["gpu_hours"] else None
        rows.append({**row, "vs_oracle": vs, "status": "ok"})
    return pl.DataFrame(rows, infer_schema_length=None)


def study_document(setup: ServeSetup, inputs: ServeInputs, study: ServeStudy, *,
                   sweep: bool) -> dict[str, Any]:
    """The JSON document: inputs, the replica model, the replay, results and sweeps."""
    return {
        "inputs_given": {"trace": inputs.trace, "model": inputs.model,
                         "device": setup.model.device.name, "tp": inputs.tp,
                         "dtype": inputs.dtype},
        "replay": setup.replay.to_dict(),
        "slo": setup.slo.to_dict(),
        "slo_floor": study.floor,
        "replica": setup.model.describe(),
        "price_per_gpu_h": setup.price_per_gpu_h,
        "capacity_work_per_replica": study.capacity,
        "tick_s": setup.tick_s,
        "warmup_s": setup.warmup_s,
        "policies": {n: {"knob": POLICIES.get(n).knob, "sweep": list(sweep_values(n)),
                         "capacity_scales": list(POLICIES.get(n).scales)}
                     for n in study.best},
        "results": [r for r in study.best.values() if r is not None],
        "unmet": [n for n, r in study.best.items() if r is None],
        "comparison": study.comparison,
        "sweep": study.rows if sweep else [],
        "requests_simulated_per_s": study.requests_per_s,
        "interrupted": study.interrupted,
        "partial": study.interrupted,
    }


def plot_study(setup: ServeSetup, study: ServeStudy, path: Any, *, window_s: float = 900.0
               ) -> None:
    """GPU-hours against attainment per policy (the sweep), and one window of replicas."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from foresize.core.io import atomic_write

    fig, (curves, window) = plt.subplots(1, 2, figsize=(13, 4.8))
    for name in study.best:
        rows = sorted((r for r in study.rows if r["policy"] == name),
                      key=lambda r: r["gpu_hours"])
        if rows:
            curves.plot([r["gpu_hours"] for r in rows], [100 * r["attainment"] for r in rows],
                        marker="o", ms=3, label=name)
    curves.axhline(100 * setup.slo.attainment, color="grey", lw=0.8, ls="--")
    curves.set(xlabel="GPU-hours", ylabel="SLO attainment (%)", xscale="log",
               ylim=(max(0.0, 100 * setup.slo.attainment - 15), 100.5),
               title=f"{setup.model.model} on {setup.model.device.name} x{setup.model.gpus}, "
               f"TTFT {setup.slo.ttft_s:g}s TPOT {1e3 * setup.slo.tpot_s:g}ms")
    curves.legend(fontsize=8)
    tick = setup.tick_s
    work = setup.trace.arrival_s
    peak = float(np.argmax(np.bincount((work // window_s).astype(np.int64)))) * window_s
    for name, result in study.results.items():
        series = result.ticks["replicas"]
        t = np.arange(series.size) * tick + tick
        keep = (t >= peak) & (t < peak + window_s)
        window.step(t[keep] / 60, series[keep], where="post", label=name)
    arrivals = np.bincount(((work[(work >= peak) & (work < peak + window_s)] - peak) // 10)
                           .astype(np.int64))
    twin = window.twinx()
    twin.bar(peak / 60 + np.arange(arrivals.size) * 10 / 60, arrivals / 10, width=10 / 60,
             color="grey", alpha=0.25)
    twin.set_ylabel("arrivals per s")
    window.set(xlabel="minutes", ylabel="replicas (ready + starting)",
               title=f"the busiest {window_s / 60:g} minutes ({setup.replay.describe()})")
    window.legend(fontsize=8)
    fig.tight_layout()
    with atomic_write(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
