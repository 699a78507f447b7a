"""A sample cluster for Prometheus, made from real GenTD26 telemetry.

Cluster mode is tested and benchmarked against a real Prometheus, backfilled with
``promtool tsdb create-blocks-from openmetrics``. No public trace has cAdvisor,
kube-state-metrics and DCGM series of one cluster, so this module maps real GenTD26
series onto those names (the values are real, the names and the layout are made):

* container memory: ``pod_memory_util`` (a fraction of the limit) x the memory limit
  -> ``container_memory_working_set_bytes``;
* container CPU: ``pod_gpu_duty_cycle`` (percent) x the CPU limit, in millicores,
  accumulated into the counter ``container_cpu_usage_seconds_total`` (it restarts at a
  container restart: a counter reset);
* GPU containers: the duty cycle of another container -> ``DCGM_FI_DEV_GPU_UTIL``, and
  a memory fraction x 40 GiB -> ``DCGM_FI_DEV_FB_USED`` (MiB);
* kube-state-metrics: ``kube_pod_owner``, ``kube_replicaset_owner``, ``kube_job_owner``,
  ``kube_pod_container_info``, ``kube_pod_container_resource_requests``/``_limits``,
  ``kube_pod_created`` and ``kube_pod_labels``, every ``KSM_EVERY`` samples and at each
  pod's last sample.

The layout cycles through owner kinds: Deployments (two replicas, multi-container, a
rollout to a new ReplicaSet hash halfway), StatefulSets (a container restart), DaemonSets
(one pod per node), CronJobs (a run per quarter of the window) and Jobs, across several
namespaces; every ``gpu_every``-th owner has a GPU. Day ``d`` of a container's series is
real day-long series number ``(seed + d) mod n`` of the pool, so any number of days can be
made from the one day the trace holds.

``expected`` returns what cluster mode must read back -- per owner container the largest
value over its pods at each step, CPU as the counter's increase over the step
(``irate``) -- computed here from the generated samples, not from Prometheus.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt
import polars as pl

from foresize.core.schemas import TS_DTYPE
from foresize.ingest.alibaba.gentd26 import read_gentd26

STEP_S = 60
DAY = 1440
KSM_EVERY = 10
GPU_MODEL = "NVIDIA A100-SXM4-80GB"
GIB = 2**30
FloatArray = npt.NDArray[np.float64]
_SHARED = ("kube_replicaset_owner", "kube_job_owner")
USAGE_FAMILIES = ("container_cpu_usage_seconds_total", "container_memory_working_set_bytes",
                  "DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_FB_USED")
FAMILIES = ("kube_pod_owner", "kube_pod_created", "kube_pod_labels", *_SHARED,
            "kube_pod_container_info", "kube_pod_container_resource_requests",
            "kube_pod_container_resource_limits", *USAGE_FAMILIES)
KINDS = ("Deployment", "StatefulSet", "DaemonSet", "CronJob", "Job")


@dataclass(frozen=True, slots=True)
class Container:
    """One container of a pod template: its name, resources and whether it has a GPU."""

    name: str
    cpu_request: float
    cpu_limit: float
    memory_request: float
    memory_limit: float
    gpu: int = 0


@dataclass(frozen=True, slots=True)
class Pod:
    """One pod: where it runs in the window (sample indices) and whom it belongs to."""

    namespace: str
    name: str
    owner_kind: str  # as kube_pod_owner says: ReplicaSet, StatefulSet, DaemonSet, Job
    owner_name: str
    top_kind: str  # the workload: Deployment, StatefulSet, DaemonSet, CronJob, Job
    top_name: str
    containers: tuple[Container, ...]
    first: int
    last: int  # inclusive
    series: int  # seed into the pool of real days
    restart: int | None = None  # sample index where the containers restart
    labels: tuple[tuple[str, str], ...] = ()


@dataclass(slots=True)
class SampleCluster:
    """The pods of a sample cluster over ``n_samples`` minutes from ``t0_s``."""

    pods: list[Pod]
    n_samples: int
    t0_s: int
    memory_days: list[FloatArray] = field(repr=False)
    duty_days: list[FloatArray] = field(repr=False)

    @property
    def end_s(self) -> int:
        """The last sample's time (epoch seconds)."""
        return self.t0_s + (self.n_samples - 1) * STEP_S

    def _values(self, pool: list[FloatArray], seed: int, first: int, last: int) -> FloatArray:
        idx = np.arange(first, last + 1)
        days = (seed + idx // DAY) % len(pool)
        out = np.empty(idx.size)
        for day in np.unique(days):
            mask = days == day
            out[mask] = pool[int(day)][idx[mask] % DAY]
        return out

    def usage(self, pod: Pod, index: int, container: Container) -> dict[str, FloatArray]:
        """The raw samples of one container: cpu counter, memory bytes, GPU util and MiB."""
        seed = pod.series * 7 + index * 3
        memory = self._values(self.memory_days, seed, pod.first, pod.last)
        duty = self._values(self.duty_days, seed + 1, pod.first, pod.last)
        millicores = np.ceil(duty / 100.0 * container.cpu_limit * 1000)
        increments = millicores / 1000.0 * STEP_S
        counter = np.cumsum(increments)
        if pod.restart is not None:
            cut = pod.restart - pod.first
            counter[cut:] = np.cumsum(increments[cut:])
        out = {
            "container_cpu_usage_seconds_total": counter,
            "container_memory_working_set_bytes": np.floor(memory * container.memory_limit),
        }
        if container.gpu:
            util = self._values(self.duty_days, seed + 2, pod.first, pod.last)
            fb = self._values(self.memory_days, seed + 3, pod.first, pod.last)
            out["DCGM_FI_DEV_GPU_UTIL"] = np.round(util)
            out["DCGM_FI_DEV_FB_USED"] = np.floor(fb * 40 * 1024)
        return out

    def openmetrics(self, pods: Sequence[Pod] | None = None, *,
                    window: tuple[int, int] | None = None) -> Iterator[str]:
        """OpenMetrics text of ``pods`` (default all), in pieces; '# EOF' ends the last.

        ``window`` keeps the samples whose index is in ``[first, last)``: the benchmark
        backfills one block-aligned window per ``promtool`` run, so the blocks never
        overlap and the text of 14 days never has to exist at once. The text is made
        family by family and pod by pod (a family's lines must be contiguous), so memory
        holds one pod's lines of one family, not the whole file.
        """
        chosen = self.pods if pods is None else pods
        lo, hi = window if window is not None else (0, self.n_samples)
        for name in FAMILIES:
            seen: set[str] = set()  # replicas of one ReplicaSet share its owner series
            header = False
            for pod in chosen:
                first, last = max(pod.first, lo), min(pod.last, hi - 1)
                if first > last:
                    continue
                lines = _pod_lines(self, pod, name, first, last)
                if name in _SHARED:
                    lines = [line for line in lines if line not in seen]
                    seen.update(lines)
                if not lines:
                    continue
                if not header:
                    kind = "counter" if name.endswith("_total") else "gauge"
                    yield f"# TYPE {name.removesuffix('_total')} {kind}\n"
                    header = True
                yield "\n".join(lines) + "\n"
        yield "# EOF\n"

    def write_openmetrics(self, path: Path, pods: Sequence[Pod] | None = None, *,
                          window: tuple[int, int] | None = None) -> Path:
        """Write the backfill file for ``promtool tsdb create-blocks-from openmetrics``."""
        with path.open("w", encoding="utf-8") as handle:
            for piece in self.openmetrics(pods, window=window):
                handle.write(piece)
        return path

    def expected(self) -> pl.DataFrame:
        """The pooled canonical telemetry cluster mode must read (module doc)."""
        parts = []
        for pod in self.pods:
            ts = (np.arange(pod.first, pod.last + 1) * STEP_S + self.t0_s) * 1_000_000
            for index, container in enumerate(pod.containers):
                raw = self.usage(pod, index, container)
                workload = "/".join((pod.namespace, pod.top_kind, pod.top_name, container.name))
                counter = raw.pop("container_cpu_usage_seconds_total")
                delta = np.diff(counter)
                reset = delta < 0
                delta[reset] = counter[1:][reset]
                series = {"cpu_cores": (ts[1:], delta / STEP_S),
                          "mem_bytes": (ts, raw["container_memory_working_set_bytes"])}
                if container.gpu:
                    series["gpu_util_pct"] = (ts, raw["DCGM_FI_DEV_GPU_UTIL"])
                    series["gpu_mem_bytes"] = (ts, raw["DCGM_FI_DEV_FB_USED"] * 1048576)
                for metric, (when, values) in series.items():
                    parts.append(pl.DataFrame({
                        "workload": workload, "metric": metric,
                        "ts": pl.Series(when, dtype=pl.Int64).cast(TS_DTYPE),
                        "value": values, "tenant": pod.namespace,
                    }))
        frame = pl.concat(parts)
        return (frame.group_by("workload", "metric", "ts", "tenant").agg(pl.col("value").max())
                .select("workload", "metric", "ts", "value", "tenant")
                .sort("workload", "metric", "ts"))


def _hash(text: str, n: int = 5) -> str:
    digest = hashlib.sha256(text.encode()).hexdigest()
    return "".join("bcdfghjklmnpqrstvwxz2456789"[int(digest[i:i + 2], 16) % 27] for i in
                   range(0, 2 * n, 2))


def _labels(**labels: str) -> str:
    return "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"


def _pod_lines(cluster: SampleCluster, pod: Pod, family: str, first: int,
               last: int) -> list[str]:
    """The lines of one family that one pod contributes from sample ``first`` to ``last``."""
    ns, name = pod.namespace, pod.name
    if family in USAGE_FAMILIES:
        return _usage_lines(cluster, pod, family, first, last)
    ksm = sorted({*range(pod.first, pod.last + 1, KSM_EVERY), pod.last})
    ksm_ts = [cluster.t0_s + i * STEP_S for i in ksm if first <= i <= last]
    if family == "kube_pod_owner":
        series = [(_labels(namespace=ns, pod=name, owner_kind=pod.owner_kind,
                           owner_name=pod.owner_name, owner_is_controller="true"), 1.0)]
    elif family == "kube_pod_created":
        series = [(_labels(namespace=ns, pod=name), float(cluster.t0_s + pod.first * STEP_S - 30))]
    elif family == "kube_pod_labels":
        series = [(_labels(namespace=ns, pod=name, **{f"label_{k}": v for k, v in pod.labels}),
                   1.0)]
    elif family == "kube_replicaset_owner":
        series = [(_labels(namespace=ns, replicaset=pod.owner_name, owner_kind="Deployment",
                           owner_name=pod.top_name, owner_is_controller="true"), 1.0)
                  ] if pod.owner_kind == "ReplicaSet" else []
    elif family == "kube_job_owner":
        series = [(_labels(namespace=ns, job_name=pod.owner_name, owner_kind="CronJob",
                           owner_name=pod.top_name, owner_is_controller="true"), 1.0)
                  ] if pod.owner_kind == "Job" and pod.top_kind == "CronJob" else []
    elif family == "kube_pod_container_info":
        series = [(_labels(namespace=ns, pod=name, container=c.name,
                           image=f"registry.example/{c.name}:1"), 1.0) for c in pod.containers]
    else:  # kube_pod_container_resource_requests / _limits
        series = []
        for c in pod.containers:
            resources = [("cpu", "core", c.cpu_request, c.cpu_limit),
                         ("memory", "byte", c.memory_request, c.memory_limit)]
            if c.gpu:
                resources.append(("nvidia_com_gpu", "integer", c.gpu, c.gpu))
            for resource, unit, request, limit in resources:
                value = request if family.endswith("_requests") else limit
                series.append((_labels(namespace=ns, pod=name, container=c.name,
                                       resource=resource, unit=unit, node="node-1"),
                               float(value)))
    return [f"{family}{labels} {value!r} {t}" for labels, value in series for t in ksm_ts]


def _usage_lines(cluster: SampleCluster, pod: Pod, family: str, first: int,
                 last: int) -> list[str]:
    """The cAdvisor or DCGM lines of one pod's containers from sample ``first`` to ``last``."""
    name = pod.name
    lines: list[str] = []
    times = (np.arange(first, last + 1) * STEP_S + cluster.t0_s).tolist()
    for index, container in enumerate(pod.containers):
        c = container.name
        raw = cluster.usage(pod, index, container)
        if family not in raw:
            continue
        if family.startswith("DCGM"):
            labels = _labels(namespace=pod.namespace, pod=name, container=c, gpu="0",
                             modelName=GPU_MODEL, Hostname="node-1",
                             UUID=f"GPU-{_hash(name + c, 8)}")
        else:
            labels = _labels(namespace=pod.namespace, pod=name, container=c,
                             image=f"registry.example/{c}:1", id=f"/kubepods/{name}/{c}",
                             name=f"k8s_{c}_{name}")
        values = raw[family][first - pod.first:last - pod.first + 1].tolist()
        prefix = f"{family}{labels} "
        lines.extend(f"{prefix}{v!r} {t}" for t, v in zip(times, values, strict=True))
    return lines


def _container(name: str, rank: int, *, gpu: int = 0) -> Container:
    cpu = (0.5, 1.0, 2.0, 4.0)[rank % 4]
    memory = (1, 2, 4, 8)[(rank // 2) % 4] * GIB
    return Container(name, cpu_request=cpu / 2, cpu_limit=cpu, memory_request=memory / 2,
                     memory_limit=memory, gpu=gpu)


def sample_layout(n_owners: int, n_samples: int, *, namespaces: Sequence[str] = (
        "team-a", "team-b", "batch"), gpu_every: int = 3, short: int = 0) -> list[Pod]:
    """Pods for ``n_owners`` owners cycling through ``KINDS`` (module doc); ``short``
    extra Deployments live only for the last 50 samples (too little history).
    """
    pods: list[Pod] = []
    half = n_samples // 2
    for i in range(n_owners):
        kind = KINDS[i % len(KINDS)]
        ns = namespaces[i % len(namespaces)]
        gpu = 1 if gpu_every and i % gpu_every == gpu_every - 1 else 0
        base = f"{kind.lower()}-{i}"
        if kind == "Deployment":
            template = (_container("app", i, gpu=gpu), _container("sidecar", i + 1))
            for version, (first, last) in enumerate(((0, half - 1), (half, n_samples - 1))):
                rs = f"{base}-{_hash(f'{base}{version}', 9)}"
                for replica in range(2):
                    pods.append(Pod(ns, f"{rs}-{_hash(f'{rs}{replica}')}", "ReplicaSet", rs,
                                    kind, base, template, first, last,
                                    series=i * 11 + version * 2 + replica,
                                    labels=(("app", base), ("tier", "web"))))
        elif kind == "StatefulSet":
            pods.append(Pod(ns, f"{base}-0", kind, base, kind, base,
                            (_container("db", i, gpu=gpu),), 0, n_samples - 1, series=i * 11,
                            restart=n_samples // 3, labels=(("app", base), ("tier", "db"))))
        elif kind == "DaemonSet":
            for node in range(2):
                pods.append(Pod(ns, f"{base}-{_hash(f'{base}{node}')}", kind, base, kind, base,
                                (_container("agent", i),), 0, n_samples - 1,
                                series=i * 11 + node, labels=(("app", base),)))
        elif kind == "CronJob":
            quarter = n_samples // 4
            for run in range(4):
                job = f"{base}-{28000000 + run}"
                last = n_samples - 1 if run == 3 else (run + 1) * quarter - 1
                pods.append(Pod(ns, f"{job}-{_hash(job)}", "Job", job, kind, base,
                                (_container("task", i, gpu=gpu),), run * quarter, last,
                                series=i * 11 + run, labels=(("app", base),)))
        else:
            pods.append(Pod(ns, f"{base}-{_hash(base)}", "Job", base, kind, base,
                            (_container("train", i, gpu=gpu),), 0, n_samples - 1,
                            series=i * 11, labels=(("app", base),)))
    for j in range(short):
        base = f"short-{j}"
        rs = f"{base}-{_hash(base, 9)}"
        pods.append(Pod(namespaces[0], f"{rs}-{_hash(rs)}", "ReplicaSet", rs, "Deployment", base,
                        (_container("app", j),), n_samples - 50, n_samples - 1,
                        series=1000 + j, labels=(("app", base),)))
    return pods


def real_days(mirror: Path) -> tuple[list[FloatArray], list[FloatArray]]:
    """The day-long GenTD26 series (1,440 samples or more): memory fractions, duty cycles."""
    folder = mirror / "cluster-trace-v2026-GenAI"
    pools = []
    for table, scale in (("pod_memory_util_anon", 100.0), ("pod_gpu_duty_cycle_anon", 1.0)):
        frame, _ = read_gentd26(folder / f"{table}.tar.gz")
        full = frame.group_by("workload").agg(pl.col("value").sort_by("ts")).filter(
            pl.col("value").list.len() >= DAY).sort("workload")
        days = [np.asarray(v[:DAY], dtype=np.float64) for v in full["value"].to_list()]
        pools.append([d / scale if scale != 1.0 else d for d in days])
    return pools[0], pools[1]


def sample_cluster(mirror: Path, *, n_owners: int, days: float = 1.0, short: int = 0,
                   t0: datetime = datetime(2022, 9, 11, tzinfo=UTC),
                   gpu_every: int = 3) -> SampleCluster:
    """A sample cluster of ``n_owners`` owners over ``days`` days of real GenTD26 values."""
    memory, duty = real_days(mirror)
    n_samples = round(days * DAY)
    t0_s = int(t0.timestamp()) // STEP_S * STEP_S
    return SampleCluster(sample_layout(n_owners, n_samples, gpu_every=gpu_every, short=short),
                         n_samples, t0_s, memory, duty)


def _main(argv: Sequence[str] | None = None) -> None:
    """``python -m foresize.ingest.cluster.sample OUT.om``: write the README's backfill file
    (the GenTD26 mirror from ``FORESIZE_DATA_MIRROR``).
    """
    import argparse
    import os

    parser = argparse.ArgumentParser(description="Write a sample cluster's OpenMetrics "
                                     "backfill for promtool tsdb create-blocks-from openmetrics")
    parser.add_argument("output", type=Path)
    parser.add_argument("--owners", type=int, default=10)
    parser.add_argument("--days", type=float, default=1.0)
    parser.add_argument("--mirror", type=Path, default=os.environ.get("FORESIZE_DATA_MIRROR"))
    args = parser.parse_args(argv)
    if args.mirror is None:
        parser.error("set FORESIZE_DATA_MIRROR or pass --mirror (the alibaba-clusterdata mirror)")
    cluster = sample_cluster(args.mirror, n_owners=args.owners, days=args.days, short=1)
    cluster.write_openmetrics(args.output)


if __name__ == "__main__":
    _main()
