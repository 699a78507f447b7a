"""The service model: replica capacity with coordination overhead, and queueing latency.

Capacity. A replica serves ``capacity`` demand units (concurrent requests, or requests
per second) on its own. With ``n`` replicas the universal scalability law (Gunther)
gives the system throughput ``capacity * n / (1 + alpha (n - 1) + beta n (n - 1))``:
``alpha`` is contention (serial share), ``beta`` coherency (cross-talk). Both default
to 0, which is linear scaling.

Latency. Each step is an M/M/c queue: ``c`` = ready replicas, each one server with
mean service time ``S`` (``service_time_s``), offered load ``a = demand / (capacity x
efficiency)`` Erlangs. The wait is 0 with probability ``1 - C(c, a)`` (Erlang C) and
otherwise exponential with rate ``(c - a) / S``; the latency of a request is wait plus
an exponential service time of mean ``S``. The requests a saturated step does serve are
modelled at utilisation ``max_rho`` (0.95) so their latency stays finite. A step's
latency quantiles come from the exact sojourn-time distribution; a run's P95/P99 are
quantiles of the mixture over steps, weighted by served demand.

Admission queue (``admission_queue``). Demand beyond what the ready replicas can serve
waits in one FIFO queue, as requests do in the serving engine (``simulate.serve``), and
later steps' throughput serves the queue before newer demand; demand that waits longer
than the SLO (or is still waiting at the end) is *unserved*. Before issue #17 the excess
was dropped instead (``ServiceConfig.queue = False``, ``--no-queue``, reproduces it).
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np
import numpy.typing as npt

from foresize.core.errors import InputError

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

MAX_RHO = 0.95


def usl_efficiency(n: npt.ArrayLike, alpha: float = 0.0, beta: float = 0.0) -> FloatArray:
    """Per-replica efficiency ``1 / (1 + alpha (n - 1) + beta n (n - 1))`` (1 at n <= 1)."""
    n_arr = np.maximum(np.asarray(n, dtype=np.float64), 1.0)
    result: FloatArray = 1.0 / (1.0 + alpha * (n_arr - 1.0) + beta * n_arr * (n_arr - 1.0))
    return result


def usl_throughput(n: npt.ArrayLike, alpha: float = 0.0, beta: float = 0.0) -> FloatArray:
    """Relative throughput of ``n`` replicas, ``n x usl_efficiency(n)`` (0 at n = 0)."""
    n_arr = np.asarray(n, dtype=np.float64)
    result: FloatArray = n_arr * usl_efficiency(n_arr, alpha, beta)
    return result


def check_usl(alpha: float, beta: float) -> None:
    """USL coefficients must be finite and >= 0."""
    for name, value in (("alpha", alpha), ("beta", beta)):
        if not (math.isfinite(value) and value >= 0):
            raise InputError(f"USL {name} must be a number >= 0, got {value!r}")


class Sizer:
    """Replicas needed to serve a demand level, under the USL curve, within limits.

    ``need(d)`` is the smallest ``n`` in ``[min_replicas, max_replicas]`` whose
    throughput ``capacity x usl_throughput(n)`` reaches ``d``; past the USL peak more
    replicas do not help, so a demand beyond the best throughput gets the peak's ``n``.
    """

    def __init__(
        self,
        capacity: float,
        *,
        alpha: float = 0.0,
        beta: float = 0.0,
        min_replicas: int = 1,
        max_replicas: int = 10_000,
    ) -> None:
        if not (math.isfinite(capacity) and capacity > 0):
            raise InputError(f"capacity must be a number > 0 per replica, got {capacity!r}")
        check_usl(alpha, beta)
        if not 0 <= min_replicas <= max_replicas or max_replicas < 1:
            raise InputError(
                f"need 0 <= min replicas <= max replicas and max >= 1, got "
                f"{min_replicas} and {max_replicas}"
            )
        self.capacity = capacity
        self.alpha, self.beta = alpha, beta
        self.min_replicas, self.max_replicas = min_replicas, max_replicas
        n = np.arange(max_replicas + 1, dtype=np.float64)
        self._throughput = capacity * usl_throughput(n, alpha, beta)
        self._best = np.maximum.accumulate(self._throughput)
        self._peak_n = int(np.argmax(self._throughput))

    def need(self, demand: float) -> int:
        """Replicas for ``demand`` (scalar)."""
        n = int(np.searchsorted(self._best, demand - 1e-9 * max(1.0, demand), side="left"))
        return max(self.min_replicas, min(n, self._peak_n))

    def need_many(self, demand: FloatArray) -> IntArray:
        """Replicas for each demand level."""
        scaled = demand - 1e-9 * np.maximum(1.0, demand)
        n = np.searchsorted(self._best, scaled, side="left").astype(np.int64)
        result: IntArray = np.maximum(np.minimum(n, self._peak_n), self.min_replicas)
        return result

    def throughput(self, replicas: IntArray) -> FloatArray:
        """What ``replicas`` ready replicas can serve, per step."""
        result: FloatArray = self._throughput[np.clip(replicas, 0, self.max_replicas)]
        return result


def erlang_c(c: npt.ArrayLike, a: npt.ArrayLike) -> FloatArray:
    """Erlang C: probability an arrival waits in M/M/c with ``c`` servers, load ``a`` Erlangs.

    Computed through the stable Erlang B recursion; 1 where ``a >= c`` (no steady state)
    and 0 where ``c == 0`` is not asked (callers pass c >= 1).
    """
    c_arr = np.asarray(c, dtype=np.int64)
    a_arr = np.asarray(a, dtype=np.float64)
    c_arr, a_arr = np.broadcast_arrays(c_arr, a_arr)
    blocking = np.ones(a_arr.shape)
    top = int(c_arr.max()) if c_arr.size else 0
    for k in range(1, top + 1):
        active = c_arr >= k
        nxt = a_arr * blocking / (k + a_arr * blocking)
        blocking = np.where(active, nxt, blocking)
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = a_arr / np.maximum(c_arr, 1)
        wait = blocking / (1.0 - rho * (1.0 - blocking))
    result: FloatArray = np.where(rho >= 1.0, 1.0, np.clip(wait, 0.0, 1.0))
    return result


def sojourn_tail(t: FloatArray, p_wait: FloatArray, theta: FloatArray, mu: float) -> FloatArray:
    """P(latency > t) in M/M/c: wait ~ 0 w.p. 1 - p_wait else Exp(theta), plus Exp(mu)."""
    service = np.exp(-mu * t)
    close = np.abs(theta - mu) < 1e-9 * mu
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        both = (theta * np.exp(-mu * t) - mu * np.exp(-theta * t)) / (theta - mu)
    both = np.where(close, (1.0 + mu * t) * np.exp(-mu * t), both)
    result: FloatArray = (1.0 - p_wait) * service + p_wait * np.clip(both, 0.0, 1.0)
    return result


def latency_quantiles(
    served: FloatArray,
    ready: IntArray,
    throughput: FloatArray,
    service_time_s: float,
    qs: tuple[float, ...] = (0.95, 0.99),
    *,
    max_rho: float = MAX_RHO,
) -> dict[float, float]:
    """Quantiles of request latency over a run: the served-demand-weighted mixture of steps.

    ``served`` demand units per step reach ``ready`` replicas whose joint throughput is
    ``throughput`` (same units); load in Erlangs is ``ready x served / throughput``.
    Returns NaN quantiles when nothing was served.
    """
    if not (math.isfinite(service_time_s) and service_time_s > 0):
        raise InputError(f"service time must be > 0 seconds, got {service_time_s!r}")
    use = (served > 0) & (ready > 0) & (throughput > 0)
    if not use.any():
        return dict.fromkeys(qs, math.nan)
    c = ready[use]
    rho = np.minimum(served[use] / throughput[use], max_rho)
    a = rho * c
    mu = 1.0 / service_time_s
    p_wait = erlang_c(c, a)
    theta = np.asarray((c - a) * mu, dtype=np.float64)
    weight = served[use] / served[use].sum()
    out: dict[float, float] = {}
    for q in qs:
        lo, hi = 0.0, service_time_s
        while float(weight @ sojourn_tail(np.full(c.size, hi), p_wait, theta, mu)) > 1 - q:
            hi *= 2.0
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            tail = float(weight @ sojourn_tail(np.full(c.size, mid), p_wait, theta, mu))
            lo, hi = (mid, hi) if tail > 1 - q else (lo, mid)
        out[q] = hi
    return out


def step_latency(
    served: FloatArray,
    ready: IntArray,
    throughput: FloatArray,
    service_time_s: float,
    q: float = 0.95,
    *,
    max_rho: float = MAX_RHO,
) -> FloatArray:
    """Per-step latency quantile ``q`` (NaN where nothing is served)."""
    out = np.full(served.size, np.nan)
    use = (served > 0) & (ready > 0) & (throughput > 0)
    if not use.any():
        return out
    c = ready[use]
    a = np.minimum(served[use] / throughput[use], max_rho) * c
    mu = 1.0 / service_time_s
    p_wait, theta = erlang_c(c, a), np.asarray((c - a) * mu, dtype=np.float64)
    lo, hi = np.zeros(c.size), np.full(c.size, service_time_s)
    while (grow := sojourn_tail(hi, p_wait, theta, mu) > 1 - q).any():
        hi = np.where(grow, hi * 2.0, hi)
    for _ in range(50):
        mid = 0.5 * (lo + hi)
        above = sojourn_tail(mid, p_wait, theta, mu) > 1 - q
        lo, hi = np.where(above, mid, lo), np.where(above, hi, mid)
    out[use] = hi
    return out


def admission_queue(demand: FloatArray, throughput: FloatArray, *, step_s: float,
                    wait_slo_s: float = 0.0) -> FloatArray:
    """Per arrival step, the demand that waits longer than ``wait_slo_s`` in a FIFO queue.

    Fluid steps: step ``u`` serves up to ``throughput[u]``, oldest arrivals first; demand
    of step ``s`` served in step ``u`` waited ``(u - s) x step_s``. Demand still queued
    after the last step counts as waiting too long. The queue is how a real service
    carries a burst (the backlog delays the demand behind it), where dropping the excess
    would let the next step start clean.
    """
    late = np.zeros(demand.size)
    backlog: deque[list[float]] = deque()  # [arrival step, amount still waiting]
    for u in range(demand.size):
        if demand[u] > 0:
            backlog.append([float(u), float(demand[u])])
        room = float(throughput[u])
        while backlog and room > 0:
            head = backlog[0]
            take = min(room, head[1])
            if (u - head[0]) * step_s > wait_slo_s:
                late[int(head[0])] += take
            head[1] -= take
            room -= take
            if head[1] <= 1e-12:
                backlog.popleft()
    for arrival, amount in backlog:
        late[int(arrival)] += amount
    return late
