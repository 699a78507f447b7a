"""``foresize simulate``: listing, unknown names, a small JSON run with provenance."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from foresize.cli.main import main
from tests.interrupt import interrupt_when


def test_policies_lists_names(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "policies", "-f", "json"]) == 0
    names = {row["name"] for row in json.loads(capsys.readouterr().out)["policies"]}
    assert {"best_fit", "dot_product", "fgd", "fifo"} <= names


def test_unknown_policy_exits_2_with_suggestion(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "schedule", "--placement", "best_fit,fgdd"]) == 2
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
    assert {r["name"] for r in rows if r["kind"] == "autoscaler"} == {
        "none", "cluster_autoscaler"}


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


def test_replay_of_pai_jobs_on_pai_machines(mirror: Path, tmp_path: Path) -> None:
    (tmp_path / "jobs.csv").write_text("j1,i1,alice,Terminated,1000,2000\n")
    (tmp_path / "tasks.csv").write_text(
        "j1,worker,2,Terminated,1100,2000,600,29.296875,50,V100\n")
    (tmp_path / "instances.csv").write_text("j1,worker,w0,wk0,i1,Terminated,1100,1900,m1\n"
                                            "j1,worker,w1,wk1,i1,Terminated,1200,2000,m2\n")
    out = tmp_path / "r.json"
    code = main(["simulate", "schedule", "--mode", "replay", "--trace", "pai2020",
                 "--pai-table", f"job={tmp_path / 'jobs.csv'}",
                 "--pai-table", f"task={tmp_path / 'tasks.csv'}",
                 "--pai-table", f"instance={tmp_path / 'instances.csv'}",
                 "--nodes", "pai2020:machine_spec", "--mirror", str(mirror),
                 "--placement", "best_fit", "-o", str(out)])
    assert code == 0
    document = json.loads(out.read_text())
    assert document["simulation"]["cluster"]["n_nodes"] == 1897
    assert document["runs"][0]["n_started"] == 2


def test_missing_pai_table_names_path_and_url(mirror: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["simulate", "schedule", "--mode", "replay", "--trace", "pai2020",
                 "--nodes", "pai2020:machine_spec", "--mirror", str(mirror)])
    assert code != 0
    err = capsys.readouterr().err
    assert "pai_job_table.tar.gz" in err
    assert "https://" in err


def test_replay_with_autoscaled_pools(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    code = main(["simulate", "schedule", "--mode", "replay", "--trace", "synthetic:40",
                 "--seed", "1", "--nodes", "none", "--placement", "best_fit",
                 "--pool", "name=small,cpu=32,memory_gib=128,gpus=2,gpu_model=A,price=2,"
                 "delay=2m,max=6",
                 "--pool", "name=big,cpu=64,memory_gib=512,gpus=8,gpu_model=A,price=10,"
                 "delay=5m,max=3",
                 "--autoscaler", "cluster_autoscaler", "--autoscale-every", "60s",
                 "--scale-down-after", "10m", "-o", str(out)])
    assert code == 0
    document = json.loads(out.read_text())
    assert [p["name"] for p in document["simulation"]["pools"]] == ["small", "big"]
    row = document["results"][0]
    assert row["scale_ups"] >= 1
    assert row["scale_ups"] == row["scale_downs"]  # all nodes gone once the work is done
    assert row["node_hours"] > 0
    assert row["provisioning_wait_s"] > 0
    run = document["runs"][0]
    assert run["n_started"] + run["n_never_fit"] == 40
    assert set(run["autoscale"]["pools"]) == {"small", "big"}


@pytest.fixture(scope="module")
def five_column_pods(openb_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """openb default in the upstream multigpu* layout: the five request columns only."""
    import polars as pl

    path = tmp_path_factory.mktemp("openb") / "openb_pod_list_multigpu_like.csv"
    columns = ["name", "cpu_milli", "memory_mib", "num_gpu", "gpu_milli"]
    pl.read_csv(openb_dir / "openb_pod_list_default.csv").select(columns).write_csv(path)
    return path


def test_schedule_runs_the_five_column_layout(openb_dir: Path, five_column_pods: Path,
                                              tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    code = main(["simulate", "schedule", "--trace", str(five_column_pods),
                 "--nodes", str(openb_dir / "openb_node_list_gpu_node.csv"),
                 "--placement", "best_fit,fgd", "--seeds", "3", "--target", "0.5",
                 "-o", str(out)])
    assert code == 0
    document = json.loads(out.read_text())
    assert document["simulation"]["n_pods_in_trace"] == 8152
    assert document["simulation"]["seeds"] == [0, 1, 2]
    for row in document["results"]:  # nothing fails to fit at half the cluster's capacity
        assert row["failed_pods"] == 0


@pytest.mark.parametrize(("row", "message"), [
    ("p2,lots,24576,1,1000", r": row 3: column 'cpu_milli' is String \(e\.g\. 'lots'\)"),
    ("p2,12000,-1,1,1000", r": row 3: field 'memory_mib' is negative \(got -1\)"),
    ("p2,12000,24576,2,2000", r": row 3: field 'gpu_milli' is above 1000 .*\(got 2000\)"),
])
def test_bad_pod_list_is_one_line_naming_file_row_and_column(
        five_column_pods: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        row: str, message: str) -> None:
    lines = five_column_pods.read_text().splitlines()
    lines[3] = row
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(lines[:10]) + "\n")
    assert main(["simulate", "schedule", "--trace", str(bad), "--placement", "best_fit",
                 "--target", "0.1"]) == 3
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert re.search(re.escape(str(bad)) + message, err), err


def test_ctrl_c_keeps_the_policies_whose_seeds_all_finished(
    mirror: Path, tmp_path: Path
) -> None:
    """A real SIGINT once the first policy's 3 seeds are done: its row is written."""
    target = tmp_path / "schedule.json"
    beat = re.compile(r"inflation runs: (\d)/9 \(policy, seed\) runs")
    _, err = interrupt_when(
        ["simulate", "schedule", "--trace", "openb:default", "--mirror", str(mirror),
         "--placement", "random,best_fit,fgd", "--seeds", "3", "-o", str(target)],
        ready=lambda line: bool((m := beat.match(line)) and 3 <= int(m.group(1)) <= 6),
    )  # readiness: the total counted, and random's three seeds done
    document = json.loads(target.read_text())
    assert document["interrupted"] is document["partial"] is True
    policies = [row["policy"] for row in document["results"]]
    assert policies[0] == "random"
    assert policies in (["random"], ["random", "best_fit"])
    assert set(document["curves"]) == set(policies)
    assert re.search(r"^interrupted: [3-8]/9 \(policy, seed\) runs done; the policies whose "
                     r"seeds all finished kept", err, re.M), err


def test_schedule_runs_fgd_cpu_reserve_beside_fgd(mirror: Path, tmp_path: Path) -> None:
    """Registered and run by name from the CLI: on openb default (seed 0) it allocates
    more GPU than FGD at 100 % arrived.
    """
    out = tmp_path / "r.json"
    assert main(["simulate", "schedule", "--trace", "openb:default", "--mirror", str(mirror),
                 "--placement", "fgd,fgd_cpu_reserve", "--seeds", "1", "-o", str(out)]) == 0
    rows = {row["policy"]: row for row in json.loads(out.read_text())["results"]}
    fgd, ours = rows["fgd"], rows["fgd_cpu_reserve"]
    assert ours["allocated_at_100_frac"] > fgd["allocated_at_100_frac"], (ours, fgd)
