"""Replicas on nodes: node pools with a provisioning delay, prices, and spot interruptions.

Without a ``NodePlan`` the autoscaler bills replica-hours and a replica only waits for
its start-up. With one, every replica needs a slot on a node, and a node pool
autoscaler (the Kubernetes Cluster Autoscaler's behaviour, simplified) adds and removes
nodes, so the cost is in money and a scale-up that needs a new node waits for it.

Pools reuse ``foresize.simulate.cluster.pools.NodePool`` (shape, price per node-hour,
provisioning delay, ``min``/``max``/``initial`` nodes); a pool is on-demand, or spot
(``spot=1``, or ``spot_price=X``, which also sets the price). A node holds
``replicas_per_node`` replicas: given, or the node's GPUs // GPUs per replica.

Per step ``t``, in order:

1. Nodes whose provisioning finished are up; replicas whose start-up finished are
   ready; drained replicas leave their node.
2. Each spot node that was up before ``t`` is interrupted with probability
   ``1 - exp(-rate x step hours)`` (``rate`` per node-hour, seeded): the node and its
   replicas are gone at once (``replicas_lost``); the ReplicaSet re-creates the
   replicas as pending, so a replacement node is requested now and takes the
   provisioning delay.
3. The scaler decides (it sees ready replicas, and as starting every replica that is
   starting or pending, as Kubernetes' ``spec.replicas`` counts pending pods).
4. Removals take pending replicas first, then starting ones (newest first), then ready
   ones from the emptiest node of the dearest pool; a removed ready replica holds its
   slot while it drains.
5. Pending replicas are placed best-fit: the fullest node with a free slot that is up,
   else one still provisioning (earliest first), else a new node from the cheapest
   pool with room (pool order breaks ties). A replica's start-up begins when its node
   is up: it is ready at ``max(t, node up) + startup``. With no room in any pool it
   stays pending.
6. A node empty for ``scale_down_after`` steps is removed, down to its pool's ``min``.

Nodes are billed from the request to the removal (a cloud bills from launch). Metrics:
node-hours and cost per pool, interruptions and replicas lost, replica-steps spent
pending, and peak nodes. Predictive policies and the oracle plan ``startup`` plus the
longest provisioning delay ahead (``lead``), since that is how long a scale-up that
needs a node takes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from foresize.core.errors import InputError, UsageError
from foresize.core.units import parse_duration
from foresize.simulate.cluster.pools import NodePool
from foresize.simulate.replicas.service import IntArray, Sizer

POOL_KEYS = (
    "name",
    "cpu",
    "memory_gib",
    "gpus",
    "gpu_model",
    "price",
    "delay",
    "min",
    "max",
    "initial",
    "spot",
    "spot_price",
    "replicas",
)


@dataclass(frozen=True, slots=True)
class ReplicaPool:
    """A node pool for replicas: its node template, spot or not, and replicas per node."""

    pool: NodePool
    replicas_per_node: int
    spot: bool = False

    def __post_init__(self) -> None:
        if self.replicas_per_node < 1:
            raise InputError(
                f"node pool {self.pool.name!r}: a node must hold >= 1 replica, got "
                f"{self.replicas_per_node}"
            )

    @property
    def name(self) -> str:
        """The pool name."""
        return self.pool.name

    def delay_steps(self, step_s: float) -> int:
        """The provisioning delay in whole steps (rounded up)."""
        return math.ceil(self.pool.provision_delay_s / step_s - 1e-9)


def parse_replica_pool(
    text: str, *, replicas_per_node: int | None = None, gpus_per_replica: float = 1.0
) -> ReplicaPool:
    """A ``--pool`` of ``simulate autoscale``: ``simulate schedule``'s syntax plus spot.

    ``name=a100,gpus=8,gpu_model=A100,price=32.8,delay=3m,max=20`` (on-demand) or
    ``name=a100-spot,gpus=8,gpu_model=A100,spot_price=9.8,delay=3m,max=10`` (spot; or
    ``spot=1`` with ``price=``). ``replicas=K`` sets the replicas per node of this pool;
    otherwise ``replicas_per_node``, otherwise the node's GPUs // ``gpus_per_replica``.
    ``cpu`` (cores) and ``memory_gib`` are optional here (the service is sized in
    replicas), ``initial`` defaults to ``min``, ``max`` to 10.
    """
    fields: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        if not sep or key not in POOL_KEYS:
            raise UsageError(
                f"--pool {text!r}: {part!r} is not KEY=VALUE with KEY one of {', '.join(POOL_KEYS)}"
            )
        fields[key] = value.strip()
    if "name" not in fields:
        raise UsageError(f"--pool {text!r}: name= is required")
    try:
        spot = fields.get("spot", "0") not in ("0", "false", "no") or "spot_price" in fields
        price = float(fields.get("spot_price", fields.get("price", "0")))
        low = int(fields.get("min", "0"))
        pool = NodePool(
            name=fields["name"],
            cpu_milli=round(float(fields.get("cpu", "1")) * 1000),
            memory_mib=round(float(fields.get("memory_gib", "1")) * 1024),
            n_gpu=int(fields.get("gpus", "0")),
            gpu_model=fields.get("gpu_model", ""),
            price_per_node_h=price,
            provision_delay_s=parse_duration(fields.get("delay", "0s")),
            min_nodes=low,
            max_nodes=int(fields.get("max", "10")),
            initial_nodes=int(fields.get("initial", str(low))),
        )
        per_node = int(fields["replicas"]) if "replicas" in fields else replicas_per_node
    except ValueError as exc:
        raise UsageError(f"--pool {text!r}: {exc}") from None
    if not math.isfinite(price):
        raise UsageError(f"--pool {text!r}: the price must be a finite number")
    if per_node is None:
        if not (math.isfinite(gpus_per_replica) and gpus_per_replica > 0):
            raise UsageError(f"--gpus-per-replica must be > 0, got {gpus_per_replica!r}")
        per_node = int(pool.n_gpu // gpus_per_replica)
        if per_node < 1:
            raise UsageError(
                f"--pool {text!r}: a node with {pool.n_gpu} GPU(s) holds no replica of "
                f"{gpus_per_replica:g} GPU(s)",
                hint="give gpus=, replicas= or --replicas-per-node",
            )
    return ReplicaPool(pool, per_node, spot)


@dataclass(frozen=True, slots=True)
class NodePlan:
    """The node pools replicas run on, spot interruptions, and node scale-down."""

    pools: tuple[ReplicaPool, ...]
    interruption_rate: float = 0.0  # per spot node-hour
    seed: int = 0
    scale_down_after_s: float = 0.0

    def __post_init__(self) -> None:
        if not self.pools:
            raise InputError("a node plan needs at least one --pool")
        names = [p.name for p in self.pools]
        if len(set(names)) != len(names):
            raise UsageError(f"node pool names repeat: {', '.join(names)}")
        if not (math.isfinite(self.interruption_rate) and self.interruption_rate >= 0):
            raise UsageError(
                f"--spot-interruptions must be >= 0 per node-hour, got {self.interruption_rate!r}"
            )
        if not (math.isfinite(self.scale_down_after_s) and self.scale_down_after_s >= 0):
            raise UsageError(f"--scale-down-after must be >= 0, got {self.scale_down_after_s!r}")

    def lead(self, step_s: float) -> int:
        """The longest provisioning delay in steps: extra lead time of a scale-up."""
        return max(p.delay_steps(step_s) for p in self.pools)

    def instant(self) -> NodePlan:
        """The same pools with no provisioning delay, no interruptions, no idle nodes."""
        pools = tuple(replace(p, pool=replace(p.pool, provision_delay_s=0.0)) for p in self.pools)
        return NodePlan(pools, 0.0, self.seed, 0.0)

    def describe(self) -> dict[str, Any]:
        """Plain dict for JSON output."""
        return {
            "pools": [
                {
                    "name": p.name,
                    "spot": p.spot,
                    "replicas_per_node": p.replicas_per_node,
                    "gpus": p.pool.n_gpu,
                    "gpu_model": p.pool.gpu_model,
                    "price_per_node_h": p.pool.price_per_node_h,
                    "provision_delay_s": p.pool.provision_delay_s,
                    "min_nodes": p.pool.min_nodes,
                    "max_nodes": p.pool.max_nodes,
                    "initial_nodes": p.pool.initial_nodes,
                }
                for p in self.pools
            ],
            "spot_interruptions_per_node_h": self.interruption_rate,
            "seed": self.seed,
            "scale_down_after_s": self.scale_down_after_s,
        }


@dataclass(slots=True, eq=False)
class _Node:
    pool: int
    up_at: int  # first step the node is up
    used: int = 0  # slots held by starting, ready and draining replicas
    empty_since: int = 0


@dataclass(slots=True, eq=False)
class _Replica:
    node: _Node
    ready_at: int


@dataclass(slots=True)
class NodeLoop:
    """The per-step replica and node counts of one run, and its node metrics."""

    desired: IntArray
    ready: IntArray
    starting: IntArray
    draining: IntArray
    nodes: IntArray  # nodes billed per step, per pool: shape (steps, pools)
    actions: int
    notes: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class _Cluster:
    """The mutable state of one run: nodes and replicas by state."""

    plan: NodePlan
    startup: int
    drain: int
    step_s: float
    nodes: list[_Node] = field(default_factory=list)
    ready: list[_Replica] = field(default_factory=list)
    starting: list[_Replica] = field(default_factory=list)  # in start order
    draining: list[tuple[int, _Node]] = field(default_factory=list)
    pending: int = 0
    lost: int = 0
    interruptions: int = 0
    pending_steps: int = 0

    def count(self, pool: int) -> int:
        return sum(1 for node in self.nodes if node.pool == pool)

    def add_node(self, pool: int, up_at: int, t: int) -> _Node:
        node = _Node(pool, up_at, 0, t)
        self.nodes.append(node)
        return node

    def release(self, node: _Node, t: int) -> None:
        node.used -= 1
        if node.used == 0:
            node.empty_since = t

    def advance(self, t: int) -> None:
        """Start-ups and drains that finish at ``t``."""
        done = [r for r in self.starting if r.ready_at <= t]
        if done:
            self.starting = [r for r in self.starting if r.ready_at > t]
            self.ready += done
        for _, node in [d for d in self.draining if d[0] <= t]:
            self.release(node, t)
        self.draining = [d for d in self.draining if d[0] > t]

    def interrupt(self, t: int, p: float, rng: np.random.Generator) -> None:
        """Spot nodes up before ``t`` fail with probability ``p`` each."""
        spot = [n for n in self.nodes if self.plan.pools[n.pool].spot and n.up_at < t]
        if not spot or p <= 0:
            return
        hit = {id(n) for n, u in zip(spot, rng.random(len(spot)), strict=True) if u < p}
        if not hit:
            return
        self.interruptions += len(hit)
        keep: list[_Replica] = []
        for group in (self.ready, self.starting):
            keep = [r for r in group if id(r.node) not in hit]
            self.lost += len(group) - len(keep)
            self.pending += len(group) - len(keep)
            group[:] = keep
        self.draining = [d for d in self.draining if id(d[1]) not in hit]
        self.nodes = [n for n in self.nodes if id(n) not in hit]

    def remove(self, excess: int, t: int) -> None:
        """Remove ``excess`` replicas: pending, then starting (newest), then ready."""
        take = min(excess, self.pending)
        self.pending -= take
        excess -= take
        while excess and self.starting:
            self.release(self.starting.pop().node, t)
            excess -= 1
        if not excess:
            return
        price = [p.pool.price_per_node_h for p in self.plan.pools]
        order = sorted(
            range(len(self.ready)),
            key=lambda i: (-price[self.ready[i].node.pool], self.ready[i].node.used, i),
        )
        gone = set(order[:excess])
        for i in sorted(gone):
            node = self.ready[i].node
            if self.drain:
                self.draining.append((t + self.drain, node))
            else:
                self.release(node, t)
        self.ready = [r for i, r in enumerate(self.ready) if i not in gone]

    def place(self, t: int) -> None:
        """Put pending replicas on nodes, asking for new nodes as needed."""
        pools = self.plan.pools
        by_price = sorted(range(len(pools)), key=lambda k: (pools[k].pool.price_per_node_h, k))
        while self.pending:
            free = [n for n in self.nodes if n.used < pools[n.pool].replicas_per_node]
            if free:
                node = min(free, key=lambda n: (max(n.up_at, t), -n.used))
            else:
                room = [k for k in by_price if self.count(k) < pools[k].pool.max_nodes]
                if not room:
                    return
                k = room[0]
                node = self.add_node(k, t + pools[k].delay_steps(self.step_s), t)
            node.used += 1
            self.pending -= 1
            replica = _Replica(node, max(t, node.up_at) + self.startup)
            (self.ready if replica.ready_at <= t else self.starting).append(replica)

    def scale_down(self, t: int, idle_steps: int) -> None:
        """Remove nodes empty for ``idle_steps``, keeping each pool's ``min``."""
        pools = self.plan.pools
        counts = [self.count(k) for k in range(len(pools))]
        keep: list[_Node] = []
        for node in self.nodes:
            if (
                node.used == 0
                and t - node.empty_since >= idle_steps
                and counts[node.pool] > pools[node.pool].pool.min_nodes
            ):
                counts[node.pool] -= 1
            else:
                keep.append(node)
        self.nodes = keep


def run_with_nodes(
    desired: Callable[[int, int, int], int],
    initial: int,
    n: int,
    *,
    sizer: Sizer,
    startup: int,
    drain: int,
    step_s: float,
    plan: NodePlan,
) -> NodeLoop:
    """Run the replica loop with nodes; ``desired(t, ready, starting)`` is the scaler."""
    cluster = _Cluster(plan, startup, drain, step_s)
    for k, spec in enumerate(plan.pools):
        for _ in range(spec.pool.initial_nodes):
            cluster.add_node(k, 0, 0)
    cluster.pending = initial
    cluster.place(0)
    for r in cluster.starting:  # the first step's replicas start ready, as without nodes
        r.ready_at = 0
    for node in cluster.nodes:
        node.up_at = 0
    cluster.advance(0)
    rng = np.random.default_rng(plan.seed)
    p_hit = -math.expm1(-plan.interruption_rate * step_s / 3600.0)
    idle_steps = math.ceil(plan.scale_down_after_s / step_s - 1e-9)
    out = {k: np.zeros(n, dtype=np.int64) for k in ("desired", "ready", "starting", "draining")}
    nodes = np.zeros((n, len(plan.pools)), dtype=np.int64)
    actions = 0
    for t in range(n):
        cluster.advance(t)
        cluster.interrupt(t, p_hit, rng)
        n_starting = len(cluster.starting) + cluster.pending
        total = len(cluster.ready) + n_starting
        want = max(
            sizer.min_replicas, min(desired(t, len(cluster.ready), n_starting), sizer.max_replicas)
        )
        if want > total:
            cluster.pending += want - total
        elif want < total:
            cluster.remove(total - want, t)
        cluster.place(t)
        cluster.scale_down(t, idle_steps)
        actions += want != total
        cluster.pending_steps += cluster.pending
        out["desired"][t] = want
        out["ready"][t] = len(cluster.ready)
        out["starting"][t] = len(cluster.starting) + cluster.pending
        out["draining"][t] = len(cluster.draining)
        for node in cluster.nodes:
            nodes[t, node.pool] += 1
    return NodeLoop(
        out["desired"],
        out["ready"],
        out["starting"],
        out["draining"],
        nodes,
        actions,
        node_metrics(plan, nodes, step_s, cluster),
    )


def node_metrics(
    plan: NodePlan, nodes: IntArray, step_s: float, cluster: _Cluster
) -> dict[str, Any]:
    """Node-hours and money per pool, interruptions, replicas lost, pending time."""
    hours = nodes.sum(axis=0).astype(np.float64) * step_s / 3600.0
    cost = [h * p.pool.price_per_node_h for h, p in zip(hours, plan.pools, strict=True)]
    notes: dict[str, Any] = {
        "node_hours": float(hours.sum()),
        "node_cost_usd": float(sum(cost)),
        "peak_nodes": int(nodes.sum(axis=1).max()) if nodes.size else 0,
        "interruptions": cluster.interruptions,
        "replicas_lost": cluster.lost,
        "pending_replica_h": cluster.pending_steps * step_s / 3600.0,
    }
    for spec, h, c in zip(plan.pools, hours, cost, strict=True):
        notes[f"node_hours:{spec.name}"] = float(h)
        notes[f"cost_usd:{spec.name}"] = float(c)
    return notes


def parse_plan(
    texts: Sequence[str],
    *,
    replicas_per_node: int | None = None,
    gpus_per_replica: float = 1.0,
    interruption_rate: float = 0.0,
    seed: int = 0,
    scale_down_after_s: float = 0.0,
) -> NodePlan:
    """A ``NodePlan`` from ``--pool`` texts and the CLI's node options."""
    pools = tuple(
        parse_replica_pool(
            text, replicas_per_node=replicas_per_node, gpus_per_replica=gpus_per_replica
        )
        for text in texts
    )
    return NodePlan(pools, interruption_rate, seed, scale_down_after_s)
