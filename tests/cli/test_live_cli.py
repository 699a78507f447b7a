from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import polars as pl
import pytest

from foresize.cli.main import main
from foresize.core.schemas import TELEMETRY


def test_run_writes_samples_and_passes_the_exit_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "run.parquet"
    # the command lives 20 sampling intervals: several samples even on a loaded machine
    code = main(["profile", "run", "--interval", "100ms", "-o", str(target), "-f", "json", "--",
                 sys.executable, "-c", "import time; time.sleep(2); raise SystemExit(5)"])
    out, err = capsys.readouterr()
    assert code == 5
    document = json.loads(out)
    assert document["exit_code"] == 5
    assert document["n_samples"] >= 3
    assert document["gpu"].startswith("no NVIDIA GPU found")
    assert {row["metric"] for row in document["summary"]} >= {"cpu_cores", "mem_bytes"}
    assert f"wrote {target}" in err
    samples = pl.read_parquet(target)
    assert samples.select(TELEMETRY.names()).schema == TELEMETRY
    assert samples["workload"].unique().to_list() == [Path(sys.executable).name]
    assert samples["phase"].null_count() == 0
    assert all(row["phase"] for row in document["summary"])  # peak and P95 per phase


def test_unwritable_output_fails_before_the_command_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = tmp_path / "ran"
    code = main(["profile", "run", "-o", str(tmp_path / "missing" / "x.parquet"), "--",
                 "touch", str(marker)])
    _, err = capsys.readouterr()
    assert code == 3
    assert err.startswith(f"Error: {tmp_path / 'missing' / 'x.parquet'}: folder")
    assert not marker.exists()


def test_command_not_found_is_127(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["profile", "run", "--", "no-such-command-xyz"]) == 127
    assert capsys.readouterr().err == "Error: command not found: no-such-command-xyz\n"


def test_attach_missing_pid_is_3(capsys: pytest.CaptureFixture[str]) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    assert main(["profile", "attach", str(dead.pid)]) == 3
    assert capsys.readouterr().err == f"Error: no process with PID {dead.pid}\n"


def wait_for(flag: Path, timeout_s: float = 60.0) -> None:
    """Block until ``flag`` exists: the readiness signal of a child process."""
    deadline = time.monotonic() + timeout_s
    while not flag.exists():
        assert time.monotonic() < deadline, f"{flag} never appeared"
        time.sleep(0.05)


def wait_for_samples(stream: IO[str], at_least: int) -> None:
    """Read heartbeat lines (``sampling NAME: N samples, ...``) until one shows ``at_least``
    samples taken: the readiness signal for Ctrl-C, however loaded the machine is.
    """
    for line in stream:
        match = re.match(r"sampling .+: ([\d,]+) samples, ", line)
        if match and int(match.group(1).replace(",", "")) >= at_least:
            return
    pytest.fail(f"the sampler ended before {at_least} samples")


def test_ctrl_c_keeps_every_sample(tmp_path: Path) -> None:
    target = tmp_path / "interrupted.parquet"
    ready = tmp_path / "ready"
    sampler = subprocess.Popen(
        [sys.executable, "-m", "foresize.cli.main", "profile", "run", "--interval", "100ms",
         "-o", str(target), "-f", "json", "--", sys.executable, "-c",
         f"import pathlib, time; pathlib.Path({str(ready)!r}).touch(); time.sleep(60)"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "FORESIZE_HEARTBEAT_S": "0.1"},
    )
    assert sampler.stderr is not None
    assert sampler.stderr.readline().startswith("sampling")  # the sampler's readiness line
    wait_for(ready)  # and the workload runs
    wait_for_samples(sampler.stderr, 2)
    sampler.send_signal(signal.SIGINT)
    out, err = sampler.communicate(timeout=60)
    assert sampler.returncode == 130, err
    document = json.loads(out)
    assert document["interrupted"] is True
    samples = pl.read_parquet(target)
    assert samples["ts"].n_unique() == document["n_samples"] >= 2
    assert not list(tmp_path.glob(".*.tmp"))


def test_attach_stops_on_ctrl_c_and_keeps_samples(tmp_path: Path) -> None:
    target = tmp_path / "attached.csv"
    workload = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        sampler = subprocess.Popen(
            [sys.executable, "-m", "foresize.cli.main", "profile", "attach", str(workload.pid),
             "--interval", "100ms", "-o", str(target)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "FORESIZE_HEARTBEAT_S": "0.1"},
        )
        assert sampler.stderr is not None
        assert sampler.stderr.readline().startswith("sampling")  # readiness, after start-up
        wait_for_samples(sampler.stderr, 2)
        sampler.send_signal(signal.SIGINT)
        _, err = sampler.communicate(timeout=30)
        assert sampler.returncode == 130, err
        assert workload.poll() is None  # attach never stops the process it watches
    finally:
        workload.kill()
        workload.wait()
    samples = pl.read_csv(target)
    assert samples["ts"].n_unique() >= 2  # samples every 100 ms, kept after Ctrl-C
    assert f"wrote {target}" in err
