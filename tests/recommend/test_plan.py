"""The plan document, its schema, the composing service and the Kubernetes export."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import onnx
import polars as pl
import pytest
import yaml
from onnx import TensorProto, helper, numpy_helper

from foresize.core.errors import InputError, SchemaMismatchError
from foresize.ingest.sources import ReadOptions, open_telemetry
from foresize.recommend.export import k8s_name, parse_quantity, plan_manifests, plan_yaml
from foresize.recommend.plan import (
    SCHEMA_VERSION,
    Plan,
    plan_problems,
    read_plan,
    recommendation_schema,
    schema_errors,
    validate_plan,
)
from foresize.recommend.service import (
    PlanRequest,
    ScalingRequest,
    build_plan,
    demand_frame,
    gpu_util_p95,
    size_model,
)

GPT2_SMALL = {
    "model_type": "gpt2",
    "n_embd": 768,
    "n_layer": 12,
    "n_head": 12,
    "n_positions": 1024,
    "vocab_size": 50257,
}


def read(mirror: Path, address: str) -> pl.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frame = open_telemetry([address], ReadOptions(mirror=mirror)).frame
    return frame.collect() if isinstance(frame, pl.LazyFrame) else frame


def document(body_doc: dict[str, object]) -> dict[str, object]:
    return {
        "schema_version": SCHEMA_VERSION,
        "foresize_version": "0",
        "generated_at": "2026-01-01T00:00:00+00:00",
        **body_doc,
    }


@pytest.fixture(scope="module")
def lora(mirror: Path) -> pl.DataFrame:
    return read(mirror, "alibaba-gentd26:lora")


@pytest.fixture(scope="module")
def lora_plan(lora: pl.DataFrame) -> Plan:
    request = PlanRequest(scaling=ScalingRequest(capacity=2.0, horizon_s=3600, startup_s=120))
    body = build_plan(lora, request)
    return validate_plan(json.loads(json.dumps(document(body.document()))))


def test_schema_is_valid_draft_2020_12_and_versioned() -> None:
    schema = recommendation_schema()
    # 1.2 added the cluster section, 1.3 the serving one; older plans still validate
    # (additive within 1.x)
    assert schema["properties"]["schema_version"]["enum"] == ["1.1", "1.2", SCHEMA_VERSION]
    assert SCHEMA_VERSION == "1.3"
    for name in ("ScalingPlan", "PlacementSection", "CostSection", "Commitment", "HpaSpec",
                 "ServingSection"):
        assert name in schema["$defs"]
    assert schema_errors(document({"recommendations": []})) == []


def test_lora_arrivals_plan_per_workload(lora_plan: Plan) -> None:
    assert lora_plan.recommendations == []
    assert [p.workload for p in lora_plan.scaling_plans] == ["IMG_2_IMG", "INPAINTING", "TXT_2_IMG"]
    for plan in lora_plan.scaling_plans:
        assert plan.horizon_steps == 60  # 1 h of 1-minute steps
        sched = plan.schedule
        assert len(sched.replicas) == len(sched.demand) == len(plan.expected) == 60
        assert all(
            r * 2.0 * 0.7 >= d - 1e-9 for r, d in zip(sched.replicas, sched.demand, strict=True)
        )
        # the start-up lead: a replica needed at t is there from t - 2 steps
        for t in range(58):
            assert sched.replicas[t] >= max(sched.needed[t : t + 3])
        assert plan.cron.peak == sched.peak


def test_schema_catches_a_broken_plan(lora_plan: Plan) -> None:
    doc = json.loads(lora_plan.model_dump_json())
    del doc["scaling_plans"][0]["hpa"]["max_replicas"]
    assert any("max_replicas" in e for e in schema_errors(doc))
    with pytest.raises(SchemaMismatchError, match="max_replicas"):
        validate_plan(doc)
    doc = json.loads(lora_plan.model_dump_json())
    doc["scaling_plans"][0]["schedule"]["replicas"][0] = "two"
    with pytest.raises(SchemaMismatchError, match="scaling_plans/0/schedule/replicas/0"):
        validate_plan(doc)


def test_the_planner_s_own_plan_is_in_range(lora_plan: Plan) -> None:
    assert plan_problems(lora_plan) == []
    for plan in lora_plan.scaling_plans:
        assert 20 <= plan.hpa.target_utilisation_pct <= 90
        assert 1 <= plan.hpa.min_replicas <= plan.hpa.max_replicas


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        (("hpa", "target_utilisation_pct"), 1, "target_utilisation_pct is 1; it must be in 20-100"),
        (("hpa", "min_replicas"), 0, "hpa.min_replicas is 0; an HPA keeps at least 1"),
        (("hpa", "max_replicas"), 0, "hpa.max_replicas (0) is below min_replicas"),
        (("hpa", "target_value_per_replica"), -2.0, "target_value_per_replica is -2.0"),
        (("schedule", "capacity_per_replica"), 0.0, "capacity_per_replica is 0.0; it must be > 0"),
    ],
)
def test_read_plan_rejects_a_scaling_plan_out_of_range(
    lora_plan: Plan, tmp_path: Path, field: tuple[str, str], value: float, message: str
) -> None:
    doc = json.loads(lora_plan.model_dump_json())
    doc["scaling_plans"][1][field[0]][field[1]] = value
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(InputError) as caught:
        read_plan(path)
    assert str(caught.value.message).startswith(f"{path}: scaling_plans[1] (INPAINTING).")
    assert message in caught.value.message
    assert "\n" not in caught.value.message


def test_k8s_names_and_manifests(lora_plan: Plan) -> None:
    manifests, notes = plan_manifests(lora_plan)
    assert notes == []
    assert [m.kind for m in manifests] == ["HorizontalPodAutoscaler", "ScaledObject"] * 3
    names = {m.body["metadata"]["name"] for m in manifests}
    assert names == {"img-2-img", "inpainting", "txt-2-img"}
    text = plan_yaml(lora_plan)
    assert "# workload IMG_2_IMG" in text
    docs = list(yaml.safe_load_all(text))
    assert [d["kind"] for d in docs] == [m.kind for m in manifests]
    assert docs[0]["spec"]["metrics"][0]["pods"]["metric"]["name"] == "arrivals"


def test_k8s_name_and_quantities() -> None:
    assert k8s_name("IMG_2_IMG") == "img-2-img"
    assert k8s_name("a" * 80) == "a" * 63
    assert k8s_name("__") == "workload"
    assert parse_quantity("16Gi") == 16 * 2**30
    assert parse_quantity("500m") == pytest.approx(0.5)
    assert parse_quantity("2") == 2.0
    assert parse_quantity("1.5G") == 1.5e9
    with pytest.raises(InputError, match="not a Kubernetes quantity"):
        parse_quantity("16 gigs")


def test_demand_sums_tenants_and_gpu_p95(mirror: Path) -> None:
    qps = read(mirror, "alibaba-gentd26:qps")
    doubled = pl.concat([qps, qps.with_columns(pl.lit("other").alias("tenant"))])
    summed = demand_frame(doubled, "qps")
    assert summed.height == qps.height
    assert summed["value"].sum() == pytest.approx(2 * qps["value"].sum())
    duty = read(mirror, "alibaba-gentd26:gpu_duty_cycle")
    pooled, per = gpu_util_p95(duty)
    assert pooled == pytest.approx(np.quantile(duty["value"].to_numpy(), 0.95) / 100)
    assert len(per) == duty["workload"].n_unique()
    assert all(0 <= v <= 1 for v in per.values())
    assert gpu_util_p95(qps) == (None, {})


def test_size_model_config_and_onnx(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps(GPT2_SMALL))
    small = size_model(str(tmp_path), context=512)
    assert small.kind == "hf_config"
    assert small.context == 512
    assert small.dtype == "bf16"
    assert small.need_bytes > 2 * small.parameters  # bf16 weights plus activations
    assert size_model(str(config), batch=8, context=512).need_bytes > small.need_bytes
    with pytest.raises(InputError, match="--dim binds ONNX"):
        size_model(str(config), dims={"batch": 1})
    with pytest.raises(InputError, match="not one of fp32, bf16, fp16"):
        size_model(str(config), dtype="int4")
    w = numpy_helper.from_array(np.ones((4, 8), dtype=np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "mm",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 8])],
        [w],
    )
    path = tmp_path / "mm.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    sized = size_model(str(path), dims={"batch": 2})
    assert sized.kind == "onnx"
    assert sized.dtype == "fp32"
    # weights 4x8 fp32 plus the live peak (x and y of batch 2)
    assert sized.need_bytes == 4 * 8 * 4 + (2 * 4 + 2 * 8) * 4
