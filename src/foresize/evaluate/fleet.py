"""The demo's scheduler check: whether right-sized requests pack a fleet onto fewer nodes.

A plan changes what each pod asks for; the question a cluster owner asks is how many
nodes the same fleet then needs. The fleet is ``copies`` pods of every workload (a
team runs many jobs and services of each kind), all arriving at once and running an
hour, on identical GPU nodes. The reference scheduler (``simulate.engine.replay``,
FIFO queue, best-fit placement) replays it on ``n`` nodes; the fewest ``n`` at which
every pod starts at once is the fleet's node count. Both request sets are also
replayed on the right-sized fleet's node count, so the table shows how many original
pods would have to wait there and for how long.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from foresize.core.errors import InputError
from foresize.simulate.cluster.engine import replay
from foresize.simulate.cluster.placement import PLACEMENT
from foresize.simulate.cluster.queue import QUEUE
from foresize.simulate.cluster.state import FULL_GPU_MILLI, MAX_GPUS_PER_NODE, Cluster
from foresize.simulate.cluster.workload import Workload

MIB = float(1 << 20)
GIB = float(1 << 30)
RUN_S = 3600.0  # every pod runs an hour: long enough that a waiting pod shows
PLACEMENT_POLICY = "best_fit"
QUEUE_POLICY = "fifo"


@dataclass(frozen=True, slots=True)
class NodeShape:
    """One node of the simulated cluster (default: an 8x H100 80 GB server, p5 class)."""

    cpu_cores: float = 192.0
    memory_bytes: float = 2048 * GIB
    gpus: int = 8
    gpu_model: str = "h100_sxm"

    def __post_init__(self) -> None:
        if not 0 < self.gpus <= MAX_GPUS_PER_NODE:
            raise InputError(f"a node holds 1 to {MAX_GPUS_PER_NODE} GPUs, got {self.gpus}")
        if not (self.cpu_cores > 0 and self.memory_bytes > 0):
            raise InputError("a node needs CPU cores > 0 and memory > 0")

    def describe(self) -> dict[str, Any]:
        """JSON-ready node shape, memory in GiB."""
        return {
            "cpu_cores": self.cpu_cores,
            "memory_gib": self.memory_bytes / GIB,
            "gpus": self.gpus,
            "gpu_model": self.gpu_model,
        }


@dataclass(frozen=True, slots=True)
class PodSize:
    """What one pod of a workload asks for; ``gpus`` < 1 is a share of one GPU."""

    workload: str
    cpu_cores: float
    memory_bytes: float
    gpus: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready request, memory in GiB."""
        return {
            "workload": self.workload,
            "cpu_cores": self.cpu_cores,
            "memory_gib": self.memory_bytes / GIB,
            "gpus": self.gpus,
        }


def _gpu_request(gpus: float) -> tuple[int, int]:
    """(num_gpu, gpu_milli) as the simulator counts GPUs: whole devices, or one's share."""
    if gpus <= 0:
        return 0, 0
    if gpus < 1:
        return 1, min(FULL_GPU_MILLI, max(1, math.ceil(gpus * FULL_GPU_MILLI - 1e-9)))
    return math.ceil(gpus - 1e-9), FULL_GPU_MILLI


def fleet_workload(pods: Sequence[PodSize], copies: int, *, label: str) -> Workload:
    """``copies`` pods of each size, all arriving at 0 and running ``RUN_S``, queued
    largest first (GPUs, then CPU, then memory): first-fit decreasing, the usual
    bin-packing order, so both request sets are packed by the same rule.
    """
    if not pods or copies < 1:
        raise InputError(f"{label}: a fleet needs at least one pod size and one copy")
    ordered = sorted(pods, key=lambda p: (-p.gpus, -p.cpu_cores, -p.memory_bytes, p.workload))
    sizes = [p for p in ordered for _ in range(copies)]
    gpu = np.array([_gpu_request(p.gpus) for p in sizes], dtype=np.int64).reshape(-1, 2)
    n = len(sizes)
    return Workload(
        names=tuple(f"{p.workload}-{i % copies}" for i, p in enumerate(sizes)),
        cpu_milli=np.array([math.ceil(p.cpu_cores * 1000) for p in sizes], dtype=np.int64),
        memory_mib=np.array([math.ceil(p.memory_bytes / MIB) for p in sizes], dtype=np.int64),
        num_gpu=gpu[:, 0],
        gpu_milli=gpu[:, 1],
        spec_id=np.zeros(n, dtype=np.int64),
        gpu_specs=((),),
        arrival_s=np.zeros(n),
        duration_s=np.full(n, RUN_S),
        priority=np.zeros(n, dtype=np.int64),
        tenant=np.zeros(n, dtype=np.int64),
        tenants=("fleet",),
        deadline_s=np.full(n, np.nan),
        source=label,
    )


def node_cluster(node: NodeShape, n: int) -> Cluster:
    """``n`` identical nodes."""
    return Cluster(
        names=tuple(f"node-{i}" for i in range(n)),
        cpu_milli=np.full(n, round(node.cpu_cores * 1000), dtype=np.int64),
        memory_mib=np.full(n, int(node.memory_bytes // MIB), dtype=np.int64),
        n_gpu=np.full(n, node.gpus, dtype=np.int64),
        gpu_type=np.zeros(n, dtype=np.int64),
        gpu_types=(node.gpu_model,),
        source=f"{n} x {node.gpu_model} node",
    )


def _lower_bound(workload: Workload, node: NodeShape) -> int:
    """Nodes the totals alone need (no packing loss): where the search starts."""
    need = (
        workload.cpu_milli.sum() / (node.cpu_cores * 1000),
        workload.memory_mib.sum() / (node.memory_bytes / MIB),
        workload.gpu_demand_milli.sum() / (node.gpus * FULL_GPU_MILLI),
    )
    return max(1, math.ceil(float(max(need)) - 1e-9))


def _check_fits(workload: Workload, node: NodeShape) -> None:
    too_big = (
        (workload.cpu_milli > node.cpu_cores * 1000)
        | (workload.memory_mib > node.memory_bytes / MIB)
        | (workload.num_gpu > node.gpus)
    )
    if too_big.any():
        i = int(np.flatnonzero(too_big)[0])
        raise InputError(
            f"{workload.source}: pod {workload.names[i]!r} does not fit one node "
            f"({node.cpu_cores:g} cores, {node.memory_bytes / GIB:g} GiB, {node.gpus} GPUs)"
        )


@dataclass(frozen=True, slots=True)
class Placed:
    """One replay of a fleet on ``nodes`` nodes."""

    nodes: int
    started_at_once: int
    n_pods: int
    mean_wait_s: float
    gpu_alloc: float
    cpu_alloc: float
    memory_alloc: float


def place_fleet(workload: Workload, node: NodeShape, nodes: int, *, seed: int) -> Placed:
    """Replay the fleet on ``nodes`` nodes with the reference scheduler."""
    cluster = node_cluster(node, nodes)
    result = replay(
        workload,
        cluster,
        PLACEMENT.get(PLACEMENT_POLICY)(workload, cluster),
        QUEUE.get(QUEUE_POLICY)(),
        seed=seed,
    )
    wait = result.start_s - workload.arrival_s
    at_once = int(np.sum(wait == 0.0))
    # allocation at t = 0: what the pods that started at once hold, over the cluster
    first = np.flatnonzero(wait == 0.0)
    return Placed(
        nodes=nodes,
        started_at_once=at_once,
        n_pods=len(workload),
        mean_wait_s=float(np.nanmean(wait)) if np.isfinite(wait).any() else math.nan,
        gpu_alloc=float(workload.gpu_demand_milli[first].sum())
        / (nodes * node.gpus * FULL_GPU_MILLI),
        cpu_alloc=float(workload.cpu_milli[first].sum()) / (nodes * node.cpu_cores * 1000),
        memory_alloc=float(workload.memory_mib[first].sum()) / (nodes * node.memory_bytes / MIB),
    )


def nodes_needed(workload: Workload, node: NodeShape, *, seed: int) -> Placed:
    """The fewest nodes on which every pod of the fleet starts at once."""
    _check_fits(workload, node)
    for n in range(_lower_bound(workload, node), len(workload) + 1):
        placed = place_fleet(workload, node, n, seed=seed)
        if placed.started_at_once == placed.n_pods:
            return placed
    # one pod per node always places (each fits an empty node), so this is unreachable
    raise AssertionError(f"{workload.source}: no node count placed every pod")


def compare_fleets(
    variants: dict[str, Sequence[PodSize]], node: NodeShape, *, copies: int, seed: int
) -> pl.DataFrame:
    """Per request set: nodes needed, allocation there, and its fate on the smallest fleet.

    ``variants`` maps a name ("original", "right-sized") to one pod size per workload.
    """
    fleets = {name: fleet_workload(pods, copies, label=name) for name, pods in variants.items()}
    needed = {name: nodes_needed(w, node, seed=seed) for name, w in fleets.items()}
    smallest = min(p.nodes for p in needed.values())
    rows = []
    for name, workload in fleets.items():
        own = needed[name]
        there = place_fleet(workload, node, smallest, seed=seed)
        rows.append(
            {
                "requests": name,
                "pods": own.n_pods,
                "gpus_requested": float(workload.gpu_demand_milli.sum()) / FULL_GPU_MILLI,
                "cpu_cores_requested": float(workload.cpu_milli.sum()) / 1000,
                "memory_gib_requested": float(workload.memory_mib.sum()) * MIB / GIB,
                "nodes_lower_bound": _lower_bound(workload, node),
                "nodes_needed": own.nodes,
                "gpu_alloc_frac": own.gpu_alloc,
                "cpu_alloc_frac": own.cpu_alloc,
                "memory_alloc_frac": own.memory_alloc,
                "on_nodes": smallest,
                "placed_at_once": there.started_at_once,
                "mean_wait_s": there.mean_wait_s,
            }
        )
    return pl.DataFrame(rows)
