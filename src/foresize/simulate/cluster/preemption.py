"""Preemption policies: which running jobs to evict so that a pending job can start.

The engine asks only when the placement policy found no node for a pending job. A
policy returns the job ids to evict (empty: do not preempt); the engine evicts them,
puts them back in the queue with the service they attained, and places the pending job
with the placement policy, so preemption composes with any queue and placement policy
(``--queue priority --placement best_fit --preemption lowest_priority``, STYLE 2.4).

Every victim set a policy returns lies on one node and makes the job fit there; the
engine checks this and treats a breach as a bug. Policies are pure functions of the
:class:`PreemptionView`: no state, no randomness, ties broken by node index and job id.

Registry: ``PREEMPTION`` maps a name to a frozen dataclass whose fields are its
settings; ``PREEMPTION.get(name)()`` builds the default policy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Protocol

import numpy as np

from foresize.core.errors import InputError
from foresize.core.registry import Registry
from foresize.simulate.cluster.state import BoolArray, IntArray
from foresize.simulate.cluster.workload import FloatArray, Workload

__all__ = ["PREEMPTION", "LeastAttained", "LowestPriority", "NoPreemption",
           "PreemptionPolicy", "PreemptionView", "fits_after"]


@dataclass(frozen=True, slots=True)
class PreemptionView:
    """The engine's state as a preemption policy sees it (read-only by contract).

    Per-job arrays cover the whole workload, so building a view costs nothing: a
    policy selects the running jobs itself (``np.flatnonzero(view.running)``).
    """

    now_s: float
    workload: Workload
    allowed: BoolArray  # (n_specs, n_nodes): nodes each GPU-model constraint admits
    cpu_free: IntArray  # (n_nodes,)
    memory_free: IntArray  # (n_nodes,)
    gpu_free: IntArray  # (n_nodes, 8): free milli per GPU slot
    running: BoolArray  # (n_jobs,)
    node: IntArray  # (n_jobs,): node of a running job, else -1
    gpus_held: BoolArray  # (n_jobs, 8): GPU slots a running job holds on its node
    attained_s: FloatArray  # (n_jobs,): service banked before the current run
    run_start_s: FloatArray  # (n_jobs,): start of the current run (NaN if not running)

    def service_s(self, jobs: IntArray) -> FloatArray:
        """Service attained by ``jobs`` up to now, counting the current run."""
        running = np.where(self.running[jobs], self.now_s - self.run_start_s[jobs], 0.0)
        result: FloatArray = self.attained_s[jobs] + running
        return result


class PreemptionPolicy(Protocol):
    """Chooses the running jobs to evict so that ``job`` fits; empty: no preemption."""

    @property
    def name(self) -> str:
        """The registry name."""
        ...

    def victims(self, job: int, view: PreemptionView, /) -> Sequence[int]:
        """Job ids on one node whose eviction makes ``job`` fit there, or nothing."""
        ...


PREEMPTION: Registry[type[PreemptionPolicy]] = Registry("preemption policy")


def fits_after(job: int, node: int, evicted: Sequence[int], view: PreemptionView) -> bool:
    """Whether ``job`` fits on ``node`` once ``evicted`` (running there) have left."""
    w = view.workload
    ids = np.asarray(evicted, dtype=np.int64)
    cpu = view.cpu_free[node] + int(w.cpu_milli[ids].sum())
    memory = view.memory_free[node] + int(w.memory_mib[ids].sum())
    if cpu < w.cpu_milli[job] or memory < w.memory_mib[job]:
        return False
    if w.num_gpu[job] == 0:
        return True
    freed = (view.gpus_held[ids] * w.gpu_milli[ids, None]).sum(axis=0)
    gpu = view.gpu_free[node] + freed
    return int((gpu >= w.gpu_milli[job]).sum()) >= int(w.num_gpu[job])


def _cheapest_node(job: int, candidates: IntArray, key: FloatArray,
                   view: PreemptionView) -> list[int]:
    """The smallest eviction set over nodes, victims taken in ascending ``key`` order
    (``key`` is aligned with ``candidates``).

    Per node: evict candidates in ascending ``key`` until the job fits, then reprieve
    (keep) every victim, last first, that the job does not need, as the kube-scheduler
    does. Across nodes: fewest victims, then the smallest worst key, then node index.
    Nodes where even evicting every candidate is not enough are skipped up front.
    """
    w = view.workload
    nodes = view.node[candidates]
    allowed = view.allowed[w.spec_id[job]]
    best: tuple[int, float, int] | None = None
    chosen: list[int] = []
    for node in np.unique(nodes).tolist():
        if not allowed[node]:
            continue
        on_node = nodes == node
        here = candidates[on_node][np.lexsort((candidates[on_node], key[on_node]))]
        if not fits_after(job, node, here.tolist(), view):
            continue
        taken: list[int] = []
        for victim in here.tolist():
            taken.append(victim)
            if fits_after(job, node, taken, view):
                break
        for victim in reversed(taken[:-1]):
            rest = [v for v in taken if v != victim]
            if fits_after(job, node, rest, view):
                taken = rest
        worst = float(key[np.isin(candidates, taken)].max())
        rank = (len(taken), worst, node)
        if best is None or rank < best:
            best, chosen = rank, sorted(taken)
    return chosen


@PREEMPTION.register("none")
@dataclass(frozen=True, slots=True)
class NoPreemption:
    """Never evict: a job that does not fit waits."""

    name: ClassVar[str] = "none"

    def victims(self, job: int, view: PreemptionView, /) -> Sequence[int]:
        """Nothing."""
        return ()


@PREEMPTION.register("lowest_priority")
@dataclass(frozen=True, slots=True)
class LowestPriority:
    """Kubernetes-like priority preemption.

    Only jobs of strictly lower priority than the pending job are candidates; on one
    node, the lowest priorities go first (the most recently started first among equal
    priorities, as they lose the least progress), and the node needing the fewest
    victims wins. Equal priorities never preempt each other, so there is no livelock.
    """

    name: ClassVar[str] = "lowest_priority"

    def victims(self, job: int, view: PreemptionView, /) -> Sequence[int]:
        """The fewest lower-priority jobs on one node that make ``job`` fit."""
        priority = view.workload.priority
        candidates = np.flatnonzero(view.running & (priority < priority[job]))
        if candidates.size == 0:
            return ()
        # priority first; later start (less progress lost) breaks ties
        start = view.run_start_s[candidates]
        key = np.lexsort((-start, priority[candidates])).argsort().astype(np.float64)
        return _cheapest_node(job, candidates, key, view)


@PREEMPTION.register("least_attained")
@dataclass(frozen=True, slots=True)
class LeastAttained:
    """Least-attained-service preemption (Tiresias-style, priority-blind).

    A running job is a candidate when its attained service exceeds the pending job's by
    at least ``min_gap_s``; those with the most service go first. The gap is what stops
    two jobs from evicting each other in turn: a job evicted at service ``s`` can only
    evict its evictor once that one has ``s + min_gap_s`` of service.
    """

    name: ClassVar[str] = "least_attained"
    min_gap_s: float = 3600.0

    def __post_init__(self) -> None:
        if not (np.isfinite(self.min_gap_s) and self.min_gap_s > 0):
            msg = (f"The 'min_gap_s' parameter of LeastAttained must be positive seconds. "
                   f"Got {self.min_gap_s!r} instead.")
            raise InputError(msg)

    def victims(self, job: int, view: PreemptionView, /) -> Sequence[int]:
        """The fewest jobs with much more service, on one node, that make ``job`` fit."""
        running = np.flatnonzero(view.running)
        own = float(view.service_s(np.array([job]))[0])
        service = view.service_s(running)
        keep = service >= own + self.min_gap_s
        candidates, service = running[keep], service[keep]
        if candidates.size == 0:
            return ()
        return _cheapest_node(job, candidates, -service, view)


