"""MIG-style fixed slices: layouts, hand-computed slice choices, release, no over-commit."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from foresize.cli.main import main
from foresize.core.errors import InputError
from foresize.simulate.cluster.engine import replay
from foresize.simulate.cluster.placement import PLACEMENT, ClusterView, PodRequest
from foresize.simulate.cluster.preemption import PREEMPTION
from foresize.simulate.cluster.queue import QUEUE
from foresize.simulate.cluster.state import (
    FULL_GPU_MILLI,
    ClusterState,
    Placement,
    parse_mig,
    slice_capacity_milli,
)

from .helpers import make_cluster, make_workload

# one node, one A100 as 4g+2g+1g: slices of 571, 285 and 142 milli
ONE = make_cluster([64000], [1]).with_mig({"G2": parse_mig("4g+2g+1g")})
NO_FGD = [name for name in PLACEMENT if name not in ("fgd", "fgd_reserve", "fgd_cpu_reserve")]


def _view(state: ClusterState, seed: int = 0) -> ClusterView:
    return ClusterView(state.cpu_free, state.memory_free, state.gpu_free, state.cluster,
                       np.random.default_rng(seed), state.gpu_fit)


def _share(milli: int, n_nodes: int = 1) -> PodRequest:
    return PodRequest(1000, 1024, 1, milli, np.ones(n_nodes, dtype=bool))


def test_layouts_real_mig_allows_and_refuses() -> None:
    assert parse_mig("3g+2g+2g") == (3, 2, 2)
    assert parse_mig("1g+2g+4g") == (4, 2, 1)
    assert parse_mig("7g") == (7,)
    assert parse_mig("1g+1g+1g+1g+1g+1g+1g") == (1,) * 7
    assert parse_mig("3g+2g+1g+1g") == (3, 2, 1, 1)  # 3g must sit at memory offset 4
    for bad in ("4g+4g", "3g+3g+1g", "5g", "7g+1g", "", "2x"):
        with pytest.raises(InputError):
            parse_mig(bad)
    assert [slice_capacity_milli(p) for p in (1, 2, 3, 4, 7)] == [142, 285, 428, 571, 1000]


@pytest.mark.parametrize("name", NO_FGD)
def test_shares_land_in_the_smallest_covering_slice(name: str) -> None:
    policy = PLACEMENT.get(name)(make_workload([(0, 1, 100)]), ONE)
    state = ClusterState(ONE)
    assert policy.place(_share(600), _view(state)) is None  # 0.6 > 4/7 = 0.571
    taken = {}
    for milli in (500, 100, 300, 200):  # 0.3 > 2/7 = 0.286: only the 4g covers it
        where = policy.place(_share(milli), _view(state))
        if where is not None:
            taken[milli] = state.allocate(1000, 1024, milli, where).slices
    assert taken == {500: (0,), 100: (2,), 200: (1,)}
    # each pod holds its whole slice; 1000 - 571 - 285 - 142 = 2 milli stay stranded
    assert state.gpu_free.tolist()[0][0] == 2
    assert state.gpu_fit.tolist()[0][0] == 0
    whole = PodRequest(1000, 1024, 1, FULL_GPU_MILLI, np.ones(1, dtype=bool))
    assert policy.place(whole, _view(state)) is None


def test_release_returns_the_slice() -> None:
    state = ClusterState(ONE)
    held = state.allocate(1000, 1024, 500, Placement(0, (0,)))
    assert held.slices == (0,)
    assert state.gpu_fit[0, 0] == 285
    state.release(1000, 1024, 500, held)
    assert state.gpu_free[0, 0] == FULL_GPU_MILLI
    assert state.gpu_fit[0, 0] == 571
    assert state.allocate(1000, 1024, 300, Placement(0, (0,))).slices == (0,)


def test_seven_g_slice_takes_a_whole_gpu_pod_and_unpartitioned_gpus_share_as_before() -> None:
    cluster = make_cluster([64000, 64000], [1, 1], models=["A100", "V100"]
                           ).with_mig({"A100": (7,)})
    state = ClusterState(cluster)
    whole = state.allocate(0, 0, FULL_GPU_MILLI, Placement(0, (0,)))
    assert whole.slices == (0,)
    assert state.gpu_fit.tolist() == [[0] * 8, [1000] + [0] * 7]
    shared = state.allocate(0, 0, 300, Placement(1, (0,)))
    assert shared.slices == (-1,)
    assert state.gpu_free[1, 0] == state.gpu_fit[1, 0] == 700
    with pytest.raises(RuntimeError):
        state.allocate(0, 0, 100, Placement(0, (0,)))


CLUSTER = make_cluster([32000, 96000, 64000, 16000], [2, 8, 4, 0],
                       models=["A100", "A100", "V100", "A100"]
                       ).with_mig({"A100": parse_mig("3g+2g+2g")})
pod = st.one_of(
    st.tuples(st.integers(0, 40000), st.just(0), st.just(0)),
    st.tuples(st.integers(0, 40000), st.just(1), st.integers(1, 1000)),
    st.tuples(st.integers(0, 40000), st.sampled_from([1, 2, 4]), st.just(1000)),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pods=st.lists(pod, min_size=1, max_size=40), seed=st.integers(0, 10),
       leave=st.lists(st.booleans(), min_size=40, max_size=40))
def test_no_partitioned_gpu_is_ever_over_committed(pods: list[tuple[int, int, int]],
                                                   seed: int, leave: list[bool]) -> None:
    workload = make_workload(pods, memory=[4096] * len(pods))
    slices = slice_capacity_milli(3) + 2 * slice_capacity_milli(2)
    for name in NO_FGD:
        policy = PLACEMENT.get(name)(workload, CLUSTER)
        state = ClusterState(CLUSTER)
        running: list[tuple[int, int, Placement]] = []
        for (cpu, n_gpu, milli), go in zip(pods, leave, strict=False):
            request = PodRequest(cpu, 4096, n_gpu, milli, np.ones(CLUSTER.n_nodes, bool))
            where = policy.place(request, ClusterView.of(state, np.random.default_rng(seed)))
            # the summaries the state keeps in step give what the bare arrays give
            bare = ClusterView(state.cpu_free, state.memory_free, state.gpu_free, CLUSTER,
                               np.random.default_rng(seed), state.gpu_fit, state.gpu_pods)
            assert policy.place(request, bare) == where
            if where is not None:
                assert len(set(where.gpus)) == n_gpu
                running.append((cpu, milli, state.allocate(cpu, 4096, milli, where)))
            if go and running:
                cpu_, milli_, held = running.pop(0)
                state.release(cpu_, 4096, milli_, held)
            assert (state.cpu_free >= 0).all()
            assert ((state.gpu_free >= 0) & (state.gpu_free <= FULL_GPU_MILLI)).all()
            assert state.slices is not None
            cap, free = state.slices.cap, state.slices.free
            # a partitioned GPU's free milli: its free slices plus the stranded rest
            on = state.slices.partitioned
            assert (state.gpu_free[on] == (cap * free).sum(axis=2)[on]
                    + FULL_GPU_MILLI - slices).all()
            assert (state.gpu_fit[on] == (cap * free).max(axis=2)[on]).all()
            assert not on[2].any()  # the V100 node stays unpartitioned
            np.testing.assert_array_equal(state.gpu_free_total, state.gpu_free.sum(axis=1))
            np.testing.assert_array_equal(state.fit_ranked, -np.sort(-state.gpu_fit).T)


def test_replay_on_partitioned_cluster_and_what_it_refuses() -> None:
    cluster = make_cluster([64000], [2]).with_mig({"G2": parse_mig("3g+2g+2g")})
    workload = make_workload([(1000, 1, 400), (1000, 1, 250), (1000, 1, FULL_GPU_MILLI),
                              (1000, 1, 400), (1000, 1, 400), (1000, 1, 400)],
                             arrival=[0, 0, 0, 0, 1, 2])
    result = replay(workload, cluster, PLACEMENT.get("best_fit")(workload, cluster),
                    QUEUE.get("fifo")())
    assert result.never_fit.tolist() == [2]  # no 7g slice anywhere
    # two 3g slices for four 0.4 pods: two wait one run (10 s) each
    assert result.start_s.tolist()[:2] == [0, 0]
    assert sorted(result.start_s[3:].tolist()) == [0, 10, 10]
    for name in ("fgd", "fgd_reserve", "fgd_cpu_reserve"):
        with pytest.raises(InputError, match="MIG"):
            PLACEMENT.get(name)(workload, cluster)
    with pytest.raises(ValueError, match="MIG"):
        replay(workload, cluster, PLACEMENT.get("best_fit")(workload, cluster),
               QUEUE.get("fifo")(), preemption=PREEMPTION.get("lowest_priority")())


def test_cli_mig_option(openb_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    args = ["simulate", "schedule", "--trace", str(openb_dir / "openb_pod_list_default.csv"),
            "--nodes", str(openb_dir / "openb_node_list_gpu_node.csv"),
            "--placement", "best_fit", "--target", "0.3", "--step", "0.1", "-o", str(out)]
    assert main([*args, "--mig", "V100M16=3g+3g+1g"]) != 0  # nine memory slices
    assert main([*args, "--mig", "V100M16=3g+2g+2g"]) == 0
    assert json.loads(out.read_text())["simulation"]["placement"] == ["best_fit"]
