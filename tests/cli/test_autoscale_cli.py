"""``foresize simulate autoscale`` end to end on the real LoRA trace, and bad input."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from foresize.cli.main import main


def test_lora_end_to_end_json(
    mirror: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "result.json"
    code = main(
        [
            "simulate",
            "autoscale",
            "alibaba-gentd26:lora",
            "--mirror",
            str(mirror),
            "--policies",
            "static,hpa",
            "--inject",
            "shift:+50%@1h",
            "--format",
            "json",
            "-o",
            str(target),
        ]
    )
    assert code == 0, capsys.readouterr().err
    document = json.loads(target.read_text())
    assert document["demand"]["unit"] == "concurrent requests"
    assert document["demand"]["peak"] == 22
    assert document["service"]["capacity"] == 1.0
    rows = {(r["scenario"], r["policy"]): r for r in document["results"]}
    assert set(rows) == {
        (s, p) for s in ("clean", "stressed") for p in ("static", "hpa", "oracle", "oracle_nodelay")
    }
    clean = {p: r for (s, p), r in rows.items() if s == "clean"}
    assert clean["oracle"]["vs_oracle"] == 1.0
    assert clean["static"]["unserved_frac"] == 0.0
    for row in clean.values():
        assert row["replica_hours"] >= clean["oracle_nodelay"]["replica_hours"]
    assert 0 < clean["hpa"]["unserved_frac"] < 0.1
    assert [d["policy"] for d in document["degradation"]][:2] == ["static", "hpa"]
    stressed_hpa = rows[("stressed", "hpa")]
    assert stressed_hpa["unserved_frac"] > clean["hpa"]["unserved_frac"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--capacity", "0"], r"--capacity must be > 0"),
        (["--capacity", "-2"], r"--capacity must be > 0"),
        (["--policies", "hpa,oracel"], r"unknown autoscale policy 'oracel'.*Did you mean 'oracle'"),
        (["--inject", "spike:3x:10m@2h"], r"starts after the series ends"),
        (["--inject", "spike:3x@2h"], r"is not an injection"),
        (["--startup", "10m"], r"longer than the series"),
    ],
)
def test_bad_input_exits_3_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    source = tmp_path / "demand.csv"
    lines = ["ts,workload,metric,value"] + [f"{60 * i},web,qps,{1 + i % 3}" for i in range(5)]
    source.write_text("\n".join(lines) + "\n")
    target = tmp_path / "out.json"
    code = main(
        ["simulate", "autoscale", str(source), "--capacity", "1", *extra, "-o", str(target)]
    )
    err = capsys.readouterr().err
    assert code == 3, err
    first = next(line for line in err.splitlines() if line.startswith("Error: "))
    assert re.search(message, first), first
    assert "Traceback" not in err
    assert not target.exists()


def test_negative_and_missing_capacity(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "demand.csv"
    source.write_text("ts,workload,metric,value\n0,web,qps,1\n60,web,qps,-4\n120,web,qps,1\n")
    assert main(["simulate", "autoscale", str(source), "--capacity", "1"]) == 3
    assert "demand must be finite and >= 0" in capsys.readouterr().err
    source.write_text("ts,workload,metric,value\n0,web,qps,1\n60,web,qps,4\n120,web,qps,1\n")
    assert main(["simulate", "autoscale", str(source)]) == 3
    assert "--capacity is required" in capsys.readouterr().err
