"""Service model: Erlang C, M/M/c latency, the USL curve and replica sizing."""

from __future__ import annotations

import math

import numpy as np
import pytest

from foresize.core.errors import InputError
from foresize.simulate.replicas.service import (
    Sizer,
    erlang_c,
    latency_quantiles,
    step_latency,
    usl_efficiency,
    usl_throughput,
)


def test_erlang_c_known_answers() -> None:
    # c = 2 servers at 1 Erlang: P(wait) = 1/3; M/M/1 at rho: P(wait) = rho
    assert erlang_c(2, 1.0)[()] == pytest.approx(1 / 3)
    assert erlang_c(1, 0.7)[()] == pytest.approx(0.7)
    # textbook: c = 3, a = 2 -> C = 4/9
    assert erlang_c(3, 2.0)[()] == pytest.approx(4 / 9)
    # saturated queues always wait
    assert erlang_c(np.array([2, 4]), np.array([2.0, 5.0])).tolist() == [1.0, 1.0]


def test_mm1_latency_quantile_is_exponential() -> None:
    # M/M/1 sojourn time is Exp(mu - lambda): P95 = ln(20) / (mu - lambda)
    service, rho = 2.0, 0.5
    q = latency_quantiles(np.array([rho]), np.array([1]), np.array([1.0]), service)
    expected = math.log(20) / ((1 - rho) / service)
    assert q[0.95] == pytest.approx(expected, rel=1e-6)
    assert q[0.99] == pytest.approx(math.log(100) / ((1 - rho) / service), rel=1e-6)
    per_step = step_latency(np.array([rho, 0.0]), np.array([1, 1]), np.array([1.0, 1.0]), service)
    assert per_step[0] == pytest.approx(expected, rel=1e-4)
    assert math.isnan(per_step[1])


def test_more_replicas_never_raise_latency() -> None:
    load = np.full(5, 3.0)
    ready = np.arange(4, 9)
    p95 = step_latency(load, ready, ready.astype(float), 1.0)
    assert (np.diff(p95) <= 1e-9).all()
    assert p95[-1] >= -math.log(0.05) - 1e-6  # never below the service time's own P95


def test_usl_curve() -> None:
    n = np.arange(1, 65)
    assert np.allclose(usl_throughput(n), n)  # alpha = beta = 0: linear
    eff = usl_efficiency(n, 0.05, 0.0)
    assert eff[0] == 1.0
    assert (np.diff(eff) < 0).all()
    # contention only: throughput approaches 1/alpha, never exceeds it
    assert usl_throughput(10_000, 0.05, 0.0)[()] < 20
    # coherency: throughput peaks at n* = sqrt((1 - alpha) / beta) and then falls
    tp = usl_throughput(n, 0.02, 0.001)
    assert int(n[np.argmax(tp)]) == round(math.sqrt(0.98 / 0.001))


def test_sizer_with_and_without_overhead() -> None:
    linear = Sizer(2.0)
    assert linear.need(0.0) == 1  # min replicas
    assert linear.need(4.0) == 2
    assert linear.need(4.01) == 3
    assert linear.need_many(np.array([0.0, 3.0, 10.0])).tolist() == [1, 2, 5]
    usl = Sizer(1.0, alpha=0.1)
    n = usl.need(5.0)
    assert usl.throughput(np.array([n]))[0] >= 5.0 > usl.throughput(np.array([n - 1]))[0]
    peaked = Sizer(1.0, beta=0.01, max_replicas=200)
    best = int(np.argmax(peaked.throughput(np.arange(201))))
    assert peaked.need(1e6) == best  # past the USL peak more replicas do not help


@pytest.mark.parametrize("capacity", [0.0, -1.0, math.nan])
def test_sizer_rejects_bad_capacity(capacity: float) -> None:
    with pytest.raises(InputError, match="capacity"):
        Sizer(capacity)


def test_the_admission_queue_carries_a_burst_and_counts_waits_past_the_slo() -> None:
    from foresize.simulate.replicas.service import admission_queue

    demand, throughput = np.array([2.0, 2.0, 0.0]), np.ones(3)
    # step 0 serves one unit at once; its second waits a step (late), and that backlog
    # pushes both units of step 1 past their step (one served at step 2, one never)
    assert admission_queue(demand, throughput, step_s=60.0).tolist() == [1.0, 2.0, 0.0]
    # an SLO of one step forgives a one-step wait; what is never served is still late
    assert admission_queue(demand, throughput, step_s=60.0,
                           wait_slo_s=60.0).tolist() == [0.0, 1.0, 0.0]


def test_no_queue_reproduces_dropped_demand_and_the_queue_never_counts_less() -> None:
    from dataclasses import replace

    from foresize.simulate.replicas.run import ServiceConfig, score, simulate
    from foresize.simulate.replicas.scalers import make_scaler

    rng = np.random.default_rng(3)
    demand = np.maximum(0.0, 5 + 3 * np.sin(np.arange(400) / 20) + rng.normal(0, 1.5, 400))
    queued = ServiceConfig(capacity=1.0, startup=3)
    dropped = replace(queued, queue=False)
    run = simulate(demand, make_scaler("hpa", target=0.9), queued)
    legacy = float((run.demand - run.served).sum() / run.demand.sum())
    assert score(run, dropped)["unserved_frac"] == pytest.approx(legacy)
    assert score(run, queued)["unserved_frac"] >= legacy > 0
