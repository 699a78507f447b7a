"""Placement policies: pick a node and the GPU(s) on it, scoring all nodes at once.

Every policy has one signature, ``place(pod, view) -> Placement | None``, and is built
by a factory from the target workload and the cluster (FGD needs the workload's task
classes; the others ignore them), so the engine never branches on policy names.
Ties go to the lowest node index (and lowest GPU index), so runs are deterministic;
``random`` draws from the view's seeded generator.

Baselines follow the FGD authors' simulator
(github.com/hkust-adsl/kubernetes-scheduler-simulator, ``pkg/simulator/plugin``):

* ``best_fit``: least leftover sum_i w_i (free_i - req_i) / max_i over CPU and GPU milli,
  w = 0.5 each (``best_fit_score.go``); ``worst_fit`` takes the most leftover.
* ``dot_product``: Tetris alignment, the largest dot product of the normalised demand
  and free vectors (CPU, memory, GPU milli).
* ``gpu_packing``: prefer nodes where the pod fits on already shared GPUs (least free
  milli left on them), then used nodes needing the fewest idle GPUs, then idle nodes
  with the fewest GPUs (``gpu_packing_score.go``).
* ``first_fit``: the first feasible node in node order.
* ``fgd``: the node and GPU where F_n(M) grows least (``fgd_score.go``; see
  ``simulate.metrics`` for the measure).

Shared pods go to the tightest GPU that fits (FGD: the GPU with the smallest growth),
whole-GPU pods to the lowest-indexed idle GPUs. Fit tests read ``ClusterView.fit``
(``cluster.ClusterState.gpu_fit``), so MIG slices need nothing policy-specific; on a
partitioned GPU "tightest" compares the largest free slice. FGD does not model slices
yet and refuses partitioned clusters.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from foresize.core.errors import InputError
from foresize.core.registry import Registry
from foresize.simulate.cluster.metrics import Fragmentation, NodeStates
from foresize.simulate.cluster.state import (
    FULL_GPU_MILLI,
    BoolArray,
    Cluster,
    IntArray,
    Placement,
    any_per_node,
    count_per_node,
)
from foresize.simulate.cluster.workload import FloatArray, Workload, task_classes


@dataclass(frozen=True, slots=True)
class PodRequest:
    """One pod's demand; ``allowed`` marks the nodes whose GPU model it accepts."""

    cpu_milli: int
    memory_mib: int
    num_gpu: int
    gpu_milli: int
    allowed: BoolArray

    @property
    def is_shared(self) -> bool:
        """A fraction of one GPU (GPU sharing)."""
        return self.num_gpu == 1 and self.gpu_milli < FULL_GPU_MILLI


@dataclass(frozen=True, slots=True)
class ClusterView:
    """Read-only snapshot of free resources handed to a policy; ``rng`` is its only
    source of randomness.
    """

    cpu_free: IntArray
    memory_free: IntArray
    gpu_free: IntArray
    cluster: Cluster
    rng: np.random.Generator
    gpu_fit: IntArray | None = None  # largest per-GPU demand each GPU takes (MIG slices)

    @property
    def fit(self) -> IntArray:
        """What a GPU's demand is compared with: ``gpu_fit``, or ``gpu_free`` without MIG."""
        return self.gpu_free if self.gpu_fit is None else self.gpu_fit


class PlacementPolicy(Protocol):
    """Chooses where a pod runs, or ``None`` when no node can take it now."""

    def place(self, pod: PodRequest, view: ClusterView, /) -> Placement | None:
        """Return the node and GPUs for ``pod``."""
        ...


PlacementFactory = Callable[[Workload, Cluster], PlacementPolicy]
PLACEMENT: Registry[PlacementFactory] = Registry("placement policy")


def feasible(pod: PodRequest, view: ClusterView) -> BoolArray:
    """Nodes with room for ``pod`` now: CPU, memory, GPU model and GPU capacity."""
    ok = (view.cpu_free >= pod.cpu_milli) & (view.memory_free >= pod.memory_mib) & pod.allowed
    if pod.num_gpu == 0:
        return ok
    fits = view.fit >= pod.gpu_milli
    room = any_per_node(fits) if pod.num_gpu == 1 else count_per_node(fits) >= pod.num_gpu
    result: BoolArray = ok & room
    return result


def pick_gpus(pod: PodRequest, free: IntArray, *, tightest: bool = True) -> tuple[int, ...]:
    """GPU indices on one node: the tightest (or loosest) GPU for a share, else the
    lowest-indexed GPUs with the whole per-GPU demand free. ``free`` is the node's row of
    :attr:`ClusterView.fit`.
    """
    if pod.num_gpu == 0:
        return ()
    fits = free >= pod.gpu_milli
    if pod.is_shared:
        slack = np.where(fits, free if tightest else -free, np.iinfo(np.int64).max)
        return (int(np.argmin(slack)),)
    return tuple(int(g) for g in np.flatnonzero(fits)[: pod.num_gpu])


def _lowest(score: FloatArray, mask: BoolArray) -> int | None:
    """Index of the smallest score among ``mask`` (first on ties), or None."""
    if not mask.any():
        return None
    return int(np.argmin(np.where(mask, score, np.inf)))


def _on(node: int | None, pod: PodRequest, view: ClusterView, *, tightest: bool = True
        ) -> Placement | None:
    if node is None:
        return None
    return Placement(node, pick_gpus(pod, view.fit[node], tightest=tightest))


@dataclass(frozen=True, slots=True)
class FirstFit:
    """The first node in node order that fits."""

    def place(self, pod: PodRequest, view: ClusterView, /) -> Placement | None:
        """First feasible node."""
        mask = feasible(pod, view)
        return _on(int(np.argmax(mask)) if mask.any() else None, pod, view)


def _leftover(pod: PodRequest, view: ClusterView) -> FloatArray:
    cluster = view.cluster
    cpu = (view.cpu_free - pod.cpu_milli) / max(int(cluster.cpu_milli.max()), 1)
    gpu_cap = max(int(cluster.n_gpu.max()), 1) * FULL_GPU_MILLI
    gpu = (view.gpu_free.sum(axis=1) - pod.num_gpu * pod.gpu_milli) / gpu_cap
    result: FloatArray = 0.5 * cpu + 0.5 * gpu
    return result


@dataclass(frozen=True, slots=True)
class BestFit:
    """Least CPU and GPU left over after placing the pod."""

    def place(self, pod: PodRequest, view: ClusterView, /) -> Placement | None:
        """Tightest node."""
        return _on(_lowest(_leftover(pod, view), feasible(pod, view)), pod, view)


@dataclass(frozen=True, slots=True)
class WorstFit:
    """Most CPU and GPU left over: spreads load, the opposite of best fit."""

    def place(self, pod: PodRequest, view: ClusterView, /) -> Placement | None:
        """Loosest node, loosest GPU."""
        node = _lowest(-_leftover(pod, view), feasible(pod, view))
        return _on(node, pod, view, tightest=False)


@dataclass(frozen=True, slots=True)
class DotProduct:
    """Tetris: the node whose free resources align best with the demand."""

    def place(self, pod: PodRequest, view: ClusterView, /) -> Placement | None:
        """Largest normalised dot product of demand and free vectors."""
        c = view.cluster
        cpu_max = max(int(c.cpu_milli.max()), 1)
        mem_max = max(int(c.memory_mib.max()), 1)
        gpu_max = max(int(c.n_gpu.max()), 1) * FULL_GPU_MILLI
        dot = (pod.cpu_milli / cpu_max * (view.cpu_free / cpu_max)
               + pod.memory_mib / mem_max * (view.memory_free / mem_max)
               + pod.num_gpu * pod.gpu_milli / gpu_max * (view.gpu_free.sum(axis=1) / gpu_max))
        return _on(_lowest(-dot, feasible(pod, view)), pod, view)


@dataclass(frozen=True, slots=True)
class GpuPacking:
    """Fill shared GPUs first, then used nodes, then idle nodes (smallest first)."""

    def place(self, pod: PodRequest, view: ClusterView, /) -> Placement | None:
        """Three tiers, as in the authors' ``getPackingScore``; lower score wins here."""
        mask = feasible(pod, view)
        if pod.num_gpu == 0 or not mask.any():
            return _on(_lowest(np.zeros(len(mask)), mask), pod, view)
        free = view.gpu_free
        n_gpu = view.cluster.n_gpu
        idle = free == FULL_GPU_MILLI
        n_idle = idle.sum(axis=1)
        if pod.is_shared:
            shared = (view.fit >= pod.gpu_milli) & ~idle
            has_shared = shared.any(axis=1)
            tight = np.where(shared, view.fit, FULL_GPU_MILLI).min(axis=1)
            idle_needed = np.where(has_shared, 0, 1)
        else:
            has_shared = np.zeros(len(mask), dtype=bool)
            tight = np.zeros(len(mask), dtype=np.int64)
            idle_needed = np.full(len(mask), pod.num_gpu)
        node_idle = n_idle == n_gpu
        # tier 0: shared GPU (least free left), 1: used node (fewest idle GPUs taken),
        # 2: idle node (fewest GPUs)
        tier = np.where(has_shared, 0, np.where(node_idle, 2, 1))
        within = np.where(tier == 0, tight, np.where(tier == 1, idle_needed, n_gpu))
        score = tier * 10_000.0 + within
        return _on(_lowest(score, mask), pod, view)


@dataclass(frozen=True, slots=True)
class RandomFit:
    """A uniformly random feasible node: the baseline every heuristic must beat."""

    def place(self, pod: PodRequest, view: ClusterView, /) -> Placement | None:
        """Random feasible node, random fitting GPU(s)."""
        nodes = np.flatnonzero(feasible(pod, view))
        if nodes.size == 0:
            return None
        node = int(view.rng.choice(nodes))
        if pod.num_gpu == 0:
            return Placement(node)
        gpus = np.flatnonzero(view.fit[node] >= pod.gpu_milli)
        chosen = view.rng.choice(gpus, size=pod.num_gpu, replace=False)
        return Placement(node, tuple(sorted(int(g) for g in chosen)))


class Fgd:
    """Fragmentation Gradient Descent: place where F_n(M) grows least.

    For a shared pod every GPU that fits is a candidate; whole-GPU and CPU pods have one
    outcome per node. The growth is F_n(M) after minus before; ties go to the lowest
    node, then the lowest GPU index.

    Scoring every node for every pod is what made FGD slow, yet the growth depends only
    on the node's state and the pod's request, and a cluster holds few distinct states.
    So growths are tabled per (request, state) on :class:`NodeStates` and each pod costs
    a table look-up over the feasible nodes; only states never scored for that request
    are computed. The tables hold exactly the values a direct evaluation gives, so the
    decisions are the same (``tests/simulate/test_placement.py`` checks this against a
    direct implementation).
    """

    __slots__ = ("_states", "fragmentation")

    def __init__(self, fragmentation: Fragmentation) -> None:
        self.fragmentation = fragmentation
        self._states: NodeStates | None = None

    def place(self, pod: PodRequest, view: ClusterView, /) -> Placement | None:
        """Smallest fragmentation growth."""
        states = self._states
        if states is None or states.gpu_type is not view.cluster.gpu_type:
            states = self._states = NodeStates(self.fragmentation, view.cluster.gpu_type)
        states.sync(view.cpu_free, view.gpu_free)
        nodes = np.flatnonzero(feasible(pod, view))
        if nodes.size == 0:
            return None
        ids = states.node_state[nodes]
        table = states.table((pod.cpu_milli, pod.num_gpu, pod.gpu_milli), 3)
        growth = table[ids, 0]
        if np.isnan(growth).any():
            self._score(pod, states, table, np.unique(ids[np.isnan(growth)]))
            growth = table[ids, 0]
        best = int(np.argmin(growth))
        node = int(nodes[best])
        if not pod.is_shared:
            return _on(node, pod, view)
        free = view.gpu_free[node]
        value, ambiguous = table[ids[best], 1:]
        if ambiguous:  # distinct free values tie: the lowest GPU index among them wins
            row = self._shared_growth(pod, view.cpu_free[node:node + 1], free[None, :],
                                      view.cluster.gpu_type[node:node + 1],
                                      states.weighted[ids[best:best + 1]])
            return Placement(node, (int(np.argmin(row[0])),))
        return Placement(node, (int(np.argmax(free == value)),))

    def _shared_growth(self, pod: PodRequest, cpu: IntArray, free: IntArray,
                       types: IntArray, before: IntArray) -> FloatArray:
        """(k, 8) growth of putting the share on each GPU of k nodes (inf: no fit), in
        :meth:`Fragmentation.weighted` units: integers, so ties are exact.
        """
        row, gpu = np.nonzero(free >= pod.gpu_milli)
        after = free[row]
        after[np.arange(row.size), gpu] -= pod.gpu_milli
        grid = np.full(free.shape, np.inf)
        grid[row, gpu] = (self.fragmentation.weighted(cpu[row] - pod.cpu_milli, after,
                                                      types[row]) - before[row])
        return grid

    def _score(self, pod: PodRequest, states: NodeStates, table: FloatArray,
               new: IntArray) -> None:
        """Fill ``table`` rows ``new``: growth, and for shares the free milli of the best
        GPU and whether another free value ties with it.
        """
        free, cpu, types, before = (states.gpu[new], states.cpu[new], states.type[new],
                                    states.weighted[new])
        if pod.is_shared:
            grid = self._shared_growth(pod, cpu, free, types, before)
            pick = np.argmin(grid, axis=1)
            lowest = grid[np.arange(new.size), pick]
            value = free[np.arange(new.size), pick]
            tied = ((grid == lowest[:, None]) & (free != value[:, None])).any(axis=1)
            table[new] = np.column_stack([lowest, value, tied])
            return
        after = free
        if pod.num_gpu:
            take = free >= pod.gpu_milli
            take &= np.cumsum(take, axis=1) <= pod.num_gpu
            after = free - take * pod.gpu_milli
        table[new, 0] = self.fragmentation.weighted(cpu - pod.cpu_milli, after, types) - before


def fragmentation_of(workload: Workload, cluster: Cluster) -> Fragmentation:
    """FGD's measure for ``workload`` as the target workload on ``cluster``."""
    types = np.arange(len(cluster.gpu_types))
    by_type = np.stack([
        np.isin(types, [cluster.gpu_types.index(t) for t in spec if t in cluster.gpu_types])
        if spec else np.ones(types.size, dtype=bool)
        for spec in workload.gpu_specs
    ])
    return Fragmentation.build(task_classes(workload), by_type)


def _fgd(workload: Workload, cluster: Cluster) -> PlacementPolicy:
    if cluster.partitioned:
        raise InputError("placement fgd does not model MIG slices yet",
                         hint="use another --placement with MIG layouts")
    return Fgd(fragmentation_of(workload, cluster))


PLACEMENT.add("first_fit", lambda _w, _c: FirstFit())
PLACEMENT.add("best_fit", lambda _w, _c: BestFit())
PLACEMENT.add("worst_fit", lambda _w, _c: WorstFit())
PLACEMENT.add("dot_product", lambda _w, _c: DotProduct())
PLACEMENT.add("gpu_packing", lambda _w, _c: GpuPacking())
PLACEMENT.add("random", lambda _w, _c: RandomFit())
PLACEMENT.add("fgd", _fgd)
