"""``foresize simulate``: listing, unknown names, a small JSON run with provenance."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from foresize.cli.main import main


def test_policies_lists_names(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "policies", "-f", "json"]) == 0
    names = {row["name"] for row in json.loads(capsys.readouterr().out)["policies"]}
    assert {"best_fit", "dot_product", "fgd", "fifo"} <= names


def test_unknown_policy_exits_3_with_suggestion(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "schedule", "--placement", "best_fit,fgdd"]) == 3
    assert "Did you mean 'fgd'?" in capsys.readouterr().err


def test_schedule_writes_json_with_provenance(openb_dir: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r.json"
    code = main(["simulate", "schedule", "--trace", str(openb_dir / "openb_pod_list_default.csv"),
                 "--nodes", str(openb_dir / "openb_node_list_gpu_node.csv"),
                 "--placement", "best_fit,random", "--target", "0.3", "--step", "0.1",
                 "-o", str(out)])
    assert code == 0
    document = json.loads(out.read_text())
    assert document["inputs"][0]["sha256"].startswith("1ee7ed79")
    assert document["simulation"]["placement"] == ["best_fit", "random"]
    assert [r["policy"] for r in document["results"]] == ["best_fit", "random"]
    assert len(document["curves"]["random"]["allocated_frac"]) == 3
    assert capsys.readouterr().out == ""


def test_policies_lists_preemption(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "policies", "-f", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)["policies"]
    assert {r["name"] for r in rows if r["kind"] == "preemption"} == {
        "none", "lowest_priority", "least_attained"}


def test_replay_reports_preemption_deadlines_and_carbon(
        openb_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    code = main(["simulate", "schedule", "--mode", "replay",
                 "--trace", str(openb_dir / "openb_pod_list_default.csv"),
                 "--nodes", str(openb_dir / "openb_node_list_gpu_node.csv"),
                 "--placement", "best_fit", "--queue", "priority",
                 "--preemption", "lowest_priority", "--deadline-factor", "3",
                 "--carbon-aware", "-o", str(out)])
    assert code == 0
    document = json.loads(out.read_text())
    assert document["simulation"]["preemption"] == "lowest_priority"
    assert document["simulation"]["carbon"]["unit"] == "gCO2/kWh"
    row = document["results"][0]
    assert {"preemptions", "deadline_miss_frac", "cost_usd", "energy_kwh", "carbon_kg",
            "dyn_carbon_saved_kg"} <= set(row)
    assert row["dyn_carbon_saved_kg"] > 0
    run = document["runs"][0]
    assert run["deadlines"]["n_with_deadline"] == 8152
