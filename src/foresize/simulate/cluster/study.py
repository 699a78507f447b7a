"""One scheduling study (``foresize simulate schedule``): the cluster and its node pools,
then every placement policy under the inflation protocol or a time-based replay.

Callable from notebooks as from the CLI: :func:`build_cluster` composes fixed nodes, pools,
MIG layouts and the node autoscaler; :func:`compare_replays` runs each policy and seed.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from foresize.core.errors import InputError, UsageError
from foresize.core.io import atomic_write
from foresize.core.units import parse_duration
from foresize.simulate.cluster.autoscaler import AUTOSCALE
from foresize.simulate.cluster.carbon import CarbonAware, Series
from foresize.simulate.cluster.engine import Autoscaling, Restart, replay
from foresize.simulate.cluster.inflation import InflationCurve
from foresize.simulate.cluster.placement import PLACEMENT
from foresize.simulate.cluster.pools import parse_pool, with_pools
from foresize.simulate.cluster.preemption import PREEMPTION
from foresize.simulate.cluster.queue import QUEUE
from foresize.simulate.cluster.state import Cluster
from foresize.simulate.cluster.traces import open_nodes
from foresize.simulate.cluster.workload import Workload

# a run's progress: given the policy and seed, a context that yields the engine's tick
RunProgress = Callable[[str, int], AbstractContextManager[Callable[[float], None] | None]]


def check_placements(text: str) -> list[str]:
    """Comma-separated placement policies, each known (UnknownNameError: "Did you mean")."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise UsageError("--placement names no policy", hint="e.g. --placement best_fit,fgd")
    for name in names:
        PLACEMENT.get(name)
    return names


def pai_files(options: Sequence[str]) -> dict[str, str]:
    """``--pai-table job=FILE`` options as ``{"job": "FILE"}``."""
    files: dict[str, str] = {}
    for text in options:
        name, sep, path = text.partition("=")
        if not sep or not path:
            raise UsageError(f"--pai-table {text!r}: expected TABLE=FILE",
                             hint="e.g. --pai-table job=pai_job_table.tar.gz")
        files[name] = path
    return files


@dataclass(frozen=True, slots=True)
class ClusterSpec:
    """The cluster asked for: fixed nodes, autoscaled pools and their autoscaler, and MIG
    layouts by GPU model (``{"A100": (3, 2, 2)}``).
    """

    nodes: str
    pools: tuple[str, ...] = ()
    autoscaler: str = "none"
    autoscale_every: str = "60s"
    scale_down_after: str = "10m"
    mig: Mapping[str, tuple[int, ...]] = field(default_factory=dict)


def build_cluster(spec: ClusterSpec, *, mode: str, preemption: str, mirror: Path | None,
                  ) -> tuple[Cluster, Autoscaling | None]:
    """The cluster (fixed nodes then pool slots, MIG applied) and its node autoscaling."""
    policy = AUTOSCALE.get(spec.autoscaler)
    autoscaling = None
    if spec.pools or spec.nodes == "none":
        if mode != "replay":
            raise UsageError("--pool and --nodes none need --mode replay",
                             hint="inflation places pods on a fixed cluster")
        fixed = None if spec.nodes == "none" else open_nodes(spec.nodes, mirror=mirror)
        cluster, layout = with_pools(fixed, [parse_pool(text) for text in spec.pools])
        # only policies with that setting take it (``none`` has no settings)
        accepted = inspect.signature(policy).parameters
        settings = ({"scale_down_after_s": parse_duration(spec.scale_down_after)}
                    if "scale_down_after_s" in accepted else {})
        autoscaling = Autoscaling(layout, policy(**settings),
                                  every_s=parse_duration(spec.autoscale_every))
    else:
        cluster = open_nodes(spec.nodes, mirror=mirror)
    if spec.mig:
        if preemption != "none":
            raise UsageError("--mig cannot be combined with --preemption yet",
                             hint="preemption does not model MIG slices")
        cluster = cluster.with_mig(dict(spec.mig))
    return cluster, autoscaling


@dataclass(frozen=True, slots=True)
class ReplaySetup:
    """What a replay run composes besides placement: queue, preemption, restart, carbon."""

    queue: str
    preemption: str
    restart: Restart
    intensity: Series
    carbon_aware: bool
    autoscaling: Autoscaling | None = None

    def describe(self, autoscaler: str, deadline_factor: float | None) -> dict[str, Any]:
        """The replay settings a result document records."""
        scaling = self.autoscaling
        return {"preemption": self.preemption, "restart": self.restart,
                "deadline_factor": deadline_factor, "carbon": self.intensity.describe(),
                "carbon_aware": self.carbon_aware,
                "pools": [asdict(p) for p in scaling.layout.pools] if scaling else [],
                "autoscaler": autoscaler if scaling else None,
                "autoscale_every_s": scaling.every_s if scaling else None}


def _one_replay(workload: Workload, cluster: Cluster, name: str, seed: int,
                setup: ReplaySetup, admission: CarbonAware | None,
                on_run: RunProgress | None) -> dict[str, Any]:
    with (on_run or (lambda _n, _s: nullcontext()))(name, seed) as tick:
        result = replay(workload, cluster, PLACEMENT.get(name)(workload, cluster),
                        QUEUE.get(setup.queue)(),
                        preemption=PREEMPTION.get(setup.preemption)(),
                        admission=admission, restart=setup.restart, seed=seed, tick=tick,
                        autoscaling=setup.autoscaling)
    return result.summary(workload, cluster, intensity=setup.intensity)


def _mean(summaries: list[dict[str, Any]], *path: str) -> float:
    values = []
    for summary in summaries:
        value: Any = summary
        for key in path:
            value = value[key]
        values.append(float(value))
    return float(np.mean(values))


MEANS = {
    "wait_mean_s": ("queueing_delay", "mean_s"), "wait_p99_s": ("queueing_delay", "p99_s"),
    "jct_mean_s": ("jct", "mean_s"), "makespan_s": ("makespan_s",),
    "gpu_util_frac": ("mean_util", "gpu"),
}
MORE_MEANS = {
    "unscheduled": ("n_unscheduled",), "preemptions": ("preemptions", "total"),
    "deadline_miss_frac": ("deadlines", "miss_rate"), "cost_usd": ("energy", "cost_usd"),
    "energy_kwh": ("energy", "energy_kwh"), "carbon_kg": ("energy", "carbon_kg"),
    "events_per_second": ("events_per_second",),
}
AUTOSCALE_MEANS = {
    "node_hours": ("autoscale", "node_hours"), "pool_cost_usd": ("autoscale", "cost_usd"),
    "scale_ups": ("autoscale", "scale_ups"), "scale_downs": ("autoscale", "scale_downs"),
    "provisioning_wait_s": ("autoscale", "provisioning_wait", "total_s"),
}


def _row(name: str, summaries: list[dict[str, Any]], setup: ReplaySetup,
         aware: CarbonAware | None) -> dict[str, Any]:
    """One policy's means over its seeds."""
    row: dict[str, Any] = {"policy": name}
    row |= {key: _mean(summaries, *path) for key, path in MEANS.items()}
    row["never_fit"] = summaries[0]["n_never_fit"]
    row |= {key: _mean(summaries, *path) for key, path in MORE_MEANS.items()}
    if aware is not None:
        row["dyn_carbon_saved_kg"] = _mean(summaries, "carbon_saved_kg", "dynamic")
    if setup.autoscaling is not None:
        row |= {key: _mean(summaries, *path) for key, path in AUTOSCALE_MEANS.items()}
    return row


def compare_replays(workload: Workload, cluster: Cluster, names: Sequence[str],
                    seeds: Sequence[int], *, setup: ReplaySetup,
                    on_run: RunProgress | None = None) -> tuple[pl.DataFrame, dict[str, Any]]:
    """Each policy and seed; with ``carbon_aware`` also the same run without holding
    jobs, so the carbon saved is measured against an otherwise identical run.
    """
    aware = CarbonAware(setup.intensity) if setup.carbon_aware else None
    rows, runs = [], []
    for name in names:
        summaries = []
        for seed in seeds:
            summary = _one_replay(workload, cluster, name, seed, setup, aware, on_run)
            if aware is not None:
                base = _one_replay(workload, cluster, name, seed, setup, None, on_run)["energy"]
                summary["carbon_saved_kg"] = {
                    "total": base["carbon_kg"] - summary["energy"]["carbon_kg"],
                    "dynamic": base["dynamic_carbon_kg"] - summary["energy"]["dynamic_carbon_kg"],
                }
            summaries.append(summary)
            runs.append({"policy": name, "seed": seed, **summary})
        rows.append(_row(name, summaries, setup, aware))
    return pl.DataFrame(rows), {"runs": runs}


def plot_curves(curves: dict[str, InflationCurve], path: Path) -> None:
    """The inflation protocol's allocation curves as an image, written atomically."""
    try:
        import matplotlib as mpl

        mpl.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise InputError("--plot needs matplotlib",
                         hint="pip install 'foresize[plot]'") from None
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, curve in curves.items():
        ax.plot(curve.arrived_frac * 100, curve.allocated_frac * 100, label=name)
    ax.set_xlabel("arrived GPU demand (% of capacity)")
    ax.set_ylabel("allocated GPU (% of capacity)")
    ax.legend()
    ax.grid(alpha=0.3)
    with atomic_write(path) as tmp:
        fig.savefig(tmp, format=path.suffix.lstrip(".") or "png", dpi=120)
    plt.close(fig)
