"""Replicas on node pools: provisioning delay, slots per node, spot interruptions, money."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from foresize.core.errors import InputError
from foresize.ingest.sources import ReadOptions
from foresize.simulate.replicas.demand import open_demand
from foresize.simulate.replicas.nodes import NodePlan, parse_plan, parse_replica_pool
from foresize.simulate.replicas.run import ServiceConfig, compare, score, simulate
from foresize.simulate.replicas.scalers import ScaleContext, StepView, make_scaler


@dataclass
class Scripted:
    """Wants ``plan[t]`` replicas at step ``t`` (and ``plan[0]`` ready at the start)."""

    plan: list[int]
    name: str = "scripted"

    def start(self, ctx: ScaleContext) -> int:
        return self.plan[0]

    def desired(self, view: StepView) -> int:
        return self.plan[view.t]


def pool(text: str, **kwargs: float) -> NodePlan:
    return NodePlan((parse_replica_pool(text),), **kwargs)


CONFIG = ServiceConfig(capacity=1.0, startup=2, step_s=60.0)


def test_provisioning_delay_delays_readiness_by_exactly_that_many_steps() -> None:
    plan = [1] * 5 + [3] * 15
    demand = np.asarray(plan, dtype=np.float64)
    bare = simulate(demand, Scripted(plan), CONFIG)
    on_nodes = simulate(demand, Scripted(plan), CONFIG, nodes=pool("name=od,replicas=1,delay=3m"))
    assert np.flatnonzero(bare.ready == 3)[0] == 5 + 2
    assert np.flatnonzero(on_nodes.ready == 3)[0] == 5 + 3 + 2
    assert on_nodes.ready[:10].tolist() == [1] * 10
    # the replicas waiting for a node count as starting for the scaler and the bill
    assert on_nodes.starting[5:10].tolist() == [2] * 5
    assert on_nodes.nodes is not None
    assert on_nodes.nodes[:, 0].tolist() == [1] * 5 + [3] * 15  # billed from the request


def test_a_node_of_k_slots_holds_k_replicas() -> None:
    plan = [4] * 3 + [5] * 3 + [8] * 3 + [9] * 3
    demand = np.asarray(plan, dtype=np.float64)
    four = pool("name=g,gpus=8,gpu_model=A100,replicas=4")
    run = simulate(demand, Scripted(plan), CONFIG, nodes=four)
    assert run.nodes is not None
    assert run.nodes[:, 0].tolist() == [1] * 3 + [2] * 3 + [2] * 3 + [3] * 3
    eight = simulate(demand, Scripted(plan), CONFIG, nodes=pool("name=g,gpus=8,gpu_model=A100"))
    assert eight.nodes is not None
    assert eight.nodes[:, 0].tolist() == [1] * 9 + [2] * 3  # one replica per GPU
    per_node = parse_plan(["name=g,gpus=8,gpu_model=A100"], gpus_per_replica=2).pools[0]
    assert per_node.replicas_per_node == 4
    assert parse_plan(["name=g,gpus=8,gpu_model=A100,replicas=3"]).pools[0].replicas_per_node == 3


def test_a_spot_interruption_removes_replicas_and_the_replacement_takes_the_delay() -> None:
    plan = [1] * 12
    demand = np.ones(12)
    config = ServiceConfig(capacity=1.0, startup=0, step_s=60.0)
    nodes = pool("name=s,replicas=1,delay=2m,spot=1,price=1", interruption_rate=1e9)
    run = simulate(demand, Scripted(plan), config, nodes=nodes)
    # up at 0, interrupted at 1 (every spot node up before the step is hit at rate
    # 1e9/h), the replacement is up 2 steps later and is hit the step after
    assert run.ready.tolist() == [1, 0, 0] * 4
    assert run.notes["interruptions"] == run.notes["replicas_lost"] == 4
    # on-demand nodes are never interrupted
    steady = pool("name=od,replicas=1,delay=2m,price=1", interruption_rate=1e9)
    assert simulate(demand, Scripted(plan), config, nodes=steady).ready.tolist() == [1] * 12


def test_seeded_interruptions_lose_the_replicas_of_the_nodes_hit() -> None:
    plan = [6] * 600
    demand = np.full(600, 6.0)
    nodes = pool("name=s,replicas=3,delay=5m,spot_price=1", interruption_rate=0.5, seed=7)
    first = simulate(demand, Scripted(plan), CONFIG, nodes=nodes)
    again = simulate(demand, Scripted(plan), CONFIG, nodes=nodes)
    assert first.ready.tolist() == again.ready.tolist()
    hits = first.notes["interruptions"]
    # 2 nodes x 10 h x 0.5 per node-hour = 10 expected, less the time spent replacing
    assert 3 <= hits <= 20
    assert first.notes["replicas_lost"] == 3 * hits  # a node dies full: 3 replicas each
    assert (first.ready < 6).sum() > 0
    assert first.ready.max() == 6


def test_cost_is_node_hours_times_price() -> None:
    plan = [4] * 60
    demand = np.full(60, 4.0)
    nodes = parse_plan(["name=od,replicas=2,price=2.5,max=1", "name=sp,replicas=2,spot_price=0.75"])
    run = simulate(demand, Scripted(plan), CONFIG, nodes=nodes)
    row = score(run, CONFIG)
    # cheapest first: both nodes of the spot pool... one on-demand node is not needed
    assert row["node_hours:sp"] == pytest.approx(2 * 60 / 60)
    assert row["node_hours:od"] == 0.0
    assert row["cost_usd"] == pytest.approx(2.0 * 0.75)
    capped = parse_plan(
        ["name=od,replicas=2,price=2.5", "name=sp,replicas=2,spot_price=0.75,max=1"]
    )
    row = score(simulate(demand, Scripted(plan), CONFIG, nodes=capped), CONFIG)
    assert row["node_hours"] == pytest.approx(2.0)
    assert row["cost_usd"] == pytest.approx(1.0 * 2.5 + 1.0 * 0.75)
    assert row["cost_usd"] == pytest.approx(
        row["node_hours:od"] * 2.5 + row["node_hours:sp"] * 0.75
    )


def test_empty_nodes_go_after_scale_down_after_and_min_nodes_stay() -> None:
    plan = [4] * 5 + [1] * 20
    demand = np.asarray(plan, dtype=np.float64)
    nodes = NodePlan(
        (parse_replica_pool("name=od,replicas=1,min=2,initial=2"),), scale_down_after_s=300.0
    )
    run = simulate(demand, Scripted(plan), CONFIG, nodes=nodes)
    assert run.nodes is not None
    # 3 replicas removed at step 5; their nodes are empty 5 steps later; min 2 stays
    assert run.nodes[:, 0].tolist() == [4] * 10 + [2] * 15


def test_an_instant_unbounded_pool_changes_nothing_on_the_real_lora_trace(mirror: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lora = open_demand("alibaba-gentd26:lora", ReadOptions(mirror=mirror))
    demand = lora.values[:3000]
    nodes = parse_plan(["name=od,replicas=1,max=1000,price=1"])
    for policy in ("hpa", "oracle"):
        bare = simulate(demand, make_scaler(policy), CONFIG)
        coupled = simulate(demand, make_scaler(policy), CONFIG, nodes=nodes)
        assert coupled.ready.tolist() == bare.ready.tolist()
        assert score(coupled, CONFIG)["cost_usd"] == pytest.approx(
            score(coupled, CONFIG)["replica_hours"]
        )
    result = compare(
        demand,
        ["static", "hpa"],
        CONFIG,
        nodes=parse_plan(["name=od,gpus=1,gpu_model=A100,price=8,delay=3m"]),
    )
    rows = {r["policy"]: r for r in result.rows}
    assert rows["static"]["unserved_node_extra"] == 0.0  # all nodes up from the start
    assert rows["hpa"]["unserved_node_extra"] > 0.0  # scale-ups wait for nodes
    assert rows["oracle_nodelay"]["cost_usd"] <= rows["oracle"]["cost_usd"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name=a,bogus=1", "'bogus=1' is not KEY=VALUE"),
        ("gpus=8", "name= is required"),
        ("name=a,cpu=8", "holds no replica"),
        ("name=a,replicas=0", ">= 1 replica"),
        ("name=a,replicas=2,max=x", "--pool 'name=a,replicas=2,max=x'"),
        ("name=a,replicas=2,price=-1", "price and delay must be >= 0"),
    ],
)
def test_bad_pools_are_input_errors(text: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_replica_pool(text)


def test_bad_plans_are_input_errors() -> None:
    with pytest.raises(InputError, match="names repeat"):
        parse_plan(["name=a,replicas=1", "name=a,replicas=2"])
    with pytest.raises(InputError, match="--spot-interruptions"):
        parse_plan(["name=a,replicas=1"], interruption_rate=-1)
    with pytest.raises(InputError, match="at least one --pool"):
        parse_plan([])
