"""The discrete-event engine: time-based replay of a trace on a cluster.

Pods arrive at ``arrival_s``, wait in a queue, start when the placement policy finds
them a node, and leave once they have run ``duration_s``. Events live on one heap keyed
by (time, kind, job), completions before arrivals at equal times, so a run is a pure
function of (trace, cluster, policies, seed).

Three policy kinds compose (STYLE 2.4): the queue orders the pending pods, placement
picks a node, and preemption, asked only when placement finds none, names running pods
to evict. Evicted pods go back to the queue with the service they attained and count
as preemptions. ``restart`` says what a restarted pod still has to run:

* ``"resume"`` (default): the remaining duration, ``duration - useful service``. Trace
  durations are the work a job needs, and preemptive GPU schedulers (Tiresias, Gandiva,
  Gavel) checkpoint and resume; a preempted job finishes later by the time it waited.
* ``"restart"``: the whole duration again (a Kubernetes pod killed without checkpoint);
  the service thrown away is reported as ``lost_gpu_s``.

An optional admission policy (``carbon.CarbonAware``) may hold an arriving pod until a
later time; it then enters the queue as if it arrived then.

Optional node pools (:class:`Autoscaling`) make the cluster elastic: pool slots are
absent, provisioning or ready; an autoscaler (``policies.autoscale``) decides on ticks
every ``every_s`` which nodes to request (ready after the pool's provisioning delay, a
node-ready event) and which empty ones to remove. Absent slots are masked out of every
pod's allowed nodes and hold no free resources, so placement and preemption policies
work unchanged. Without pools none of this runs.

Scheduling passes are cheap by construction: an arrival only needs the new pods tried
(nothing was freed, so older pending pods still do not fit), and a completion retries
the pending pods in queue order, skipping at once those that need more than the largest
free CPU, memory, GPU share or idle-GPU count of any node (unless preemption can help).
Stale completions of evicted runs stay on the heap and are skipped when popped.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np

from foresize.simulate.cluster.autoscaler import (
    ABSENT,
    PROVISIONING,
    READY,
    Autoscaler,
    AutoscaleView,
    ScaleDecision,
)
from foresize.simulate.cluster.carbon import HOUR_S, Powered, Series, account, diurnal
from foresize.simulate.cluster.metrics import delay_stats, jain_fairness
from foresize.simulate.cluster.placement import ClusterView, PlacementPolicy, PodRequest
from foresize.simulate.cluster.pools import FIXED_POOL, NodePool, PoolLayout
from foresize.simulate.cluster.preemption import (
    NoPreemption,
    PreemptionPolicy,
    PreemptionView,
    fits_after,
)
from foresize.simulate.cluster.queue import QueuePolicy, QueueView
from foresize.simulate.cluster.state import (
    FULL_GPU_MILLI,
    MAX_GPUS_PER_NODE,
    Cluster,
    ClusterState,
    IntArray,
    Placement,
)
from foresize.simulate.cluster.workload import FloatArray, Workload

# event kinds, in processing order at equal times; the tick comes last so an autoscaler
# sees the state after the scheduling pass of its instant
_COMPLETION, _NODE_READY, _ARRIVAL, _TICK = 0, 1, 2, 3
_NODE_LOG_COLUMNS = ("pool", "node", "requested_s", "ready_s", "end_s", "added", "removed")
Tick = Callable[[float], None]
Restart = Literal["resume", "restart"]


class AdmissionPolicy(Protocol):
    """Decides when an arriving pod enters the queue (``now_s``: at once)."""

    def release_at(self, job: int, now_s: float, workload: Workload, /) -> float:
        """The time at which ``job`` joins the queue, ``>= now_s``."""
        ...


@dataclass(frozen=True, slots=True)
class Autoscaling:
    """Node pools and the autoscaler that sizes them.

    ``layout`` maps the cluster's node slots to pools (``pools.with_pools``). With
    ``policy`` None the pools keep their initial size and there are no ticks. Ticks run
    every ``every_s`` from the first arrival while work remains (events due or pods
    pending), then while some pool is above its minimum for up to ``tail_s`` after the
    last pod event, so that idle nodes are seen scaling down; a node still up when the
    run ends is billed to the run's last event.
    """

    layout: PoolLayout
    policy: Autoscaler | None = None
    every_s: float = 60.0
    tail_s: float = 3600.0

    def __post_init__(self) -> None:
        if not (self.every_s > 0 and self.tail_s >= 0):
            msg = (f"autoscaling needs every_s > 0 and tail_s >= 0, got {self.every_s}, "
                   f"{self.tail_s}")
            raise ValueError(msg)


@dataclass(frozen=True, slots=True)
class ReplayResult:
    """Per-pod outcomes and utilisation over time.

    ``start_s`` is a pod's first start and ``end_s`` its completion (NaN: never). Each
    run of a pod is one row of the ``run_*`` arrays (a preempted pod has several).
    """

    start_s: FloatArray
    end_s: FloatArray
    node: IntArray  # node of the last run, -1 if never started
    never_fit: IntArray  # pods no empty node could host
    released_s: FloatArray  # when each pod entered the queue (arrival unless held)
    preemptions: IntArray  # times each pod was evicted
    run_job: IntArray
    run_node: IntArray
    run_start_s: FloatArray
    run_end_s: FloatArray
    lost_gpu_s: float  # service thrown away by restarts (0 under "resume")
    times_s: FloatArray  # utilisation samples, one per state change
    cpu_util: FloatArray
    memory_util: FloatArray
    gpu_util: FloatArray
    n_events: int
    wall_s: float
    pools: tuple[NodePool, ...] = ()
    # one row per node lifetime in a pool, columns _NODE_LOG_COLUMNS (NaN ready: never)
    node_log: FloatArray = field(default_factory=lambda: np.zeros((0, len(_NODE_LOG_COLUMNS))))
    provision_wait_s: FloatArray = field(default_factory=lambda: np.zeros(0))

    def summary(self, workload: Workload, cluster: Cluster, *,
                intensity: Series | None = None) -> dict[str, Any]:
        """The metrics a scheduling paper reports, as one JSON-ready dictionary.

        ``intensity`` (gCO2/kWh) defaults to the synthetic ``carbon.diurnal()``.
        """
        started = np.isfinite(self.start_s)
        done = np.isfinite(self.end_s)
        arrival = workload.arrival_s
        wait = self.start_s[started] - arrival[started]
        jct = self.end_s[done] - arrival[done]
        gpus = workload.gpu_demand_milli / FULL_GPU_MILLI
        run_gpus = gpus[self.run_job]
        by_tenant = np.bincount(workload.tenant[self.run_job],
                                weights=run_gpus * (self.run_end_s - self.run_start_s),
                                minlength=len(workload.tenants))
        span = (float(arrival.min()), float(np.nanmax(self.end_s)) if done.any()
                else float(arrival.min()))
        return {
            "n_pods": len(workload),
            "n_started": int(started.sum()),
            "n_never_fit": int(self.never_fit.size),
            "n_unscheduled": int((~started).sum()) - int(self.never_fit.size),
            "queueing_delay": delay_stats(wait),
            "jct": delay_stats(jct),
            "makespan_s": span[1] - span[0] if done.any() else float("nan"),
            "mean_util": {"cpu": _time_mean(self.times_s, self.cpu_util),
                          "memory": _time_mean(self.times_s, self.memory_util),
                          "gpu": _time_mean(self.times_s, self.gpu_util)},
            "jain_fairness_gpu_time": jain_fairness(by_tenant),
            "preemptions": self._preemptions(workload),
            "deadlines": self._deadlines(workload),
            "held": {"n": int((self.released_s > arrival).sum()),
                     "mean_s": float((self.released_s - arrival).mean())},
            "energy": account(cluster, intensity or diurnal(), node=self.run_node,
                              start_s=self.run_start_s, end_s=self.run_end_s,
                              gpus=run_gpus, span_s=span, powered=self._powered(cluster, span)),
            **({"autoscale": self._autoscale()} if self.pools else {}),
            "n_events": self.n_events,
            "events_per_second": self.n_events / self.wall_s if self.wall_s > 0 else float("nan"),
            "wall_s": self.wall_s,
        }

    def _powered(self, cluster: Cluster, span: tuple[float, float]) -> Powered | None:
        """When each node is up: fixed nodes over the whole span, pool nodes from request
        to removal (as billed); ``None`` when there are no pools (every node, whole span).
        """
        if not self.pools:
            return None
        n_fixed = cluster.n_nodes - sum(pool.max_nodes for pool in self.pools)
        log = dict(zip(_NODE_LOG_COLUMNS, self.node_log.T, strict=True))
        fixed = np.arange(n_fixed)
        return (np.concatenate([fixed, log["node"].astype(np.int64)]),
                np.concatenate([np.full(n_fixed, span[0]), log["requested_s"]]),
                np.concatenate([np.full(n_fixed, span[1]), log["end_s"]]))

    def _autoscale(self) -> dict[str, Any]:
        """Node-hours and cost per pool (billed from request to removal, as clouds bill
        booting instances), scale-ups and -downs, and the part of pods' waits spent on
        the provisioning of the node they then started on.
        """
        log = dict(zip(_NODE_LOG_COLUMNS, self.node_log.T, strict=True))
        hours = (log["end_s"] - log["requested_s"]) / HOUR_S
        pools = {}
        for k, pool in enumerate(self.pools):
            mine = log["pool"] == k
            node_hours = float(hours[mine].sum())
            pools[pool.name] = {"node_hours": node_hours,
                                "cost_usd": node_hours * pool.price_per_node_h,
                                "scale_ups": int(log["added"][mine].sum()),
                                "scale_downs": int(log["removed"][mine].sum())}
        waited = self.provision_wait_s[self.provision_wait_s > 0]
        return {
            "node_hours": sum(p["node_hours"] for p in pools.values()),
            "cost_usd": sum(p["cost_usd"] for p in pools.values()),
            "scale_ups": int(log["added"].sum()), "scale_downs": int(log["removed"].sum()),
            "provisioning_wait": {"n_pods": int(waited.size), "total_s": float(waited.sum()),
                                  "mean_s": float(waited.mean()) if waited.size else 0.0},
            "pools": pools,
        }

    def _preemptions(self, workload: Workload) -> dict[str, Any]:
        counts = np.bincount(workload.tenant, weights=self.preemptions,
                             minlength=len(workload.tenants))
        return {"total": int(self.preemptions.sum()),
                "n_pods_preempted": int((self.preemptions > 0).sum()),
                "by_tenant": {t: int(c) for t, c in zip(workload.tenants, counts, strict=True)},
                "lost_gpu_s": self.lost_gpu_s}

    def _deadlines(self, workload: Workload) -> dict[str, Any]:
        """Pods with a deadline that finished after it or never finished (never-fit
        pods left out: no scheduler could have met them).
        """
        has = np.isfinite(workload.deadline_s)
        has[self.never_fit] = False
        missed = has & ~(self.end_s <= workload.deadline_s)  # NaN end: missed
        n = int(has.sum())
        return {"n_with_deadline": n, "n_missed": int(missed.sum()),
                "miss_rate": int(missed.sum()) / n if n else float("nan")}


def _time_mean(t: FloatArray, v: FloatArray) -> float:
    if t.size < 2 or t[-1] <= t[0]:
        return float(v.mean()) if v.size else float("nan")
    return float((v[:-1] * np.diff(t)).sum() / (t[-1] - t[0]))


class _Replay:
    """State of one replay; ``run`` drives the event loop."""

    def __init__(self, workload: Workload, cluster: Cluster, placement: PlacementPolicy,
                 queue: QueuePolicy, preemption: PreemptionPolicy,
                 admission: AdmissionPolicy | None, restart: Restart, seed: int,
                 scaling: Autoscaling | None) -> None:
        self.w, self.cluster = workload, cluster
        self.placement, self.queue = placement, queue
        self.preemption, self.admission, self.restart = preemption, admission, restart
        self.state = ClusterState(cluster)
        self.rng = np.random.default_rng(seed)
        self.masks = workload.node_masks(cluster)
        n = len(workload)
        self.start = np.full(n, np.nan)
        self.end = np.full(n, np.nan)
        self.node = np.full(n, -1, dtype=np.int64)
        self.released = workload.arrival_s.copy()
        self.held = np.zeros(n, dtype=bool)
        self.running = np.zeros(n, dtype=bool)
        self.gpus_held = np.zeros((n, MAX_GPUS_PER_NODE), dtype=bool)
        self.attained = np.zeros(n)
        self.run_start = np.full(n, np.nan)
        self.remaining = workload.duration_s.astype(np.float64, copy=True)
        self.ends_at = np.full(n, np.nan)
        self.preempted = np.zeros(n, dtype=np.int64)
        self.lost_gpu_s = 0.0
        self.runs: list[tuple[int, int, float, float]] = []
        self.where: dict[int, Placement] = {}
        self.pending: list[int] = []
        self.demand = np.stack([workload.cpu_milli, workload.memory_mib,
                                workload.gpu_demand_milli], axis=1).astype(np.float64)
        self.usage = np.zeros((len(workload.tenants), 3))
        self.samples: list[tuple[float, float, float, float]] = []
        self.scaling = scaling
        self.t0 = self.last_work = float(workload.arrival_s.min())
        m = cluster.n_nodes
        self.status = np.full(m, READY, dtype=np.int64)
        self.pods_on = np.zeros(m, dtype=np.int64)
        self.empty_since = np.full(m, self.t0)
        self.requested = np.full(m, self.t0)
        self.ready_at = np.full(m, self.t0)
        self.added = np.zeros(m, dtype=bool)
        self.node_log: list[tuple[float, ...]] = []
        self.provision_wait = np.zeros(n)
        if scaling is not None:
            self.start_pools(scaling.layout)
        self.refresh_nodes()

    def start_pools(self, layout: PoolLayout) -> None:
        """Slots beyond each pool's initial size start absent."""
        if layout.node_pool.shape != (self.cluster.n_nodes,):
            msg = (f"pool layout covers {layout.node_pool.size} nodes, the cluster has "
                   f"{self.cluster.n_nodes}: build both with pools.with_pools")
            raise ValueError(msg)
        for k, pool in enumerate(layout.pools):
            for node in layout.slots(k)[pool.initial_nodes:].tolist():
                self.status[node] = ABSENT
                self.state.set_up(node, up=False)
        absent = self.status == ABSENT
        self.empty_since[absent] = self.requested[absent] = self.ready_at[absent] = np.nan

    def refresh_nodes(self) -> None:
        """After nodes come or go: the nodes pods may use, and the capacity of those."""
        up = self.status == READY
        c = self.cluster
        self.live_masks = self.masks & up[None, :] if self.scaling is not None else self.masks
        self.capacity = np.array([c.cpu_milli[up].sum(), c.memory_mib[up].sum(),
                                  int(c.n_gpu[up].sum()) * FULL_GPU_MILLI], dtype=np.float64)

    def request(self, i: int) -> PodRequest:
        w = self.w
        return PodRequest(int(w.cpu_milli[i]), int(w.memory_mib[i]), int(w.num_gpu[i]),
                          int(w.gpu_milli[i]), self.live_masks[w.spec_id[i]])

    def view(self) -> ClusterView:
        return ClusterView.of(self.state, self.rng)

    def preemption_view(self, now: float) -> PreemptionView:
        """Built once per pass: it holds the live arrays, so it stays current."""
        s = self.state
        return PreemptionView(now, self.w, self.masks, s.cpu_free, s.memory_free, s.gpu_free,
                              self.running, self.node, self.gpus_held, self.attained,
                              self.run_start)

    def never_fits(self) -> IntArray:
        """Pods that even an empty cluster cannot host (checked once, vectorised)."""
        w, c = self.w, self.cluster
        fits = ((w.cpu_milli[:, None] <= c.cpu_milli[None, :])
                & (w.memory_mib[:, None] <= c.memory_mib[None, :])
                & self.masks[w.spec_id])
        if c.partitioned:  # an empty node's GPUs take at most their largest slice
            fit = np.sort(ClusterState(c).gpu_fit, axis=1)[:, ::-1]
            kth = fit[:, np.clip(w.num_gpu - 1, 0, MAX_GPUS_PER_NODE - 1)].T  # (pods, nodes)
            fits &= (w.num_gpu[:, None] == 0) | (w.gpu_milli[:, None] <= kth)
            fits &= w.num_gpu[:, None] <= MAX_GPUS_PER_NODE
        else:  # on an empty node every GPU has 1000 milli free
            fits &= w.num_gpu[:, None] <= c.n_gpu[None, :]
        result: IntArray = np.flatnonzero(~fits.any(axis=1))
        return result

    def order(self, now: float, pods: list[int]) -> list[int]:
        if len(pods) < 2:
            return pods
        w, ids = self.w, np.asarray(pods, dtype=np.int64)
        view = QueueView(
            now_s=now, job_ids=ids, arrival_s=self.released[ids], priority=w.priority[ids],
            tenant=w.tenant[ids], est_duration_s=w.duration_s[ids],
            deadline_s=w.deadline_s[ids], attained_s=self.attained[ids],
            demand=self.demand[ids], capacity=self.capacity, tenant_usage=self.usage.copy())
        return [pods[j] for j in self.queue.order(view).tolist()]

    def start_run(self, i: int, now: float, where: Placement,
                  heap: list[tuple[float, int, int]]) -> None:
        w = self.w
        where = self.state.allocate(int(w.cpu_milli[i]), int(w.memory_mib[i]),
                                    int(w.gpu_milli[i]), where)
        self.usage[w.tenant[i]] += self.demand[i]
        self.where[i] = where
        self.running[i] = True
        self.gpus_held[i, list(where.gpus)] = True
        self.node[i], self.run_start[i] = where.node, now
        if np.isnan(self.start[i]):
            self.start[i] = now
            if self.ready_at[where.node] == now:  # waited for this node to come up
                self.provision_wait[i] = now - max(float(self.released[i]),
                                                   float(self.requested[where.node]))
        self.pods_on[where.node] += 1
        self.empty_since[where.node] = np.nan
        self.ends_at[i] = now + float(self.remaining[i])
        heapq.heappush(heap, (float(self.ends_at[i]), _COMPLETION, i))

    def stop_run(self, i: int, now: float) -> float:
        """Free a running pod's resources and record the run; returns its length."""
        w = self.w
        where = self.where.pop(i)
        self.state.release(int(w.cpu_milli[i]), int(w.memory_mib[i]), int(w.gpu_milli[i]),
                           where)
        self.usage[w.tenant[i]] -= self.demand[i]
        self.running[i] = False
        self.gpus_held[i] = False
        ran = now - float(self.run_start[i])
        self.attained[i] += ran
        self.runs.append((i, where.node, float(self.run_start[i]), now))
        self.run_start[i] = np.nan
        self.pods_on[where.node] -= 1
        if self.pods_on[where.node] == 0:
            self.empty_since[where.node] = now
        return ran

    def evict(self, victims: list[int], job: int, now: float, view: PreemptionView) -> None:
        """Evict ``victims`` for ``job``; a set that breaks the contract is a policy bug."""
        nodes = {int(self.node[v]) for v in victims}
        if (not all(self.running[v] for v in victims) or len(nodes) != 1
                or not fits_after(job, nodes.pop(), victims, view)):
            msg = (f"preemption policy {self.preemption.name!r} chose victims {victims} that "
                   f"are not running on one node where pod {job} then fits")
            raise RuntimeError(msg)
        gpus = self.w.gpu_demand_milli / FULL_GPU_MILLI
        for v in victims:
            ran = self.stop_run(v, now)
            self.preempted[v] += 1
            if self.restart == "resume":
                self.remaining[v] -= ran
            else:
                self.lost_gpu_s += ran * float(gpus[v])

    def try_place(self, now: float, candidates: list[int],
                  heap: list[tuple[float, int, int]]) -> None:
        """Place ``candidates`` in queue order, preempting where the policy says so;
        those that do not fit stay pending, evicted pods join them.
        """
        w = self.w
        pview = self.preemption_view(now)
        bounds = self.bounds()
        changed: list[int] = []
        for i in self.order(now, candidates):
            cpu_max, mem_max, share_max, idle_max = bounds
            quick_no = (w.cpu_milli[i] > cpu_max or w.memory_mib[i] > mem_max
                        or w.gpu_milli[i] > share_max
                        or (w.num_gpu[i] > 1 and w.num_gpu[i] > idle_max))
            where = None if quick_no else self.placement.place(self.request(i), self.view())
            if where is None:
                victims = list(self.preemption.victims(i, pview))
                if not victims:
                    continue
                self.evict(victims, i, now, pview)
                changed += victims
                where = self.placement.place(self.request(i), self.view())
                if where is None:
                    msg = f"pod {i} fits after preemption but placement found no node"
                    raise RuntimeError(msg)
                self.start_run(i, now, where, heap)
                bounds = self.bounds()
            else:
                self.start_run(i, now, where, heap)
            changed.append(i)
        if changed:
            self.pending = [i for i in dict.fromkeys(self.pending + changed)
                            if not self.running[i]]

    def bounds(self) -> tuple[int, int, int, int]:
        """Largest free CPU, memory, GPU share and idle-GPU count of any node."""
        s = self.state
        return (int(s.cpu_free.max()), int(s.memory_free.max()), int(s.gpu_free.max()),
                int((s.gpu_free == FULL_GPU_MILLI).sum(axis=1).max()))

    def sample(self, now: float) -> None:
        """Utilisation of the nodes up now (absent slots hold nothing free)."""
        s, cap = self.state, self.capacity
        self.samples.append((
            now, 1.0 - float(s.cpu_free.sum()) / cap[0] if cap[0] else 0.0,
            1.0 - float(s.memory_free.sum()) / cap[1] if cap[1] else 0.0,
            1.0 - float(s.gpu_free.sum()) / cap[2] if cap[2] else 0.0))

    def autoscale(self, scaling: Autoscaling, policy: Autoscaler, now: float,
                  heap: list[tuple[float, int, int]]) -> None:
        """One autoscaler tick: decide, apply, and schedule the next tick if useful."""
        layout, w = scaling.layout, self.w
        ids = np.asarray(self.pending, dtype=np.int64)
        pools = layout.pools
        fits = np.array([[_fits_empty(w, int(i), p) for p in pools]
                         for i in ids.tolist()], dtype=bool).reshape(ids.size, len(pools))
        s = self.state
        view = AutoscaleView(
            now, pools, layout.node_pool.copy(), self.status.copy(), self.empty_since.copy(),
            s.cpu_free.copy(), s.memory_free.copy(), s.gpu_free.copy(), ids,
            self.released[ids], np.stack([w.cpu_milli[ids], w.memory_mib[ids],
                                          w.num_gpu[ids], w.gpu_milli[ids]], axis=1),
            fits, self.rng)
        self.apply(layout, policy.name, policy.decide(view), now, heap)
        size = self.pool_size(layout)
        above_min = any(size[k] > p.min_nodes for k, p in enumerate(pools))
        later = now + scaling.every_s
        if heap or (later <= self.last_work + scaling.tail_s
                    and (self.pending or above_min)):
            heapq.heappush(heap, (later, _TICK, -1))

    def pool_size(self, layout: PoolLayout) -> IntArray:
        """Ready or provisioning nodes per pool."""
        up = (self.status != ABSENT) & (layout.node_pool != FIXED_POOL)
        result: IntArray = np.bincount(layout.node_pool[up], minlength=layout.n_pools)
        return result

    def apply(self, layout: PoolLayout, name: str, decision: ScaleDecision, now: float,
              heap: list[tuple[float, int, int]]) -> None:
        """Request the added nodes (capped at ``max_nodes``) and delete the removed ones;
        a removal of a busy, absent or fixed node, or below ``min_nodes``, is a policy bug.
        """
        if len(decision.add) > layout.n_pools:
            msg = (f"autoscaler {name!r} adds to {len(decision.add)} pools; there are "
                   f"{layout.n_pools}")
            raise RuntimeError(msg)
        for k, count in enumerate(decision.add):
            slots = layout.slots(k)
            for node in slots[self.status[slots] == ABSENT][:max(count, 0)].tolist():
                self.status[node] = PROVISIONING
                self.requested[node], self.added[node] = now, True
                self.ready_at[node] = now + layout.pools[k].provision_delay_s
                heapq.heappush(heap, (float(self.ready_at[node]), _NODE_READY, node))
        size = self.pool_size(layout)
        for node in decision.remove:
            pool = int(layout.node_pool[node])
            if (pool == FIXED_POOL or self.status[node] != READY or self.pods_on[node]
                    or size[pool] <= layout.pools[pool].min_nodes):
                msg = (f"autoscaler {name!r} removed node {node}, which is not a ready, "
                       "empty pool node above its pool's minimum")
                raise RuntimeError(msg)
            size[pool] -= 1
            self.close_node(layout, node, now, removed=True)
            self.status[node] = ABSENT
            self.state.set_up(node, up=False)
            self.empty_since[node] = np.nan
        if decision.remove:
            self.refresh_nodes()

    def close_node(self, layout: PoolLayout, node: int, now: float, *, removed: bool) -> None:
        """Log one node lifetime (billing runs from its request to ``now``)."""
        self.node_log.append((float(layout.node_pool[node]), float(node),
                              float(self.requested[node]), float(self.ready_at[node]), now,
                              float(self.added[node]), float(removed)))

    def node_ready(self, node: int, now: float) -> None:
        """A requested node has booted: it is empty and usable from now."""
        self.status[node] = READY
        self.state.set_up(node, up=True)
        self.empty_since[node] = now
        self.refresh_nodes()

    def arrive(self, i: int, now: float, heap: list[tuple[float, int, int]]) -> bool:
        """Admit an arriving pod, or hold it (re-queued as an arrival later)."""
        if self.admission is None or self.held[i]:
            return True
        self.held[i] = True
        release = self.admission.release_at(i, now, self.w)
        if release <= now:
            return True
        self.released[i] = release
        heapq.heappush(heap, (release, _ARRIVAL, i))
        return False

    def run(self, tick: Tick | None) -> ReplayResult:
        began = time.perf_counter()
        w = self.w
        never = self.never_fits()
        skip = np.zeros(len(w), dtype=bool)
        skip[never] = True
        heap: list[tuple[float, int, int]] = [
            (float(w.arrival_s[i]), _ARRIVAL, int(i)) for i in np.flatnonzero(~skip)]
        if self.scaling is not None and self.scaling.policy is not None:
            heap.append((self.t0, _TICK, -1))
        heapq.heapify(heap)
        n_events = 0
        now = self.t0
        while heap:
            now = heap[0][0]
            arrived: list[int] = []
            freed = ticked = False
            while heap and heap[0][0] == now:
                _, kind, i = heapq.heappop(heap)
                if kind == _COMPLETION and (not self.running[i] or self.ends_at[i] != now):
                    continue  # the run was evicted
                n_events += 1
                if kind == _TICK:
                    ticked = True
                    continue
                self.last_work = now
                if kind == _COMPLETION:
                    self.stop_run(i, now)
                    self.end[i] = now
                    freed = True
                elif kind == _NODE_READY:
                    self.node_ready(i, now)
                    freed = True
                elif self.arrive(i, now, heap):
                    arrived.append(i)
            self.pending.extend(arrived)
            if freed and self.pending:
                self.try_place(now, self.pending, heap)
            elif arrived:
                self.try_place(now, arrived, heap)
            if ticked and self.scaling is not None and self.scaling.policy is not None:
                self.autoscale(self.scaling, self.scaling.policy, now, heap)
            self.sample(now)
            if tick is not None:
                tick(now)
        if self.scaling is not None:
            layout = self.scaling.layout
            for node in np.flatnonzero((self.status != ABSENT)
                                       & (layout.node_pool != FIXED_POOL)).tolist():
                self.close_node(layout, node, now, removed=False)
        return self.result(never, n_events, time.perf_counter() - began)

    def result(self, never: IntArray, n_events: int, wall_s: float) -> ReplayResult:
        t = np.array(self.samples) if self.samples else np.zeros((0, 4))
        runs = np.array(self.runs) if self.runs else np.zeros((0, 4))
        return ReplayResult(
            self.start, self.end, self.node, never, self.released, self.preempted,
            runs[:, 0].astype(np.int64), runs[:, 1].astype(np.int64), runs[:, 2], runs[:, 3],
            self.lost_gpu_s, t[:, 0], t[:, 1], t[:, 2], t[:, 3], n_events, wall_s,
            self.scaling.layout.pools if self.scaling is not None else (),
            np.array(self.node_log).reshape(-1, len(_NODE_LOG_COLUMNS)), self.provision_wait)


def replay(workload: Workload, cluster: Cluster, placement: PlacementPolicy,
           queue: QueuePolicy, *, preemption: PreemptionPolicy | None = None,
           admission: AdmissionPolicy | None = None, restart: Restart = "resume",
           seed: int = 0, tick: Tick | None = None,
           autoscaling: Autoscaling | None = None) -> ReplayResult:
    """Replay ``workload`` on ``cluster``: arrivals at ``arrival_s``, departures after
    ``duration_s`` of service, pending pods retried in ``queue`` order whenever resources
    free up, running pods evicted when ``preemption`` names them (default: never).

    ``admission`` may hold arriving pods (carbon- or price-aware start); ``restart``
    is what an evicted pod still has to run (module docstring). ``tick(now_s)`` is
    called after each event time (for progress bars). ``autoscaling`` makes the
    cluster's pool slots elastic (module docstring); ``cluster`` must then be the one
    ``pools.with_pools`` built with the layout.
    """
    if restart not in ("resume", "restart"):
        msg = f"restart must be 'resume' or 'restart', got {restart!r}"
        raise ValueError(msg)
    if cluster.partitioned and preemption is not None and not isinstance(preemption,
                                                                     NoPreemption):
        msg = "preemption does not model MIG slices yet: replay with preemption=None"
        raise ValueError(msg)
    return _Replay(workload, cluster, placement, queue, preemption or NoPreemption(),
                   admission, restart, seed, autoscaling).run(tick)


def _fits_empty(w: Workload, i: int, pool: NodePool) -> bool:
    """Whether pod ``i`` fits an empty node of ``pool`` (resources and GPU model)."""
    spec = w.gpu_specs[int(w.spec_id[i])]
    model_ok = not spec or (pool.n_gpu > 0 and pool.gpu_model in spec)
    return bool(model_ok and w.cpu_milli[i] <= pool.cpu_milli
                and w.memory_mib[i] <= pool.memory_mib and w.num_gpu[i] <= pool.n_gpu)
