"""Every placement the policies make, pinned as a digest: speed work must not move a pod.

The digests were taken with the simulator before issue #19's per-node summaries and
incremental FGD (main at 65a164b, ``git archive main src``): the same seeds and inputs give
the same node and GPUs for every pod, failures included. A change that alters a policy's
decisions on purpose updates the digest and says why in its commit.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import replace

import numpy as np
import pytest

from foresize.simulate.cluster.inflation import run_inflation
from foresize.simulate.cluster.placement import PLACEMENT, ClusterView, PlacementPolicy, PodRequest
from foresize.simulate.cluster.state import Cluster, Placement
from foresize.simulate.cluster.workload import Workload
from tests.simulate.helpers import make_cluster, make_workload

SYNTHETIC = {
    "first_fit": "d9c22405e1394ed0", "best_fit": "3d0ae5d8df70244d",
    "worst_fit": "17e5a0bf486b4842", "dot_product": "640f5d13f211ce75",
    "gpu_packing": "e8fa3f2468cfb1ee", "gpu_clustering": "c21484f229d17f2b",
    "random": "22fd66cde8f544cb", "fgd": "3355164b64804af3",
}
# seed 42 on openb:nodes_gpu, the mirrored pod lists
OPENB = {
    "openb:default": {
        "random": "02fee8a7c004cd12", "dot_product": "b6e4eebb166784b2",
        "gpu_clustering": "685ad9e01e14ea2e", "gpu_packing": "68a68017db373c64",
        "best_fit": "f86543326ec2f801", "fgd": "bdb2b2e6703ec38a"},
    "openb:gpuspec33": {
        "random": "e4319ca7a01fdfdb", "dot_product": "00f90207e1687e31",
        "gpu_clustering": "389bdf987f30a75f", "gpu_packing": "31577151a57fbd08",
        "best_fit": "61da240b07a932ca", "fgd": "bdd23efc3d029336"},
}


class _Recorder:
    """Passes each pod to ``policy`` and keeps what it chose (None: the pod failed)."""

    def __init__(self, policy: PlacementPolicy) -> None:
        self.policy = policy
        self.log: list[tuple[int, tuple[int, ...]] | None] = []

    def place(self, pod: PodRequest, view: ClusterView, /) -> Placement | None:
        where = self.policy.place(pod, view)
        self.log.append(None if where is None else (where.node, where.gpus))
        return where


def _digest(workload: Workload, cluster: Cluster, name: str, seed: int) -> str:
    recorder = _Recorder(PLACEMENT.get(name)(workload, cluster))
    run_inflation(workload, cluster, recorder, seed=seed)
    assert any(where is None for where in recorder.log)  # the run reached failures
    return hashlib.sha256(repr(recorder.log).encode()).hexdigest()[:16]


def _synthetic() -> tuple[Workload, Cluster]:
    """48 nodes of three GPU models (some without GPUs), 400 pods of openb's shapes, 30 %
    of them constrained to a model: ties, shares, multi-GPU pods and model masks.
    """
    rng = np.random.default_rng(7)
    n = 48
    cluster = make_cluster(rng.choice([32000, 64000, 96000], n).tolist(),
                           rng.choice([0, 1, 2, 4, 8], n, p=[.1, .2, .2, .2, .3]).tolist(),
                           models=rng.choice(["A", "B", "C"], n).tolist())
    shapes = [(0, 0), (1, 50), (1, 230), (1, 470), (1, 810), (1, 1000), (2, 1000), (4, 1000),
              (8, 1000)]
    picks = rng.choice(len(shapes), 400, p=[.12, .04, .06, .1, .14, .44, .04, .03, .03])
    pods = [(int(rng.choice([1000, 4000, 8000, 16000])), *shapes[k]) for k in picks]
    workload = replace(make_workload(pods), spec_id=rng.choice(3, len(pods), p=[.7, .2, .1]),
                       gpu_specs=((), ("A",), ("B", "C")))
    return workload, cluster


@pytest.mark.parametrize("name", sorted(SYNTHETIC))
def test_synthetic_placements_are_unchanged(name: str) -> None:
    workload, cluster = _synthetic()
    assert _digest(workload, cluster, name, 3) == SYNTHETIC[name]


@pytest.mark.skipif(not os.environ.get("FORESIZE_DATA_MIRROR"),
                    reason="needs the openb pod lists (FORESIZE_DATA_MIRROR)")
@pytest.mark.parametrize(("trace", "name"),
                         [(t, n) for t, names in OPENB.items() for n in names])
def test_openb_placements_are_unchanged(trace: str, name: str) -> None:
    from foresize.simulate.cluster.traces import load_cluster, load_workload

    cluster, _ = load_cluster("openb:nodes_gpu")
    workload, _ = load_workload(trace)
    assert _digest(workload, cluster, name, 42) == OPENB[trace][name]
