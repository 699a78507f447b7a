from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from foresize.core.errors import InputError
from foresize.evaluate.demo.inputs import (
    demo_tables,
    load_dataset,
    select_workloads,
    synthetic_assumptions,
)
from foresize.evaluate.demo.run import ARTEFACTS, DemoResult, run_demo
from foresize.evaluate.fleet import GIB, NodeShape, PodSize, fleet_workload, nodes_needed
from foresize.ingest.synthetic import generate_telemetry


def _run(out: Path, seed: int = 1) -> DemoResult:
    telemetry = generate_telemetry(seed=seed, duration="12h")
    workloads = sorted(telemetry["workload"].unique().to_list())
    return run_demo(
        telemetry,
        out_dir=out,
        seed=seed,
        source="synthetic",
        assumptions=synthetic_assumptions(workloads),
    )


@pytest.fixture(scope="module")
def twice(tmp_path_factory: pytest.TempPathFactory) -> tuple[DemoResult, DemoResult]:
    root = tmp_path_factory.mktemp("pipeline")
    return _run(root / "a"), _run(root / "b")


def _without(value: Any, keys: set[str]) -> Any:
    if isinstance(value, dict):
        return {k: _without(v, keys) for k, v in value.items() if k not in keys}
    if isinstance(value, list):
        return [_without(v, keys) for v in value]
    return value


def test_same_seed_same_artefacts(twice: tuple[DemoResult, DemoResult]) -> None:
    a, b = twice
    assert set(a.paths) == set(ARTEFACTS)
    assert all(p.is_file() for p in a.paths.values())
    for name in ("forecast.parquet", "profile.parquet"):
        assert pl.read_parquet(a.paths[name]).equals(pl.read_parquet(b.paths[name]))
    for name in ("plan.json", "autoscale.json", "schedule.json", "phases.json", "model.json"):
        docs = [json.loads(r.paths[name].read_text()) for r in (a, b)]
        assert _without(docs[0], {"generated_at"}) == _without(docs[1], {"generated_at"}), name
    assert a.plan_yaml.split("\n", 1)[1] == b.plan_yaml.split("\n", 1)[1]  # header has the time


def test_forecast_intervals_are_nested(twice: tuple[DemoResult, DemoResult]) -> None:
    forecast = twice[0].forecast
    assert set(forecast["metric"].unique()) == {
        "qps",
        "mem_bytes",
        "gpu_mem_bytes",
        "cpu_cores",
        "gpu_util_pct",
    }
    ordered = forecast.filter(
        (pl.col("lo_95") <= pl.col("lo_80"))
        & (pl.col("lo_80") <= pl.col("mean"))
        & (pl.col("mean") <= pl.col("hi_80"))
        & (pl.col("hi_80") <= pl.col("hi_95"))
    )
    assert ordered.height == forecast.height
    accuracy = twice[0].accuracy
    assert accuracy["coverage_95"].min() >= accuracy["coverage_80"].min()  # type: ignore[operator]


def test_plan_and_simulations_are_consistent(twice: tuple[DemoResult, DemoResult]) -> None:
    result = twice[0]
    services = {s["workload"] for s in result.plan["scaling_plans"]}
    assert services == {w for w in result.profile["workload"] if w.startswith("infer-")}
    oracle = result.autoscale.filter(pl.col("policy") == "oracle")
    assert oracle["vs_oracle"].to_list() == pytest.approx([1.0] * len(services))
    static = result.autoscale.filter(pl.col("policy") == "static")
    assert static["unserved_frac"].max() == 0  # hindsight peak serves everything
    for scaling in result.plan["scaling_plans"]:  # planned HPA targets a person can use
        assert 20 <= scaling["hpa"]["target_utilisation_pct"] <= 90
    hours = {
        (w, p): h for w, p, h in result.autoscale.select("workload", "policy", "replica_hours")
        .iter_rows()
    }
    for service in services:  # the plan's HPA is no costlier than Kubernetes' default
        assert hours[service, "plan_hpa"] <= hours[service, "hpa"] + 1e-9
    rows = {r["requests"]: r for r in result.schedule.to_dicts()}
    assert rows["right-sized"]["gpus_requested"] <= rows["original"]["gpus_requested"]
    assert rows["original"]["placed_at_once"] == rows["original"]["pods"] or (
        rows["original"]["on_nodes"] < rows["original"]["nodes_needed"]
    )
    for row in rows.values():
        assert row["nodes_lower_bound"] <= row["nodes_needed"]
    assert set(result.timings) >= {
        "model",
        "profile",
        "phases",
        "forecast",
        "plan",
        "autoscale",
        "schedule",
        "write",
    }


def test_nodes_needed_known_answers() -> None:
    node = NodeShape(cpu_cores=96, memory_bytes=1024 * GIB, gpus=8)
    whole = fleet_workload([PodSize("train", 8, 64 * GIB, 8)], 3, label="whole")
    assert nodes_needed(whole, node, seed=0).nodes == 3
    halves = fleet_workload([PodSize("serve", 4, 16 * GIB, 0.5)], 16, label="halves")
    assert nodes_needed(halves, node, seed=0).nodes == 1  # two half-GPU pods per GPU
    cpu_bound = fleet_workload([PodSize("cpu", 60, GIB, 1)], 4, label="cpu")
    assert nodes_needed(cpu_bound, node, seed=0).nodes == 4  # 60 of 96 cores: one per node
    with pytest.raises(InputError, match="does not fit one node"):
        nodes_needed(fleet_workload([PodSize("big", 200, GIB, 1)], 1, label="big"), node, seed=0)


def test_dataset_subset_from_the_mirror(mirror: Path) -> None:
    loaded = load_dataset("gentd26", mirror=mirror, limit=4)
    assert loaded.frame["workload"].n_unique() == 4
    assert set(loaded.frame["metric"].unique()) == {"gpu_util_pct", "mem_util_pct", "qps"}
    assert loaded.workloads_total > 100
    assert select_workloads(loaded.frame, 2) == sorted(select_workloads(loaded.frame, None))[:2]
    assert [t.name for t in demo_tables("alibaba-gentd26:qps")] == ["qps"]
    with pytest.raises(InputError, match="no telemetry for the demo"):
        demo_tables("alibaba-openb")
