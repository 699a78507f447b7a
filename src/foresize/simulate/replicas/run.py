"""Simulate scalers on one demand series and score them against the oracle.

Per step ``t``: replicas whose start-up finished become ready, the scaler decides
(see ``scalers``), then the step is served: ``served = min(demand, capacity x
usl_throughput(ready))``; the rest waits in one admission queue that later steps serve
first, and demand that waits longer than the SLO (``slo_s``; any wait past its own step
when none is set) is unserved (``service.admission_queue``). ``ServiceConfig.queue =
False`` drops the rest instead, as before issue #17. Billing counts every replica that
exists: ready, starting (a cold start is paid for) and draining (a removed ready
replica keeps running ``drain`` steps to finish its requests, without new work).

Metrics per policy: replica-hours and cost, unserved share of demand, minutes in
violation (steps with unserved demand, or a per-step P95 latency above ``slo_s`` when
one is set), modelled P95/P99 latency (``service``), scaling actions (steps whose
replica count the policy changed), and replica-hours relative to the oracle (with the
start-up delay) and to the zero-delay oracle.

With a ``NodePlan`` (``nodes``) replicas also need node slots: ``nodes.run_with_nodes``
runs the loop, the cost is the nodes' money, and rows add node-hours, interruptions,
replicas lost and ``unserved_node_extra`` (the unserved share above the same policy's
run without nodes: what provisioning delays and interruptions cost in service; it can
be negative, since predictive policies and the oracle then plan over the longer lead
time of start-up plus provisioning, and replicas come in whole nodes).
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from foresize.core.errors import InputError, UsageError
from foresize.simulate.replicas.nodes import NodePlan, run_with_nodes
from foresize.simulate.replicas.scalers import ScaleContext, Scaler, StepView, make_scaler
from foresize.simulate.replicas.service import (
    MAX_RHO,
    FloatArray,
    IntArray,
    Sizer,
    admission_queue,
    latency_quantiles,
    step_latency,
)

ZERO_DELAY = "oracle_nodelay"


@dataclass(frozen=True, slots=True)
class ServiceConfig:
    """The service and its billing; durations are in steps of the demand series."""

    capacity: float
    startup: int = 2
    drain: int = 0
    step_s: float = 60.0
    service_time_s: float = 1.0
    alpha: float = 0.0
    beta: float = 0.0
    min_replicas: int = 1
    max_replicas: int = 10_000
    price_per_replica_h: float = 0.0
    slo_s: float | None = None
    max_rho: float = MAX_RHO
    queue: bool = True  # excess demand waits (unserved: waited past the SLO); False: dropped

    def __post_init__(self) -> None:
        if not (math.isfinite(self.capacity) and self.capacity > 0):
            raise UsageError(f"--capacity must be > 0 per replica, got {self.capacity!r}")
        if self.startup < 0 or self.drain < 0:
            raise InputError(
                f"start-up and drain must be >= 0 steps, got {self.startup}, {self.drain}"
            )
        if not (math.isfinite(self.step_s) and self.step_s > 0):
            raise InputError(f"step must be > 0 seconds, got {self.step_s!r}")
        if not (math.isfinite(self.service_time_s) and self.service_time_s > 0):
            raise UsageError(f"--service-time must be > 0 seconds, got {self.service_time_s!r}")
        if self.price_per_replica_h < 0:
            raise UsageError(f"--price must be >= 0, got {self.price_per_replica_h}")
        if self.slo_s is not None and not self.slo_s > 0:
            raise UsageError(f"--slo must be > 0 seconds, got {self.slo_s}")
        if not 0 < self.max_rho < 1:
            raise InputError(f"max_rho must be in (0, 1), got {self.max_rho}")

    def sizer(self) -> Sizer:
        """The replica sizer for this service."""
        return Sizer(
            self.capacity,
            alpha=self.alpha,
            beta=self.beta,
            min_replicas=self.min_replicas,
            max_replicas=self.max_replicas,
        )


@dataclass(slots=True)
class Trajectory:
    """One policy's run: per-step replica counts and service."""

    policy: str
    demand: FloatArray
    desired: IntArray
    ready: IntArray
    starting: IntArray
    draining: IntArray
    served: FloatArray
    throughput: FloatArray
    actions: int
    wall_s: float
    offered: FloatArray
    notes: dict[str, Any] = field(default_factory=dict)
    nodes: IntArray | None = None  # nodes billed per step and pool, with a NodePlan

    @property
    def billed(self) -> IntArray:
        """Replicas paid for per step."""
        result: IntArray = self.ready + self.starting + self.draining
        return result


def simulate(
    demand: FloatArray,
    scaler: Scaler,
    config: ServiceConfig,
    *,
    visible: IntArray | None = None,
    offered: FloatArray | None = None,
    name: str | None = None,
    nodes: NodePlan | None = None,
) -> Trajectory:
    """Run ``scaler`` over ``demand``; ``visible[t]`` = steps a forecaster may see at t.

    ``offered`` is the queueing load per step in demand units when it differs from the
    demand (the mean concurrency of a step whose demand is its peak); the requests
    served carry the same share of it. ``nodes`` puts the replicas on node pools.
    """
    n = demand.size
    if n == 0:
        raise InputError("demand series is empty")
    if visible is None:
        visible = np.arange(n, dtype=np.int64)
    sizer = config.sizer()
    lead = config.startup + (nodes.lead(config.step_s) if nodes is not None else 0)
    ctx = ScaleContext(sizer=sizer, startup=lead, step_s=config.step_s, truth=demand)
    began = time.perf_counter()
    ready = max(sizer.min_replicas, min(int(scaler.start(ctx)), sizer.max_replicas))
    if nodes is not None:
        seen = visible

        def decide(t: int, n_ready: int, n_starting: int) -> int:
            view = StepView(t, demand[:t], demand[: int(seen[t])], n_ready, n_starting)
            return int(scaler.desired(view))

        loop = run_with_nodes(
            decide,
            ready,
            n,
            sizer=sizer,
            startup=config.startup,
            drain=config.drain,
            step_s=config.step_s,
            plan=nodes,
        )
        counts = {
            "desired": loop.desired,
            "ready": loop.ready,
            "starting": loop.starting,
            "draining": loop.draining,
        }
        return _trajectory(
            name or scaler.name,
            demand,
            counts,
            loop.actions,
            began,
            scaler,
            config,
            offered,
            sizer,
            loop.notes,
            loop.nodes,
        )
    starting: deque[list[int]] = deque()  # [ready_at, count], in start order
    draining: deque[list[int]] = deque()  # [until, count]
    n_starting = n_draining = actions = 0
    out = {k: np.zeros(n, dtype=np.int64) for k in ("desired", "ready", "starting", "draining")}
    for t in range(n):
        while starting and starting[0][0] <= t:
            ready += starting[0][1]
            n_starting -= starting.popleft()[1]
        while draining and draining[0][0] <= t:
            n_draining -= draining.popleft()[1]
        view = StepView(t, demand[:t], demand[: int(visible[t])], ready, n_starting)
        want = max(sizer.min_replicas, min(int(scaler.desired(view)), sizer.max_replicas))
        total = ready + n_starting
        if want > total:
            if config.startup == 0:
                ready += want - total
            else:
                starting.append([t + config.startup, want - total])
                n_starting += want - total
        elif want < total:
            excess = total - want
            while excess and starting:
                take = min(excess, starting[-1][1])
                starting[-1][1] -= take
                n_starting -= take
                excess -= take
                if starting[-1][1] == 0:
                    starting.pop()
            ready -= excess
            if excess and config.drain:
                draining.append([t + config.drain, excess])
                n_draining += excess
        actions += want != total
        for key, value in (
            ("desired", want),
            ("ready", ready),
            ("starting", n_starting),
            ("draining", n_draining),
        ):
            out[key][t] = value
    return _trajectory(
        name or scaler.name, demand, out, int(actions), began, scaler, config, offered, sizer
    )


def _trajectory(
    name: str,
    demand: FloatArray,
    out: dict[str, IntArray],
    actions: int,
    began: float,
    scaler: Scaler,
    config: ServiceConfig,
    offered: FloatArray | None,
    sizer: Sizer,
    node_notes: dict[str, Any] | None = None,
    nodes: IntArray | None = None,
) -> Trajectory:
    """Serve each step with the ready replicas and wrap the run up."""
    throughput = sizer.throughput(out["ready"])
    served = np.minimum(demand, throughput)
    load = demand if offered is None else np.minimum(offered, demand)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(demand > 0, served / demand, 0.0)
    notes: dict[str, Any] = {
        k: getattr(scaler, k) for k in ("n_refits", "fallbacks") if hasattr(scaler, k)
    }
    notes.update(getattr(scaler, "notes", {}))
    notes.update(node_notes or {})
    return Trajectory(
        name,
        demand,
        out["desired"],
        out["ready"],
        out["starting"],
        out["draining"],
        served,
        throughput,
        actions,
        time.perf_counter() - began,
        load * share,
        notes,
        nodes,
    )


def score(run: Trajectory, config: ServiceConfig) -> dict[str, Any]:
    """The metrics of one run (no oracle ratios; ``compare`` adds those)."""
    hours = float(run.billed.sum()) * config.step_s / 3600.0
    if config.queue:
        unserved = admission_queue(run.demand, run.throughput, step_s=config.step_s,
                                   wait_slo_s=config.slo_s or 0.0)
    else:
        unserved = run.demand - run.served
    total = float(run.demand.sum())
    violated = unserved > 1e-9 * np.maximum(1.0, run.demand)
    if config.slo_s is not None:
        p95_step = step_latency(
            run.offered, run.ready, run.throughput, config.service_time_s, max_rho=config.max_rho
        )
        violated |= np.nan_to_num(p95_step, nan=0.0) > config.slo_s
    latency = latency_quantiles(
        run.offered, run.ready, run.throughput, config.service_time_s, max_rho=config.max_rho
    )
    return {
        "policy": run.policy,
        "replica_hours": hours,
        "cost_usd": run.notes.get("node_cost_usd", hours * config.price_per_replica_h),
        "unserved_frac": float(unserved.sum()) / total if total > 0 else 0.0,
        "violation_min": float(violated.sum()) * config.step_s / 60.0,
        "latency_p95_s": latency[0.95],
        "latency_p99_s": latency[0.99],
        "actions": run.actions,
        "peak_replicas": int(run.billed.max()),
        "mean_ready": float(run.ready.mean()),
        "wall_s": run.wall_s,
        **run.notes,
    }


@dataclass(slots=True)
class Comparison:
    """Every policy's trajectory and score on one series, plus the oracle references."""

    runs: dict[str, Trajectory]
    rows: list[dict[str, Any]]
    interrupted: bool = False  # Ctrl-C: the rows of the policies that finished


def compare(
    demand: FloatArray,
    policies: Sequence[str],
    config: ServiceConfig,
    *,
    settings: dict[str, dict[str, Any]] | None = None,
    visible: IntArray | None = None,
    offered: FloatArray | None = None,
    on_policy: Callable[[str], None] | None = None,
    nodes: NodePlan | None = None,
) -> Comparison:
    """Simulate each policy (plus both oracles as references) and score it.

    ``settings[name]`` are keyword settings of that policy. Rows carry
    ``vs_oracle`` (replica-hours / the oracle's with the start-up delay) and
    ``vs_oracle_nodelay`` (/ the zero-delay oracle's), and ``reference`` on the two
    oracle rows the caller did not ask for. With ``nodes`` every run is on the node
    pools (the zero-delay oracle's with no provisioning delay nor interruptions: the
    lower bound in money too) and rows carry ``unserved_node_extra``.

    The two references run first, so that Ctrl-C during the policies still scores the
    ones that finished (``interrupted``; rows keep the order of ``policies``); Ctrl-C
    during the references re-raises, as nothing could be scored.
    """
    settings = settings or {}
    names = list(dict.fromkeys(policies))
    runs: dict[str, Trajectory] = {}
    order = [*names, *(["oracle"] if "oracle" not in names else []), ZERO_DELAY]
    references = ["oracle", ZERO_DELAY]
    interrupted = False
    try:
        for name in [*references, *(n for n in order if n not in references)]:
            runs[name] = _run_one(name, demand, config, settings=settings, visible=visible,
                                  offered=offered, nodes=nodes)
            if on_policy is not None:
                on_policy(name)
    except KeyboardInterrupt:
        if not all(name in runs for name in references):
            raise
        interrupted = True
    base = score(runs["oracle"], config)["replica_hours"]
    floor = score(runs[ZERO_DELAY], config)["replica_hours"]
    rows = []
    for name in (n for n in order if n in runs):
        row = score(runs[name], config)
        row["vs_oracle"] = row["replica_hours"] / base if base > 0 else math.nan
        row["vs_oracle_nodelay"] = row["replica_hours"] / floor if floor > 0 else math.nan
        row["reference"] = name not in names
        rows.append(row)
    return Comparison({n: runs[n] for n in order if n in runs}, rows, interrupted)


def _run_one(name: str, demand: FloatArray, config: ServiceConfig, *,
             settings: dict[str, dict[str, Any]], visible: IntArray | None,
             offered: FloatArray | None, nodes: NodePlan | None) -> Trajectory:
    """Simulate one policy, or the zero-delay oracle (no start-up, instant nodes)."""
    if name == ZERO_DELAY:
        zero = ServiceConfig(**{**_fields(config), "startup": 0})
        return simulate(demand, make_scaler("oracle"), zero, offered=offered, name=ZERO_DELAY,
                        nodes=None if nodes is None else nodes.instant())
    run = simulate(demand, make_scaler(name, **settings.get(name, {})), config,
                   visible=visible, offered=offered, nodes=nodes)
    if nodes is not None:  # what the node pools add to the unserved share
        bare = simulate(demand, make_scaler(name, **settings.get(name, {})), config,
                        visible=visible, offered=offered)
        extra = float((run.demand - run.served).sum()) - float((bare.demand - bare.served).sum())
        total = float(demand.sum())
        run.notes["unserved_node_extra"] = extra / total if total > 0 else 0.0
    return run


def _fields(config: ServiceConfig) -> dict[str, Any]:
    return {name: getattr(config, name) for name in ServiceConfig.__dataclass_fields__}
