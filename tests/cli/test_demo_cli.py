from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from foresize.cli.main import main
from foresize.core.schemas import TELEMETRY


def test_demo_table_runs_offline(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert "foresize demo · synthetic telemetry · seed 0" in out
    assert "train-llm-00" in out
    assert "infer-chat-00" in out


def test_demo_json_is_seeded_and_saves_telemetry(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    saved = tmp_path / "demo.parquet"
    assert main(["--seed", "3", "demo", "--duration", "2d", "-f", "json",
                 "--save-telemetry", str(saved)]) == 0
    out, err = capsys.readouterr()
    document = json.loads(out)
    synthetic = document["source"]["synthetic"]
    assert {k: synthetic[k] for k in ("seed", "duration", "step")} == {
        "seed": 3, "duration": "2d", "step": "1m"}
    described = {row["workload"].rsplit("-", 1)[0] for row in document["profiles"]}
    assert described == set(synthetic["workload_kinds"])  # every kind in the run is described
    telemetry = pl.read_parquet(saved)
    assert telemetry.select(TELEMETRY.names()).schema == TELEMETRY
    assert f"wrote {saved}" in err
    series = {(p["workload"], p["metric"]) for p in document["profiles"]}
    assert series == set(telemetry.select("workload", "metric").unique().iter_rows())
    chat_qps = next(p for p in document["profiles"]
                    if p["workload"] == "infer-chat-00" and p["metric"] == "qps")
    assert chat_qps["period_s"] == pytest.approx(86400, rel=0.02)


def test_command_seed_overrides_the_global_one(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--seed", "3", "demo", "-f", "json"]) == 0
    global_seed = json.loads(capsys.readouterr().out)
    assert main(["demo", "--seed", "3", "-f", "json"]) == 0
    local_seed = json.loads(capsys.readouterr().out)
    assert main(["demo", "-f", "json"]) == 0
    default = json.loads(capsys.readouterr().out)
    assert global_seed["profiles"] == local_seed["profiles"] != default["profiles"]


def test_demo_rejects_a_duration_without_unit(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--duration", "3"]) == 3
    _, err = capsys.readouterr()
    assert "needs a number and a unit" in err
