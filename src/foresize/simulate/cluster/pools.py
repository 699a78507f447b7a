"""Node pools: node templates the cluster can grow and shrink by, for autoscaling.

A pool is what a cloud node group is: one node shape (CPU, memory, GPUs of one model),
a price per node-hour, a provisioning delay (request to ready), and a size kept within
``[min_nodes, max_nodes]``. The engine's cluster stays a static inventory: every pool
contributes ``max_nodes`` node slots after the fixed (``--nodes``) nodes, and a slot is
either absent, provisioning or ready. Keeping the arrays static means placement policies
need no change: an absent slot is simply not an allowed node, and has no free resources.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from foresize.core.errors import InputError, UsageError
from foresize.core.units import parse_duration
from foresize.simulate.cluster.state import MAX_GPUS_PER_NODE, Cluster, IntArray

FIXED_POOL = -1  # pool code of the nodes given with --nodes: always up, never scaled


@dataclass(frozen=True, slots=True)
class NodePool:
    """One node template and its size limits; ``initial_nodes`` are ready at time 0."""

    name: str
    cpu_milli: int
    memory_mib: int
    n_gpu: int = 0
    gpu_model: str = ""
    price_per_node_h: float = 0.0
    provision_delay_s: float = 0.0
    min_nodes: int = 0
    max_nodes: int = 10
    initial_nodes: int = 0

    def __post_init__(self) -> None:
        where = f"node pool {self.name!r}"
        if not self.name:
            raise InputError("a node pool needs a name")
        if self.cpu_milli <= 0 or self.memory_mib <= 0:
            raise InputError(f"{where}: cpu and memory must be positive")
        if not 0 <= self.n_gpu <= MAX_GPUS_PER_NODE:
            raise InputError(f"{where}: gpus must be 0..{MAX_GPUS_PER_NODE}, got {self.n_gpu}")
        if self.n_gpu and not self.gpu_model:
            raise InputError(f"{where}: a pool with GPUs needs gpu_model")
        if not (self.price_per_node_h >= 0 and self.provision_delay_s >= 0):
            raise InputError(f"{where}: price and delay must be >= 0")
        if not 0 <= self.min_nodes <= self.initial_nodes <= self.max_nodes or self.max_nodes < 1:
            raise InputError(f"{where}: need 0 <= min <= initial <= max and max >= 1, got "
                             f"min={self.min_nodes} initial={self.initial_nodes} "
                             f"max={self.max_nodes}")


_POOL_KEYS = {"name", "cpu", "memory_gib", "gpus", "gpu_model", "price", "delay", "min", "max",
              "initial"}


def parse_pool(text: str) -> NodePool:
    """``name=a100,cpu=96,memory_gib=1152,gpus=8,gpu_model=A100,price=32.77,delay=3m,
    min=0,max=10,initial=0`` (the ``--pool`` syntax; cpu in cores, delay with a unit).
    ``initial`` defaults to ``min``.
    """
    fields: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        if not sep or key not in _POOL_KEYS:
            raise UsageError(f"--pool {text!r}: {part!r} is not KEY=VALUE with KEY one of "
                             f"{', '.join(sorted(_POOL_KEYS))}")
        fields[key] = value
    for key in ("name", "cpu", "memory_gib"):
        if key not in fields:
            raise UsageError(f"--pool {text!r}: {key}= is required")
    try:
        low = int(fields.get("min", "0"))
        return NodePool(
            name=fields["name"], cpu_milli=round(float(fields["cpu"]) * 1000),
            memory_mib=round(float(fields["memory_gib"]) * 1024),
            n_gpu=int(fields.get("gpus", "0")), gpu_model=fields.get("gpu_model", ""),
            price_per_node_h=float(fields.get("price", "0")),
            provision_delay_s=parse_duration(fields.get("delay", "0s")),
            min_nodes=low, max_nodes=int(fields.get("max", "10")),
            initial_nodes=int(fields.get("initial", str(low))))
    except ValueError as exc:
        raise UsageError(f"--pool {text!r}: {exc}") from None


@dataclass(frozen=True, slots=True)
class PoolLayout:
    """Which pool each node slot of the cluster belongs to (``FIXED_POOL``: a fixed node)."""

    pools: tuple[NodePool, ...]
    node_pool: IntArray

    @property
    def n_pools(self) -> int:
        """Number of pools."""
        return len(self.pools)

    def slots(self, pool: int) -> IntArray:
        """The node indices reserved for ``pool``."""
        result: IntArray = np.flatnonzero(self.node_pool == pool)
        return result


def with_pools(fixed: Cluster | None, pools: Sequence[NodePool]) -> tuple[Cluster, PoolLayout]:
    """The cluster of the fixed nodes followed by ``max_nodes`` slots per pool.

    GPU models are merged, so a pool may bring a model the fixed nodes lack.
    """
    names = [p.name for p in pools]
    if len(set(names)) != len(names):
        raise InputError(f"node pool names repeat: {', '.join(names)}")
    if fixed is None and not pools:
        raise InputError("no nodes: pass --nodes or at least one --pool")
    fixed_types = fixed.gpu_types if fixed is not None else ()
    models = tuple(sorted({*fixed_types, *(p.gpu_model for p in pools if p.n_gpu)}))
    node_names: list[str] = list(fixed.names) if fixed is not None else []
    cpu, memory, gpus, types, owner = [], [], [], [], []
    if fixed is not None:
        remap = np.array([models.index(t) for t in fixed.gpu_types] + [-1], dtype=np.int64)
        cpu.append(fixed.cpu_milli)
        memory.append(fixed.memory_mib)
        gpus.append(fixed.n_gpu)
        types.append(remap[fixed.gpu_type])  # -1 indexes the appended -1
        owner.append(np.full(fixed.n_nodes, FIXED_POOL, dtype=np.int64))
    for k, pool in enumerate(pools):
        n = pool.max_nodes
        node_names += [f"{pool.name}-{i}" for i in range(n)]
        cpu.append(np.full(n, pool.cpu_milli, dtype=np.int64))
        memory.append(np.full(n, pool.memory_mib, dtype=np.int64))
        gpus.append(np.full(n, pool.n_gpu, dtype=np.int64))
        types.append(np.full(n, models.index(pool.gpu_model) if pool.n_gpu else -1,
                             dtype=np.int64))
        owner.append(np.full(n, k, dtype=np.int64))
    source = fixed.source if fixed is not None else "pools"
    if pools:
        source += " + pools " + ",".join(names)
    cluster = Cluster(names=tuple(node_names), cpu_milli=np.concatenate(cpu),
                      memory_mib=np.concatenate(memory), n_gpu=np.concatenate(gpus),
                      gpu_type=np.concatenate(types), gpu_types=models, source=source,
                      sha256=fixed.sha256 if fixed is not None else None)
    return cluster, PoolLayout(tuple(pools), np.concatenate(owner))
