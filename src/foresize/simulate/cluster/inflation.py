"""The FGD paper's workload-inflation protocol (Weng et al., ATC'23, section 6.1).

Pods are drawn with replacement (seeded) from the trace's pod distribution and placed
one by one on an initially empty cluster, with no departures, until the arrived GPU
demand reaches ``target`` (e.g. 1.3) times the cluster's GPU capacity. Curves are
recorded on a fixed grid of arrived demand (fractions of capacity), so runs with
different seeds average point by point.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from foresize.core.errors import InputError
from foresize.core.parallel import run_tasks
from foresize.simulate.cluster.metrics import Fragmentation
from foresize.simulate.cluster.placement import (
    PLACEMENT,
    ClusterView,
    PlacementPolicy,
    PodRequest,
    fragmentation_of,
)
from foresize.simulate.cluster.state import Cluster, ClusterState
from foresize.simulate.cluster.workload import FloatArray, Workload

CURVES = ("allocated_frac", "fragmentation_rate", "fragmented_frac", "unallocated_frac",
          "failed_pods", "failed_gpu_frac")


@dataclass(frozen=True, slots=True)
class InflationCurve:
    """Curves over ``arrived_frac`` (arrived GPU demand / capacity), one run or a mean.

    * ``allocated_frac``: GPU milli held by pods / capacity;
    * ``fragmentation_rate``: FGD-fragmented milli / idle milli;
    * ``fragmented_frac``: FGD-fragmented milli / capacity;
    * ``unallocated_frac``: 1 - ``allocated_frac``;
    * ``failed_pods``: pods that found no node so far;
    * ``failed_gpu_frac``: their GPU demand / capacity.
    """

    arrived_frac: FloatArray
    allocated_frac: FloatArray
    fragmentation_rate: FloatArray
    fragmented_frac: FloatArray
    unallocated_frac: FloatArray
    failed_pods: FloatArray
    failed_gpu_frac: FloatArray
    n_pods: float
    wall_s: float

    def at(self, arrived: float) -> dict[str, float]:
        """Every curve's value at the grid point nearest to ``arrived``."""
        i = int(np.argmin(np.abs(self.arrived_frac - arrived)))
        return {name: float(getattr(self, name)[i]) for name in CURVES}


def grid(target: float, step: float) -> FloatArray:
    """Checkpoints step, 2*step, ..., target (inclusive)."""
    n = round(target / step)
    return np.round(np.arange(1, n + 1) * step, 10)


def run_inflation(workload: Workload, cluster: Cluster, policy: PlacementPolicy, *,
                  seed: int, target: float = 1.3, step: float = 0.01,
                  fragmentation: Fragmentation | None = None,
                  on_pod: Callable[[], None] | None = None) -> InflationCurve:
    """One inflation run; ``fragmentation`` defaults to FGD's measure for ``workload``."""
    if target <= 0 or step <= 0:
        raise InputError(f"target ({target}) and step ({step}) must be positive")
    capacity = cluster.gpu_capacity_milli
    if capacity == 0:
        raise InputError(f"{cluster.source}: the cluster has no GPUs to inflate against")
    demand = workload.gpu_demand_milli
    if demand.sum() == 0:
        raise InputError(f"{workload.source}: no pod asks for a GPU; inflation needs GPU demand")
    frag = fragmentation or fragmentation_of(workload, cluster)
    masks = workload.node_masks(cluster)
    checkpoints = grid(target, step) * capacity
    rng = np.random.default_rng(seed)
    state = ClusterState(cluster)
    view = ClusterView(state.cpu_free, state.memory_free, state.gpu_free, cluster, rng,
                       state.gpu_fit)
    rows: list[tuple[float, ...]] = []
    arrived = failed_milli = 0.0
    n_failed = n_pods = 0
    began = time.perf_counter()
    batch = max(64, int(1.2 * target * capacity / max(demand.mean(), 1.0)))
    while len(rows) < checkpoints.size:
        for i in rng.integers(0, len(workload), size=batch).tolist():
            pod = PodRequest(int(workload.cpu_milli[i]), int(workload.memory_mib[i]),
                             int(workload.num_gpu[i]), int(workload.gpu_milli[i]),
                             masks[workload.spec_id[i]])
            where = policy.place(pod, view)
            if where is None:
                n_failed += 1
                failed_milli += float(demand[i])
            else:
                state.allocate(pod.cpu_milli, pod.memory_mib, pod.gpu_milli, where)
            n_pods += 1
            arrived += float(demand[i])
            if on_pod is not None:
                on_pod()
            while len(rows) < checkpoints.size and arrived >= checkpoints[len(rows)]:
                rows.append(_snapshot(state, frag, capacity, n_failed, failed_milli))
            if len(rows) == checkpoints.size:
                break
    v = np.array(rows).T
    return InflationCurve(grid(target, step), v[0], v[1], v[2], v[3], v[4], v[5],
                          n_pods=float(n_pods), wall_s=time.perf_counter() - began)


def _snapshot(state: ClusterState, frag: Fragmentation, capacity: int, n_failed: int,
              failed_milli: float) -> tuple[float, ...]:
    allocated = state.gpu_allocated_milli
    idle = capacity - allocated
    fragmented = float(frag.amount_dedup(state.cpu_free, state.gpu_free,
                                         state.cluster.gpu_type).sum())
    return (allocated / capacity, fragmented / idle if idle else 0.0, fragmented / capacity,
            1.0 - allocated / capacity, float(n_failed), failed_milli / capacity)


def mean_curve(curves: list[InflationCurve]) -> InflationCurve:
    """Point-by-point mean over runs (seeds) that share one grid."""
    if not curves:
        raise InputError("no inflation runs to average")
    v = [np.mean([getattr(c, name) for c in curves], axis=0) for name in CURVES]
    return InflationCurve(curves[0].arrived_frac, v[0], v[1], v[2], v[3], v[4], v[5],
                          n_pods=float(np.mean([c.n_pods for c in curves])),
                          wall_s=float(np.mean([c.wall_s for c in curves])))


REPORT_POINTS = (0.9, 1.0, 1.1, 1.3)  # arrived demand / capacity, the FGD paper's columns


def _one_run(workload: Workload, cluster: Cluster, name: str, seed: int, target: float,
             step: float, frag: Fragmentation) -> InflationCurve:
    policy = PLACEMENT.get(name)(workload, cluster)
    return run_inflation(workload, cluster, policy, seed=seed, target=target, step=step,
                         fragmentation=frag)


def compare_inflation(
    workload: Workload, cluster: Cluster, names: list[str], seeds: list[int], *,
    target: float = 1.3, step: float = 0.01, engine: str = "serial", workers: int | None = None,
    address: str | None = None, on_run: Callable[[], None] | None = None,
) -> tuple[list[dict[str, float | str]], dict[str, InflationCurve]]:
    """Every placement policy's seed-averaged inflation curve and its summary row.

    Runs (policy x seed) fan out over ``engine`` (``core.parallel``); each run is
    seeded, so the rows are the same on every engine. ``on_run`` is called per policy
    run batch done (for progress bars).
    """
    frag = fragmentation_of(workload, cluster)
    points = [p for p in REPORT_POINTS if p <= target + 1e-9]
    items = [(workload, cluster, n, s, target, step, frag) for n in names for s in seeds]
    runs = run_tasks(_one_run, items, engine=engine, workers=workers, address=address)
    rows: list[dict[str, float | str]] = []
    curves: dict[str, InflationCurve] = {}
    for k, name in enumerate(names):
        curve = curves[name] = mean_curve(runs[k * len(seeds):(k + 1) * len(seeds)])
        row: dict[str, float | str] = {"policy": name}
        for p in points:
            row[f"allocated_at_{round(p * 100)}_frac"] = curve.at(p)["allocated_frac"]
        row["fragmentation_rate_frac"] = curve.at(min(1.0, target))["fragmentation_rate"]
        row["failed_pods"] = curve.at(target)["failed_pods"]
        row["run_s"] = curve.wall_s
        rows.append(row)
        if on_run is not None:
            on_run()
    return rows, curves


def curves_document(curves: dict[str, InflationCurve]) -> dict[str, dict[str, object]]:
    """The curves as plain lists, for JSON."""
    return {name: {"arrived_frac": c.arrived_frac.tolist(),
                   **{k: getattr(c, k).tolist() for k in CURVES},
                   "n_pods": c.n_pods, "wall_s": c.wall_s}
            for name, c in curves.items()}
