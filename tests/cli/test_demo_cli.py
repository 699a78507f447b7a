from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import polars as pl
import pytest
import yaml

from foresize.cli.main import main
from foresize.core.schemas import TELEMETRY

ARTEFACTS = {
    "model.json",
    "profile.parquet",
    "profile.json",
    "phases.json",
    "forecast.parquet",
    "plan.json",
    "plan.yaml",
    "autoscale.json",
    "schedule.json",
    "summary.json",
    "summary.md",
}
STAGES = ("model", "profile", "phases", "forecast", "plan", "autoscale", "schedule")


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any], Path]:
    """One seeded demo run on a day of synthetic telemetry, its summary and saved telemetry."""
    root = tmp_path_factory.mktemp("demo")
    out, summary, saved = root / "out", root / "summary.json", root / "demo.parquet"
    code = main(
        [
            "--seed",
            "3",
            "demo",
            "--duration",
            "1d",
            "--out",
            str(out),
            "-f",
            "json",
            "-o",
            str(summary),
            "--save-telemetry",
            str(saved),
        ]
    )
    assert code == 0
    return out, json.loads(summary.read_text()), saved


def test_demo_writes_every_artefact_and_nothing_else(demo_run: tuple[Path, Any, Path]) -> None:
    out, summary, _ = demo_run
    assert {p.name for p in out.iterdir()} == ARTEFACTS
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".out.")]  # no temp left
    assert summary["artefacts"] == {name: str(out / name) for name in sorted(ARTEFACTS)}
    assert json.loads((out / "summary.json").read_text())["plan"] == summary["plan"]


def test_summary_has_each_stage(demo_run: tuple[Path, Any, Path]) -> None:
    _, summary, _ = demo_run
    for stage in STAGES:
        assert summary[stage], stage
    assert set(summary["timings_s"]) >= set(STAGES)
    assert summary["source"]["synthetic"] | {"workload_kinds": None} == {
        "seed": 3,
        "duration": "1d",
        "step": "1m",
        "workload_kinds": None,
    }
    assert summary["seed"] == 3
    model = summary["model"]
    assert (model["source"], model["parameters"]) == ("llama-2-7b.json", 6_738_415_616)
    # bf16 weights of a 7B llama: 2 bytes per parameter, plus the 4k-token KV cache
    assert model["components_bytes"]["weights"] == 2 * 6_738_415_616
    assert model["components_bytes"]["kv_cache"] == 2 * 32 * 4096 * 4096 * 2
    assert {r["policy"] for r in summary["autoscale"]} == {
        "static",
        "hpa",
        "predictive",
        "oracle",
        "plan_hpa",
    }
    assert [r["requests"] for r in summary["schedule"]["rows"]] == ["original", "right-sized"]
    assert "## Scheduling simulation" in (demo_run[0] / "summary.md").read_text()


def test_plan_validates_against_the_published_schema(
    demo_run: tuple[Path, Any, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["recommend", "--schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    plan = json.loads((demo_run[0] / "plan.json").read_text())
    jsonschema.validate(plan, schema)
    resources = {r["resource"] for r in plan["recommendations"]}
    assert resources == {"mem_bytes", "gpu_mem_bytes", "cpu_cores"}
    services = {s["workload"]: s for s in plan["scaling_plans"]}
    assert set(services) == {"infer-chat-00", "infer-embed-01", "infer-assist-02"}
    # the synthetic chat service's nominal capacity: 40 qps at 80 % load
    assert services["infer-chat-00"]["schedule"]["capacity_per_replica"] == pytest.approx(50.0)
    assert plan["placement"]["model"]["parameters"] == 6_738_415_616


def test_plan_yaml_is_a_stream_of_k8s_manifests(demo_run: tuple[Path, Any, Path]) -> None:
    docs = [d for d in yaml.safe_load_all((demo_run[0] / "plan.yaml").read_text()) if d]
    kinds = {d["kind"] for d in docs}
    assert {"Deployment", "HorizontalPodAutoscaler", "ScaledObject"} <= kinds
    names = {d["metadata"]["name"] for d in docs}
    assert {"infer-chat-00", "train-llm-00"} <= names


def test_saved_telemetry_is_what_was_profiled(demo_run: tuple[Path, Any, Path]) -> None:
    out, summary, saved = demo_run
    telemetry = pl.read_parquet(saved)
    assert telemetry.select(TELEMETRY.names()).schema == TELEMETRY
    profile = pl.read_parquet(out / "profile.parquet")
    assert set(profile.select("workload", "metric").iter_rows()) == set(
        telemetry.select("workload", "metric").unique().iter_rows()
    )
    assert summary["profile"]["series"] == profile.height


def test_demo_table_runs_offline(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--duration", "12h", "--out", str(tmp_path / "d")]) == 0
    out, err = capsys.readouterr()
    assert "foresize demo · synthetic telemetry · seed 0 · 12h" in out
    for title in (
        "Model (static analysis)",
        "Right-sizing plan",
        "Scaling plans",
        "Forecast accuracy",
        "Autoscaling simulation",
        "Scheduling simulation",
    ):
        assert title in out
    assert "infer-chat-00" in out
    assert err.startswith(f"wrote {tmp_path / 'd'}/ (11 artefacts)")


def test_quiet_prints_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--duration", "12h", "--out", str(tmp_path / "d"), "--quiet"]) == 0
    assert capsys.readouterr() == ("", "")
    assert (tmp_path / "d" / "plan.json").is_file()


def test_dataset_runs_the_same_pipeline_on_the_mirror(
    tmp_path: Path, mirror: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "gentd26"
    assert (
        main(
            [
                "demo",
                "--dataset",
                "alibaba-gentd26",
                "--mirror",
                str(mirror),
                "--limit",
                "3",
                "--out",
                str(out),
                "-f",
                "json",
            ]
        )
        == 0
    )
    summary = json.loads(capsys.readouterr().out)
    source = summary["source"]["dataset"]
    assert (source["name"], source["workloads"], source["limit"]) == ("alibaba-gentd26", 3, 3)
    assert source["tables"] == [
        "alibaba-gentd26:gpu_duty_cycle",
        "alibaba-gentd26:memory_util",
        "alibaba-gentd26:qps",
    ]
    plan = json.loads((out / "plan.json").read_text())
    assert {r["resource"] for r in plan["recommendations"]} == {"mem_util_pct"}
    assert len(plan["scaling_plans"]) == 3
    assert summary["model"]["source"] == "llama-2-7b.json"
    assert {p.name for p in out.iterdir()} == ARTEFACTS


def _one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def test_unknown_dataset_is_one_line_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "d"
    assert main(["demo", "--dataset", "alibaba-nope", "--out", str(out)]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert line.startswith("Error: unknown dataset 'alibaba-nope'")
    assert list(tmp_path.iterdir()) == []


def test_dataset_not_fetched_names_the_fetch_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FORESIZE_DATA_MIRROR", raising=False)
    monkeypatch.setenv("FORESIZE_CACHE_DIR", str(tmp_path / "cache"))
    assert main(["demo", "--dataset", "gentd26", "--out", str(tmp_path / "d")]) == 3
    line = _one_error_line(capsys.readouterr().err)
    assert "foresize datasets fetch alibaba-gentd26:gpu_duty_cycle" in line
    assert not (tmp_path / "d").exists()


def test_unwritable_out_dir_is_exit_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a folder")
    assert main(["demo", "--duration", "12h", "--output-dir", str(blocker / "demo")]) == 3
    line = _one_error_line(capsys.readouterr().err)
    assert line == f"Error: {blocker / 'demo'}: {blocker} is a file, not a folder"


def test_a_failed_run_keeps_the_previous_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "d"
    out.mkdir()
    (out / "marker").write_text("old run")
    assert (
        main(
            [
                "demo",
                "--duration",
                "12h",
                "--out",
                str(out),
                "--model",
                str(tmp_path / "missing.json"),
            ]
        )
        == 3
    )
    assert "missing.json: no such model" in _one_error_line(capsys.readouterr().err)
    assert [p.name for p in out.iterdir()] == ["marker"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]


def test_demo_rejects_a_duration_without_unit(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--duration", "3"]) == 2
    _, err = capsys.readouterr()
    assert "needs a number and a unit" in err
