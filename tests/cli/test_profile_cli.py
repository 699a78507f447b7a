from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import polars as pl
import pytest

from foresize.cli.main import main

MAP = ["--map", "ts=timestamp_anon,workload=container_ip", "--as-metric", "gpu_util_pct"]


@pytest.fixture
def duty(gentd26_dir: Path) -> str:
    return str(gentd26_dir / "pod_gpu_duty_cycle_anon.tar.gz")


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_profile_json_on_real_trace(duty: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["profile", "telemetry", duty, *MAP, "-f", "json"], capsys)
    assert code == 0
    assert err == ""
    document = json.loads(out)
    assert document["schema_version"] == "1.0"
    assert document["inputs"][0]["sha256"] == (
        "c4070218189b2811995c30dd9fefb8a793a83a54dccebe7b41cab2d123916855"
    )
    assert len(document["profiles"]) == 143
    assert document["ingest"][0]["rows_in"] == 157417
    first = document["profiles"][0]
    assert first["metric"] == "gpu_util_pct"
    assert first["unit"] == "%"


def test_profile_table_and_csv_file(duty: str, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["profile", "telemetry", duty, *MAP, "--workload", "00800b6d*"], capsys)
    assert code == 0
    assert "00800b6d…" in out  # the id's shortest unique prefix; JSON/CSV keep it whole
    assert "gpu_util_pct" in out
    assert "1 series" in out
    target = tmp_path / "profile.csv"
    code, out, err = run(["profile", "telemetry", duty, *MAP, "-o", str(target)], capsys)
    assert code == 0
    assert out == ""
    assert f"wrote {target}" in err
    with target.open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 143
    assert {"workload", "p99", "idle_frac", "period_s"} <= set(rows[0])


def test_missing_file_is_one_line_exit_3(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "out.json"
    code, out, err = run(["profile", "telemetry", str(tmp_path / "nope.csv"), "-o", str(target)],
                         capsys)
    assert code == 3
    assert out == ""
    assert err.splitlines()[0] == (
        f"Error: {tmp_path / 'nope.csv'}: no such file (a dataset name looks like "
        "gentd26:memory_util, see 'foresize datasets list')")
    assert "Traceback" not in err
    assert not target.exists()


def _bad_csv(tmp_path: Path) -> Path:
    path = tmp_path / "bad.csv"
    path.write_text(
        "workload,metric,ts,value\n"
        "a,gpu_util_pct,2026-01-01 00:02:00,5\n"
        "a,gpu_util_pct,2026-01-01 00:00:00,NaN\n"
        "a,gpu_util_pct,2026-01-01 00:01:00,-3\n"
        "a,gpu_util_pct,2026-01-01 00:02:00,7\n"
        "a,gpu_util_pct,2026-01-01 00:00:30,4\n"
    )
    return path


def test_ingest_reports_drops_on_stderr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "clean.parquet"
    code, out, err = run(["profile", "ingest", str(_bad_csv(tmp_path)), "-o", str(target)], capsys)
    assert code == 0
    assert out == ""
    assert "5 rows read, 2 kept; dropped duplicate_ts=1, nan_value=1, negative_value=1" in err
    assert "1 out-of-order rows sorted" in err
    frame = pl.read_parquet(target)
    assert frame["value"].to_list() == [4.0, 5.0]


def test_ingest_strict_fails_without_output(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "clean.parquet"
    code, _, err = run(["profile", "ingest", str(_bad_csv(tmp_path)), "--strict", "-o",
                          str(target)], capsys)
    assert code == 3
    assert "bad.csv: row 2: field 'value' is NaN (got nan); 3 invalid rows in all" in err
    assert not target.exists()
    assert list(tmp_path.iterdir()) == [tmp_path / "bad.csv"]


def test_usage_errors_exit_2(duty: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["profile", "telemetry", duty, *MAP, "-f", "yamlish"], capsys)
    assert code == 2
    assert "unknown format 'yamlish'" in err
    code, _, err = run(["-q", "-v", "env"], capsys)
    assert code == 2
    code, _, err = run(["profile", "telemetry", duty, "--ts-unit", "hours"], capsys)
    assert code == 2
    assert "--ts-unit" in err


def test_debug_shows_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["--debug", "profile", "telemetry", str(tmp_path / "nope.csv")], capsys)
    assert code == 3
    assert "Traceback" in err


def test_every_row_invalid_is_insufficient_data(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "nan.csv"
    path.write_text("workload,metric,ts,value\na,qps,0,NaN\n")
    code, out, err = run(["profile", "telemetry", str(path)], capsys)
    assert code == 4
    assert out == ""
    assert "every row was invalid" in err


def test_dataset_tables_profile_through_the_registry(
    mirror: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FORESIZE_DATA_MIRROR", str(mirror))
    code, out, err = run(["profile", "telemetry", "gentd26:lora", "-f", "json"], capsys)
    assert code == 0
    document = json.loads(out)
    profiles = {p["workload"]: p for p in document["profiles"]}
    assert set(profiles) == {"TXT_2_IMG", "IMG_2_IMG", "INPAINTING"}
    arrivals = sum(p["mean"] * p["n_samples"] for p in profiles.values())
    assert arrivals == pytest.approx(26823)  # every request of the trace counted once
    assert profiles["TXT_2_IMG"]["period_s"] == pytest.approx(86400, rel=0.01)
    code, out, err = run(["profile", "telemetry", "gentd26:memory_util", "-f", "csv"], capsys)
    assert code == 0
    assert err.splitlines() == [
        f"{mirror}/cluster-trace-v2026-GenAI/pod_memory_util_anon.tar.gz: 214,890 rows "
        "read, 214,839 kept; dropped duplicate_ts=1, missing_key=49, negative_value=1"
    ]
    assert len(out.splitlines()) == 1 + 207
    code, quiet_out, err = run(["-q", "profile", "telemetry", "gentd26:memory_util", "-f", "csv"],
                               capsys)
    assert (code, err, quiet_out) == (0, "", out)
    code, _, err = run(["profile", "telemetry", "openb:default"], capsys)
    assert code == 3
    assert "alibaba-openb:default holds pods, not telemetry" in err


def test_stdin_csv_and_parquet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                               capsys: pytest.CaptureFixture[str]) -> None:
    text = b"workload,metric,ts,value\na,qps,0,1\na,qps,60,3\n"
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(text)))
    code, out, _ = run(["profile", "telemetry", "-", "-f", "json"], capsys)
    assert code == 0
    assert json.loads(out)["profiles"][0]["mean"] == 2.0
    parquet = tmp_path / "t.parquet"
    pl.read_csv(io.BytesIO(text)).write_parquet(parquet)
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(parquet.read_bytes())))
    code, out, _ = run(["profile", "telemetry", "-", "-f", "json"], capsys)
    assert code == 0
    assert json.loads(out)["profiles"][0]["max"] == 3.0
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"")))
    code, _, err = run(["profile", "telemetry", "-"], capsys)
    assert code == 3
    assert err.startswith("Error: stdin: no data")


def test_phases_of_a_real_trace(mirror: Path, monkeypatch: pytest.MonkeyPatch,
                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("FORESIZE_DATA_MIRROR", str(mirror))
    code, out, err = run(["profile", "phases", "gentd26:gpu_duty_cycle", "-f", "json"], capsys)
    assert code == 0, err
    rows = pl.DataFrame(json.loads(out)["phases"])
    shares = rows.group_by("workload").agg(pl.col("time_share").sum())["time_share"]
    assert shares.min() == pytest.approx(1.0)
    assert shares.max() == pytest.approx(1.0)
    assert set(rows["phase"]) <= {"idle", "low", "mid", "high", "busy", "spike"}
    idle = rows.filter(pl.col("phase") == "idle")
    pooled_idle = (idle["n_samples"].sum()) / rows["n_samples"].sum()
    assert 0.55 < pooled_idle < 0.75  # serving containers idle most of the time
    code, _, err = run(["profile", "phases", "gentd26:gpu_duty_cycle", "--min-dwell", "0"],
                       capsys)
    assert code == 3
    assert "The 'min_dwell' parameter of detect_phases must be an int >= 1" in err
