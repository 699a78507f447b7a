"""Inflation curves, replay and the no-over-commit property for every policy."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from foresize.core.errors import InputError
from foresize.simulate.cluster.engine import replay
from foresize.simulate.cluster.inflation import binned_mean, mean_curve, run_inflation
from foresize.simulate.cluster.placement import PLACEMENT, ClusterView, PodRequest
from foresize.simulate.cluster.queue import QUEUE
from foresize.simulate.cluster.state import FULL_GPU_MILLI, ClusterState
from foresize.simulate.cluster.traces import synthetic_workload

from .helpers import make_cluster, make_workload

CLUSTER = make_cluster([32000, 96000, 64000, 16000], [2, 8, 4, 0])

pod = st.one_of(
    st.tuples(st.integers(0, 40000), st.just(0), st.just(0)),
    st.tuples(st.integers(0, 40000), st.just(1), st.integers(1, 1000)),
    st.tuples(st.integers(0, 40000), st.sampled_from([2, 4, 8]), st.just(1000)),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pods=st.lists(pod, min_size=1, max_size=40), seed=st.integers(0, 10))
def test_no_node_is_ever_over_committed(pods: list[tuple[int, int, int]], seed: int) -> None:
    """Also: a view of bare arrays and the state's live view (with the summaries the
    state keeps in step) place every pod alike, and the summaries equal the arrays'.
    """
    workload = make_workload(pods, memory=[4096] * len(pods))
    for name in PLACEMENT:
        policy = PLACEMENT.get(name)(workload, CLUSTER)
        twin = PLACEMENT.get(name)(workload, CLUSTER)
        state = ClusterState(CLUSTER)
        view = ClusterView(state.cpu_free, state.memory_free, state.gpu_free, CLUSTER,
                           np.random.default_rng(seed), gpu_pods=state.gpu_pods)
        live = ClusterView.of(state, np.random.default_rng(seed))
        for cpu, n_gpu, milli in pods:
            request = PodRequest(cpu, 4096, n_gpu, milli, np.ones(CLUSTER.n_nodes, bool))
            where = policy.place(request, view)
            assert twin.place(request, live) == where
            if where is not None:
                assert len(set(where.gpus)) == n_gpu
                state.allocate(cpu, 4096, milli, where)
            assert (state.cpu_free >= 0).all()
            assert (state.memory_free >= 0).all()
            assert ((state.gpu_free >= 0) & (state.gpu_free <= FULL_GPU_MILLI)).all()
            np.testing.assert_array_equal(state.gpu_free_total, state.gpu_free.sum(axis=1))
            np.testing.assert_array_equal(state.fit_ranked, -np.sort(-state.gpu_fit).T)


@settings(max_examples=15, deadline=None)
@given(n=st.integers(1, 60), seed=st.integers(0, 100))
def test_every_started_pod_completes_in_replay(n: int, seed: int) -> None:
    workload = synthetic_workload(n, seed=seed, mean_interarrival_s=30, mean_duration_s=600)
    result = replay(workload, CLUSTER, PLACEMENT.get("best_fit")(workload, CLUSTER),
                    QUEUE.get("fifo")(), seed=seed)
    started = np.isfinite(result.start_s)
    assert np.isfinite(result.end_s[started]).all()
    np.testing.assert_allclose(result.end_s[started] - result.start_s[started],
                               workload.duration_s[started])
    assert (result.start_s[started] >= workload.arrival_s[started]).all()
    assert (result.gpu_util <= 1 + 1e-12).all()
    assert result.gpu_util[-1] == 0  # everything left by the end


def test_replay_queues_until_resources_free_and_reports_never_fit() -> None:
    cluster = make_cluster([8000], [1])
    # two whole-GPU pods on one GPU: the second waits 10 s; the third can never fit
    workload = make_workload([(1000, 1, 1000), (1000, 1, 1000), (1000, 2, 1000)],
                             arrival=[0.0, 1.0, 2.0], duration=[10.0, 5.0, 1.0])
    result = replay(workload, cluster, PLACEMENT.get("first_fit")(workload, cluster),
                    QUEUE.get("fifo")())
    assert result.start_s[:2].tolist() == [0.0, 10.0]
    assert result.end_s[:2].tolist() == [10.0, 15.0]
    assert result.never_fit.tolist() == [2]
    summary = result.summary(workload, cluster)
    assert summary["n_never_fit"] == 1
    assert summary["queueing_delay"]["mean_s"] == pytest.approx(4.5)  # (0 + 9) / 2
    assert summary["makespan_s"] == 15.0
    # deadlines: pod 0 meets 10 s, pod 1 (ends 15) misses 12 s, never-fit pod 2 is left out
    late = replace(workload, deadline_s=np.array([10.0, 12.0, 5.0]))
    assert result.summary(late, cluster)["deadlines"] == {
        "n_with_deadline": 2, "n_missed": 1, "miss_rate": 0.5}
    assert summary["deadlines"]["n_with_deadline"] == 0
    assert summary["preemptions"]["total"] == 0


def test_inflation_curves_are_monotonic() -> None:
    workload = synthetic_workload(200, seed=1)
    curves = [run_inflation(workload, CLUSTER, PLACEMENT.get("fgd")(workload, CLUSTER),
                            seed=s, target=1.3, step=0.05) for s in range(2)]
    mean = mean_curve(curves)
    assert mean.arrived_frac[-1] == pytest.approx(1.3)
    for curve in [*curves, mean]:
        assert (np.diff(curve.allocated_frac) >= 0).all()
        assert (np.diff(curve.failed_pods) >= 0).all()
        # the 200 pods ask for far more than 1.3x: the run keeps a random subset within it
        assert curve.allocated_frac[-1] + curve.failed_gpu_frac[-1] <= 1.3 + 1e-9
        np.testing.assert_allclose(curve.allocated_frac + curve.unallocated_frac, 1.0)
    assert curves[0].allocated_frac[-1] < 1.0  # 130% demand cannot all fit


def test_inflation_is_deterministic_per_seed() -> None:
    workload = synthetic_workload(100, seed=2)
    policy = PLACEMENT.get("random")(workload, CLUSTER)
    a, b = (run_inflation(workload, CLUSTER, policy, seed=3, step=0.1) for _ in range(2))
    np.testing.assert_array_equal(a.allocated_frac, b.allocated_frac)


def test_bad_input_is_an_input_error() -> None:
    with pytest.raises(InputError, match="no pods"):
        make_workload([])
    with pytest.raises(InputError, match="ends before it starts"):
        make_workload([(1000, 0, 0)], duration=[-5.0])
    with pytest.raises(InputError, match="gpu_milli must be"):
        make_workload([(1000, 2, 500)])
    with pytest.raises(InputError, match="asks for GPU model 'H100'"):
        CLUSTER.spec_mask(("H100",))
    cpu_only = make_workload([(1000, 0, 0)])
    with pytest.raises(InputError, match="no pod asks for a GPU"):
        run_inflation(cpu_only, CLUSTER, PLACEMENT.get("best_fit")(cpu_only, CLUSTER), seed=0)


def test_binned_mean_reads_points_as_the_authors_analysis() -> None:
    arrived = np.array([0.09, 0.104, 0.11, 0.31])
    value = np.array([1.0, 2.0, 3.0, 4.0])
    # point 0.1 holds the events rounding to it; 0.2 has none and averages 0.1..0.3;
    # 0.3 holds the last event
    np.testing.assert_allclose(binned_mean(arrived, value, 0.1, 3), [2.0, 2.5, 4.0])
