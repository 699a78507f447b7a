"""``foresize recommend`` end to end on the real GenTD26 traces: JSON validated by its
published schema, Kubernetes YAML read back by PyYAML, scaling plans, placement and cost.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from foresize.cli.main import main
from foresize.recommend.k8s import memory_quantity

GPT2_SMALL = {
    "model_type": "gpt2",
    "n_embd": 768,
    "n_layer": 12,
    "n_head": 12,
    "n_positions": 1024,
    "vocab_size": 50257,
}
# Llama-2-70B: 140 GB of bf16 weights, more than 8 T4s hold.
LLAMA2_70B = {
    "model_type": "llama",
    "hidden_size": 8192,
    "num_hidden_layers": 80,
    "num_attention_heads": 64,
    "num_key_value_heads": 8,
    "intermediate_size": 28672,
    "vocab_size": 32000,
    "max_position_embeddings": 4096,
}


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def source(mirror: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("FORESIZE_DATA_MIRROR", str(mirror))
    return "alibaba-gentd26:memory_util"


def test_json_plan_written_atomically(
    source: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "plan.json"
    code, out, err = run(["recommend", source, "--strategy", "vpa", "-o", str(target)], capsys)
    assert code == 0
    assert out == ""
    assert "166 workloads sized (vpa, risk 0.05); 41 skipped" in err
    plan = json.loads(target.read_text())
    assert plan["schema_version"] == "1.3"
    assert plan["parameters"]["strategy"] == "vpa"
    ok = [r for r in plan["recommendations"] if r["status"] == "ok"]
    rec = next(r for r in ok if "capped" not in r["rationale"])
    assert rec["method"]["margin_pct"] == pytest.approx(15.0)
    assert rec["bounds"]["upper"] > rec["bounds"]["target"] > rec["bounds"]["lower"]
    # a percentage is never sized above 100 %, bounds included
    assert max(r["bounds"]["upper"] for r in ok) <= 100.0
    assert rec["evidence"]["n_points"] >= 100
    assert list(tmp_path.iterdir()) == [target]


def test_table_has_a_rationale_per_row(
    source: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    code, out, _ = run(["recommend", source, "--wide"], capsys)  # the rationale is a wide column
    assert code == 0
    assert "Right-sizing of mem_util_pct" in out
    assert "calibration rows" in out
    assert "needs 100 samples, has 3" in out


def test_csv_rows(source: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["recommend", source, "--strategy", "krr", "-f", "csv"], capsys)
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == 207
    ok = [r for r in rows if r["status"] == "ok"]
    for r in ok:  # KRR's peak + 15 %, but never above all of a percentage
        assert float(r["limit"]) == pytest.approx(min(float(r["base"]) * 1.15, 100.0))


def test_schema_flag(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["recommend", "--schema"], capsys)
    assert code == 0
    schema = json.loads(out)
    assert schema["title"] == "Plan"
    assert "ResourceRecommendation" in schema["$defs"]


def test_bad_input_exit_codes(
    source: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "plan.json"
    code, _, err = run(["recommend", source, "--risk", "0.7", "-o", str(target)], capsys)
    assert code == 2
    assert "risk must be in (0, 0.5], got 0.7" in err
    code, _, err = run(["recommend", source, "--metric", "gpu_mem_bytes"], capsys)
    assert code == 3
    assert "'gpu_mem_bytes' never appears (found: mem_util_pct)" in err
    code, _, err = run(["recommend", source, "--min-points", "5000"], capsys)
    assert code == 4
    assert "needs at least 5000 per workload" in err
    code, _, err = run(["recommend", source, "--strategy", "vap"], capsys)
    assert code != 0
    assert "Did you mean 'vpa'" in err
    code, _, err = run(
        ["recommend", source, "--model", str(tmp_path / "none.json"), "--metric", "mem_util_pct"],
        capsys,
    )
    assert code == 3
    assert "none.json: no such model" in err
    assert not target.exists()


@pytest.fixture
def gpt2(tmp_path: Path) -> Path:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(GPT2_SMALL))
    return path


def schema(capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    code, out, _ = run(["recommend", "--schema"], capsys)
    assert code == 0
    loaded: dict[str, object] = json.loads(out)
    return loaded


def test_k8s_patches_round_trip(
    source: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """mem_util_pct is a share of the current limit: quantities only with --current-limit."""
    target = tmp_path / "patches.yaml"
    args = ["recommend", source, "--workload", "0*", "--strategy", "krr"]
    code, _, err = run([*args, "--current-limit", "16Gi", "-o", str(target)], capsys)
    assert code == 0, err
    text = target.read_text()
    assert text.startswith("# foresize")
    docs = [d for d in yaml.safe_load_all(text) if d is not None]
    assert docs
    assert {d["kind"] for d in docs} == {"Deployment"}
    code, out, _ = run([*args, "-f", "json"], capsys)
    limits = {
        r["workload"]: r["recommended"]["limit"]
        for r in json.loads(out)["recommendations"]
        if r["status"] == "ok"
    }
    assert len(docs) == len(limits)
    for doc in docs:
        container = doc["spec"]["template"]["spec"]["containers"][0]
        assert container["name"] == doc["metadata"]["name"]
        limit = container["resources"]["limits"]["memory"]
        expected = limits[doc["metadata"]["name"]] / 100 * 16 * 2**30
        assert limit == memory_quantity(expected)
        assert limit.endswith(("Mi", "Gi"))
    code, out, _ = run([*args, "-f", "k8s"], capsys)
    assert code == 0
    assert "rerun with --current-limit" in out
    assert [d for d in yaml.safe_load_all(out) if d is not None] == []


def test_qps_scaling_plan_covers_upper_quantile(
    mirror: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FORESIZE_DATA_MIRROR", str(mirror))
    args = [
        "recommend",
        "alibaba-gentd26:qps",
        "--metric",
        "qps",
        "--workload",
        "gateway",
        "--workload",
        "00*",
        "--capacity",
        "0.5",
        "--startup",
        "2m",
    ]
    target = tmp_path / "plan.json"
    code, _, err = run([*args, "-o", str(target)], capsys)
    assert code == 0, err
    plan = json.loads(target.read_text())
    jsonschema.validate(plan, schema(capsys))
    assert plan["recommendations"] == []
    plans = {p["workload"]: p for p in plan["scaling_plans"]}
    assert "gateway" in plans
    gateway = plans["gateway"]
    sched = gateway["schedule"]
    assert gateway["forecaster"].startswith("window_average")
    assert sched["covers"] == "hi_95"
    for replicas, demand in zip(sched["replicas"], sched["demand"], strict=True):
        assert replicas * 0.5 * 0.7 >= demand - 1e-9
    assert sched["peak"] >= 2  # the gateway's QPS needs more than one 0.5-QPS replica
    assert gateway["hpa"]["max_replicas"] >= sched["peak"]
    assert max(sched["demand"]) >= max(gateway["expected"])
    code, out, _ = run([*args, "-f", "k8s"], capsys)
    assert code == 0
    docs = [d for d in yaml.safe_load_all(out) if d is not None]
    kinds = [d["kind"] for d in docs]
    assert kinds.count("HorizontalPodAutoscaler") == kinds.count("ScaledObject") == len(plans)
    hpa = next(
        d
        for d in docs
        if d["kind"] == "HorizontalPodAutoscaler" and d["metadata"]["name"] == "gateway"
    )
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["maxReplicas"] == gateway["hpa"]["max_replicas"]
    assert hpa["spec"]["metrics"][0]["pods"]["metric"]["name"] == "qps"
    keda = next(
        d for d in docs if d["kind"] == "ScaledObject" and d["metadata"]["name"] == "gateway"
    )
    assert keda["spec"]["minReplicaCount"] == sched["low"]
    assert (
        max(int(t["metadata"]["desiredReplicas"]) for t in keda["spec"]["triggers"])
        == (sched["peak"])
    )


def test_model_gives_placement_and_cost(
    mirror: Path,
    gpt2: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FORESIZE_DATA_MIRROR", str(mirror))
    target = tmp_path / "plan.json"
    code, _, err = run(
        [
            "recommend",
            "alibaba-gentd26:gpu_duty_cycle",
            "--workload",
            "0*",
            "--model",
            str(gpt2),
            "-o",
            str(target),
        ],
        capsys,
    )
    assert code == 0, err
    assert "placed on" in err
    plan = json.loads(target.read_text())
    jsonschema.validate(plan, schema(capsys))
    placement = plan["placement"]
    assert placement["model"]["kind"] == "hf_config"
    assert 0 < placement["util_p95"] <= 1  # measured gpu_util_pct P95, as a fraction
    best = placement["best"]
    assert best["gpu_fraction"] < 1  # GPT-2 small shares a GPU
    cost = plan["cost"]
    assert cost["gpu_type"] == best["device"]
    assert cost["per_replica"]["per_hour"]["on_demand"] > 0
    placed = [r for r in plan["recommendations"] if r["placement"] is not None]
    assert placed
    assert cost["fleet_replicas"] == len(placed)
    fleet = sum(r["cost"]["per_hour"]["on_demand"] for r in placed)
    assert cost["fleet"]["per_hour"]["on_demand"] == pytest.approx(fleet)
    # a scaling plan on a placed model gets a cost and a commitment
    code, out, err = run(
        [
            "recommend",
            "alibaba-gentd26:qps",
            "--workload",
            "gateway",
            "--capacity",
            "0.5",
            "--model",
            str(gpt2),
            "--device",
            "l4",
            "-f",
            "json",
        ],
        capsys,
    )
    assert code == 0, err
    scaling = json.loads(out)["scaling_plans"][0]
    assert scaling["cost"]["horizon_on_demand"] > 0
    assert scaling["cost"]["commitment"]["committed_units"] >= 0
    code, out, _ = run(
        [
            "recommend",
            "alibaba-gentd26:qps",
            "--workload",
            "gateway",
            "--capacity",
            "0.5",
            "--model",
            str(gpt2),
            "--device",
            "l4",
        ],
        capsys,
    )
    assert code == 0
    assert "Placement and cost" in out
    assert "commit (gateway)" in out


@pytest.mark.parametrize(
    ("extra", "exit_code", "message"),
    [  # a value wrong on its own is a usage error (2); one the data contradicts is 3
        (["alibaba-gentd26:qps", "--capacity", "0"], 2, "--capacity must be > 0"),
        (["alibaba-gentd26:qps"], 3, "qps is a demand metric: give --capacity"),
        (["alibaba-gentd26:memory_util", "--risk", "0.7"], 2, "risk must be in (0, 0.5], got 0.7"),
        (["alibaba-gentd26:memory_util", "--strategy", "nope"], 2, "unknown strategy 'nope'"),
        (["alibaba-gentd26:memory_util", "--capacity", "3"], 3, "--capacity plans replicas"),
        (
            ["alibaba-gentd26:qps", "--current-limit", "16Gi", "--capacity", "1"], 3,
            "--current-limit converts",
        ),
    ],
)
def test_bad_options_leave_no_file(
    mirror: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    extra: list[str],
    exit_code: int,
    message: str,
) -> None:
    monkeypatch.setenv("FORESIZE_DATA_MIRROR", str(mirror))
    target = tmp_path / "plan.yaml"
    code, out, err = run(["recommend", *extra, "-o", str(target)], capsys)
    assert code == exit_code
    assert out == ""
    lines = [line for line in err.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1
    assert message in lines[0]
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_prices_and_model_errors(
    mirror: Path,
    gpt2: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FORESIZE_DATA_MIRROR", str(mirror))
    prices = tmp_path / "prices.toml"
    prices.write_text("[gpu.l4]\non_demand = 0.8\n")
    target = tmp_path / "plan.json"
    base = ["recommend", "alibaba-gentd26:qps", "--workload", "gateway", "--capacity", "1"]
    code, _, err = run(
        [
            *base,
            "--model",
            str(gpt2),
            "--prices",
            str(prices),
            "--prices-only",
            "--device",
            "h100_sxm",
            "-o",
            str(target),
        ],
        capsys,
    )
    assert code == 3
    assert f"prices file {prices} has no price for GPU type 'h100_sxm'" in err
    assert not target.exists()
    # merged over the defaults, the user's l4 price replaces the default one
    code, out, err = run(
        [*base, "--model", str(gpt2), "--prices", str(prices), "--device", "l4", "-f", "json"],
        capsys,
    )
    assert code == 0, err
    cost = json.loads(out)["cost"]
    assert cost["files"][-1] == str(prices)
    assert cost["per_replica"]["per_hour"]["on_demand"] == pytest.approx(
        0.8 * json.loads(out)["placement"]["best"]["gpu_fraction"]
    )
    big = tmp_path / "llama70b.json"
    big.write_text(json.dumps(LLAMA2_70B))
    code, _, err = run(
        [*base, "--model", str(big), "--dtype", "fp32", "--device", "t4", "-o", str(target)], capsys
    )
    assert code == 3
    assert "no candidate holds it on 8 devices" in err
    assert len(err.strip().splitlines()) == 1
    assert not target.exists()


def test_max_chance_caps_each_workloads_own_chance(
    source: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # by default the risk is spent unevenly (some workloads above 2 x 5 %); --max-chance
    # caps every stated chance, the fleet still averages the risk, and the plan says so
    plans = {}
    for cap in (None, 0.06):
        flags = [] if cap is None else ["--max-chance", str(cap)]
        code, out, _ = run(["recommend", source, "-f", "json", *flags], capsys)
        assert code == 0
        plans[cap] = json.loads(out)
    for cap, plan in plans.items():
        assert plan["parameters"]["max_chance"] == (0.5 if cap is None else cap)
        chances = [r["risk"]["p_exceed"] for r in plan["recommendations"] if r["status"] == "ok"]
        assert sum(chances) / len(chances) == pytest.approx(0.05, abs=0.002)
        assert max(chances) <= (0.5 if cap is None else cap)
    assert max(r["risk"]["p_exceed"] for r in plans[None]["recommendations"]
               if r["status"] == "ok") > 0.1


@pytest.mark.parametrize(("flags", "message"), [
    (["--max-chance", "0.7"], "--max-chance must be in (0, 0.5], got 0.7"),
    (["--strategy", "vpa", "--max-chance", "0.1"], "applies to the foresize strategy"),
    (["--capacity", "5", "--max-chance", "0.1"], "--capacity plans replicas"),
])
def test_max_chance_misuse_is_exit_2(
    source: str, flags: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(["recommend", source, *flags], capsys)
    assert (code, out) == (2, "")
    assert message in err
    assert "Traceback" not in err
