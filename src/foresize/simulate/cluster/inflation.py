"""The FGD paper's workload-inflation protocol (Weng et al., ATC'23, section 6.1), as the
authors' simulator runs it (github.com/hkust-adsl/kubernetes-scheduler-simulator,
``pkg/simulator``: ``SortClusterPods``, ``TunePodsByNodeTotalResource``).

Every pod of the trace is placed once, in a random order, on an initially empty cluster
with no departures; then copies of pods drawn at random from the trace are appended until
the next one would take the arrived GPU demand past ``target`` times the cluster's GPU
capacity (a trace already above it loses random pods instead). The default openb trace
asks for 0.98 of the capacity, so its first 98 % is the trace itself, shuffled.

Curves are read as the authors' analysis reads them
(``experiments/analysis/merge_alloc_discrete_0920.py``): every placement is an event,
and the allocated share at grid point k is the mean over the events whose arrived demand
rounds to k (a window of one point either side when none does), so runs with different
seeds average point by point. Fragmentation and failure counts, costly to compute per
event, are taken at the first event that reaches each grid point; F_n(M) is recomputed
there only for the nodes placed on since the previous point (:class:`_Fragmented`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from foresize.core.errors import InputError, PartialInterrupt
from foresize.core.parallel import run_tasks
from foresize.simulate.cluster.metrics import Fragmentation
from foresize.simulate.cluster.placement import (
    PLACEMENT,
    ClusterView,
    PlacementPolicy,
    PodRequest,
    fragmentation_of,
)
from foresize.simulate.cluster.state import Cluster, ClusterState, IntArray
from foresize.simulate.cluster.workload import FloatArray, Workload

CURVES = ("allocated_frac", "fragmentation_rate", "fragmented_frac", "unallocated_frac",
          "failed_pods", "failed_gpu_frac")


@dataclass(frozen=True, slots=True)
class InflationCurve:
    """Curves over ``arrived_frac`` (arrived GPU demand / capacity), one run or a mean.

    * ``allocated_frac``: GPU milli held by pods / capacity (mean of the events at the
      grid point, as the authors' analysis);
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


def inflation_order(workload: Workload, capacity_milli: int, target: float,
                    rng: np.random.Generator) -> IntArray:
    """Pod indices in the order they arrive: the trace shuffled, then random copies until
    one more would pass ``target`` x capacity (the authors' check adds that pod's per-GPU
    milli, not its total; kept so runs stop where theirs do). A trace above the target
    first loses pods at random until it is within it.
    """
    demand = workload.gpu_demand_milli
    goal = target * capacity_milli
    order = rng.permutation(len(workload))
    total = int(demand.sum())
    if total > goal:
        dropped = rng.permutation(len(workload))
        left = total - np.cumsum(demand[dropped])
        cut = int(np.argmax(left <= goal)) + 1
        return order[~np.isin(order, dropped[:cut])]
    extra: list[IntArray] = []
    batch = max(64, int((goal - total) / max(float(demand.mean()), 1.0) * 1.2) + 1)
    while True:
        drawn = rng.integers(0, len(workload), size=batch)
        before = total + np.concatenate([[0], np.cumsum(demand[drawn])[:-1]])
        over = np.flatnonzero(before + workload.gpu_milli[drawn] > goal)
        if over.size:
            extra.append(drawn[: over[0]])
            break
        extra.append(drawn)
        total = int(before[-1] + demand[drawn[-1]])
    return np.concatenate([order, *extra])


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
    n_points = grid(target, step).size
    rng = np.random.default_rng(seed)
    order = inflation_order(workload, capacity, target, rng)
    state = ClusterState(cluster)
    fragmented = _Fragmented(frag, state)
    # the authors' simulator names nodes by a seeded permutation, and ties go to the
    # smallest name: a random node order fixed for the run (see placement.Scored)
    view = ClusterView.of(state, rng, rng.permutation(cluster.n_nodes))
    # one request per pod of the trace, shared by its copies (plain Python scalars: the
    # loop below is per pod, where numpy scalars cost more than they save)
    pods = [PodRequest(cpu, memory, n_gpu, milli, masks[spec])
            for cpu, memory, n_gpu, milli, spec in zip(
                workload.cpu_milli.tolist(), workload.memory_mib.tolist(),
                workload.num_gpu.tolist(), workload.gpu_milli.tolist(),
                workload.spec_id.tolist(), strict=True)]
    arrived = np.cumsum(demand[order]) / capacity
    arrived_at = arrived.tolist()
    allocated_at: list[float] = []
    rows: list[tuple[float, ...]] = []
    failed_milli = 0.0
    n_failed = allocated = 0
    began = time.perf_counter()
    for k, i in enumerate(order.tolist()):
        pod = pods[i]
        where = policy.place(pod, view)
        if where is None:
            n_failed += 1
            failed_milli += pod.num_gpu * pod.gpu_milli
        else:
            state.allocate(pod.cpu_milli, pod.memory_mib, pod.gpu_milli, where)
            fragmented.touched.append(where.node)
            allocated += pod.num_gpu * pod.gpu_milli
        allocated_at.append(allocated / capacity)
        if on_pod is not None:
            on_pod()
        while len(rows) < n_points and arrived_at[k] >= (len(rows) + 0.5) * step:
            rows.append(_snapshot(state, fragmented(), capacity, n_failed, failed_milli))
    while len(rows) < n_points:  # the run stopped within half a step of the last points
        rows.append(_snapshot(state, fragmented(), capacity, n_failed, failed_milli))
    v = np.array(rows).T
    alloc = binned_mean(arrived, np.array(allocated_at), step, n_points)
    return InflationCurve(grid(target, step), alloc, v[1], v[2], 1.0 - alloc, v[4], v[5],
                          n_pods=float(order.size), wall_s=time.perf_counter() - began)


def binned_mean(arrived: FloatArray, value: FloatArray, step: float, n_points: int
                ) -> FloatArray:
    """Mean ``value`` of the events whose ``arrived`` rounds to each grid point 1..n, as the
    authors' analysis: a point without events takes the events within one point either
    side, and a point without those the previous point's value.
    """
    point = np.rint(arrived / step).astype(np.int64)
    sums = np.bincount(point, weights=value, minlength=n_points + 2)[: n_points + 2]
    counts = np.bincount(point, minlength=n_points + 2)[: n_points + 2].astype(np.float64)
    out = np.empty(n_points)
    last = 0.0
    for k in range(1, n_points + 1):
        if counts[k]:
            last = sums[k] / counts[k]
        elif counts[k - 1:k + 2].sum():
            last = sums[k - 1:k + 2].sum() / counts[k - 1:k + 2].sum()
        out[k - 1] = last
    return out


class _Fragmented:
    """The cluster's FGD-fragmented milli, kept per node and recomputed at each call only
    for the nodes in ``touched`` (the ones placed on since the last call): a grid point
    sees about a hundred pods, so this is a few rows instead of every node's. Per-node
    values are exact (integer sums, one division), so the total equals
    :meth:`Fragmentation.amount_dedup`'s bit for bit.
    """

    __slots__ = ("amount", "frag", "state", "touched")

    def __init__(self, frag: Fragmentation, state: ClusterState) -> None:
        self.frag, self.state = frag, state
        self.amount: FloatArray = frag.amount_dedup(state.cpu_free, state.gpu_free,
                                                    state.cluster.gpu_type)
        self.touched: list[int] = []

    def __call__(self) -> float:
        """F_n(M) summed over the nodes now, in milli-GPU."""
        if self.touched:
            nodes = np.unique(self.touched)
            s = self.state
            self.amount[nodes] = self.frag.amount(s.cpu_free[nodes], s.gpu_free[nodes],
                                                  s.cluster.gpu_type[nodes])
            self.touched.clear()
        return float(self.amount.sum())


def _snapshot(state: ClusterState, fragmented: float, capacity: int, n_failed: int,
              failed_milli: float) -> tuple[float, ...]:
    allocated = state.gpu_allocated_milli
    idle = capacity - allocated
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


Summaries = tuple[list[dict[str, float | str]], dict[str, InflationCurve]]  # rows, curves


def compare_inflation(
    workload: Workload, cluster: Cluster, names: list[str], seeds: list[int], *,
    target: float = 1.3, step: float = 0.01, engine: str = "serial", workers: int | None = None,
    address: str | None = None, on_run: Callable[[], None] | None = None,
) -> Summaries:
    """Every placement policy's seed-averaged inflation curve and its summary row.

    Runs (policy x seed) fan out over ``engine`` (``core.parallel``); each run is
    seeded, so the rows are the same on every engine. ``on_run`` is called as each
    (policy, seed) run finishes (for progress bars). Ctrl-C raises ``PartialInterrupt``
    carrying ``(rows, curves)`` of the policies whose every seed had finished (plain
    ``KeyboardInterrupt`` when none had).
    """
    frag = fragmentation_of(workload, cluster)
    points = [p for p in REPORT_POINTS if p <= target + 1e-9]
    items = [(workload, cluster, n, s, target, step, frag) for n in names for s in seeds]
    done: dict[int, InflationCurve] = {}

    def finished(index: int, run: InflationCurve) -> None:
        done[index] = run
        if on_run is not None:
            on_run()

    width = len(seeds)
    try:
        run_tasks(_one_run, items, engine=engine, workers=workers, address=address,
                  on_result=finished)
    except KeyboardInterrupt:
        complete = [k for k in range(len(names))
                    if all(k * width + j in done for j in range(width))]
        if not complete:
            raise
        raise PartialInterrupt(_summaries(
            [names[k] for k in complete],
            [[done[k * width + j] for j in range(width)] for k in complete],
            points, target)) from None
    return _summaries(names, [[done[k * width + j] for j in range(width)]
                              for k in range(len(names))], points, target)


def _summaries(names: list[str], runs: list[list[InflationCurve]], points: list[float],
               target: float) -> Summaries:
    """Each policy's seed-averaged curve and its summary row."""
    rows: list[dict[str, float | str]] = []
    curves: dict[str, InflationCurve] = {}
    for name, seeded in zip(names, runs, strict=True):
        curve = curves[name] = mean_curve(seeded)
        row: dict[str, float | str] = {"policy": name}
        for p in points:
            row[f"allocated_at_{round(p * 100)}_frac"] = curve.at(p)["allocated_frac"]
        row["fragmentation_rate_frac"] = curve.at(min(1.0, target))["fragmentation_rate"]
        row["failed_pods"] = curve.at(target)["failed_pods"]
        row["run_s"] = curve.wall_s
        rows.append(row)
    return rows, curves


def curves_document(curves: dict[str, InflationCurve]) -> dict[str, dict[str, object]]:
    """The curves as plain lists, for JSON."""
    return {name: {"arrived_frac": c.arrived_frac.tolist(),
                   **{k: getattr(c, k).tolist() for k in CURVES},
                   "n_pods": c.n_pods, "wall_s": c.wall_s}
            for name, c in curves.items()}
