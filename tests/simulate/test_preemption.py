"""Preemption: policies on hand-made states, engine integration, and the invariants."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from foresize.core.errors import InputError
from foresize.simulate.cluster.engine import replay
from foresize.simulate.cluster.placement import PLACEMENT
from foresize.simulate.cluster.preemption import PREEMPTION, PreemptionView
from foresize.simulate.cluster.queue import QUEUE
from foresize.simulate.cluster.state import MAX_GPUS_PER_NODE
from foresize.simulate.cluster.workload import Workload

from .helpers import make_cluster, make_workload


def _view(workload: Workload, running: dict[int, tuple[int, tuple[int, ...]]],
          gpu_free: list[list[int]], *, now: float = 100.0) -> PreemptionView:
    """A two-node state: ``running`` maps job -> (node, gpus); nothing else is free."""
    n = len(workload)
    cluster = make_cluster([8000] * len(gpu_free), [len(g) for g in gpu_free])
    free = np.zeros((len(gpu_free), MAX_GPUS_PER_NODE), dtype=np.int64)
    for k, row in enumerate(gpu_free):
        free[k, : len(row)] = row
    held = np.zeros((n, MAX_GPUS_PER_NODE), dtype=bool)
    node = np.full(n, -1, dtype=np.int64)
    start = np.full(n, np.nan)
    for job, (where, gpus) in running.items():
        node[job], start[job] = where, float(job)
        held[job, list(gpus)] = True
    return PreemptionView(now, workload, workload.node_masks(cluster),
                          np.full(len(gpu_free), 8000, dtype=np.int64),
                          np.full(len(gpu_free), 1 << 20, dtype=np.int64), free,
                          node >= 0, node, held, np.zeros(n), start)


def _prioritised(pods: list[tuple[int, int, int]], priority: list[int]) -> Workload:
    return replace(make_workload(pods), priority=np.array(priority, dtype=np.int64))


def test_lowest_priority_evicts_fewest_lowest_on_one_node() -> None:
    # node 0: jobs 0 (prio 0) and 1 (prio 1) hold one GPU each; node 1: job 2 (prio 1)
    # holds both GPUs. Job 3 (prio 5) needs one whole GPU: one victim either way, and
    # job 0 has the lowest priority.
    w = _prioritised([(0, 1, 1000), (0, 1, 1000), (0, 2, 1000), (0, 1, 1000)], [0, 1, 1, 5])
    view = _view(w, {0: (0, (0,)), 1: (0, (1,)), 2: (1, (0, 1))}, [[0, 0], [0, 0]])
    assert list(PREEMPTION.get("lowest_priority")().victims(3, view)) == [0]
    # equal or higher priorities are never victims
    w = replace(w, priority=np.array([5, 5, 9, 5]))
    assert list(PREEMPTION.get("lowest_priority")().victims(3, replace(view, workload=w))) == []
    assert list(PREEMPTION.get("none")().victims(3, view)) == []
    # among equal priorities the most recently started goes (job 2 started after job 0)
    w = replace(w, priority=np.array([0, 1, 0, 5]))
    assert list(PREEMPTION.get("lowest_priority")().victims(3, replace(view, workload=w))) == [2]


def test_least_attained_takes_the_longest_served_beyond_the_gap() -> None:
    w = make_workload([(0, 1, 1000), (0, 1, 1000), (0, 1, 1000)])
    view = _view(w, {0: (0, (0,)), 1: (0, (1,))}, [[0, 0]], now=5000.0)
    # job 0 started at 0 (5000 s served), job 1 at 1 (4999 s): both beyond a 3600 s gap
    assert list(PREEMPTION.get("least_attained")().victims(2, view)) == [0]
    assert list(PREEMPTION.get("least_attained")(min_gap_s=6000).victims(2, view)) == []
    with pytest.raises(InputError, match="min_gap_s"):
        PREEMPTION.get("least_attained")(min_gap_s=0)


def test_preempted_job_resumes_and_finishes_later() -> None:
    cluster = make_cluster([8000], [1])
    w = _prioritised([(1000, 1, 1000), (1000, 1, 1000)], [0, 1])
    w = replace(w, arrival_s=np.array([0.0, 4.0]), duration_s=np.array([10.0, 3.0]))
    args = (w, cluster, PLACEMENT.get("first_fit")(w, cluster), QUEUE.get("priority")())
    result = replay(*args, preemption=PREEMPTION.get("lowest_priority")())
    # job 0 runs 0-4, is evicted by job 1 (4-7), resumes its remaining 6 s: 7-13
    assert result.end_s.tolist() == [13.0, 7.0]
    assert result.preemptions.tolist() == [1, 0]
    summary = result.summary(w, cluster)
    assert summary["preemptions"]["by_tenant"] == {"t0": 1}
    restarted = replay(*args, preemption=PREEMPTION.get("lowest_priority")(), restart="restart")
    assert restarted.end_s.tolist() == [17.0, 7.0]  # all 10 s again after 7
    assert restarted.lost_gpu_s == 4.0
    assert replay(*args).end_s.tolist() == [10.0, 13.0]  # no preemption: job 1 waits


pod = st.one_of(
    st.tuples(st.integers(0, 16000), st.just(0), st.just(0)),
    st.tuples(st.integers(0, 16000), st.just(1), st.integers(1, 1000)),
    st.tuples(st.integers(0, 16000), st.sampled_from([2, 4]), st.just(1000)),
)


@settings(max_examples=30, deadline=None)
@given(pods=st.lists(st.tuples(pod, st.integers(0, 3), st.floats(0, 50), st.floats(1, 40)),
                     min_size=1, max_size=30),
       policy=st.sampled_from(["lowest_priority", "least_attained"]),
       restart=st.sampled_from(["resume", "restart"]))
def test_preemption_invariants(pods: list[tuple[tuple[int, int, int], int, float, float]],
                               policy: str, restart: str) -> None:
    cluster = make_cluster([16000, 32000, 8000], [2, 4, 0])
    w = replace(make_workload([p[0] for p in pods]),
                priority=np.array([p[1] for p in pods], dtype=np.int64),
                arrival_s=np.array([p[2] for p in pods]),
                duration_s=np.array([p[3] for p in pods]))
    preemption = PREEMPTION.get(policy)(min_gap_s=5.0) if policy == "least_attained" \
        else PREEMPTION.get(policy)()
    result = replay(w, cluster, PLACEMENT.get("best_fit")(w, cluster), QUEUE.get("priority")(),
                    preemption=preemption, restart=restart)  # type: ignore[arg-type]
    # allocate() raises on over-commit, so finishing at all means no node was over-committed
    assert (result.gpu_util <= 1 + 1e-12).all()
    assert (result.cpu_util <= 1 + 1e-12).all()
    done = np.isfinite(result.end_s)
    never = np.zeros(len(w), dtype=bool)
    never[result.never_fit] = True
    assert (done | never).all()  # every pod that could ever fit completed
    assert not np.isfinite(result.start_s[never]).any()
    served = np.bincount(result.run_job, weights=result.run_end_s - result.run_start_s,
                         minlength=len(w))
    gpus = w.gpu_demand_milli / 1000
    if restart == "resume":
        np.testing.assert_allclose(served[done], w.duration_s[done], atol=1e-9)
    else:
        np.testing.assert_allclose((served * gpus).sum(),
                                   (w.duration_s * gpus)[done].sum() + result.lost_gpu_s,
                                   atol=1e-6)
    assert result.preemptions.sum() == len(result.run_job) - done.sum()
    assert result.gpu_util[-1] == 0
