"""``foresize simulate autoscale`` end to end on the real LoRA trace, and bad input."""

from __future__ import annotations

import json
import math
import re
import warnings
from pathlib import Path

import polars as pl
import pytest

from foresize.cli.main import main
from foresize.ingest.sources import ReadOptions, open_telemetry
from foresize.recommend.plan import read_plan
from foresize.simulate.replicas.vertical import plan_sizes
from tests.interrupt import interrupt_when


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
            "--inject",
            "spike:3x:30m@40h",  # the README's old example: no demand there
            "--format",
            "json",
            "-o",
            str(target),
        ]
    )
    err = capsys.readouterr().err
    assert code == 0, err
    warned = [line for line in err.splitlines() if line.startswith("Warning: --inject")]
    assert warned == [
        "Warning: --inject spike:3x:30m@40h changes nothing: demand is 0 in 40h-40h30m; "
        "busiest hour is 415h"
    ]
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
    ("extra", "exit_code", "message"),
    [  # a flag wrong on its own is a usage error (2); one the data contradicts is 3
        (["--capacity", "0"], 2, r"--capacity must be > 0"),
        (["--capacity", "-2"], 2, r"--capacity must be > 0"),
        (["--policies", "hpa,oracel"], 2, r"unknown autoscale policy 'oracel'.*Did you mean"),
        (["--inject", "spike:3x:10m@2h"], 3, r"starts after the series ends"),
        (["--inject", "spike:3x@2h"], 2, r"is not an injection"),
        (["--startup", "10m"], 3, r"longer than the series"),
        (["--spot-interruptions", "0.1"], 2, r"need at least one --pool"),
        (["--pool", "name=a,gpus=8,gpu_model=A100,colour=red"], 2, r"'colour=red' is not KEY="),
        (["--pool", "name=a,cpu=8"], 2, r"holds no replica of 1 GPU"),
        (["--pool", "name=a,replicas=1", "--pool", "name=a,replicas=2"], 2, r"names repeat"),
    ],
)
def test_bad_input_exits_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], exit_code: int,
    message: str,
) -> None:
    source = tmp_path / "demand.csv"
    lines = ["ts,workload,metric,value"] + [f"{60 * i},web,qps,{1 + i % 3}" for i in range(5)]
    source.write_text("\n".join(lines) + "\n")
    target = tmp_path / "out.json"
    code = main(
        ["simulate", "autoscale", str(source), "--capacity", "1", *extra, "-o", str(target)]
    )
    err = capsys.readouterr().err
    assert code == exit_code, err
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


def test_an_on_demand_and_a_spot_pool(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "demand.csv"
    waves = [2 + round(6 * (1 + math.sin(i / 40))) for i in range(1500)]
    lines = ["ts,workload,metric,value"] + [f"{60 * i},web,qps,{v}" for i, v in enumerate(waves)]
    source.write_text("\n".join(lines) + "\n")
    target = tmp_path / "nodes.json"
    code = main(
        [
            "simulate",
            "autoscale",
            str(source),
            "--capacity",
            "1",
            "--policies",
            "hpa",
            "--pool",
            "name=od,gpus=2,gpu_model=A100,price=8,delay=3m,max=20",
            "--pool",
            "name=spot,gpus=2,gpu_model=A100,spot_price=3,delay=3m,max=4",
            "--spot-interruptions",
            "0.05",
            "--seed",
            "3",
            "-f",
            "json",
            "-o",
            str(target),
        ]
    )
    assert code == 0, capsys.readouterr().err
    document = json.loads(target.read_text())
    assert [p["spot"] for p in document["nodes"]["pools"]] == [False, True]
    rows = {r["policy"]: r for r in document["results"]}
    hpa = rows["hpa"]
    assert hpa["cost_usd"] == pytest.approx(8 * hpa["node_hours:od"] + 3 * hpa["node_hours:spot"])
    assert hpa["node_hours:od"] > 0
    assert hpa["interruptions"] > 0
    assert hpa["replicas_lost"] >= hpa["interruptions"]
    assert rows["oracle_nodelay"]["interruptions"] == 0
    assert rows["oracle_nodelay"]["cost_usd"] <= rows["oracle"]["cost_usd"]


def test_vertical_on_real_memory_and_bad_input(
    mirror: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "vertical.json"
    source = "alibaba-gentd26:memory_util"
    args = ["simulate", "vertical", source, "--mirror", str(mirror)]
    assert main([*args, "--multi-phase", "-f", "json", "-o", str(target)]) == 0
    document = json.loads(target.read_text())
    assert document["metric"] == "mem_util_pct"
    assert all(r["n_phases"] >= 2 for r in document["results"])
    assert document["totals"]["per_phase_vs_fixed"] < 1.0
    capsys.readouterr()
    assert main([*args, "--metric", "gpu_util_pct"]) == 3
    assert "'gpu_util_pct' is not in the source" in capsys.readouterr().err
    assert main([*args, "--risk", "0"]) == 2
    assert "--risk must be in (0, 0.5]" in capsys.readouterr().err


def test_vertical_replays_the_recommender_s_plan_on_later_telemetry(
    mirror: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frame = memory_frame(mirror)
    share = pl.int_range(pl.len()).over("workload") / pl.len().over("workload")
    head, tail = tmp_path / "head.parquet", tmp_path / "tail.parquet"
    frame.filter(share < 0.7).write_parquet(head)
    frame.filter(share >= 0.7).write_parquet(tail)
    plan_path, target = tmp_path / "plan.json", tmp_path / "vertical.json"
    assert main(["recommend", str(head), "--risk", "0.02", "-o", str(plan_path)]) == 0
    args = ["simulate", "vertical", str(tail), "--plan", str(plan_path)]
    assert main([*args, "-f", "json", "-o", str(target)]) == 0
    document = json.loads(target.read_text())
    assert document["sizing"]["plan"] == str(plan_path)
    planned = plan_sizes(read_plan(plan_path).recommendations, "mem_util_pct")
    scheduled = {w for w, s in planned.items() if len(s.phases) >= 2}
    assert scheduled  # the plan resizes some containers by phase
    rows = {r["workload"]: r for r in document["results"]}
    assert set(rows) <= set(planned)
    for name in scheduled & set(rows):
        fixed = planned[name].fixed * rows[name]["steps"] * 57 / 3600
        assert rows[name]["reserved_h_fixed"] == pytest.approx(fixed, rel=0.05)
        assert rows[name]["reserved_h_per_phase"] <= rows[name]["reserved_h_fixed"] + 1e-9
    capsys.readouterr()
    other = tmp_path / "gpu.parquet"
    pl.read_parquet(tail).with_columns(pl.lit("gpu_util_pct").alias("metric")).write_parquet(other)
    assert main(["simulate", "vertical", str(other), "--plan", str(plan_path)]) == 3
    assert capsys.readouterr().err.startswith(
        f"Error: {plan_path}: the plan sizes mem_util_pct, not gpu_util_pct"
    )
    good = json.loads(plan_path.read_text())
    first = good["recommendations"][0]["workload"]
    for path, value, message in [  # hand-edited plans: one line naming the file and field
        (("recommended", "request"), -1e9, "recommended.request is -1000000000.0; it must be"),
        (("recommended", "limit"), math.inf, "recommended.limit is inf; it must be"),
        (("recommended", "request"), 107.0, "recommended.request is 107 %; a percentage"),
        (("recommended", "request"), 99.0, "recommended.request (99) is above its limit"),
    ]:
        bad = json.loads(json.dumps(good))
        bad["recommendations"][0][path[0]][path[1]] = value
        if path == ("recommended", "request") and value == 99.0:
            bad["recommendations"][0]["recommended"]["limit"] = 98.0
        plan_path.write_text(json.dumps(bad))
        target.unlink(missing_ok=True)
        assert main([*args, "-f", "json", "-o", str(target)]) == 3
        err = capsys.readouterr().err
        assert err.startswith(
            f"Error: {plan_path}: recommendations[0] ({first}, mem_util_pct).{message}"
        ), err
        assert "Traceback" not in err
        assert not target.exists()  # never a partial output
    plan_path.write_text("{not json")
    assert main(args) == 3
    assert capsys.readouterr().err.startswith(f"Error: {plan_path}: not valid JSON")


def memory_frame(mirror: Path) -> pl.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frame = open_telemetry(["alibaba-gentd26:memory_util"], ReadOptions(mirror=mirror)).frame
    collected = frame.collect() if isinstance(frame, pl.LazyFrame) else frame
    assert isinstance(collected, pl.DataFrame)
    return collected.sort("workload", "ts")


def test_ctrl_c_keeps_the_scored_runs(mirror: Path, tmp_path: Path) -> None:
    """A real run on the LoRA trace, interrupted once the references and a policy are done:
    the finished policies' rows are written with their oracle ratios, marked partial.
    """
    target = tmp_path / "as.json"
    _, err = interrupt_when(
        ["simulate", "autoscale", "alibaba-gentd26:lora", "--mirror", str(mirror),
         "--capacity", "1", "--policies", "static,hpa,predictive,hybrid,oracle",
         "-o", str(target)],
        ready=lambda line: re.match(r"autoscale runs: [34]/6, ", line) is not None,
    )  # readiness: both references and one policy done, 2 to go
    document = json.loads(target.read_text())
    assert document["interrupted"] is document["partial"] is True
    rows = {row["policy"]: row for row in document["results"]}
    assert {"oracle", "oracle_nodelay", "static"} <= set(rows)
    assert len(rows) < 6
    assert rows["oracle"]["vs_oracle"] == 1.0
    assert all(row["vs_oracle_nodelay"] >= 1.0 - 1e-9 for row in rows.values())
    assert re.search(r"^interrupted: [3-5]/6 runs done; their rows \(with the oracle ratios\) "
                     r"kept in the output and marked partial", err, re.M), err
