"""The cluster model: nodes with CPU, memory and up to eight GPUs shared in milli-GPU.

GPU sharing follows openb (the FGD paper's trace): a pod asks for either a share of one
GPU (``gpu_milli`` < 1000 on one device) or whole GPUs. Every GPU's free milli is kept,
because fragmentation lives inside nodes: two half-free GPUs cannot host a whole-GPU pod.
State is a handful of numpy arrays so placement policies score all nodes at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from foresize.core.errors import InputError

MAX_GPUS_PER_NODE = 8
FULL_GPU_MILLI = 1000

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
# count_per_node reads a node's eight per-GPU bools as one 64-bit word
assert MAX_GPUS_PER_NODE * np.dtype(np.bool_).itemsize == np.dtype(np.uint64).itemsize


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
    """Where a pod runs: a node and the GPU indices on it (empty for CPU-only pods)."""

    node: int
    gpus: tuple[int, ...] = ()


class ClusterState:
    """Free resources per node and per GPU; the engine's only mutable state.

    GPU slots beyond a node's GPU count hold 0 free milli, so they never fit a pod and
    never count as fragmented capacity.
    """

    __slots__ = ("cluster", "cpu_free", "gpu_free", "memory_free")

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.cpu_free: IntArray = cluster.cpu_milli.astype(np.int64, copy=True)
        self.memory_free: IntArray = cluster.memory_mib.astype(np.int64, copy=True)
        slots = np.arange(MAX_GPUS_PER_NODE)[None, :] < cluster.n_gpu[:, None]
        self.gpu_free: IntArray = np.where(slots, FULL_GPU_MILLI, 0).astype(np.int64)

    def allocate(self, cpu_milli: int, memory_mib: int, gpu_milli: int,
                 placement: Placement) -> None:
        """Take a pod's resources; ``gpu_milli`` is per GPU. Over-commit is a bug."""
        node, gpus = placement.node, list(placement.gpus)
        self.cpu_free[node] -= cpu_milli
        self.memory_free[node] -= memory_mib
        self.gpu_free[node, gpus] -= gpu_milli
        if (self.cpu_free[node] < 0 or self.memory_free[node] < 0
                or (self.gpu_free[node, gpus] < 0).any()):
            msg = f"placement {placement} over-commits node {node}"
            raise RuntimeError(msg)

    def release(self, cpu_milli: int, memory_mib: int, gpu_milli: int,
                placement: Placement) -> None:
        """Give a finished pod's resources back."""
        node, gpus = placement.node, list(placement.gpus)
        self.cpu_free[node] += cpu_milli
        self.memory_free[node] += memory_mib
        self.gpu_free[node, gpus] += gpu_milli

    def set_up(self, node: int, *, up: bool) -> None:
        """Bring a node slot up with everything free, or take it down with nothing free
        (an absent slot then fits no pod and adds nothing to free totals).
        """
        c = self.cluster
        self.cpu_free[node] = c.cpu_milli[node] if up else 0
        self.memory_free[node] = c.memory_mib[node] if up else 0
        self.gpu_free[node] = np.where(np.arange(MAX_GPUS_PER_NODE) < c.n_gpu[node],
                                       FULL_GPU_MILLI if up else 0, 0)

    @property
    def gpu_allocated_milli(self) -> int:
        """Milli-GPU currently held by pods."""
        return self.cluster.gpu_capacity_milli - int(self.gpu_free.sum())
