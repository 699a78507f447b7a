"""Each placement policy on a hand-made 3-node cluster, against hand-computed choices."""

from __future__ import annotations

import numpy as np
import pytest

from foresize.core.errors import UnknownNameError
from foresize.simulate.cluster import ClusterState, Placement
from foresize.simulate.policies.placement import (
    PLACEMENT,
    ClusterView,
    PodRequest,
    feasible,
    fragmentation_of,
)

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
