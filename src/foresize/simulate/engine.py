"""The discrete-event engine: time-based replay of a trace on a cluster.

Pods arrive at ``arrival_s``, wait in a queue, start when the placement policy finds
them a node, and leave ``duration_s`` later. Events live on one heap keyed by
(time, kind, sequence), completions before arrivals at equal times, so a run is a pure
function of (trace, cluster, queue policy, placement policy, seed).

Scheduling passes are cheap by construction: an arrival only needs the new pods tried
(nothing was freed, so older pending pods still do not fit), and a completion retries
the pending pods in queue order, skipping at once those that need more than the largest
free CPU, memory, GPU share or idle-GPU count of any node.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from foresize.simulate.cluster import (
    FULL_GPU_MILLI,
    Cluster,
    ClusterState,
    IntArray,
    Placement,
)
from foresize.simulate.metrics import delay_stats, gpu_energy_kwh, jain_fairness
from foresize.simulate.policies.placement import ClusterView, PlacementPolicy, PodRequest
from foresize.simulate.policies.queue import QueuePolicy, QueueView
from foresize.simulate.workload import FloatArray, Workload

_COMPLETION, _ARRIVAL = 0, 1
Tick = Callable[[float], None]


@dataclass(frozen=True, slots=True)
class ReplayResult:
    """Per-pod outcomes (NaN start/end: never started) and utilisation over time."""

    start_s: FloatArray
    end_s: FloatArray
    node: IntArray
    never_fit: IntArray  # pods no empty node could host
    times_s: FloatArray  # utilisation samples, one per state change
    cpu_util: FloatArray
    memory_util: FloatArray
    gpu_util: FloatArray
    n_events: int
    wall_s: float

    def summary(self, workload: Workload, cluster: Cluster) -> dict[str, Any]:
        """The metrics a scheduling paper reports, as one JSON-ready dictionary."""
        started = np.isfinite(self.start_s)
        arrival = workload.arrival_s
        wait = self.start_s[started] - arrival[started]
        jct = self.end_s[started] - arrival[started]
        gpu_time = (workload.gpu_demand_milli / FULL_GPU_MILLI * workload.duration_s)[started]
        by_tenant = np.bincount(workload.tenant[started], weights=gpu_time,
                                minlength=len(workload.tenants))
        n_gpus = float(cluster.n_gpu.sum())
        return {
            "n_pods": len(workload),
            "n_started": int(started.sum()),
            "n_never_fit": int(self.never_fit.size),
            "n_unscheduled": int((~started).sum()) - int(self.never_fit.size),
            "queueing_delay": delay_stats(wait),
            "jct": delay_stats(jct),
            "makespan_s": float(np.nanmax(self.end_s) - arrival.min()) if started.any()
            else float("nan"),
            "mean_util": {"cpu": _time_mean(self.times_s, self.cpu_util),
                          "memory": _time_mean(self.times_s, self.memory_util),
                          "gpu": _time_mean(self.times_s, self.gpu_util)},
            "jain_fairness_gpu_time": jain_fairness(by_tenant),
            "gpu_energy_kwh": gpu_energy_kwh(self.times_s, self.gpu_util * n_gpus,
                                             n_gpus=n_gpus),
            "n_events": self.n_events,
            "events_per_s": self.n_events / self.wall_s if self.wall_s > 0 else float("nan"),
            "wall_s": self.wall_s,
        }


def _time_mean(t: FloatArray, v: FloatArray) -> float:
    if t.size < 2 or t[-1] <= t[0]:
        return float(v.mean()) if v.size else float("nan")
    return float((v[:-1] * np.diff(t)).sum() / (t[-1] - t[0]))


class _Replay:
    """State of one replay; ``run`` drives the event loop."""

    def __init__(self, workload: Workload, cluster: Cluster, placement: PlacementPolicy,
                 queue: QueuePolicy, seed: int) -> None:
        self.w, self.cluster = workload, cluster
        self.placement, self.queue = placement, queue
        self.state = ClusterState(cluster)
        self.rng = np.random.default_rng(seed)
        self.masks = workload.node_masks(cluster)
        n = len(workload)
        self.start = np.full(n, np.nan)
        self.end = np.full(n, np.nan)
        self.node = np.full(n, -1, dtype=np.int64)
        self.where: dict[int, Placement] = {}
        self.pending: list[int] = []
        self.demand = np.stack([workload.cpu_milli, workload.memory_mib,
                                workload.gpu_demand_milli], axis=1).astype(np.float64)
        self.capacity = np.array([cluster.cpu_milli.sum(), cluster.memory_mib.sum(),
                                  cluster.gpu_capacity_milli], dtype=np.float64)
        self.usage = np.zeros((len(workload.tenants), 3))
        self.samples: list[tuple[float, float, float, float]] = []

    def request(self, i: int) -> PodRequest:
        w = self.w
        return PodRequest(int(w.cpu_milli[i]), int(w.memory_mib[i]), int(w.num_gpu[i]),
                          int(w.gpu_milli[i]), self.masks[w.spec_id[i]])

    def view(self) -> ClusterView:
        s = self.state
        return ClusterView(s.cpu_free, s.memory_free, s.gpu_free, self.cluster, self.rng)

    def never_fits(self) -> IntArray:
        """Pods that even an empty cluster cannot host (checked once, vectorised)."""
        w, c = self.w, self.cluster
        full_gpus = c.n_gpu  # on an empty node every GPU has 1000 milli free
        fits = ((w.cpu_milli[:, None] <= c.cpu_milli[None, :])
                & (w.memory_mib[:, None] <= c.memory_mib[None, :])
                & (w.num_gpu[:, None] <= full_gpus[None, :])
                & self.masks[w.spec_id])
        result: IntArray = np.flatnonzero(~fits.any(axis=1))
        return result

    def order(self, now: float, pods: list[int]) -> list[int]:
        if len(pods) < 2:
            return pods
        w, ids = self.w, np.asarray(pods, dtype=np.int64)
        view = QueueView(
            now_s=now, job_ids=ids, arrival_s=w.arrival_s[ids], priority=w.priority[ids],
            tenant=w.tenant[ids], est_duration_s=w.duration_s[ids],
            deadline_s=w.deadline_s[ids], attained_s=np.zeros(ids.size),
            demand=self.demand[ids], capacity=self.capacity, tenant_usage=self.usage.copy())
        return [pods[j] for j in self.queue.order(view).tolist()]

    def try_place(self, now: float, candidates: list[int],
                  heap: list[tuple[float, int, int]]) -> None:
        """Place ``candidates`` in queue order; those that do not fit stay pending."""
        s, w = self.state, self.w
        cpu_max, mem_max = int(s.cpu_free.max()), int(s.memory_free.max())
        share_max = int(s.gpu_free.max())
        idle_max = int((s.gpu_free == FULL_GPU_MILLI).sum(axis=1).max())
        placed: set[int] = set()
        for i in self.order(now, candidates):
            if (w.cpu_milli[i] > cpu_max or w.memory_mib[i] > mem_max
                    or w.gpu_milli[i] > share_max
                    or (w.num_gpu[i] > 1 and w.num_gpu[i] > idle_max)):
                continue
            where = self.placement.place(self.request(i), self.view())
            if where is None:
                continue
            s.allocate(int(w.cpu_milli[i]), int(w.memory_mib[i]), int(w.gpu_milli[i]), where)
            self.usage[w.tenant[i]] += self.demand[i]
            self.where[i] = where
            self.start[i], self.node[i] = now, where.node
            heapq.heappush(heap, (now + float(w.duration_s[i]), _COMPLETION, i))
            placed.add(i)
        if placed:
            self.pending = [i for i in self.pending if i not in placed]

    def sample(self, now: float) -> None:
        s = self.state
        self.samples.append((
            now, 1.0 - float(s.cpu_free.sum()) / self.capacity[0],
            1.0 - float(s.memory_free.sum()) / self.capacity[1],
            s.gpu_allocated_milli / self.capacity[2] if self.capacity[2] else 0.0))

    def run(self, tick: Tick | None) -> ReplayResult:
        began = time.perf_counter()
        w = self.w
        never = self.never_fits()
        skip = np.zeros(len(w), dtype=bool)
        skip[never] = True
        heap: list[tuple[float, int, int]] = [
            (float(w.arrival_s[i]), _ARRIVAL, int(i)) for i in np.flatnonzero(~skip)]
        heapq.heapify(heap)
        n_events = 0
        while heap:
            now = heap[0][0]
            arrived: list[int] = []
            freed = False
            while heap and heap[0][0] == now:
                _, kind, i = heapq.heappop(heap)
                n_events += 1
                if kind == _COMPLETION:
                    where = self.where.pop(i)
                    self.state.release(int(w.cpu_milli[i]), int(w.memory_mib[i]),
                                       int(w.gpu_milli[i]), where)
                    self.usage[w.tenant[i]] -= self.demand[i]
                    self.end[i] = now
                    freed = True
                else:
                    arrived.append(i)
            self.pending.extend(arrived)
            if freed and self.pending:
                self.try_place(now, self.pending, heap)
            elif arrived:
                self.try_place(now, arrived, heap)
            self.sample(now)
            if tick is not None:
                tick(now)
        t = np.array(self.samples) if self.samples else np.zeros((0, 4))
        return ReplayResult(self.start, self.end, self.node, never, t[:, 0], t[:, 1],
                            t[:, 2], t[:, 3], n_events, time.perf_counter() - began)


def replay(workload: Workload, cluster: Cluster, placement: PlacementPolicy,
           queue: QueuePolicy, *, seed: int = 0, tick: Tick | None = None) -> ReplayResult:
    """Replay ``workload`` on ``cluster``: arrivals at ``arrival_s``, departures after
    ``duration_s``, pending pods retried in ``queue`` order whenever resources free up.

    ``tick(now_s)`` is called after each event time (for progress bars).
    """
    return _Replay(workload, cluster, placement, queue, seed).run(tick)
