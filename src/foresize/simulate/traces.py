"""Trace adapters: openb node and pod lists (addresses or files) into simulator arrays,
and synthetic pods drawn from a distribution.

Openb pods carry no tenant, priority or deadline. QoS stands in for both tenant and
priority (LS/Guaranteed before Burstable before BE), which is how the cluster's own
scheduler treated them; deadlines stay unset.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import polars as pl

from foresize.core.errors import InputError
from foresize.ingest.alibaba.openb import read_openb_nodes, read_openb_pods
from foresize.ingest.datasets import table_path
from foresize.ingest.report import IngestReport
from foresize.simulate.cluster import FULL_GPU_MILLI, Cluster
from foresize.simulate.workload import Workload

QOS_PRIORITY = {"LS": 2, "Guaranteed": 2, "Burstable": 1, "BE": 0}


def resolve_source(source: str | os.PathLike[str], *,
                   mirror: str | os.PathLike[str] | None = None) -> Path:
    """A file path as given, or the verified local file of a dataset address
    (``openb:default``, ``openb:nodes_gpu``).
    """
    text = str(source)
    path = Path(text)
    if path.exists() or ":" not in text:
        if not path.is_file():
            raise InputError(f"{text}: no such file", hint="pass a file or an address "
                             "such as openb:default")
        return path
    return table_path(text, mirror=mirror)


def cluster_from_frame(nodes: pl.DataFrame, *, source: str = "memory",
                       sha256: str | None = None) -> Cluster:
    """A cluster from an ``OPENB_NODES`` frame (node, cpu_milli, memory_mib, gpu, gpu_model)."""
    models = nodes["gpu_model"].fill_null("")
    has_gpu = (nodes["gpu"] > 0).to_numpy()
    gpu_types = tuple(sorted({m for m, g in zip(models.to_list(), has_gpu, strict=True)
                              if g and m}))
    codes = np.array([gpu_types.index(m) if g and m else -1
                      for m, g in zip(models.to_list(), has_gpu, strict=True)], dtype=np.int64)
    return Cluster(
        names=tuple(nodes["node"].to_list()),
        cpu_milli=nodes["cpu_milli"].to_numpy().astype(np.int64),
        memory_mib=nodes["memory_mib"].to_numpy().astype(np.int64),
        n_gpu=nodes["gpu"].to_numpy().astype(np.int64),
        gpu_type=codes, gpu_types=gpu_types, source=source, sha256=sha256)


def workload_from_frame(pods: pl.DataFrame, *, source: str = "memory",
                        sha256: str | None = None) -> Workload:
    """A workload from an ``OPENB_PODS`` frame.

    Duration is deletion minus creation; a pod without a deletion time runs to the end
    of the trace (the last creation or deletion seen), as it was still running then.
    """
    if pods.height == 0:
        raise InputError(f"{source}: the trace has no pods")
    created = pods["creation_s"]
    if created.null_count():
        first = pods.filter(pl.col("creation_s").is_null())["pod"][0]
        raise InputError(f"{source}: pod {first!r} has no creation time")
    arrival = created.to_numpy().astype(np.float64)
    deleted = pods["deletion_s"].cast(pl.Float64).to_numpy()
    horizon = float(np.nanmax(np.concatenate([arrival, deleted])))
    duration = np.where(np.isnan(deleted), horizon, deleted) - arrival
    specs = pods["gpu_spec"].list.eval(pl.element().unique().sort()).to_list()
    keys = [tuple(s) for s in specs]
    gpu_specs: tuple[tuple[str, ...], ...] = ((), *sorted({k for k in keys if k}))
    spec_id = np.array([gpu_specs.index(k) for k in keys], dtype=np.int64)
    qos = pods["qos"].fill_null("BE").to_list()
    tenants = tuple(sorted(set(qos)))
    return Workload(
        names=tuple(pods["pod"].to_list()),
        cpu_milli=pods["cpu_milli"].to_numpy().astype(np.int64),
        memory_mib=pods["memory_mib"].to_numpy().astype(np.int64),
        num_gpu=pods["num_gpu"].to_numpy().astype(np.int64),
        gpu_milli=pods["gpu_milli"].to_numpy().astype(np.int64),
        spec_id=spec_id, gpu_specs=gpu_specs, arrival_s=arrival, duration_s=duration,
        priority=np.array([QOS_PRIORITY.get(q, 0) for q in qos], dtype=np.int64),
        tenant=np.array([tenants.index(q) for q in qos], dtype=np.int64), tenants=tenants,
        deadline_s=np.full(pods.height, np.nan), source=source, sha256=sha256)


def load_cluster(source: str | os.PathLike[str], *,
                 mirror: str | os.PathLike[str] | None = None
                 ) -> tuple[Cluster, IngestReport]:
    """Read an openb node list (address such as ``openb:nodes_gpu``, or a file)."""
    path = resolve_source(source, mirror=mirror)
    frame, report = read_openb_nodes(path)
    return cluster_from_frame(frame, source=str(source), sha256=report.sha256), report


def load_workload(source: str | os.PathLike[str], *,
                  mirror: str | os.PathLike[str] | None = None
                  ) -> tuple[Workload, IngestReport]:
    """Read an openb pod list (address such as ``openb:default``, or a file)."""
    path = resolve_source(source, mirror=mirror)
    frame, report = read_openb_pods(path)
    return workload_from_frame(frame, source=str(source), sha256=report.sha256), report


def synthetic_workload(n_pods: int, *, seed: int, like: Workload | None = None,
                       mean_interarrival_s: float = 60.0, mean_duration_s: float = 3600.0
                       ) -> Workload:
    """``n_pods`` pods: requests drawn from ``like`` (with replacement) or from a small
    openb-shaped mix; Poisson arrivals and exponential durations.
    """
    if n_pods <= 0:
        raise InputError(f"n_pods must be positive, got {n_pods}")
    rng = np.random.default_rng(seed)
    if like is not None:
        base = like.take(rng.integers(0, len(like), size=n_pods))
    else:
        num_gpu = rng.choice([0, 1, 1, 1, 2, 4, 8], size=n_pods)
        share = rng.choice([250, 500, 1000], size=n_pods)
        gpu_milli = np.where(num_gpu == 0, 0, np.where(num_gpu == 1, share, FULL_GPU_MILLI))
        base = Workload(
            names=tuple(f"synthetic-{i:06d}" for i in range(n_pods)),
            cpu_milli=rng.choice([1000, 4000, 8000, 16000], size=n_pods).astype(np.int64),
            memory_mib=rng.choice([2048, 16384, 65536], size=n_pods).astype(np.int64),
            num_gpu=num_gpu.astype(np.int64), gpu_milli=gpu_milli.astype(np.int64),
            spec_id=np.zeros(n_pods, dtype=np.int64), gpu_specs=((),),
            arrival_s=np.zeros(n_pods), duration_s=np.zeros(n_pods),
            priority=np.zeros(n_pods, dtype=np.int64), tenant=np.zeros(n_pods, dtype=np.int64),
            tenants=("default",), deadline_s=np.full(n_pods, np.nan), source="synthetic")
    arrival = np.cumsum(rng.exponential(mean_interarrival_s, size=n_pods))
    duration = rng.exponential(mean_duration_s, size=n_pods)
    return replace(base, names=tuple(f"synthetic-{i:06d}" for i in range(n_pods)),
                   arrival_s=arrival, duration_s=duration, source="synthetic", sha256=None)
