"""Every kind of bad input through the CLI: one line naming file and field, the exit code,
no traceback, and no output file left behind."""

from __future__ import annotations

import io
import re
import tarfile
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest

from foresize.cli.main import main

HEADER = "workload,metric,ts,value\n"


def csv(text: str) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        path = folder / "t.csv"
        path.write_text(text)
        return path
    return make


def truncated_tar(folder: Path) -> Path:
    payload = (HEADER + "a,qps,0,1\n" * 5000).encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("t.csv")
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    path = folder / "t.tar.gz"
    path.write_bytes(buffer.getvalue()[:200])
    return path


def escaping_tar(folder: Path) -> Path:
    payload = (HEADER + "a,qps,0,1\n").encode()
    path = folder / "t.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo("../../t.csv")
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    return path


def corrupt_parquet(folder: Path) -> Path:
    path = folder / "t.parquet"
    pl.DataFrame({"ts": [1, 2], "value": [1.0, 2.0]}).write_parquet(path)
    path.write_bytes(path.read_bytes()[:-20])
    return path


def missing(folder: Path) -> Path:
    return folder / "absent.csv"


CASES = [
    ("missing file", missing, [], 3, r"absent.csv: no such file"),
    ("empty file", csv(""), [], 3, r"t.csv: file is empty"),
    ("missing column", csv("workload,metric,value\na,qps,1\n"), [], 3,
     r"t.csv: missing required column 'ts'"),
    ("wrong type", csv(HEADER + "a,qps,0,lots\n"), [], 3,
     r"t.csv: row 1: column 'value' holds 'lots', expected a number$"),
    ("bad timestamp", csv(HEADER + "a,qps,2026-01-01,1\na,qps,yesterday,1\n"), [], 3,
     r"t.csv: row 2: column 'ts' value 'yesterday' is not a timestamp"),
    ("NaN under --strict", csv(HEADER + "a,qps,0,1\na,qps,60,NaN\n"), ["--strict"], 3,
     r"t.csv: row 2: field 'value' is NaN \(got nan\); 1 invalid row in all: nan_value=1$"),
    ("negative under --strict", csv(HEADER + "a,qps,0,-1\n"), ["--strict"], 3,
     r"t.csv: row 1: field 'value' is negative for a usage metric \(got -1.0\)"),
    ("duplicate under --strict", csv(HEADER + "a,qps,0,1\na,qps,0,2\n"), ["--strict"], 3,
     r"t.csv: row 2: field 'ts' repeats an earlier sample of its series"),
    ("truncated tar.gz", truncated_tar, [], 3, r"t.tar.gz: truncated or corrupt tar.gz archive"),
    ("tar member escaping", escaping_tar, [], 3,
     r"t.tar.gz: member '../../t.csv' would be written outside the target folder"),
    ("corrupt parquet", corrupt_parquet, [], 3, r"t.parquet: unreadable"),
    ("unknown dataset", lambda _: Path("gentd62:qps"), [], 2,
     r"unknown dataset 'gentd62'.*Did you mean 'gentd26'\?"),
]


@pytest.mark.parametrize(("make", "extra", "code", "message"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_with_exit_code_and_no_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], make: Callable[[Path], Path],
    extra: list[str], code: int, message: str,
) -> None:
    source = make(tmp_path)
    (tmp_path / "out").mkdir()
    target = tmp_path / "out" / "clean.parquet"
    assert main(["profile", "ingest", str(source), *extra, "-o", str(target)]) == code
    out, err = capsys.readouterr()
    assert out == ""
    first, *rest = err.splitlines()
    assert first.startswith("Error: ")
    assert re.search(message, first), first
    assert all(line.startswith("Hint: ") for line in rest)
    assert "Traceback" not in err
    assert not target.exists()
    assert list((tmp_path / "out").iterdir()) == []


def test_dirty_rows_without_strict_are_dropped_with_counts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = csv(HEADER + "a,qps,120,1\na,qps,0,NaN\na,qps,60,-2\na,qps,120,5\na,qps,30,3\n")(
        tmp_path)
    target = tmp_path / "clean.parquet"
    assert main(["profile", "ingest", str(source), "-o", str(target)]) == 0
    _, err = capsys.readouterr()
    assert "5 rows read, 2 kept; dropped duplicate_ts=1, nan_value=1, negative_value=1; " \
           "1 out-of-order rows sorted" in err
    assert pl.read_parquet(target)["value"].to_list() == [3.0, 1.0]


@pytest.mark.parametrize("command", [
    ["forecast", "run"], ["forecast", "backtest"], ["recommend"], ["simulate", "vertical"],
    ["profile", "phases"], ["profile", "telemetry"],
])
def test_every_telemetry_command_takes_strict(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    rows = "".join(f"a,mem_bytes,{60 * i},{1e9 if i != 7 else -1}\n" for i in range(200))
    source = csv(HEADER + rows)(tmp_path)
    target = tmp_path / "out.json"
    assert main([*command, str(source), "--strict", "-o", str(target)]) == 3
    _, err = capsys.readouterr()
    assert err.splitlines()[0] == (
        f"Error: {source}: row 8: field 'value' is negative for a usage metric (got -1.0); "
        "1 invalid row in all: negative_value=1"
    )
    assert not target.exists()
