"""``foresize recommend`` end to end on the real GenTD26 memory trace."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from foresize.cli.main import main


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
    assert "166 workloads sized (vpa, risk 0.01); 41 skipped" in err
    plan = json.loads(target.read_text())
    assert plan["schema_version"] == "1.0"
    assert plan["parameters"]["strategy"] == "vpa"
    rec = next(r for r in plan["recommendations"] if r["status"] == "ok")
    assert rec["method"]["margin_pct"] == pytest.approx(15.0)
    assert rec["bounds"]["upper"] > rec["bounds"]["target"] > rec["bounds"]["lower"]
    assert rec["evidence"]["n_points"] >= 100
    assert list(tmp_path.iterdir()) == [target]


def test_table_has_a_rationale_per_row(
    source: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    code, out, _ = run(["recommend", source], capsys)
    assert code == 0
    assert "Right-sizing of mem_util_pct" in out
    assert "growth of 30 peers" in out
    assert "needs 100 samples, has 3" in out


def test_csv_rows(source: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["recommend", source, "--strategy", "krr", "-f", "csv"], capsys)
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == 207
    ok = [r for r in rows if r["status"] == "ok"]
    assert all(float(r["limit"]) == pytest.approx(float(r["base"]) * 1.15) for r in ok)


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
    assert code == 3
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
    assert "needs --metric gpu_mem_bytes" in err
    assert not target.exists()
