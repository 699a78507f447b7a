"""Hand-made clusters and workloads for the simulator tests."""

from __future__ import annotations

import numpy as np

from foresize.simulate.cluster.state import Cluster
from foresize.simulate.cluster.workload import Workload


def make_cluster(cpu: list[int], gpus: list[int], *, memory: list[int] | None = None,
                 models: list[str] | None = None) -> Cluster:
    n = len(cpu)
    models = models or ["G2"] * n
    types = tuple(sorted({m for m, g in zip(models, gpus, strict=True) if g}))
    return Cluster(
        names=tuple(f"node-{i}" for i in range(n)),
        cpu_milli=np.array(cpu, dtype=np.int64),
        memory_mib=np.array(memory or [1 << 20] * n, dtype=np.int64),
        n_gpu=np.array(gpus, dtype=np.int64),
        gpu_type=np.array([types.index(m) if g else -1 for m, g in zip(models, gpus, strict=True)],
                          dtype=np.int64),
        gpu_types=types)


def make_workload(pods: list[tuple[int, int, int]], *, memory: list[int] | None = None,
                  arrival: list[float] | None = None, duration: list[float] | None = None,
                  tenant: list[int] | None = None) -> Workload:
    """``pods``: (cpu_milli, num_gpu, gpu_milli per GPU)."""
    n = len(pods)
    a = np.array(pods, dtype=np.int64).reshape(n, 3)
    return Workload(
        names=tuple(f"pod-{i}" for i in range(n)), cpu_milli=a[:, 0],
        memory_mib=np.array(memory or [1024] * n, dtype=np.int64), num_gpu=a[:, 1],
        gpu_milli=a[:, 2], spec_id=np.zeros(n, dtype=np.int64), gpu_specs=((),),
        arrival_s=np.array(arrival or [0.0] * n), duration_s=np.array(duration or [10.0] * n),
        priority=np.zeros(n, dtype=np.int64),
        tenant=np.array(tenant or [0] * n, dtype=np.int64),
        tenants=tuple(f"t{i}" for i in range(max(tenant or [0]) + 1)),
        deadline_s=np.full(n, np.nan))
