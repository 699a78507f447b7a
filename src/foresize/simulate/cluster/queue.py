"""Queue-order policies: in which order the engine tries to place the pending jobs.

A queue policy sees a :class:`QueueView` (the pending jobs as parallel numpy arrays
plus the cluster's allocation) and returns a permutation of ``range(k)``. It does
not place anything: the engine walks the order and asks the placement policy, so
queue discipline is swapped in one place and never branches on policy names
(STYLE 2.4). Policies are pure: same view, same order; no state, no randomness.

Every rule breaks ties by FIFO order, i.e. by ``(arrival_s, job_id)``, so the
result never depends on how the engine happened to list the jobs.

Registry: ``QUEUE`` maps a name to a frozen dataclass. Its fields are the policy's
settings, each typed and with a default, so ``QUEUE.get(name)()`` builds the
default policy, ``QUEUE.get(name)(**settings)`` a configured one, and
``dataclasses.fields`` gives the CLI its options. Settings are checked when the
policy is built (an ``InputError`` naming the setting).

Validation: the engine calls :func:`check_view` once per view it builds (or
once per trace in a trusted loop); the policies themselves do not re-validate, so
ordering 10^4 jobs stays in the millisecond range.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import ClassVar, Literal, Protocol, get_args

import numpy as np
import numpy.typing as npt

from foresize.core.errors import InputError
from foresize.core.registry import Registry

__all__ = [
    "QUEUE",
    "DrfOrder",
    "EdfOrder",
    "FifoOrder",
    "LasOrder",
    "PriorityOrder",
    "QueuePolicy",
    "QueueView",
    "SjfOrder",
    "check_queue_policy",
    "check_view",
    "fifo_rank",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
Order = npt.NDArray[np.intp]

N_RESOURCES = 3  # cpu_milli, memory_mib, gpu_milli

SjfKey = Literal["duration", "remaining"]
LasService = Literal["time", "gpu_time"]


@dataclass(frozen=True, slots=True)
class QueueView:
    """What a queue policy sees: the k pending jobs (in arrival order) and the cluster's allocation.

    Parallel arrays rather than job objects, so every rule is one vectorised sort.
    """

    now_s: float
    job_ids: IntArray  # (k,)
    arrival_s: FloatArray  # (k,)
    priority: IntArray  # (k,), higher runs first
    tenant: IntArray  # (k,), tenant codes 0..n_tenants-1
    est_duration_s: FloatArray  # (k,), known or predicted duration; NaN when unknown
    deadline_s: FloatArray  # (k,), absolute; NaN when none
    attained_s: FloatArray  # (k,), service already received (preempted/resumed jobs), else 0
    demand: FloatArray  # (k, 3): cpu_milli, memory_mib, gpu_milli (total over GPUs)
    capacity: FloatArray  # (3,): cluster totals of the same resources
    tenant_usage: FloatArray  # (n_tenants, 3): currently allocated per tenant


class QueuePolicy(Protocol):
    """Orders the pending jobs; the engine tries to place them in that order."""

    @property
    def name(self) -> str:
        """The registry name (read-only, so frozen policies satisfy the protocol)."""
        ...

    def order(self, view: QueueView, /) -> Order:
        """A permutation of ``range(k)``: the order in which to try placing the jobs."""
        ...


QUEUE: Registry[type[QueuePolicy]] = Registry("queue policy")


# --------------------------------------------------------------------------- validation


def _bad(field: str, problem: str) -> InputError:
    return InputError(f"queue view: {field!r} {problem}")


def _check_shape(view: QueueView, field: str, shape: tuple[int, ...]) -> None:
    got = np.shape(getattr(view, field))
    if got != shape:
        raise _bad(field, f"has shape {got}, expected {shape}")


def _check_shapes(view: QueueView) -> None:
    if np.ndim(view.job_ids) != 1:
        raise _bad("job_ids", f"has shape {np.shape(view.job_ids)}, expected (k,)")
    k = len(view.job_ids)
    for field in ("arrival_s", "priority", "tenant", "est_duration_s", "deadline_s", "attained_s"):
        _check_shape(view, field, (k,))
    _check_shape(view, "demand", (k, N_RESOURCES))
    _check_shape(view, "capacity", (N_RESOURCES,))
    usage_shape = np.shape(view.tenant_usage)
    if len(usage_shape) != 2 or usage_shape[1] != N_RESOURCES:
        raise _bad("tenant_usage", f"has shape {usage_shape}, expected (n_tenants, {N_RESOURCES})")


def _check_values(view: QueueView) -> None:
    for field in ("arrival_s", "demand", "attained_s", "capacity", "tenant_usage"):
        values = np.asarray(getattr(view, field), dtype=np.float64)
        if not np.isfinite(values).all():
            raise _bad(field, "holds NaN or infinite values")
        if field != "arrival_s" and (values < 0).any():
            raise _bad(field, "holds negative values")
    if (np.asarray(view.est_duration_s) < 0).any():  # NaN compares False: unknown is fine
        raise _bad("est_duration_s", "holds negative values (use NaN for unknown)")
    if not (np.asarray(view.capacity) > 0).any():
        raise _bad("capacity", "is zero for every resource")


def _check_codes(view: QueueView) -> None:
    for field in ("job_ids", "priority", "tenant"):
        dtype = np.asarray(getattr(view, field)).dtype
        if not np.issubdtype(dtype, np.integer):
            raise _bad(field, f"has dtype {dtype}, expected int64")
    n_tenants = len(view.tenant_usage)
    if len(view.tenant) and (view.tenant.min() < 0 or view.tenant.max() >= n_tenants):
        raise _bad("tenant", f"holds codes outside 0..{n_tenants - 1} (rows of tenant_usage)")
    if len(np.unique(view.job_ids)) != len(view.job_ids):
        raise _bad("job_ids", "holds duplicates")


def check_view(view: QueueView, /) -> None:
    """Raise ``InputError`` naming the field if the view is inconsistent.

    Checks: every per-job array has k entries (``demand`` is (k, 3), ``capacity``
    (3,), ``tenant_usage`` (n_tenants, 3)); integer ids, priorities and tenant codes,
    with tenant codes indexing ``tenant_usage``; unique job ids; no NaN or infinity in
    arrival, demand, attained service, capacity or usage; nothing negative there or in
    the durations; some capacity. A resource with zero capacity (a CPU-only cluster)
    is allowed: DRF leaves it out of the shares.
    """
    _check_shapes(view)
    _check_codes(view)
    _check_values(view)


# --------------------------------------------------------------------------- shared keys


def fifo_rank(view: QueueView, /) -> IntArray:
    """Each job's position in FIFO order, ``(arrival_s, job_id)``: the tie-breaker of every rule."""
    fifo = np.lexsort((view.job_ids, view.arrival_s))
    rank = np.empty(len(fifo), dtype=np.int64)
    rank[fifo] = np.arange(len(fifo), dtype=np.int64)
    return rank


def _sorted_by(view: QueueView, *keys: npt.NDArray[np.generic]) -> Order:
    """Jobs sorted by ``keys`` (most significant first), FIFO among equal keys."""
    return np.lexsort((fifo_rank(view), *reversed(keys)))


def _unknown_last(values: FloatArray) -> tuple[npt.NDArray[np.bool_], FloatArray]:
    """Two sort keys that put NaN after every number: ``(is_nan, value or 0)``."""
    unknown = np.isnan(values)
    return unknown, np.where(unknown, 0.0, values)


# --------------------------------------------------------------------------- policies


def _check_choice(owner: str, field: str, value: object, choices: tuple[object, ...]) -> None:
    if value not in choices:
        msg = f"The {field!r} parameter of {owner} must be one of {choices}. Got {value!r} instead."
        raise InputError(msg)


@QUEUE.register("fifo")
@dataclass(frozen=True, slots=True)
class FifoOrder:
    """First come, first served: arrival order, ties by job id."""

    name: ClassVar[str] = "fifo"

    def order(self, view: QueueView, /) -> Order:
        """Sort by ``(arrival_s, job_id)``."""
        return np.lexsort((view.job_ids, view.arrival_s))


@QUEUE.register("priority")
@dataclass(frozen=True, slots=True)
class PriorityOrder:
    """Higher priority first, FIFO within a priority (the kube-scheduler's default queue sort).

    Preemption of lower-priority running jobs is the preemption policy's business.
    """

    name: ClassVar[str] = "priority"

    def order(self, view: QueueView, /) -> Order:
        """Sort by descending priority (``~p`` flips int64 order, no overflow at the minimum)."""
        return _sorted_by(view, np.invert(view.priority))


@QUEUE.register("sjf")
@dataclass(frozen=True, slots=True)
class SjfOrder:
    """Shortest (predicted) job first; jobs of unknown duration go last, in FIFO order.

    This is the PAI 2020 simulator's SJF with predicted durations. ``by="remaining"``
    sorts by the predicted remaining time ``max(est - attained, 0)`` instead (SRTF),
    which favours preempted jobs that are nearly done.
    """

    name: ClassVar[str] = "sjf"
    by: SjfKey = "duration"

    def __post_init__(self) -> None:
        _check_choice(type(self).__name__, "by", self.by, get_args(SjfKey))

    def order(self, view: QueueView, /) -> Order:
        """Sort by ``(unknown, duration)``."""
        duration = view.est_duration_s
        if self.by == "remaining":
            duration = np.maximum(duration - view.attained_s, 0.0)  # NaN stays NaN
        return _sorted_by(view, *_unknown_last(duration))


@QUEUE.register("edf")
@dataclass(frozen=True, slots=True)
class EdfOrder:
    """Earliest deadline first; jobs without a deadline go after, in FIFO order."""

    name: ClassVar[str] = "edf"

    def order(self, view: QueueView, /) -> Order:
        """Sort by ``(no deadline, deadline)``."""
        return _sorted_by(view, *_unknown_last(view.deadline_s))


@QUEUE.register("las")
@dataclass(frozen=True, slots=True)
class LasOrder:
    """Least attained service first, discretised into priority queues (Tiresias' discretised LAS).

    A job whose service has reached ``thresholds_s[i]`` (and not ``thresholds_s[i+1]``)
    sits in queue ``i + 1``; queue 0 holds the jobs below the first threshold. Lower
    queues go first and each queue is FIFO, so long jobs sink and new jobs are not
    starved behind them, while jobs in the same queue do not leapfrog each other on
    tiny differences of service (the point of discretising). ``service="gpu_time"``
    measures service as attained seconds x GPUs held (Tiresias' 2D-LAS); a job that
    asks for no GPU then never leaves queue 0.
    """

    name: ClassVar[str] = "las"
    thresholds_s: tuple[float, ...] = (3600.0,)
    service: LasService = "time"

    def __post_init__(self) -> None:
        owner = type(self).__name__
        _check_choice(owner, "service", self.service, get_args(LasService))
        limits = np.asarray(self.thresholds_s, dtype=np.float64)
        if limits.ndim != 1 or not (np.isfinite(limits).all() and (limits > 0).all()):
            msg = (
                f"The 'thresholds_s' parameter of {owner} must be a tuple of positive finite "
                f"seconds. Got {self.thresholds_s!r} instead."
            )
            raise InputError(msg)
        if (np.diff(limits) <= 0).any():
            msg = (
                f"The 'thresholds_s' parameter of {owner} must be strictly increasing. "
                f"Got {self.thresholds_s!r} instead."
            )
            raise InputError(msg)

    def queue_of(self, view: QueueView, /) -> IntArray:
        """Each job's queue index: how many thresholds its service has reached."""
        service = view.attained_s
        if self.service == "gpu_time":
            service = service * (view.demand[:, 2] / 1000.0)
        limits = np.asarray(self.thresholds_s, dtype=np.float64)
        return np.searchsorted(limits, service, side="right").astype(np.int64)

    def order(self, view: QueueView, /) -> Order:
        """Sort by queue index."""
        return _sorted_by(view, self.queue_of(view))


@QUEUE.register("drf")
@dataclass(frozen=True, slots=True)
class DrfOrder:
    """Dominant resource fairness across tenants, by progressive filling (Ghodsi et al., NSDI 2011).

    A tenant's dominant share is ``max_r usage[r] / capacity[r]`` over the resources
    the cluster has (zero-capacity resources are left out). The order is built as if
    each job were placed when it is ordered: repeatedly the tenant with the lowest
    dominant share offers its oldest pending job, and its usage then grows by that
    job's demand. Ties between tenants go to the older head job (FIFO).

    The engine may still fail to place a job; the order does not know about nodes.
    Since usage only grows, each tenant's share before its j-th job is non-decreasing
    in j, so the greedy choice is a k-way merge of sorted lists, i.e. one sort of all
    jobs by ``(share before the job, fifo rank)``: no Python loop over jobs. Shares come
    from running sums of the raw demands, exact for integer-valued demands (the milli
    and MiB units), so equal shares tie exactly.
    """

    name: ClassVar[str] = "drf"

    def order(self, view: QueueView, /) -> Order:
        """Sort by the tenant's dominant share just before the job is (tentatively) placed."""
        k = len(view.job_ids)
        if k == 0:
            return np.empty(0, dtype=np.intp)
        rank = fifo_rank(view)
        by_tenant = np.lexsort((rank, view.tenant))  # each tenant's jobs, oldest first
        tenant = view.tenant[by_tenant]
        usage_before = view.tenant_usage[tenant] + _exclusive_group_cumsum(
            view.demand[by_tenant], tenant
        )
        present = view.capacity > 0
        share = (usage_before[:, present] / view.capacity[present]).max(axis=1)
        return by_tenant[np.lexsort((rank[by_tenant], share))]


def _exclusive_group_cumsum(values: FloatArray, groups: IntArray) -> FloatArray:
    """Per row, the sum of the earlier rows of its group; rows must be grouped contiguously."""
    before = np.cumsum(values, axis=0) - values
    starts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])
    lengths = np.diff(np.r_[starts, len(groups)])
    return before - np.repeat(before[starts], lengths, axis=0)


# --------------------------------------------------------------------------- conformance


def _conformance_views() -> list[QueueView]:
    """Small fixed views with the awkward cases: no job, one job, full ties, NaNs, idle tenants."""
    rng = np.random.default_rng(0)

    def make(k: int, *, n_tenants: int, tied: bool) -> QueueView:
        return QueueView(
            now_s=100.0,
            job_ids=rng.permutation(k).astype(np.int64) + 10,
            arrival_s=np.zeros(k) if tied else rng.integers(0, 5, k).astype(np.float64),
            priority=np.zeros(k, np.int64) if tied else rng.integers(-2, 3, k),
            tenant=rng.integers(0, n_tenants, k),
            est_duration_s=np.where(rng.random(k) < 0.3, np.nan, rng.integers(1, 9, k) * 60.0),
            deadline_s=np.where(rng.random(k) < 0.5, np.nan, rng.integers(100, 200, k) * 1.0),
            attained_s=np.where(rng.random(k) < 0.5, 0.0, rng.integers(0, 9000, k) * 1.0),
            demand=rng.integers(0, 4, (k, N_RESOURCES)) * np.array([1000.0, 4096.0, 1000.0]),
            capacity=np.array([64_000.0, 262_144.0, 8_000.0]),
            tenant_usage=rng.integers(0, 8, (n_tenants, N_RESOURCES)).astype(np.float64) * 1000,
        )

    return [
        make(0, n_tenants=1, tied=False),
        make(1, n_tenants=1, tied=False),
        make(6, n_tenants=2, tied=True),
        make(40, n_tenants=4, tied=False),
    ]


def _fail(policy: QueuePolicy, problem: str) -> AssertionError:
    return AssertionError(f"queue policy {policy.name!r}: {problem}")


def _check_one_view(policy: QueuePolicy, view: QueueView) -> None:
    snapshot = {f.name: np.copy(getattr(view, f.name)) for f in fields(QueueView)}
    order = policy.order(view)
    k = len(view.job_ids)
    if not isinstance(order, np.ndarray) or not np.issubdtype(order.dtype, np.integer):
        raise _fail(policy, f"order() returned {type(order).__name__}, expected an integer array")
    if order.shape != (k,) or not np.array_equal(np.sort(order), np.arange(k)):
        raise _fail(policy, f"order() is not a permutation of range({k})")
    if not np.array_equal(policy.order(view), order):
        raise _fail(policy, "order() differs between two calls on the same view")
    for field, before in snapshot.items():
        if not np.array_equal(getattr(view, field), before, equal_nan=True):
            raise _fail(policy, f"order() modified the view's {field!r}")


def check_queue_policy(policy: QueuePolicy, /) -> None:
    """The written contract of a queue policy; raises ``AssertionError`` naming the breach.

    A registered, snake_case name; on a few awkward views ``order`` returns an integer
    permutation of ``range(k)``, the same one twice, and leaves the view untouched.
    """
    if not (isinstance(policy.name, str) and policy.name.isidentifier() and policy.name.islower()):
        raise _fail(policy, "name must be lowercase snake_case")
    if policy.name not in QUEUE or not isinstance(policy, QUEUE.get(policy.name)):
        raise _fail(policy, "is not the class registered under its name in QUEUE")
    for view in _conformance_views():
        _check_one_view(policy, view)
