"""Metrics the scheduling literature reports, as plain functions over arrays.

The GPU fragmentation measure is FGD's (Weng et al., "Beware of Fragmentation", USENIX
ATC'23), implemented from the definitions in the authors' simulator
(github.com/hkust-adsl/kubernetes-scheduler-simulator, ``pkg/utils/frag.go``:
``GetNodePodFrag``, ``NodeGpuShareFragAmount``, ``FragAmountSumExceptQ3``):

* For a node n and task class m, F_n(m) is the free GPU milli of n that m cannot use.
  If m asks for no GPU, or m cannot run on n at all (its GPU model is not n's, too
  little CPU left, or fewer than ``num_gpu`` GPUs with ``gpu_milli`` free each), all of
  n's free GPU milli counts. Otherwise the free milli of each GPU with less than m's
  per-GPU demand counts (for multi-GPU classes, every partially used GPU).
* F_n(M) = sum_m p_m F_n(m), with p_m the class popularity (``workload.task_classes``).
  It is summed in integers (class counts, see :meth:`Fragmentation.weighted`) and
  divided once, so equal amounts are bit-for-bit equal.

Memory is not part of the measure, as in the authors' code; it is still a hard
constraint when placing pods.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from foresize.simulate.cluster.state import MAX_GPUS_PER_NODE, BoolArray, IntArray, any_per_node
from foresize.simulate.cluster.workload import FloatArray, TaskClasses

_HASH_WEIGHTS = np.random.default_rng(20230710).integers(1, 2**62, size=10, dtype=np.int64)


@dataclass(frozen=True, slots=True)
class Fragmentation:
    """FGD's F_n(M) for a fixed target workload, vectorised over many node states.

    ``type_access[t, m]`` says whether class m may run on GPU model code t (row -1, the
    last, stands for nodes without GPUs, which hold no free GPU milli anyway).
    """

    classes: TaskClasses
    type_access: BoolArray
    _milli_levels: IntArray  # (u, 1): the classes' distinct per-GPU demands
    _level_of_class: IntArray
    _total: int
    _gpu_access: BoolArray  # type_access of the classes that ask for a GPU

    @classmethod
    def build(cls, classes: TaskClasses, spec_masks_by_type: BoolArray) -> Fragmentation:
        """``spec_masks_by_type[s, t]``: whether spec s admits GPU model code t."""
        access = spec_masks_by_type[classes.spec_id].T  # (n_types, m)
        access = np.vstack([access, np.zeros((1, access.shape[1]), dtype=bool)])
        levels, level_of = np.unique(classes.gpu_milli, return_inverse=True)
        return cls(classes, access, levels.astype(np.int64)[:, None],
                   level_of.astype(np.int64), int(classes.count.sum()),
                   access & (classes.num_gpu > 0))

    @property
    def total(self) -> int:
        """Target pods counted in the classes: ``weighted`` / ``total`` is F_n(M) in milli."""
        return self._total

    def amount(self, cpu_free: IntArray, gpu_free: IntArray, gpu_type: IntArray
               ) -> FloatArray:
        """F_n(M) for K node states: ``cpu_free`` (K,), ``gpu_free`` (K, 8), ``gpu_type`` (K,)."""
        result: FloatArray = self.weighted(cpu_free, gpu_free, gpu_type) / self._total
        return result

    def weighted(self, cpu_free: IntArray, gpu_free: IntArray, gpu_type: IntArray
                 ) -> IntArray:
        """F_n(M) times the number of target pods: sum_m count_m F_n(m), in integers.

        FGD compares growths, and equal growths must compare equal whatever batch or order
        they were computed in; float weights (and BLAS) do not guarantee that, integers do.
        """
        runs = cpu_free[:, None] >= self.classes.cpu_milli
        # sum_m count_m F_n(m), F_n(m) = all free milli, less what m can use where it runs
        result: IntArray = (gpu_free.sum(axis=1) * self._total
                            - (self.terms(gpu_free, gpu_type) * runs).sum(axis=1))
        return result

    def terms(self, gpu_free: IntArray, gpu_type: IntArray) -> IntArray:
        """(K, m): count_m times the free milli class m can use on each node state when
        it gets the CPU it asks for (0 where its GPUs do not fit or the model is not its):
        :meth:`weighted` is ``total`` x free milli less the terms of the classes whose CPU
        fits, so one row serves every CPU level of the same GPUs.
        """
        c = self.classes
        free = gpu_free[:, None, :]
        fits = free >= self._milli_levels  # (K, u, 8): GPUs with each demand level free
        usable = (fits * free).sum(axis=2)[:, self._level_of_class]  # (K, m)
        gpus_fit = fits.sum(axis=2)[:, self._level_of_class] >= c.num_gpu
        result: IntArray = usable * (gpus_fit & self._gpu_access[gpu_type]) * c.count
        return result

    def amount_dedup(self, cpu_free: IntArray, gpu_free: IntArray, gpu_type: IntArray
                     ) -> FloatArray:
        """Same as :meth:`amount`, computed once per distinct node state.

        F_n(M) depends on the multiset of free GPU milli, not on device order, so states
        are keyed by (model, CPU left, sorted GPU free). Early in a run most nodes share a
        state, which makes FGD's per-pod scoring far cheaper than one row per node.
        """
        ordered = np.sort(gpu_free, axis=1)
        key = (ordered * _HASH_WEIGHTS[:8]).sum(axis=1) + cpu_free * _HASH_WEIGHTS[8] \
            + gpu_type * _HASH_WEIGHTS[9]
        _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
        values = self.amount(cpu_free[first], gpu_free[first], gpu_type[first])
        out: FloatArray = values[inverse]
        return out


StateKey = tuple[int, int, tuple[int, ...]]  # (GPU model, CPU left, free GPU milli sorted)
# per (model, GPU row): total x free milli, cumulative class terms by CPU demand, and for
# the CPU-limited measure the sums of the largest free values, the one-GPU classes a CPU
# limit can bind and the CPU from which none is bound (NodeStates._row)
_GpuRow = tuple[int, list[int], list[int], list[tuple[int, int, int, int]], int]


class NodeStates:
    """The distinct node states of a cluster, kept in step with its free arrays.

    A state is (GPU model, CPU left, sorted GPU free): everything F_n(M) and FGD's growth
    depend on. Nodes map to state ids (``node_state``; ``keys[id]`` is the state), callers
    hang per-state tables on them (:meth:`table`), so a policy scores a pod once per
    distinct state ever seen instead of once per node per pod. :meth:`sync` finds the
    nodes whose free resources changed by comparing with the last seen copy (or with
    ``ClusterState.version``), so it needs no hook in the engine and is correct for any
    sequence of views.

    F_n(M) of any state, a node's or one a candidate placement would make, comes from
    :meth:`weighted_of` in Python: per (model, sorted GPU free) it keeps
    :meth:`Fragmentation.terms` summed over the classes in order of their CPU demand, and a
    state's value is one bisection on its CPU left. A run meets ten times fewer distinct
    GPU rows than states, and scoring one pod touches a few states, for which numpy calls
    cost more than the arithmetic.

    ``cpu_limited`` switches to the CPU-limited variant of F_n(M) that
    ``placement.fgd_cpu_reserve`` scores with (see :meth:`weighted_of`); the metric the
    simulator reports stays FGD's (:class:`Fragmentation`).

    Ids of states no node holds any more are dropped once there are ``4 * n_nodes`` of
    them (tables are compacted alongside), which bounds memory on long traces; the sums per
    GPU row are dropped past ``MAX_GPU_ROWS``.
    """

    MAX_GPU_ROWS = 1 << 16

    __slots__ = ("_by_gpu", "_cap", "_class_cpu", "_cpu_order", "_cpu_seen", "_gpu_seen",
                 "_ids", "_single", "_tables", "_version_seen", "cpu_limited", "fragmentation",
                 "gpu_type", "keys", "node_state", "weighted")

    def __init__(self, fragmentation: Fragmentation, gpu_type: IntArray, *,
                 cpu_limited: bool = False) -> None:
        self.fragmentation = fragmentation
        self.gpu_type = gpu_type
        self.cpu_limited = cpu_limited
        n = gpu_type.size
        self.node_state: IntArray = np.full(n, -1, dtype=np.int64)
        self._cpu_seen: IntArray = np.full(n, -1, dtype=np.int64)
        self._gpu_seen: IntArray = np.full((n, MAX_GPUS_PER_NODE), -1, dtype=np.int64)
        self._version_seen: IntArray = np.full(n, -1, dtype=np.int64)
        self._ids: dict[StateKey, int] = {}
        self._tables: dict[object, FloatArray] = {}
        self._cap = 4 * n + 64
        self.keys: list[StateKey] = []
        self.weighted: list[int] = []  # per state: Fragmentation.weighted
        cpu = fragmentation.classes.cpu_milli
        self._cpu_order = np.argsort(cpu, kind="stable")
        self._class_cpu: list[int] = cpu[self._cpu_order].tolist()
        self._by_gpu: dict[tuple[int, tuple[int, ...]], _GpuRow] = {}
        c = fragmentation.classes
        # per GPU model: its one-GPU classes that need CPU (the ones a CPU limit can
        # bind) by CPU demand, as (CPU, GPU milli, count)
        access = fragmentation.type_access.tolist()
        self._single = [[(int(c.cpu_milli[m]), int(c.gpu_milli[m]), int(c.count[m]))
                         for m in np.argsort(c.cpu_milli, kind="stable").tolist()
                         if c.num_gpu[m] == 1 and c.cpu_milli[m] > 0 and row[m]]
                        for row in access]

    def __len__(self) -> int:
        return len(self._ids)

    def sync(self, cpu_free: IntArray, gpu_free: IntArray, version: IntArray | None = None
             ) -> None:
        """Re-map the nodes whose free CPU or GPU changed since the last call.

        ``version`` (``ClusterState.version``: a new tick on each change of a node) finds
        them with one comparison of a row instead of the (n, 8) free arrays; without it
        the arrays are compared with the copy kept of them.
        """
        if version is None:
            changed = np.flatnonzero((cpu_free != self._cpu_seen)
                                     | any_per_node(gpu_free != self._gpu_seen))
        else:
            changed = np.flatnonzero(version != self._version_seen)
            self._version_seen[changed] = version[changed]
        if changed.size == 0:
            return
        self._cpu_seen[changed] = cpu_free[changed]
        self._gpu_seen[changed] = gpu_free[changed]
        types, cpus = self.gpu_type[changed].tolist(), cpu_free[changed].tolist()
        ids = self._ids
        for k, (node, free) in enumerate(zip(changed.tolist(), gpu_free[changed].tolist(),
                                             strict=True)):
            key = (types[k], cpus[k], tuple(sorted(free)))
            sid = ids.get(key)
            if sid is None:
                sid = ids[key] = len(ids)
                self.keys.append(key)
                self.weighted.append(self.weighted_of(*key))
            self.node_state[node] = sid
        if len(ids) > self._cap:
            self._compact()

    def weighted_of(self, gpu_type: int, cpu: int, gpu: tuple[int, ...]) -> int:
        """:meth:`Fragmentation.weighted` of one state; ``gpu`` is its free milli per GPU
        in a fixed order (sorted), the same integers as the array version.

        With ``cpu_limited`` a one-GPU class m (CPU demand c > 0) can use only the
        ``cpu // c`` largest GPUs that fit it, as many as the CPU left holds pods of m, and
        the free milli of the other fitting GPUs counts as fragmented for m too (FGD
        counts every fitting GPU usable as soon as one pod's CPU is left).
        """
        row = self._by_gpu.get((gpu_type, gpu))
        if row is None:
            if len(self._by_gpu) >= self.MAX_GPU_ROWS:
                self._by_gpu.clear()
            row = self._by_gpu[(gpu_type, gpu)] = self._row(gpu_type, gpu)
        everything, fitting, largest, binding, enough = row
        result = everything - fitting[bisect_right(self._class_cpu, cpu)]
        if cpu < enough:  # some class's pods the CPU left holds are fewer than its GPUs
            for need, limit, count, k in binding:
                if cpu < need:  # by CPU demand: the rest do not run on this node at all
                    break
                if cpu < limit:
                    result += count * (largest[k] - largest[cpu // need])
        return result

    def _row(self, gpu_type: int, gpu: tuple[int, ...]) -> _GpuRow:
        """The sums :meth:`weighted_of` reads for one (model, GPU row): ``total`` x free
        milli; the class terms summed in order of CPU demand; with ``cpu_limited``, the
        sums of the row's 0..8 largest free values, per one-GPU class that fits k >= 2
        GPUs (its CPU demand c, k c: the CPU that lets it use all k, its count, k), and the
        CPU from which no class is limited.
        """
        frag = self.fragmentation
        terms = frag.terms(np.array([gpu], dtype=np.int64),
                           np.array([gpu_type], dtype=np.int64))[0, self._cpu_order]
        largest = [0]
        binding: list[tuple[int, int, int, int]] = []
        if self.cpu_limited:  # ``gpu`` is sorted: the largest values come last
            for v in reversed(gpu):
                largest.append(largest[-1] + v)
            for need, milli, count in self._single[gpu_type]:
                k = len(gpu) - bisect_left(gpu, milli)  # GPUs with milli free
                if k > 1:
                    binding.append((need, need * k, count, k))
        enough = max((limit for _, limit, _, _ in binding), default=0)
        return (sum(gpu) * frag.total, [0, *np.cumsum(terms).tolist()], largest, binding,
                enough)

    def table(self, key: object, width: int) -> FloatArray:
        """A (n_states, width) table under ``key``; NaN marks rows not filled in yet."""
        table = self._tables.get(key)
        n = len(self._ids)
        if table is None or table.shape[0] < n:
            grown = np.full((max(n, 2 * (0 if table is None else table.shape[0])), width),
                            np.nan)
            if table is not None:
                grown[: table.shape[0]] = table
            table = self._tables[key] = grown
        return table

    def _compact(self) -> None:
        """Keep only the states some node holds; renumber them and every table."""
        n_old = len(self._ids)
        alive, self.node_state = np.unique(self.node_state, return_inverse=True)
        kept = alive.tolist()
        self.keys = [self.keys[i] for i in kept]
        self.weighted = [self.weighted[i] for i in kept]
        self._ids = {key: i for i, key in enumerate(self.keys)}
        for key, table in self._tables.items():
            full = np.full((n_old, table.shape[1]), np.nan)
            rows = min(n_old, table.shape[0])
            full[:rows] = table[:rows]
            self._tables[key] = full[alive]


def allocated_gpu_fraction(gpu_allocated_milli: float, gpu_capacity_milli: float) -> float:
    """Share of the cluster's GPU capacity held by pods."""
    return gpu_allocated_milli / gpu_capacity_milli if gpu_capacity_milli else float("nan")


def unallocated_gpu_fraction(gpu_allocated_milli: float, gpu_capacity_milli: float) -> float:
    """Share of the cluster's GPU capacity left idle."""
    return 1.0 - allocated_gpu_fraction(gpu_allocated_milli, gpu_capacity_milli)


def fragmentation_rate(fragmented_milli: float, gpu_free_milli: float) -> float:
    """Share of the idle GPU capacity that the target workload cannot use (FGD's F/free)."""
    return fragmented_milli / gpu_free_milli if gpu_free_milli > 0 else 0.0


def delay_stats(delays_s: npt.ArrayLike) -> dict[str, float]:
    """Mean and P50/P95/P99 of delays (queueing delay, JCT); NaN when there are none."""
    values = np.asarray(delays_s, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return {"mean_s": float("nan"), "p50_s": float("nan"), "p95_s": float("nan"),
                "p99_s": float("nan")}
    p50, p95, p99 = np.percentile(values, [50, 95, 99])
    return {"mean_s": float(values.mean()), "p50_s": float(p50), "p95_s": float(p95),
            "p99_s": float(p99)}


def jain_fairness(allocations: npt.ArrayLike) -> float:
    """Jain's index (sum x)^2 / (n sum x^2): 1 when all tenants get the same, 1/n at worst."""
    x = np.asarray(allocations, dtype=np.float64)
    denom = x.size * float(np.square(x).sum())
    return float(x.sum() ** 2 / denom) if denom > 0 else float("nan")
