"""Autoscalers: how many nodes to add to each pool, and which empty nodes to remove.

The engine calls ``decide(view)`` on every autoscaler tick (``Autoscaling.every_s``)
with an :class:`AutoscaleView`, a snapshot of the pools, node slots and pending pods,
and applies the :class:`ScaleDecision`:

* ``add[p]`` new nodes of pool ``p`` are requested now and become ready after the pool's
  ``provision_delay_s``; a request beyond ``max_nodes`` is capped by the engine (a
  policy asks for what it wants, the pool bounds it, as a cloud node group does).
* ``remove`` names node slots to delete now. Only ready, empty nodes of a pool may be
  removed and never below ``min_nodes``: pods are not drained, so a breach is a policy
  bug and the engine raises.

Policies are pure functions of the view (no state; randomness only from ``view.rng``),
with one signature, so a predictive autoscaler is one more class registered in
``AUTOSCALE``; it may read the same view (``pending_*`` arrays for demand now, ``now_s``
for forecasts keyed on time). Registry: ``AUTOSCALE`` maps a name to a frozen dataclass
whose fields are its settings, ``AUTOSCALE.get(name)()`` builds the default.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Protocol

import numpy as np

from foresize.core.errors import InputError
from foresize.core.registry import Registry
from foresize.simulate.cluster.pools import FIXED_POOL, NodePool
from foresize.simulate.cluster.state import FULL_GPU_MILLI, BoolArray, IntArray
from foresize.simulate.cluster.workload import FloatArray

__all__ = ["ABSENT", "AUTOSCALE", "PROVISIONING", "READY", "AutoscaleView", "Autoscaler",
           "ClusterAutoscaler", "NoAutoscaler", "ScaleDecision"]

ABSENT, PROVISIONING, READY = 0, 1, 2  # node slot status codes


@dataclass(frozen=True, slots=True)
class AutoscaleView:
    """What an autoscaler sees at a tick (copies: a policy cannot change the engine).

    Node arrays cover every slot of the cluster, fixed nodes included
    (``node_pool == FIXED_POOL``); pending arrays are in queue-entry order.
    """

    now_s: float
    pools: tuple[NodePool, ...]
    node_pool: IntArray  # (n_nodes,): pool of each slot, FIXED_POOL for fixed nodes
    node_status: IntArray  # (n_nodes,): ABSENT, PROVISIONING or READY
    empty_since_s: FloatArray  # (n_nodes,): since when a ready node holds no pod, else NaN
    cpu_free: IntArray  # (n_nodes,)
    memory_free: IntArray  # (n_nodes,)
    gpu_free: IntArray  # (n_nodes, 8): free milli per GPU slot
    pending_job: IntArray  # (k,): job ids of the pods waiting for a node
    pending_since_s: FloatArray  # (k,): when each entered the queue
    pending_demand: IntArray  # (k, 4): cpu_milli, memory_mib, num_gpu, gpu_milli per GPU
    pending_fits_pool: BoolArray  # (k, n_pools): fits an empty node of the pool (model too)
    rng: np.random.Generator

    def pool_size(self) -> IntArray:
        """Nodes per pool that are ready or provisioning (what ``max_nodes`` bounds)."""
        up = (self.node_status != ABSENT) & (self.node_pool != FIXED_POOL)
        result: IntArray = np.bincount(self.node_pool[up], minlength=len(self.pools))
        return result


@dataclass(frozen=True, slots=True)
class ScaleDecision:
    """``add``: nodes to request per pool (index = pool; empty: none); ``remove``: slots."""

    add: tuple[int, ...] = ()
    remove: tuple[int, ...] = ()

    @property
    def is_empty(self) -> bool:
        """Nothing to do."""
        return not any(self.add) and not self.remove


class Autoscaler(Protocol):
    """Decides pool sizes at each autoscaler tick."""

    @property
    def name(self) -> str:
        """The registry name."""
        ...

    def decide(self, view: AutoscaleView, /) -> ScaleDecision:
        """Nodes to add per pool and empty nodes to remove, now."""
        ...


AUTOSCALE: Registry[type[Autoscaler]] = Registry("autoscaler")


@AUTOSCALE.register("none")
@dataclass(frozen=True, slots=True)
class NoAutoscaler:
    """Pools keep their initial size: the fixed-capacity baseline."""

    name: ClassVar[str] = "none"

    def decide(self, view: AutoscaleView, /) -> ScaleDecision:
        """Nothing."""
        return ScaleDecision()


@dataclass(slots=True)
class _Bin:
    """A node the scale-up estimate packs pending pods onto (provisioning or to add)."""

    pool: int
    cpu: int
    memory: int
    gpu: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def take(self, cpu: int, memory: int, num_gpu: int, gpu_milli: int) -> bool:
        """Reserve a pod's demand if it fits (tightest GPU for a share, else lowest)."""
        if cpu > self.cpu or memory > self.memory:
            return False
        fits = np.flatnonzero(self.gpu >= gpu_milli) if num_gpu else np.zeros(0, np.int64)
        if fits.size < num_gpu:
            return False
        if num_gpu == 1 and gpu_milli < FULL_GPU_MILLI:
            fits = fits[np.argsort(self.gpu[fits], kind="stable")]
        self.gpu[fits[:num_gpu]] -= gpu_milli
        self.cpu -= cpu
        self.memory -= memory
        return True


def _empty_bin(pool: NodePool, k: int) -> _Bin:
    return _Bin(k, pool.cpu_milli, pool.memory_mib,
                np.full(pool.n_gpu, FULL_GPU_MILLI, dtype=np.int64))


@AUTOSCALE.register("cluster_autoscaler")
@dataclass(frozen=True, slots=True)
class ClusterAutoscaler:
    """Reactive, like the Kubernetes Cluster Autoscaler with the price expander.

    Scale-up: pods pending at least ``pending_after_s`` are packed, in queue order and
    first-fit, onto nodes already provisioning, then onto new nodes of the cheapest pool
    whose empty node fits them (lowest pool index on ties) that is below ``max_nodes``;
    one new node per bin opened. Counting provisioning nodes first is what keeps a
    reactive scaler from requesting the same capacity again at every tick of the delay.
    Pods no pool can host are left alone.

    Scale-down: ready pool nodes empty for at least ``scale_down_after_s`` are removed,
    longest-empty first, down to ``min_nodes``. Only empty nodes: the engine does not
    drain (the Cluster Autoscaler also moves pods off under-used nodes; not modelled).
    """

    name: ClassVar[str] = "cluster_autoscaler"
    scale_down_after_s: float = 600.0
    pending_after_s: float = 0.0

    def __post_init__(self) -> None:
        for setting in ("scale_down_after_s", "pending_after_s"):
            value = getattr(self, setting)
            if not (np.isfinite(value) and value >= 0):
                msg = (f"The {setting!r} parameter of ClusterAutoscaler must be seconds "
                       f">= 0. Got {value!r} instead.")
                raise InputError(msg)

    def decide(self, view: AutoscaleView, /) -> ScaleDecision:
        """Add nodes for pods that wait and would fit; remove nodes empty for long."""
        size = view.pool_size()
        add = self._scale_up(view, size)
        remove = self._scale_down(view, size)
        return ScaleDecision(tuple(int(a) for a in add) if add.any() else (), remove)

    def _scale_up(self, view: AutoscaleView, size: IntArray) -> IntArray:
        add = np.zeros(len(view.pools), dtype=np.int64)
        waited = view.now_s - view.pending_since_s >= self.pending_after_s
        rows = np.flatnonzero(waited & view.pending_fits_pool.any(axis=1))
        if rows.size == 0:
            return add
        bins = [_empty_bin(view.pools[int(view.node_pool[n])], int(view.node_pool[n]))
                for n in np.flatnonzero(view.node_status == PROVISIONING).tolist()]
        by_price = sorted(range(len(view.pools)),
                          key=lambda k: (view.pools[k].price_per_node_h, k))
        for row in rows.tolist():
            cpu, memory, num_gpu, gpu_milli = (int(x) for x in view.pending_demand[row])
            fits = view.pending_fits_pool[row]
            if any(fits[b.pool] and b.take(cpu, memory, num_gpu, gpu_milli) for b in bins):
                continue
            for k in by_price:
                if fits[k] and size[k] + add[k] < view.pools[k].max_nodes:
                    fresh = _empty_bin(view.pools[k], k)
                    fresh.take(cpu, memory, num_gpu, gpu_milli)
                    bins.append(fresh)
                    add[k] += 1
                    break
        return add

    def _scale_down(self, view: AutoscaleView, size: IntArray) -> tuple[int, ...]:
        idle = np.flatnonzero((view.node_status == READY) & (view.node_pool != FIXED_POOL)
                              & (view.now_s - view.empty_since_s >= self.scale_down_after_s))
        if idle.size == 0:
            return ()
        idle = idle[np.lexsort((idle, view.empty_since_s[idle]))]
        spare = size - np.array([p.min_nodes for p in view.pools], dtype=np.int64)
        removed: list[int] = []
        for node in idle.tolist():
            pool = int(view.node_pool[node])
            if spare[pool] > 0:
                spare[pool] -= 1
                removed.append(node)
        return tuple(sorted(removed))
