"""Each placement policy on a hand-made 3-node cluster, against hand-computed choices."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from foresize.core.errors import UnknownNameError
from foresize.simulate.cluster.metrics import Fragmentation, NodeStates
from foresize.simulate.cluster.placement import (
    PLACEMENT,
    ClusterView,
    FgdReserve,
    FgdScore,
    PodRequest,
    Scored,
    feasible,
    fragmentation_of,
    pick_gpus,
    reserved_demand,
)
from foresize.simulate.cluster.state import ClusterState, Placement
from foresize.simulate.cluster.workload import Workload

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
    ("first_fit", Placement(0, (0,))),       # first node; tightest GPU (500 free)
    # int((1 - leftover) * 100): leftover 0.203 -> 79 > 0.241 (node2) -> 75 > 0.953 -> 4
    ("best_fit", Placement(0, (0,))),
    ("worst_fit", Placement(1, (0,))),       # the idle 4-GPU node
    # int(100 (1 - dot / 2)): node0 98 = node2 98 > node1 95; the tie goes to node0
    ("dot_product", Placement(0, (0,))),
    # a shared GPU: 100 - 300 // 100 = 97 (node2) > 95 (node0) > idle node 33 - 4
    ("gpu_packing", Placement(2, (0,))),
    # no pod anywhere: all "idle" tier, fuller first: 25 * 3700 // 4000 = 23 (node2)
    ("gpu_clustering", Placement(2, (0,))),
    # growth -187.5 (node0) and -175 (node2) both score int(100 sigmoid(0.18)) = 54,
    # node1 +62.5 -> 48: node0 wins the tie, on its GPU 0
    ("fgd", Placement(0, (0,))),
    # FGD's 54/54 tie; no pod is tied to a GPU model, so nothing is reserved, and the
    # fuller node wins: node2 has 70 % of its GPU milli in use, node0 25 %
    ("fgd_reserve", Placement(2, (0,))),
])
def test_policy_choice(name: str, expected: Placement) -> None:
    policy = PLACEMENT.get(name)(WORKLOAD, CLUSTER)
    assert policy.place(PROBE, _view(_state())) == expected


@pytest.mark.parametrize("name", ["fgd", "dot_product"])
def test_ties_go_to_the_lowest_node_rank(name: str) -> None:
    """The authors' scheduler takes the smallest node name among equal scores, and names
    nodes by a random permutation: node2 ranked first wins the 54/54 and 98/98 ties.
    """
    state = _state()
    view = ClusterView(state.cpu_free, state.memory_free, state.gpu_free, CLUSTER,
                       np.random.default_rng(0), node_rank=np.array([2, 1, 0]))
    assert PLACEMENT.get(name)(WORKLOAD, CLUSTER).place(PROBE, view) == Placement(2, (0,))


def test_gpu_clustering_prefers_nodes_of_the_same_kind() -> None:
    state = _state()
    state.gpu_pods[1, 0] = 1  # a share already runs on the idle-looking node1
    state.gpu_pods[2, 2] = 1  # a 2-GPU pod on node2: another kind
    view = ClusterView(state.cpu_free, state.memory_free, state.gpu_free, CLUSTER,
                       np.random.default_rng(0), gpu_pods=state.gpu_pods)
    policy = PLACEMENT.get("gpu_clustering")(WORKLOAD, CLUSTER)
    assert policy.place(PROBE, view) == Placement(1, (0,))  # only shares there: 75 + 0


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
    """FGD by brute force: every feasible node and fitting GPU, F_n(M) before and after,
    scored as the authors (``int(100 sigmoid(drop / 1000))``, drop in milli).

    The oracle for the tabled :class:`FgdScore`: same measure, no caching, strict ``>``
    so ties go to the lowest node, then the lowest GPU.
    """

    def __init__(self, frag: Fragmentation, *, cpu_limited: bool = False) -> None:
        self.frag = frag
        self.cpu_limited = cpu_limited

    def _weighted(self, cpu: int, free: np.ndarray, gpu_type: int) -> int:
        if self.cpu_limited:
            return _cpu_limited_weighted(self.frag, cpu, free.tolist(), gpu_type)
        return int(self.frag.weighted(np.array([cpu]), free[None, :], np.array([gpu_type]))[0])

    def place(self, pod: PodRequest, view: ClusterView, /) -> Placement | None:
        best: tuple[float, Placement] | None = None
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
                drop = -growth / self.frag.total / 1000.0
                score = float(np.trunc(1.0 / (1.0 + np.exp(-drop)) * 100))
                if best is None or score > best[0]:
                    best = (score, Placement(node, gpus))
        return None if best is None else best[1]


@pytest.mark.parametrize("cpu_limited", [False, True])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_tabled_fgd_matches_direct_evaluation(seed: int, cpu_limited: bool) -> None:
    """Same decisions as brute force over arrivals and departures on a mixed cluster,
    including after the state registry compacts (8 nodes: cap 96 states); with FGD's
    measure and the CPU-limited one (``fgd_cpu_reserve``'s).
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
    fast = Scored(FgdScore(frag, cpu_limited=cpu_limited))
    direct = _DirectFgd(frag, cpu_limited=cpu_limited)
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
    np.testing.assert_array_equal(np.array(states.weighted)[states.node_state], expected)


def test_weighted_of_one_state_equals_the_array_version(monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    """Per GPU row, sums over classes by CPU demand: every CPU level and GPU order agrees
    with :meth:`Fragmentation.weighted`, also after the row memo starts over.
    """
    frag = fragmentation_of(WORKLOAD, CLUSTER)
    states = NodeStates(frag, CLUSTER.gpu_type)
    rng = np.random.default_rng(0)
    for step in range(300):
        if step == 150:
            monkeypatch.setattr(NodeStates, "MAX_GPU_ROWS", 4)
        free = rng.choice([0, 100, 250, 750, 1000], 8)
        cpu, gpu_type = int(rng.integers(0, 9000)), int(rng.integers(-1, 1))
        expected = frag.weighted(np.array([cpu]), free[None, :], np.array([gpu_type]))[0]
        assert states.weighted_of(gpu_type, cpu, tuple(sorted(free.tolist()))) == expected


def _t4_workload() -> Workload:
    """Four unconstrained 1-GPU pods, two tied to T4 and one to G2 or T4 (admits every
    model: constrains nothing).
    """
    workload = make_workload([(1000, 1, 1000)] * 7)
    return replace(workload, spec_id=np.array([0, 0, 0, 0, 1, 1, 2]),
                   gpu_specs=((), ("T4",), ("G2", "T4")))


def test_reserved_demand_splits_constrained_demand_over_its_models() -> None:
    cluster = make_cluster([32000] * 3, [2, 8, 8], models=["T4", "G2", "G2"])
    assert cluster.gpu_types == ("G2", "T4")
    # T4: 2000 milli of T4-only demand on 2000 milli of T4; G2: nothing constrained to it
    np.testing.assert_allclose(reserved_demand(_t4_workload(), cluster), [0.0, 1.0])


def test_fgd_reserve_keeps_a_scarce_model_for_the_pods_tied_to_it() -> None:
    """A half share already runs on the only T4 node. FGD scores a second half share 62
    there (it fills that GPU) and 44 on an idle G2 node, so it takes the T4. T4's pressure
    is its reserved demand 1.0 x the cluster's free share 17500/18000 over T4's 1500/2000,
    1.296, so fgd_reserve takes 30 x (1.296 - 0.5) = 23.9 points off: 38.1 < 44, a G2
    node. A pod tied to T4 still gets it.
    """
    workload = _t4_workload()
    cluster = make_cluster([32000] * 3, [2, 8, 8], models=["T4", "G2", "G2"])
    state = ClusterState(cluster)
    state.allocate(1000, 1024, 500, Placement(0, (0,)))
    view = ClusterView.of(state, np.random.default_rng(0))
    ours = PLACEMENT.get("fgd_reserve")(workload, cluster)
    assert isinstance(ours, FgdReserve)
    t4 = 30 * (1.0 * 17500 / 18000 / 0.75 - 0.5)
    np.testing.assert_allclose(ours.penalty(view), [0.0, t4, 0.0])
    half = PodRequest(1000, 1024, 1, 500, np.ones(3, dtype=bool))
    assert PLACEMENT.get("fgd")(workload, cluster).place(half, view) == Placement(0, (0,))
    assert ours.place(half, view) == Placement(1, (0,))
    t4_only = PodRequest(1000, 1024, 1, 500, np.array([True, False, False]))
    assert ours.place(t4_only, view) == Placement(0, (0,))


def _cpu_limited_weighted(frag: Fragmentation, cpu: int, free: list[int], gpu_type: int
                          ) -> int:
    """The CPU-limited measure by its definition, class by class: a one-GPU class with
    CPU demand c uses at most ``cpu // c`` of the GPUs that fit it (the largest), other
    classes as FGD; count x (free milli - what the class can use), summed.
    """
    c = frag.classes
    total = 0
    for m in range(len(c)):
        need, n, milli, count = (int(c.cpu_milli[m]), int(c.num_gpu[m]),
                                 int(c.gpu_milli[m]), int(c.count[m]))
        fits = sorted((v for v in free if v >= milli), reverse=True)
        usable = 0
        if n and frag.type_access[gpu_type, m] and cpu >= need and len(fits) >= n:
            usable = sum(fits[:cpu // need] if n == 1 and need else fits)
        total += count * (sum(free) - usable)
    return total


def test_cpu_limited_weighted_of_counts_gpus_the_cpu_left_cannot_feed() -> None:
    """Three idle GPUs, a 1-GPU class asking 3000m CPU and a CPU-only class: FGD counts
    only the CPU pod's share (3000) whatever CPU is left, as long as 3000m are; counting
    what the CPU left can feed, 3500m feeds one GPU and strands two (2000 more), 9000m
    feeds all three. Random states, with the multi-GPU and share classes of WORKLOAD too,
    agree with the definition class by class.
    """
    workload = make_workload([(1000, 1, 250), (3000, 1, 1000), (1000, 0, 0)])
    frag = fragmentation_of(workload, CLUSTER)
    fgd = NodeStates(frag, CLUSTER.gpu_type)
    ours = NodeStates(frag, CLUSTER.gpu_type, cpu_limited=True)
    gpu = (0, 0, 0, 0, 0, 1000, 1000, 1000)
    assert fgd.weighted_of(0, 3500, gpu) == fgd.weighted_of(0, 9000, gpu) == 3000
    assert ours.weighted_of(0, 3500, gpu) == 3000 + 2000
    assert ours.weighted_of(0, 9000, gpu) == 3000
    rng = np.random.default_rng(1)
    for measure in (frag, fragmentation_of(WORKLOAD, CLUSTER)):
        ours = NodeStates(measure, CLUSTER.gpu_type, cpu_limited=True)
        for _ in range(300):
            free = rng.choice([0, 100, 250, 750, 1000], 8)
            cpu, gpu_type = int(rng.integers(0, 9000)), int(rng.integers(-1, 1))
            key = tuple(sorted(free.tolist()))
            assert ours.weighted_of(gpu_type, cpu, key) == _cpu_limited_weighted(
                measure, cpu, free.tolist(), gpu_type)


def test_fgd_cpu_reserve_sends_a_cpu_heavy_share_where_cpu_feeds_the_other_gpus() -> None:
    """Two idle 4-GPU nodes, node0 with 16 cores (two 8-core pods), node1 with 64. A
    half-GPU share asking 8 cores grows FGD's measure by 250 milli on either (the
    1-GPU class loses the half-used GPU), 43 points each, and FGD takes node0 on the tie.
    Counting the GPUs the CPU left can feed, node0 goes from two usable GPUs per class to
    one: growth 500, 37 points, so fgd_cpu_reserve takes node1 (growth 250, 43).
    """
    workload = make_workload([(8000, 1, 1000), (8000, 1, 500)])
    cluster = make_cluster([16000, 64000], [4, 4])
    view = ClusterView.of(ClusterState(cluster), np.random.default_rng(0))
    share = PodRequest(8000, 1024, 1, 500, np.ones(2, dtype=bool))
    for name in ("fgd", "fgd_reserve"):
        assert PLACEMENT.get(name)(workload, cluster).place(share, view) == Placement(0, (0,))
    ours = PLACEMENT.get("fgd_cpu_reserve")(workload, cluster)
    assert isinstance(ours, FgdReserve)
    nodes = np.arange(2)
    np.testing.assert_array_equal(ours.scorer.score(share, view, nodes), [37.0, 43.0])
    assert ours.place(share, view) == Placement(1, (0,))
