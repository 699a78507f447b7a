"""Real data: the openb default trace on its 1213 GPU nodes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from foresize.simulate.cluster.engine import replay
from foresize.simulate.cluster.inflation import inflation_order, run_inflation
from foresize.simulate.cluster.placement import PLACEMENT, fragmentation_of
from foresize.simulate.cluster.queue import QUEUE
from foresize.simulate.cluster.traces import load_cluster, load_workload


@pytest.fixture(scope="module")
def openb(openb_dir: Path) -> tuple:
    cluster, _ = load_cluster(openb_dir / "openb_node_list_gpu_node.csv")
    workload, _ = load_workload(openb_dir / "openb_pod_list_default.csv")
    return workload, cluster


def test_cluster_and_trace_shapes(openb: tuple) -> None:
    workload, cluster = openb
    assert cluster.n_nodes == 1213
    assert int(cluster.n_gpu.sum()) == 6212
    assert len(workload) == 8152


def test_fgd_allocates_more_gpu_than_baselines_at_full_demand(openb: tuple) -> None:
    workload, cluster = openb
    frag = fragmentation_of(workload, cluster)
    allocated = {
        name: run_inflation(workload, cluster, PLACEMENT.get(name)(workload, cluster), seed=0,
                            target=1.0, step=0.05, fragmentation=frag).allocated_frac[-1]
        for name in ("fgd", "best_fit", "dot_product", "gpu_packing", "random")
    }
    fgd = allocated.pop("fgd")
    assert all(fgd > other for other in allocated.values()), (fgd, allocated)


def test_replay_of_the_default_trace(openb: tuple) -> None:
    workload, cluster = openb
    result = replay(workload, cluster, PLACEMENT.get("best_fit")(workload, cluster),
                    QUEUE.get("fifo")())
    summary = result.summary(workload, cluster)
    assert summary["n_started"] + summary["n_never_fit"] + summary["n_unscheduled"] == 8152
    assert np.isfinite(result.end_s[np.isfinite(result.start_s)]).all()
    assert summary["n_events"] == 2 * summary["n_started"] + summary["n_unscheduled"]


def test_inflation_order_is_the_shuffled_trace_then_copies(openb: tuple) -> None:
    """The authors' protocol: all 8152 pods once (0.98 of the GPUs), then random copies
    up to 1.3x capacity.
    """
    workload, cluster = openb
    capacity = cluster.gpu_capacity_milli
    order = inflation_order(workload, capacity, 1.3, np.random.default_rng(0))
    assert sorted(order[:8152].tolist()) == list(range(8152))
    assert order[:8152].tolist() != list(range(8152))
    demand = workload.gpu_demand_milli[order]
    assert demand[:8152].sum() / capacity == pytest.approx(0.98, abs=0.005)
    assert 1.29 * capacity < demand.sum() <= 1.3 * capacity
    down = inflation_order(workload, capacity, 0.5, np.random.default_rng(0))
    assert len(set(down.tolist())) == down.size  # a subset, no copies
    assert 0.49 * capacity < workload.gpu_demand_milli[down].sum() <= 0.5 * capacity
