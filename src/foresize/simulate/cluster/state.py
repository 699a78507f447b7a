"""The cluster model: nodes with CPU, memory and up to eight GPUs shared in milli-GPU.

GPU sharing follows openb (the FGD paper's trace): a pod asks for either a share of one
GPU (``gpu_milli`` < 1000 on one device) or whole GPUs. Every GPU's free milli is kept,
because fragmentation lives inside nodes: two half-free GPUs cannot host a whole-GPU pod.
State is a handful of numpy arrays so placement policies score all nodes at once.

Optionally a GPU is partitioned MIG-style into fixed slices (:func:`parse_mig`): a share
then gets the smallest free slice that covers it and holds the whole slice, and a whole-GPU
pod needs an unpartitioned GPU or a free 7g slice. Policies see this through one (n, 8)
array, ``gpu_fit``: the largest per-GPU demand each GPU can take now (its free milli when
unpartitioned, the capacity of its largest free slice otherwise), so the shared helpers only
compare demands with ``gpu_fit`` instead of ``gpu_free``. Without partitions ``gpu_fit`` *is*
``gpu_free`` (the same array), so nothing is copied or recomputed per pod.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from foresize.core.errors import InputError

MAX_GPUS_PER_NODE = 8
FULL_GPU_MILLI = 1000

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
# count_per_node reads a node's eight per-GPU bools as one 64-bit word
assert MAX_GPUS_PER_NODE * np.dtype(np.bool_).itemsize == np.dtype(np.uint64).itemsize


MIG_SEVENTHS = 7  # compute slices of an A100/H100 under MIG
MAX_SLICES = MIG_SEVENTHS  # at most seven 1g slices per GPU
# profile (compute sevenths) -> (memory eighths it holds, memory offsets it may start at),
# NVIDIA's A100/H100 MIG placement table ("Supported MIG Profiles", MIG user guide)
_MIG_PLACEMENT: dict[int, tuple[int, tuple[int, ...]]] = {
    1: (1, (0, 1, 2, 3, 4, 5, 6)), 2: (2, (0, 2, 4)), 3: (4, (0, 4)), 4: (4, (0,)),
    7: (8, (0,))}
_MIG_MEMORY_SLICES = 8


def slice_capacity_milli(profile: int) -> int:
    """Largest share (milli-GPU) a ``profile``g slice covers: profile/7 of a GPU, rounded
    down, so ``gpu_milli <= capacity`` exactly when ``gpu_milli / 1000 <= profile / 7``
    (a 4g slice is 571 milli: a 0.6 GPU pod does not fit it).
    """
    return profile * FULL_GPU_MILLI // MIG_SEVENTHS


def _placeable(profiles: tuple[int, ...], used: int = 0) -> bool:
    """Whether ``profiles`` fit the GPU's eight memory slices at their allowed offsets
    (``used``: a bit mask of the memory slices taken so far).
    """
    if not profiles:
        return True
    size, starts = _MIG_PLACEMENT[profiles[0]]
    for start in starts:
        bits = ((1 << size) - 1) << start
        if not used & bits and _placeable(profiles[1:], used | bits):
            return True
    return False


def parse_mig(text: str) -> tuple[int, ...]:
    """``3g+2g+2g`` -> ``(3, 2, 2)``: a MIG layout as compute sevenths, largest first.

    Only layouts real A100/H100 MIG can create are accepted: profiles 1g, 2g, 3g, 4g and
    7g, at most seven sevenths of compute, and a non-overlapping placement in the eight
    memory slices (1g takes one, 2g two, 3g and 4g four, 7g all eight, each only at the
    offsets NVIDIA allows). So 3g+2g+2g and 4g+2g+1g are valid while 4g+4g (too much
    compute) and 3g+3g+1g (nine memory slices) are not. A layout below seven sevenths
    (3g+3g) strands the rest: it stays free milli that no pod can use.
    """
    parts = [p.strip().lower() for p in text.split("+")]
    try:
        profiles = tuple(sorted((int(p.removesuffix("g")) for p in parts), reverse=True))
    except ValueError:
        raise InputError(f"MIG layout {text!r}: expected profiles like 3g+2g+2g") from None
    bad = [p for p in profiles if p not in _MIG_PLACEMENT]
    if bad or not profiles:
        raise InputError(f"MIG layout {text!r}: profiles are 1g, 2g, 3g, 4g and 7g")
    if sum(profiles) > MIG_SEVENTHS or not _placeable(profiles):
        raise InputError(f"MIG layout {text!r} is not one an A100/H100 can create",
                         hint="at most 7 compute sevenths and 8 memory slices "
                              "(3g and 4g take 4), e.g. 7g, 4g+2g+1g, 3g+2g+2g, 1g*7")
    return profiles


def count_per_node(mask: BoolArray) -> IntArray:
    """Trues per row of an (n, 8) per-GPU mask.

    A row of eight bools is eight bytes, so it is read as one 64-bit word and popcounted:
    about six times faster than ``mask.sum(axis=1)``, whose per-row reduction overhead
    dominates at eight columns, and this runs for every pod a policy places.
    """
    rows = np.ascontiguousarray(mask).view(np.uint64)
    result: IntArray = np.bitwise_count(rows).ravel().astype(np.int64)
    return result


def any_per_node(mask: BoolArray) -> BoolArray:
    """Whether any GPU of each node is set in an (n, 8) mask (see :func:`count_per_node`)."""
    result: BoolArray = np.ascontiguousarray(mask).view(np.uint64).ravel() != 0
    return result


N_GPU_POD_KINDS = MAX_GPUS_PER_NODE + 1
_TICKS = itertools.count(1)  # ClusterState.version values, never reused in a process


def gpu_pod_kind(num_gpu: int, gpu_milli: int) -> int:
    """A GPU pod's kind as the FGD authors' GPU clustering groups pods: 0 for a share of
    one GPU, k for k whole GPUs (their ``share-gpu`` / ``k-gpu`` affinity tags).
    """
    return 0 if num_gpu == 1 and gpu_milli < FULL_GPU_MILLI else num_gpu


@dataclass(frozen=True, slots=True)
class Cluster:
    """Static node inventory. ``gpu_type`` holds codes into ``gpu_types`` (-1: no GPU)."""

    names: tuple[str, ...]
    cpu_milli: IntArray
    memory_mib: IntArray
    n_gpu: IntArray
    gpu_type: IntArray
    gpu_types: tuple[str, ...]
    source: str = "memory"
    sha256: str | None = None
    mig: tuple[tuple[int, ...], ...] = ()  # per node: its GPUs' MIG layout, () unpartitioned

    def __post_init__(self) -> None:
        n = len(self.names)
        if n == 0:
            raise InputError(f"{self.source}: the cluster has no nodes")
        for field in ("cpu_milli", "memory_mib", "n_gpu", "gpu_type"):
            if getattr(self, field).shape != (n,):
                raise InputError(f"{self.source}: {field} has shape "
                                 f"{getattr(self, field).shape}, expected ({n},)")
        too_many = np.flatnonzero(self.n_gpu > MAX_GPUS_PER_NODE)
        if too_many.size:
            raise InputError(
                f"{self.source}: node {self.names[too_many[0]]!r} has "
                f"{self.n_gpu[too_many[0]]} GPUs; at most {MAX_GPUS_PER_NODE} are modelled")
        if self.mig and len(self.mig) != n:
            raise InputError(f"{self.source}: mig has {len(self.mig)} layouts for {n} nodes")

    @property
    def partitioned(self) -> bool:
        """Whether any GPU is split into MIG slices."""
        return any(self.mig)

    def with_mig(self, layouts: dict[str, tuple[int, ...]]) -> Cluster:
        """The same nodes with every GPU of model ``m`` partitioned as ``layouts[m]``."""
        unknown = sorted(set(layouts) - set(self.gpu_types))
        if unknown:
            raise InputError(f"{self.source}: MIG layout for GPU model {unknown[0]!r}, which "
                             f"no node has; models: {', '.join(self.gpu_types)}")
        by_code = [layouts.get(t, ()) for t in self.gpu_types]
        mig = tuple(by_code[t] if t >= 0 else () for t in self.gpu_type.tolist())
        return replace(self, mig=mig)

    @property
    def n_nodes(self) -> int:
        """Number of nodes."""
        return len(self.names)

    @property
    def gpu_capacity_milli(self) -> int:
        """All GPUs of the cluster in milli-GPU."""
        return int(self.n_gpu.sum()) * FULL_GPU_MILLI

    def spec_mask(self, spec: tuple[str, ...], *, pod: str = "a pod") -> BoolArray:
        """Nodes whose GPU model is in ``spec`` (empty spec: every node).

        A model the cluster has never heard of is an input error rather than a pod that
        silently never fits: it is almost always a typo or the wrong node list.
        """
        if not spec:
            return np.ones(self.n_nodes, dtype=bool)
        unknown = [name for name in spec if name not in self.gpu_types]
        if unknown:
            raise InputError(
                f"{self.source}: {pod} asks for GPU model {unknown[0]!r}, which no node has; "
                f"models in the cluster: {', '.join(self.gpu_types)}",
                hint="check the gpu_spec column or pass the node list the pods were made for")
        codes = [self.gpu_types.index(name) for name in spec]
        return np.isin(self.gpu_type, codes)

    def describe(self) -> dict[str, object]:
        """What a result records about the cluster (provenance)."""
        return {"source": self.source, "sha256": self.sha256, "n_nodes": self.n_nodes,
                "n_gpus": int(self.n_gpu.sum()), "cpu_milli": int(self.cpu_milli.sum()),
                "memory_mib": int(self.memory_mib.sum())}


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a pod runs: a node and the GPU indices on it (empty for CPU-only pods).

    ``slices`` is filled in by :meth:`ClusterState.allocate`: the MIG slice taken on each
    GPU (-1 on an unpartitioned one), so that release gives back that very slice.
    Policies leave it empty: which slice of a GPU serves a pod is the cluster's rule.
    """

    node: int
    gpus: tuple[int, ...] = ()
    slices: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Slices:
    """MIG slice occupancy: ``cap[n, g, s]`` is slice s's capacity in milli (0: no such
    slice), ``free`` whether it is free, ``partitioned[n, g]`` whether GPU g has slices.
    """

    cap: IntArray
    free: BoolArray
    partitioned: BoolArray


class ClusterState:
    """Free resources per node and per GPU; the engine's only mutable state.

    GPU slots beyond a node's GPU count hold 0 free milli, so they never fit a pod and
    never count as fragmented capacity. With MIG layouts ``slices`` holds the slice
    occupancy, and a partitioned GPU's ``gpu_free`` drops by a slice's whole capacity when
    a pod takes it (the rest of the slice is of no use to anyone else).
    """

    __slots__ = ("cluster", "cpu_free", "fit_ranked", "gpu_fit", "gpu_free", "gpu_free_total",
                 "gpu_pods", "memory_free", "slices", "version")

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.cpu_free: IntArray = cluster.cpu_milli.astype(np.int64, copy=True)
        self.memory_free: IntArray = cluster.memory_mib.astype(np.int64, copy=True)
        slots = np.arange(MAX_GPUS_PER_NODE)[None, :] < cluster.n_gpu[:, None]
        self.gpu_free: IntArray = np.where(slots, FULL_GPU_MILLI, 0).astype(np.int64)
        self.gpu_fit: IntArray = self.gpu_free
        # GPU pods per node by kind (see gpu_pod_kind): what GPU-clustering placement
        # reads, since free milli alone cannot tell a node of shares from one 2-GPU pod
        self.gpu_pods: IntArray = np.zeros((cluster.n_nodes, N_GPU_POD_KINDS), dtype=np.int64)
        self.slices: Slices | None = None
        if cluster.partitioned:
            cap = np.zeros((cluster.n_nodes, MAX_GPUS_PER_NODE, MAX_SLICES), dtype=np.int64)
            for node, layout in enumerate(cluster.mig):
                caps = [slice_capacity_milli(p) for p in layout]
                cap[node, : cluster.n_gpu[node], : len(caps)] = caps
            free: BoolArray = cap > 0
            has_slices: BoolArray = cap[:, :, 0] > 0  # layouts fill slices from 0
            self.slices = Slices(cap, free, has_slices)
            self.gpu_fit = self.gpu_free.copy()
            self._refit(self.slices, np.arange(cluster.n_nodes))
        # per-node summaries kept in step with every change (see _changed), so that a
        # policy compares one (n,) row per pod instead of reducing the (n, 8) arrays
        self.gpu_free_total: IntArray = self.gpu_free.sum(axis=1)
        self.fit_ranked: IntArray = np.ascontiguousarray(-np.sort(-self.gpu_fit, axis=1).T)
        self.version: IntArray = np.full(cluster.n_nodes, next(_TICKS), dtype=np.int64)

    def _changed(self, node: int) -> None:
        """Bring ``node``'s summaries up to date after its free resources changed:
        ``gpu_free_total`` (free GPU milli), ``fit_ranked[k]`` (its (k+1)-th largest
        ``gpu_fit``: k+1 GPUs take a per-GPU demand d exactly when it is >= d) and
        ``version`` (a fresh tick, so a cache of per-node values finds the nodes to redo
        without comparing whole arrays). Ticks are unique in the process, so a cache that
        saw another state's nodes never takes this state's for them. Eight values in
        Python are cheaper than numpy calls.
        """
        free = self.gpu_free[node].tolist()
        self.gpu_free_total[node] = sum(free)
        fit = free if self.slices is None else self.gpu_fit[node].tolist()
        self.fit_ranked[:, node] = sorted(fit, reverse=True)
        self.version[node] = next(_TICKS)

    def _refit(self, slices: Slices, nodes: IntArray | int) -> None:
        """Recompute ``gpu_fit`` of ``nodes`` from their free slices."""
        largest = (slices.cap[nodes] * slices.free[nodes]).max(axis=-1)
        self.gpu_fit[nodes] = np.where(slices.partitioned[nodes], largest,
                                       self.gpu_free[nodes])

    def allocate(self, cpu_milli: int, memory_mib: int, gpu_milli: int,
                 placement: Placement) -> Placement:
        """Take a pod's resources; ``gpu_milli`` is per GPU. Over-commit is a bug.

        Returns ``placement`` with the MIG slices taken (the smallest free slice covering
        ``gpu_milli`` on each partitioned GPU, lowest index on ties); release needs it.
        """
        node, gpus = placement.node, placement.gpus
        self.cpu_free[node] -= cpu_milli
        self.memory_free[node] -= memory_mib
        if gpus:
            self.gpu_pods[node, gpu_pod_kind(len(gpus), gpu_milli)] += 1
        over = False
        if self.slices is None:
            free = self.gpu_free
            for g in gpus:  # scalar updates: a pod holds few GPUs, fancy indexing costs more
                free[node, g] -= gpu_milli
                if free[node, g] < 0:
                    over = True
        else:
            placement = self._take_slices(self.slices, gpu_milli, placement)
            over = bool((self.gpu_free[node, list(gpus)] < 0).any())
        self._changed(node)
        if over or self.cpu_free[node] < 0 or self.memory_free[node] < 0:
            msg = f"placement {placement} over-commits node {node}"
            raise RuntimeError(msg)
        return placement

    def _take_slices(self, slices: Slices, gpu_milli: int, placement: Placement
                     ) -> Placement:
        node, taken = placement.node, []
        for g in placement.gpus:
            if not slices.partitioned[node, g]:
                self.gpu_free[node, g] -= gpu_milli
                taken.append(-1)
                continue
            cap = slices.cap[node, g]
            covers = slices.free[node, g] & (cap >= gpu_milli)
            if not covers.any():
                msg = f"placement {placement}: no free MIG slice on GPU {g} covers {gpu_milli}"
                raise RuntimeError(msg)
            s = int(np.argmin(np.where(covers, cap, np.iinfo(np.int64).max)))
            slices.free[node, g, s] = False
            self.gpu_free[node, g] -= cap[s]
            taken.append(s)
        self._refit(slices, node)
        return replace(placement, slices=tuple(taken))

    def release(self, cpu_milli: int, memory_mib: int, gpu_milli: int,
                placement: Placement) -> None:
        """Give a finished pod's resources back (``placement`` as ``allocate`` returned it)."""
        node, gpus = placement.node, list(placement.gpus)
        self.cpu_free[node] += cpu_milli
        self.memory_free[node] += memory_mib
        if gpus:
            self.gpu_pods[node, gpu_pod_kind(len(gpus), gpu_milli)] -= 1
        slices = self.slices
        if slices is None:
            self.gpu_free[node, gpus] += gpu_milli
        else:
            for g, s in zip(gpus, placement.slices, strict=True):
                if s < 0:
                    self.gpu_free[node, g] += gpu_milli
                else:
                    slices.free[node, g, s] = True
                    self.gpu_free[node, g] += slices.cap[node, g, s]
            self._refit(slices, node)
        self._changed(node)

    def set_up(self, node: int, *, up: bool) -> None:
        """Bring a node slot up with everything free, or take it down with nothing free
        (an absent slot then fits no pod and adds nothing to free totals).
        """
        c = self.cluster
        self.cpu_free[node] = c.cpu_milli[node] if up else 0
        self.memory_free[node] = c.memory_mib[node] if up else 0
        self.gpu_pods[node] = 0
        self.gpu_free[node] = np.where(np.arange(MAX_GPUS_PER_NODE) < c.n_gpu[node],
                                       FULL_GPU_MILLI if up else 0, 0)
        if self.slices is not None:
            self.slices.free[node] = (self.slices.cap[node] > 0) & up
            self._refit(self.slices, node)
        self._changed(node)

    @property
    def gpu_allocated_milli(self) -> int:
        """Milli-GPU currently held by pods."""
        return self.cluster.gpu_capacity_milli - int(self.gpu_free.sum())
