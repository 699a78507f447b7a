"""Trace adapters into simulator arrays: openb node and pod lists (addresses or files),
PAI 2020 jobs and machines, DLRM 2025 instances, and synthetic pods drawn from a
distribution. ``open_trace`` and ``open_nodes`` turn one ``--trace`` / ``--nodes`` text
into a workload or cluster, so the CLI has a single way to name every adapter.

Openb pods carry no tenant, priority or deadline. QoS stands in for both tenant and
priority (LS/Guaranteed before Burstable before BE), which is how the cluster's own
scheduler treated them. No trace here has deadlines; ``with_deadlines`` adds synthetic
ones (arrival + factor x duration, the usual SLO construction in deadline-aware
scheduling papers).

GPU requests given as a number of GPUs (PAI ``plan_gpu`` / 100, DLRM ``gpu_request``)
become openb's form: up to one GPU is a share of one device, more is whole GPUs,
rounded up (a request of 1.5 GPUs needs two devices).
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import polars as pl

from foresize.core.errors import InputError, UsageError
from foresize.ingest.alibaba.dlrm2025 import read_dlrm_instances
from foresize.ingest.alibaba.openb import read_openb_nodes, read_openb_pods
from foresize.ingest.alibaba.pai2020 import read_pai_table
from foresize.ingest.datasets import table_path
from foresize.ingest.report import IngestReport
from foresize.simulate.cluster.state import FULL_GPU_MILLI, Cluster, IntArray
from foresize.simulate.cluster.workload import FloatArray, Workload

QOS_PRIORITY = {"LS": 2, "Guaranteed": 2, "Burstable": 1, "BE": 0}
PAI_JOB_TABLES = ("job", "task", "instance")
_MIB_PER_GIB = 1024


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
    A list without times at all (the ``multigpu*`` layout) is a set of requests, not a
    history: every pod arrives at 0 and never leaves, the default the inflation protocol
    assumes. A list with times where some pod lacks one is an error.
    """
    if pods.height == 0:
        raise InputError(f"{source}: the trace has no pods")
    created = pods["creation_s"]
    if created.null_count() == pods.height and pods["deletion_s"].null_count() == pods.height:
        arrival = np.zeros(pods.height)
        duration = np.full(pods.height, np.inf)
    elif created.null_count():
        first = pods.filter(pl.col("creation_s").is_null())["pod"][0]
        raise InputError(f"{source}: pod {first!r} has no creation time")
    else:
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
    """Read an openb pod list (address such as ``openb:default``, or a file).

    Strictly: a row the simulator cannot place as written (a negative request, a
    ``gpu_milli`` over 1000, ...) is an ``InputError`` naming the file, row and column,
    because a study that silently ran on fewer pods would not be the trace's study.
    """
    path = resolve_source(source, mirror=mirror)
    try:
        frame, report = read_openb_pods(path, strict=True)
    except InputError as err:  # the reader's hint names --strict, which the simulator lacks
        if err.hint is None:
            raise
        raise InputError(err.message) from None
    return workload_from_frame(frame, source=str(source), sha256=report.sha256), report


def with_deadlines(workload: Workload, factor: float) -> Workload:
    """Pods without a deadline get ``arrival + factor x duration``; trace deadlines stay."""
    if not factor >= 1:
        raise InputError(f"the deadline factor must be >= 1 (a pod needs its duration), "
                         f"got {factor:g}")
    synthetic = workload.arrival_s + factor * workload.duration_s
    deadline = np.where(np.isnan(workload.deadline_s), synthetic, workload.deadline_s)
    return replace(workload, deadline_s=deadline)


def _gpu_request(gpus: FloatArray) -> tuple[IntArray, IntArray]:
    """(num_gpu, gpu_milli per GPU) from a GPU count that may be fractional."""
    milli = np.rint(gpus * FULL_GPU_MILLI).astype(np.int64)
    whole = gpus > 1
    num_gpu = np.where(whole, np.ceil(gpus - 1e-9), (milli > 0).astype(np.float64))
    gpu_milli = np.where(whole, FULL_GPU_MILLI, milli)
    return num_gpu.astype(np.int64), gpu_milli.astype(np.int64)


def _codes(labels: list[str]) -> tuple[IntArray, tuple[str, ...]]:
    names = tuple(sorted(set(labels)))
    index = {name: k for k, name in enumerate(names)}
    return np.array([index[x] for x in labels], dtype=np.int64), names


def pai_workload(jobs: pl.DataFrame, tasks: pl.DataFrame, instances: pl.DataFrame, *,
                 source: str = "pai2020") -> Workload:
    """PAI 2020 pods, one per instance (worker) of ``read_pai_table`` frames.

    Arrival is the job's ``start_time`` (its submission; instances started later
    because they queued), duration the instance's ``end_time - start_time``; demand is
    its task's plan (``plan_cpu`` percent of a core, ``plan_mem`` GiB, ``plan_gpu``
    percent of a GPU). Instances that never started or ended (0 or empty times, as the
    trace writes them) are left out. Tenant is the job's user; times start at 0.
    GPU model constraints are not kept: PAI's ``gpu_type`` names (V100, T4, MISC) are
    not node models of the clusters the simulator has.
    """
    plans = tasks.select("job_name", "task_name", "plan_cpu", "plan_mem", "plan_gpu"
                         ).unique(["job_name", "task_name"], keep="first", maintain_order=True)
    submitted = jobs.select("job_name", pl.col("start_time").alias("submit_s"),
                            pl.col("user").fill_null("unknown")
                            ).unique("job_name", keep="first", maintain_order=True)
    pods = (instances.filter((pl.col("start_time") > 0) & (pl.col("end_time") > 0)
                             & (pl.col("end_time") >= pl.col("start_time")))
            .join(plans, on=["job_name", "task_name"], how="inner")
            .join(submitted, on="job_name", how="left")
            .with_columns(pl.min_horizontal(pl.col("submit_s").fill_null(pl.col("start_time")),
                                            pl.col("start_time")).alias("submit_s"),
                          pl.col("user").fill_null("unknown")))
    if pods.height == 0:
        raise InputError(f"{source}: no instance both started and ended with a task plan",
                         hint="pass the job, task and instance tables of the same trace")
    arrival = pods["submit_s"].to_numpy().astype(np.float64)
    num_gpu, gpu_milli = _gpu_request(pods["plan_gpu"].fill_null(0).to_numpy() / 100.0)
    tenant, tenants = _codes(pods["user"].to_list())
    names = [f"{j}/{t}/{i}" for j, t, i in zip(pods["job_name"], pods["task_name"],
                                               pods["inst_name"].fill_null(""), strict=True)]
    return Workload(
        names=tuple(names),
        cpu_milli=np.rint(pods["plan_cpu"].fill_null(0).to_numpy() * 10).astype(np.int64),
        memory_mib=np.rint(pods["plan_mem"].fill_null(0).to_numpy() * 1024).astype(np.int64),
        num_gpu=num_gpu, gpu_milli=gpu_milli, spec_id=np.zeros(pods.height, dtype=np.int64),
        gpu_specs=((),), arrival_s=arrival - arrival.min(),
        duration_s=(pods["end_time"] - pods["start_time"]).to_numpy().astype(np.float64),
        priority=np.zeros(pods.height, dtype=np.int64), tenant=tenant, tenants=tenants,
        deadline_s=np.full(pods.height, np.nan), source=source)


def dlrm_workload(instances: pl.DataFrame, *, source: str = "dlrm2025") -> Workload:
    """DLRM 2025 pods, one per instance of a ``read_dlrm_instances`` frame.

    Null creation means the instance existed before the trace began: it arrives at 0.
    Null deletion means it outlived the trace: it runs to the last creation or deletion
    seen. Demand is the request (cores, bytes, GPUs); tenant is the service (``app``).
    """
    if instances.height == 0:
        raise InputError(f"{source}: the trace has no instances")
    created = instances["creation_s"].fill_null(0.0).to_numpy().astype(np.float64)
    deleted = instances["deletion_s"].to_numpy().astype(np.float64)
    horizon = float(np.nanmax(np.concatenate([created, deleted])))
    duration = np.where(np.isnan(deleted), horizon, deleted) - created
    num_gpu, gpu_milli = _gpu_request(instances["gpu_request"].to_numpy())
    tenant, tenants = _codes(instances["app"].fill_null("unknown").to_list())
    return Workload(
        names=tuple(instances["instance"].to_list()),
        cpu_milli=np.rint(instances["cpu_request_cores"].to_numpy() * 1000).astype(np.int64),
        memory_mib=(instances["memory_request_bytes"].to_numpy() // 2**20).astype(np.int64),
        num_gpu=num_gpu, gpu_milli=gpu_milli,
        spec_id=np.zeros(instances.height, dtype=np.int64), gpu_specs=((),),
        arrival_s=created, duration_s=duration,
        priority=np.zeros(instances.height, dtype=np.int64), tenant=tenant, tenants=tenants,
        deadline_s=np.full(instances.height, np.nan), source=source)


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


def pai_cluster(spec: pl.DataFrame, *, source: str = "pai2020:machine_spec",
                sha256: str | None = None) -> Cluster:
    """A cluster from a ``read_pai_table`` machine-spec frame, one node per machine.

    ``cap_cpu`` is cores, ``cap_mem`` GiB (PAI's "GB" is binary, as in its README's
    examples), ``cap_gpu`` devices of model ``gpu_type``. Machines without GPUs are
    labelled ``CPU`` upstream; they get no GPU model rather than a model named "CPU".
    """
    frame = spec.select(
        pl.col("machine").alias("node"), (pl.col("cap_cpu") * 1000).alias("cpu_milli"),
        (pl.col("cap_mem") * _MIB_PER_GIB).alias("memory_mib"), pl.col("cap_gpu").alias("gpu"),
        pl.when(pl.col("cap_gpu") > 0).then(pl.col("gpu_type")).alias("gpu_model"))
    return cluster_from_frame(frame, source=source, sha256=sha256)


def _is_dlrm_file(path: Path) -> bool:
    """DLRM 2025 files carry a header whose first field is ``instance_sn``; openb's do not."""
    with path.open(encoding="utf-8", errors="replace") as handle:
        return handle.readline().lstrip("\ufeff").startswith("instance_sn")


def _pai_tables(pai_files: dict[str, str], mirror: str | os.PathLike[str] | None
                ) -> list[pl.DataFrame]:
    """The job, task and instance tables: explicit files where given, else the registry's
    ``pai2020:job`` etc. (whose error names the missing path and its URL).
    """
    unknown = sorted(set(pai_files) - set(PAI_JOB_TABLES))
    if unknown:
        raise UsageError(f"--pai-table {unknown[0]}=...: not a PAI job table",
                         hint=f"use one of {', '.join(PAI_JOB_TABLES)}")
    frames = []
    for name in PAI_JOB_TABLES:
        path = resolve_source(pai_files.get(name, f"pai2020:{name}"), mirror=mirror)
        frames.append(read_pai_table(path, table=name)[0])
    return frames


def open_trace(text: str, *, seed: int = 0, pai_files: dict[str, str] | None = None,
               mirror: str | os.PathLike[str] | None = None) -> Workload:
    """The workload ``--trace`` names.

    * ``synthetic:N``: N pods of :func:`synthetic_workload` drawn with ``seed``;
    * ``pai2020``: PAI 2020 jobs from the job, task and instance tables, each the file in
      ``pai_files`` (``{"job": FILE, ...}``) or else the dataset address ``pai2020:job``
      etc. (mirror or cache);
    * ``dlrm2025:instances``, or a file whose header starts with ``instance_sn``: DLRM 2025;
    * anything else: an openb pod list (``openb:VARIANT`` or a file).
    """
    if text.startswith("synthetic:"):
        count = text.removeprefix("synthetic:")
        if not count.isdigit():
            raise UsageError(f"--trace {text}: expected synthetic:N with N a pod count")
        return synthetic_workload(int(count), seed=seed)
    if text in ("pai2020", "alibaba-pai-2020"):
        return pai_workload(*_pai_tables(pai_files or {}, mirror))
    if pai_files:
        raise UsageError("--pai-table is only read with --trace pai2020")
    path = resolve_source(text, mirror=mirror)
    if text.startswith("dlrm2025:") or _is_dlrm_file(path):
        frame, report = read_dlrm_instances(path)
        return replace(dlrm_workload(frame, source=text), sha256=report.sha256)
    workload, _ = load_workload(path)
    return replace(workload, source=text)


def open_nodes(text: str, *, mirror: str | os.PathLike[str] | None = None) -> Cluster:
    """The cluster ``--nodes`` names: ``pai2020:machine_spec`` (or a ``pai_machine_spec``
    file), else an openb node list (``openb:nodes_gpu``, ``openb:nodes_all`` or a file).
    """
    path = resolve_source(text, mirror=mirror)
    if text.endswith(":machine_spec") or path.name.startswith("pai_machine_spec"):
        frame, report = read_pai_table(path, table="machine_spec")
        return pai_cluster(frame, source=text, sha256=report.sha256)
    frame, report = read_openb_nodes(path)
    return cluster_from_frame(frame, source=text, sha256=report.sha256)
