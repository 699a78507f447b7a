"""Node pools and autoscaling: a hand-computed scenario, contracts, and no over-commit."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from foresize.core.errors import InputError
from foresize.simulate.cluster.autoscaler import (
    AUTOSCALE,
    AutoscaleView,
    ClusterAutoscaler,
    ScaleDecision,
)
from foresize.simulate.cluster.carbon import DEFAULT_GPU_POWER_W, J_PER_KWH
from foresize.simulate.cluster.engine import Autoscaling, ReplayResult, replay
from foresize.simulate.cluster.placement import PLACEMENT
from foresize.simulate.cluster.pools import NodePool, parse_pool, with_pools
from foresize.simulate.cluster.queue import QUEUE
from foresize.simulate.cluster.state import Cluster
from foresize.simulate.cluster.workload import Workload

from .helpers import make_cluster, make_workload

SMALL = NodePool("small", cpu_milli=8000, memory_mib=32768, n_gpu=1, gpu_model="A",
                 price_per_node_h=1.0, provision_delay_s=120.0, max_nodes=3)
LARGE = NodePool("large", cpu_milli=16000, memory_mib=65536, n_gpu=2, gpu_model="A",
                 price_per_node_h=3.0, provision_delay_s=60.0, max_nodes=2)


def _scenario() -> tuple[Workload, Cluster, ReplayResult]:
    cluster, layout = with_pools(None, [SMALL, LARGE])
    # p0: one GPU for 300 s from t=10; p1: two GPUs (only LARGE fits) for 100 s from t=20
    workload = make_workload([(1000, 1, 1000), (1000, 2, 1000)], arrival=[10.0, 20.0],
                             duration=[300.0, 100.0])
    scaling = Autoscaling(layout, AUTOSCALE.get("cluster_autoscaler")(), every_s=60.0)
    result = replay(workload, cluster, PLACEMENT.get("first_fit")(workload, cluster),
                    QUEUE.get("fifo")(), autoscaling=scaling)
    return workload, cluster, result


def test_hand_computed_scale_up_and_down() -> None:
    """Ticks at 10, 70, 130, ...: at 10 p0 waits and fits SMALL (cheapest), requested,
    ready 130; at 70 p1 waits and fits only LARGE (p0 is covered by the provisioning
    SMALL node), requested, ready 130. Both start at 130; p1 ends 230, p0 430. LARGE is
    empty from 230, removed at the first tick >= 830 (850); SMALL from 430, removed at
    1030; then every pool is at its minimum and ticking stops.
    """
    workload, cluster, result = _scenario()
    assert result.start_s.tolist() == [130.0, 130.0]
    assert result.end_s.tolist() == [430.0, 230.0]
    assert [cluster.names[n] for n in result.node] == ["small-0", "large-0"]
    log = result.node_log  # pool, node, requested, ready, end, added, removed
    assert log[:, [0, 2, 3, 4, 5, 6]].tolist() == [[1, 70, 130, 850, 1, 1],
                                                  [0, 10, 130, 1030, 1, 1]]
    auto = result.summary(workload, cluster)["autoscale"]
    assert auto["scale_ups"] == 2
    assert auto["scale_downs"] == 2
    assert auto["pools"]["small"]["node_hours"] == pytest.approx(1020 / 3600)
    assert auto["pools"]["large"]["node_hours"] == pytest.approx(780 / 3600)
    assert auto["cost_usd"] == pytest.approx(1020 / 3600 * 1.0 + 780 / 3600 * 3.0)
    # p0 waited 120 s for SMALL (requested at its arrival), p1 60 s for LARGE (requested
    # at 70, 50 s after it arrived: detection latency, not provisioning)
    assert result.provision_wait_s.tolist() == [120.0, 60.0]
    assert auto["provisioning_wait"] == {"n_pods": 2, "total_s": 180.0, "mean_s": 90.0}
    # ticks 10..1030 (18) + 2 arrivals + 2 node-ready + 2 completions
    assert result.n_events == 18 + 6
    # idle power only while a node is up (request to removal): 1 GPU x 1020 s + 2 x 780 s;
    # model "A" has the default power (idle, full) = DEFAULT_GPU_POWER_W
    idle_w, full_w = DEFAULT_GPU_POWER_W
    idle_j = idle_w * (1 * 1020 + 2 * 780)
    dynamic_j = (full_w - idle_w) * (1 * 300 + 2 * 100)
    energy = result.summary(workload, cluster)["energy"]
    assert energy["energy_kwh"] == pytest.approx((idle_j + dynamic_j) / J_PER_KWH)
    assert energy["dynamic_energy_kwh"] == pytest.approx(dynamic_j / J_PER_KWH)


def test_none_keeps_initial_nodes_and_pods_wait_forever() -> None:
    cluster, layout = with_pools(make_cluster([8000], [1], models=["A"]),
                                 [NodePool("p", 8000, 32768, 1, "A", max_nodes=2)])
    workload = make_workload([(1000, 1, 1000), (1000, 1, 1000)], duration=[50.0, 50.0])
    result = replay(workload, cluster, PLACEMENT.get("first_fit")(workload, cluster),
                    QUEUE.get("fifo")(), autoscaling=Autoscaling(layout))
    assert result.start_s.tolist() == [0.0, 50.0]  # only the fixed node exists
    assert result.node_log.shape == (0, 7)
    assert result.summary(workload, cluster)["autoscale"]["node_hours"] == 0.0


@dataclass(frozen=True, slots=True)
class _RemovesBusy:
    name: ClassVar[str] = "removes_busy"

    def decide(self, view: AutoscaleView, /) -> ScaleDecision:
        return ScaleDecision(remove=(0,))


def test_removing_a_busy_node_is_a_policy_bug() -> None:
    cluster, layout = with_pools(None, [NodePool("p", 8000, 32768, initial_nodes=1)])
    workload = make_workload([(1000, 0, 0)], duration=[100.0])
    with pytest.raises(RuntimeError, match="not a ready, empty pool node"):
        replay(workload, cluster, PLACEMENT.get("first_fit")(workload, cluster),
               QUEUE.get("fifo")(), autoscaling=Autoscaling(layout, _RemovesBusy()))


def test_pool_parsing_and_settings() -> None:
    pool = parse_pool("name=t4,cpu=32,memory_gib=128,gpus=4,gpu_model=T4,price=3.9,"
                      "delay=2m,min=1,max=5")
    assert pool == NodePool("t4", 32000, 131072, 4, "T4", 3.9, 120.0, 1, 5, 1)
    with pytest.raises(InputError, match="is not KEY=VALUE"):
        parse_pool("name=x,cpu=1,memory_gib=1,size=3")
    with pytest.raises(InputError, match="needs gpu_model"):
        parse_pool("name=x,cpu=1,memory_gib=1,gpus=2")
    with pytest.raises(InputError, match="min <= initial <= max"):
        NodePool("x", 1000, 1024, min_nodes=3, max_nodes=2, initial_nodes=3)
    with pytest.raises(InputError, match="scale_down_after_s"):
        ClusterAutoscaler(scale_down_after_s=-1.0)
    cluster, layout = with_pools(make_cluster([4000], [2], models=["G2"]), [pool])
    assert cluster.gpu_types == ("G2", "T4")
    assert layout.node_pool.tolist() == [-1, 0, 0, 0, 0, 0]


pod = st.one_of(
    st.tuples(st.integers(0, 20000), st.just(0), st.just(0)),
    st.tuples(st.integers(0, 20000), st.just(1), st.integers(1, 1000)),
    st.tuples(st.integers(0, 20000), st.sampled_from([2, 4]), st.just(1000)),
)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pods=st.lists(pod, min_size=1, max_size=30), seed=st.integers(0, 10),
       gaps=st.lists(st.floats(0, 200), min_size=30, max_size=30),
       placement=st.sampled_from(sorted(PLACEMENT)))
def test_no_over_commit_and_pool_bounds_under_autoscaling(
        pods: list[tuple[int, int, int]], seed: int, gaps: list[float], placement: str) -> None:
    pools = [NodePool("a", 16000, 65536, 2, "A", 1.0, 90.0, 0, 2, 0),
             NodePool("b", 32000, 65536, 4, "A", 2.0, 30.0, 1, 2, 1)]
    cluster, layout = with_pools(make_cluster([8000], [1], models=["A"]), pools)
    n = len(pods)
    workload = make_workload(pods, memory=[4096] * n, arrival=np.cumsum(gaps[:n]).tolist(),
                             duration=[float(50 + 37 * i % 400) for i in range(n)])
    result = replay(workload, cluster, PLACEMENT.get(placement)(workload, cluster),
                    QUEUE.get("fifo")(), seed=seed,
                    autoscaling=Autoscaling(layout, ClusterAutoscaler(scale_down_after_s=120.0),
                                            every_s=30.0))
    log = result.node_log
    # every pod that fits an empty node anywhere runs to completion
    started = np.isfinite(result.start_s)
    assert started.sum() + result.never_fit.size == n
    # pool sizes stay within [min, max] at every lifetime boundary
    for k, p in enumerate(pools):
        mine = log[log[:, 0] == k]
        for t in np.unique(mine[:, 2:5]):
            up = ((mine[:, 2] <= t) & (t < mine[:, 4])).sum()
            assert up <= p.max_nodes
    # runs lie inside a ready lifetime of their node, and no node is ever over-committed
    for job, node, start, end in zip(result.run_job, result.run_node, result.run_start_s,
                                     result.run_end_s, strict=True):
        if layout.node_pool[node] >= 0:
            life = log[log[:, 1] == node]
            assert ((life[:, 3] <= start) & (end <= life[:, 4])).any(), (job, node)
    for node in np.unique(result.run_node):
        on = result.run_node == node
        jobs, starts, ends = result.run_job[on], result.run_start_s[on], result.run_end_s[on]
        for t in starts:
            live = jobs[(starts <= t) & (t < ends)]
            assert workload.cpu_milli[live].sum() <= cluster.cpu_milli[node]
            assert workload.gpu_demand_milli[live].sum() <= cluster.n_gpu[node] * 1000
