"""Each placement policy on a hand-made 3-node cluster, against hand-computed choices."""

from __future__ import annotations

import numpy as np
import pytest

from foresize.core.errors import UnknownNameError
from foresize.simulate.cluster.metrics import Fragmentation, NodeStates
from foresize.simulate.cluster.placement import (
    PLACEMENT,
    ClusterView,
    Fgd,
    PodRequest,
    feasible,
    fragmentation_of,
    pick_gpus,
)
from foresize.simulate.cluster.state import ClusterState, Placement

from .helpers import make_cluster, make_workload

# the target workload: 4 pods, popularity 1/4 each
WORKLOAD = make_workload([(1000, 1, 250), (2000, 1, 1000), (1000, 0, 0), (4000, 2, 1000)])
CLUSTER = make_cluster([8000, 32000, 16000], [2, 4, 1])


def _state() -> ClusterState:
    """node0: 4000m CPU, GPUs [500, 1000]; node1: idle, 4 GPUs; node2: GPU [300]."""
    state = ClusterState(CLUSTER)
    state.cpu_free[0] = 4000
    state.gpu_free[0, :2] = [500, 1000]
    state.gpu_free[2, 0] = 300
    return state


def _view(state: ClusterState) -> ClusterView:
    return ClusterView(state.cpu_free, state.memory_free, state.gpu_free, CLUSTER,
                       np.random.default_rng(0))


PROBE = PodRequest(1000, 1024, 1, 250, np.ones(3, dtype=bool))


@pytest.mark.parametrize(("name", "expected"), [
    ("first_fit", Placement(0, (0,))),      # first node; tightest GPU (500 free)
    ("best_fit", Placement(0, (0,))),       # leftover 0.203 < 0.240 (node2) < 0.953
    ("worst_fit", Placement(1, (0,))),      # the idle 4-GPU node
    ("dot_product", Placement(1, (0,))),    # most free CPU and GPU aligned with demand
    ("gpu_packing", Placement(2, (0,))),    # shared GPU with least free (300 < 500)
    ("fgd", Placement(0, (0,))),            # growth -187.5 < -175 (node2) < +62.5 < +312.5
])
def test_policy_choice(name: str, expected: Placement) -> None:
    policy = PLACEMENT.get(name)(WORKLOAD, CLUSTER)
    assert policy.place(PROBE, _view(_state())) == expected


def test_random_places_on_a_feasible_node_reproducibly() -> None:
    policy = PLACEMENT.get("random")(WORKLOAD, CLUSTER)
    first = policy.place(PROBE, _view(_state()))
    assert first == policy.place(PROBE, _view(_state()))
    assert first is not None
    assert _state().gpu_free[first.node, first.gpus[0]] >= 250


def test_fgd_fragmentation_of_hand_computed_nodes() -> None:
    # node0: m1 0, m2 500 (GPU < 1000), m3 (CPU pod) 1500, m4 (2 GPUs) 1500 -> /4 = 875
    # node1: 0, 0, 4000, 0 -> 1000; node2: 0, 300, 300, 300 -> 225
    state = _state()
    frag = fragmentation_of(WORKLOAD, CLUSTER)
    amount = frag.amount(state.cpu_free, state.gpu_free, CLUSTER.gpu_type)
    np.testing.assert_allclose(amount, [875.0, 1000.0, 225.0])
    np.testing.assert_allclose(
        frag.amount_dedup(state.cpu_free, state.gpu_free, CLUSTER.gpu_type), amount)


def test_whole_gpu_pod_needs_idle_gpus_and_nothing_fits_returns_none() -> None:
    state = _state()
    two = PodRequest(4000, 1024, 2, 1000, np.ones(3, dtype=bool))
    assert feasible(two, _view(state)).tolist() == [False, True, False]
    huge = PodRequest(64000, 1024, 0, 0, np.ones(3, dtype=bool))
    for name in PLACEMENT:
        assert PLACEMENT.get(name)(WORKLOAD, CLUSTER).place(huge, _view(state)) is None


def test_gpu_model_constraint_masks_nodes() -> None:
    cluster = make_cluster([8000, 8000], [1, 1], models=["T4", "V100M16"])
    assert cluster.spec_mask(("V100M16",)).tolist() == [False, True]


def test_unknown_policy_name_suggests() -> None:
    with pytest.raises(UnknownNameError, match="Did you mean 'best_fit'"):
        PLACEMENT.get("bestfit")


class _DirectFgd:
    """FGD by brute force: every feasible node and fitting GPU, F_n(M) before and after.

    The oracle for the tabled :class:`Fgd`: same measure, no caching, strict ``<`` so
    ties go to the lowest node, then the lowest GPU.
    """

    def __init__(self, frag: Fragmentation) -> None:
        self.frag = frag

    def _weighted(self, cpu: int, free: np.ndarray, gpu_type: int) -> int:
        return int(self.frag.weighted(np.array([cpu]), free[None, :], np.array([gpu_type]))[0])

    def place(self, pod: PodRequest, view: ClusterView, /) -> Placement | None:
        best: tuple[int, Placement] | None = None
        for node in np.flatnonzero(feasible(pod, view)).tolist():
            free, cpu = view.gpu_free[node], int(view.cpu_free[node])
            gpu_type = int(view.cluster.gpu_type[node])
            before = self._weighted(cpu, free, gpu_type)
            options = ([(int(g),) for g in np.flatnonzero(free >= pod.gpu_milli)]
                       if pod.is_shared else [pick_gpus(pod, free)])
            for gpus in options:
                after = free.copy()
                after[list(gpus)] -= pod.gpu_milli
                growth = self._weighted(cpu - pod.cpu_milli, after, gpu_type) - before
                if best is None or growth < best[0]:
                    best = (growth, Placement(node, gpus))
        return None if best is None else best[1]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_tabled_fgd_matches_direct_evaluation(seed: int) -> None:
    """Same decisions as brute force over arrivals and departures on a mixed cluster,
    including after the state registry compacts (8 nodes: cap 96 states).
    """
    rng = np.random.default_rng(seed)
    cluster = make_cluster(rng.choice([16000, 32000, 64000], 8).tolist(),
                           [0, 1, 2, 4, 8, 8, 4, 2], models=["A", "B"] * 4)
    shapes = [(0, 0), (1, 100), (1, 250), (1, 500), (1, 700), (1, 1000), (2, 1000),
              (4, 1000), (8, 1000)]
    picks = rng.integers(0, len(shapes), 60)
    pods = [(int(rng.choice([500, 1000, 4000, 8000])), *shapes[k]) for k in picks]
    workload = make_workload(pods)
    frag = fragmentation_of(workload, cluster)
    fast, direct = Fgd(frag), _DirectFgd(frag)
    state = ClusterState(cluster)
    running: list[tuple[PodRequest, Placement]] = []
    everywhere = np.ones(cluster.n_nodes, dtype=bool)
    for step in range(600):
        cpu, num_gpu, gpu_milli = pods[int(rng.integers(len(pods)))]
        pod = PodRequest(cpu, 1024, num_gpu, gpu_milli, everywhere)
        view = ClusterView(state.cpu_free, state.memory_free, state.gpu_free, cluster, rng)
        chosen = fast.place(pod, view)
        assert chosen == direct.place(pod, view), step
        if chosen is not None:
            state.allocate(cpu, 1024, gpu_milli, chosen)
            running.append((pod, chosen))
        if running and rng.random() < 0.45:
            done, where = running.pop(int(rng.integers(len(running))))
            state.release(done.cpu_milli, done.memory_mib, done.gpu_milli, where)


def test_node_states_compact_and_keep_tables() -> None:
    frag = fragmentation_of(WORKLOAD, CLUSTER)
    states = NodeStates(frag, CLUSTER.gpu_type)
    cpu = CLUSTER.cpu_milli.copy()
    gpu = ClusterState(CLUSTER).gpu_free
    states.sync(cpu, gpu)
    idle = int(states.node_state[1])
    states.table("probe", 1)[idle] = 42.0
    for step in range(200):  # node 0 walks through 200 CPU levels; cap is 4 * 3 + 64
        cpu[0] = 8000 - step
        states.sync(cpu, gpu)
    assert len(states) <= 4 * 3 + 64
    assert states.table("probe", 1)[states.node_state[1], 0] == 42.0
    expected = frag.weighted(cpu, gpu, CLUSTER.gpu_type)
    np.testing.assert_array_equal(states.weighted[states.node_state], expected)
