"""``foresize recommend serve`` on the first requests of the Azure code trace: the plan,
its schema, the candidates and the manifests."""

from __future__ import annotations

import json
from pathlib import Path

import kubernetes_validate
import polars as pl
import pytest
import yaml

from foresize.cli.main import main
from foresize.recommend.plan import validate_plan

MODEL = str(Path(__file__).resolve().parents[2] / "src/foresize/graph/reference/llama-2-7b.json")
MAP = "ts=TIMESTAMP,input_tokens=ContextTokens,output_tokens=GeneratedTokens"
K8S_VERSION = "1.33.0"


@pytest.fixture(scope="module")
def short_trace(mirror: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 400 requests (about three minutes) of azure-llm:code, as a CSV file."""
    source = mirror.parent / "azure-llm-inference-2023/AzureLLMInferenceTrace_code.csv"
    path = tmp_path_factory.mktemp("serve") / "code.csv"
    pl.read_csv(source).head(400).write_csv(path)
    return path


def _plan(short_trace: Path, tmp_path: Path, *extra: str) -> tuple[int, Path]:
    out = tmp_path / "plan.json"
    code = main(["recommend", "serve", str(short_trace), "--map", MAP, "--model", MODEL,
                 "--device", "h100", "--device", "l4", "--tp", "1,2", *extra, "-o", str(out)])
    return code, out


def test_the_plan_is_the_cheapest_candidate_that_meets_the_slo(
    short_trace: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = _plan(short_trace, tmp_path)
    assert code == 0, capsys.readouterr().err
    doc = json.loads(out.read_text())
    plan = validate_plan(doc)
    assert plan.schema_version == "1.3"
    assert plan.serving is not None
    serving = plan.serving
    tried = {(c.device, c.tp): c for c in serving.candidates}
    assert set(tried) == {("h100_sxm", 1), ("h100_sxm", 2), ("l4", 1), ("l4", 2)}
    ok = [c for c in serving.candidates if c.status == "ok"]
    assert ok
    assert all(c.attainment is not None and c.attainment >= 0.99 for c in ok)
    cheapest = min(ok, key=lambda c: c.cost or 0.0)
    assert (serving.device, serving.tp) == (cheapest.device, cheapest.tp)
    assert serving.cost == pytest.approx(serving.gpu_hours * serving.price_per_gpu_hour)
    assert tried[("l4", 1)].status in ("slo_unmet", "slo_floor")  # 24 GB L4: too slow here
    scaling = plan.scaling_plans[0]
    assert scaling.metric == "vllm_requests_in_flight"
    schedule = scaling.schedule
    assert schedule.step_s == 60
    assert len(schedule.replicas) == scaling.horizon_steps
    assert min(schedule.replicas) >= 1
    assert schedule.peak == max(schedule.replicas)
    tuned = {a.policy for a in serving.autoscalers}
    assert tuned == {"predictive", "hpa_inflight", "keda", "kpa"}
    assert doc["inputs"][1]["sha256"]  # the model config is hashed


def test_k8s_manifests_are_valid_and_realise_the_tuned_settings(
    short_trace: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "serve.yaml"
    code = main(["recommend", "serve", str(short_trace), "--map", MAP, "--model", MODEL,
                 "--device", "h100", "--tp", "1", "-o", str(out)])
    assert code == 0, capsys.readouterr().err
    docs = [d for d in yaml.safe_load_all(out.read_text()) if d]
    kinds = [d["kind"] for d in docs]
    assert kinds[:3] == ["HorizontalPodAutoscaler", "ScaledObject", "Deployment"]
    hpa = docs[0]
    kubernetes_validate.validate(hpa, K8S_VERSION, strict=True)
    assert hpa["spec"]["metrics"][0]["pods"]["metric"]["name"] == "vllm_requests_in_flight"
    patch = docs[2]
    container = patch["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"]["limits"] == {"nvidia.com/gpu": "1"}
    full = {**patch, "spec": {**patch["spec"], "selector": {"matchLabels": {"app": "x"}},
                              "template": {"metadata": {"labels": {"app": "x"}},
                                           "spec": {"containers": [
                                               {**container, "image": "vllm/vllm-openai"}]}}}}
    kubernetes_validate.validate(full, K8S_VERSION, strict=True)
    for scaled in (d for d in docs if d["kind"] == "ScaledObject"):
        assert scaled["spec"]["scaleTargetRef"]["name"] == hpa["spec"]["scaleTargetRef"]["name"]
        assert scaled["spec"]["minReplicaCount"] <= scaled["spec"]["maxReplicaCount"]


def test_no_candidate_that_fits_is_one_line_and_exit_3(
    short_trace: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _ = _plan(short_trace, tmp_path, "--slo", "ttft=200ms,tpot=100ms")
    err = capsys.readouterr().err
    assert code == 3
    assert "no candidate meets the SLO" in err
    assert "l4 x1: slo_floor" in err


def test_the_old_recommend_invocation_still_plans_from_telemetry(
    capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["recommend", "--schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert "serving" in schema["properties"]
