"""One test per exit code (cli.md): the code a script branches on and the one line a
person reads. Inputs are the real traces in the mirror; where a case needs a file the
traces cannot show (a bad cell, an unwritable place) it is built from a real extract.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from foresize import __version__
from foresize.cli.main import main

REFERENCE = Path(__file__).resolve().parents[2] / "src/foresize/graph/reference/llama-2-7b.json"
QUEUE_MAP = "ts=timestamp_anon,workload=container_ip"


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def _error(err: str) -> str:
    """The one error line (a hint may follow), never a traceback."""
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if not line.startswith("Hint: ")]
    errors = [line for line in lines if line.startswith("Error: ")]
    assert len(errors) == 1, err
    return errors[0]


@pytest.fixture(scope="module")
def queue_csv(gentd26_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """GenTD26's real queue_rt_raw_anon table as a plain CSV."""
    path = tmp_path_factory.mktemp("queue") / "queue_rt.csv"
    with tarfile.open(gentd26_dir / "queue_rt_raw_anon.tar.gz") as raw:
        member = raw.extractfile(raw.getmembers()[0])
        assert member is not None
        path.write_bytes(member.read())
    return path


def _profile(source: Path, *extra: str) -> list[str]:
    return ["profile", "telemetry", str(source), "--map", QUEUE_MAP, "--as-metric",
            "queue_wait_s", *extra]


# 0 -------------------------------------------------------------------------------------

def test_0_version_writes_json_like_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(["version", "-f", "json"], capsys)
    assert code == 0
    assert json.loads(out) == {"foresize_version": __version__}
    code, out, _ = _run(["version"], capsys)
    assert (code, out) == (0, f"foresize {__version__}\n")


# 2: a bad flag or flag value, found before any data is read ------------------------------

@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["version", "-f", "jsn"], "Error: unknown format 'jsn'; valid: "),
        (["profile", "model", str(REFERENCE), "--device", "h900"],
         "Error: unknown device 'h900'; valid: "),
        (["recommend", "alibaba-gentd26:memory_util", "--risk", "0.9"],
         "Error: --risk must be in (0, 0.5], got 0.9; e.g. --risk 0.01"),
    ],
)
def test_2_bad_flag_values(
    args: list[str], line: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(args, capsys)
    assert (code, out) == (2, "")
    assert _error(err).startswith(line)


def test_2_a_close_name_gets_did_you_mean(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(["profile", "model", str(REFERENCE), "--device", "h900"], capsys)
    assert code == 2
    assert _error(err).endswith("Did you mean 'h200'?")
    code, _, err = _run(["version", "-f", "jsn"], capsys)
    assert code == 2
    assert _error(err).endswith("Did you mean 'json'?")


def test_2_a_horizon_that_is_not_a_duration(
    mirror: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _run(["forecast", "run", "alibaba-gentd26:gpu_duty_cycle", "--mirror",
                         str(mirror), "--horizon", "banana"], capsys)
    assert code == 2
    assert _error(err) == ("Error: --horizon 'banana' is neither a number of steps nor a "
                           "duration like 2m")


def test_2_a_horizon_longer_than_the_history_names_the_history_unless_forced(
    mirror: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["forecast", "run", "alibaba-gentd26:gpu_duty_cycle", "--mirror", str(mirror),
            "--model", "naive", "-f", "json"]
    code, out, err = _run([*base, "--horizon", "400d"], capsys)
    assert (code, out) == (2, "")
    assert _error(err) == (
        "Error: --horizon 400d is 606,316 steps of 57.0s, longer than the history "
        "(22h 48m, 1,441 steps in the longest series)")
    assert "--force" in err
    code, _, err = _run([*base, "--horizon", "1442"], capsys)
    assert code == 2
    code, out, _ = _run([*base, "--horizon", "1442", "--force"], capsys)
    assert code == 0
    assert json.loads(out)["parameters"]["horizon_steps"] == 1442


def test_2_recommend_refuses_a_horizon_its_history_cannot_speak_to(
    mirror: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    memory = str(Path(__file__).resolve().parents[2] / "examples/memory-am.parquet")
    # right-sizing: the calibration cannot split a 10 h history around a 30 d future
    code, out, err = _run(["recommend", memory, "--horizon", "30d"], capsys)
    assert (code, out) == (2, "")
    assert _error(err) == ("Error: --horizon 30d is longer than the history (10h 47m in the "
                           "longest workload)")
    code, out, _ = _run(["recommend", memory, "--horizon", "30d", "--force", "-f", "json"],
                        capsys)
    forced = json.loads(out)
    code, out, _ = _run(["recommend", memory, "--horizon", "38874s", "-f", "json"], capsys)
    longest = json.loads(out)
    # forced, it is sized as for a horizon as long as the (here equal) histories
    assert [r["bounds"]["uncapped"] for r in forced["recommendations"]] == [
        r["bounds"]["uncapped"] for r in longest["recommendations"]]
    # a scaling plan: a forecast 10 times longer than the series it extrapolates
    code, out, err = _run(["recommend", "alibaba-gentd26:qps", "--mirror", str(mirror),
                           "--capacity", "0.5", "--horizon", "10d"], capsys)
    assert (code, out) == (2, "")
    assert _error(err) == ("Error: --horizon 10d is 7,579 steps of 1m 54s, longer than the "
                           "history (22h 21m, 706 steps in the longest workload)")
    assert "--force" in err


# 3: bad input data or an output that cannot be written -------------------------------------

def test_3_text_in_a_number_column_names_file_column_and_row(
    queue_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = queue_csv.read_text().splitlines()
    _, rest = lines[500].split(",", 1)
    lines[500] = "abc," + rest
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(lines) + "\n")
    code, out, err = _run(_profile(bad), capsys)
    assert (code, out) == (3, "")
    assert _error(err) == f"Error: {bad}: row 500: column 'value' holds 'abc', expected a number"


@pytest.mark.parametrize(
    ("where", "line"),
    [
        ("missing/dir/x.json", "{tmp}/missing/dir/x.json: folder {tmp}/missing/dir does not exist"),
        ("queue_rt.csv/x.json", "{tmp}/queue_rt.csv/x.json: {tmp}/queue_rt.csv is a file, not a "
         "folder"),
        (".", "{tmp}: is a folder; name a file to write"),
    ],
)
def test_3_an_output_path_that_cannot_be_written_fails_before_the_work(
    queue_csv: Path, where: str, line: str, capsys: pytest.CaptureFixture[str]
) -> None:
    tmp = queue_csv.parent
    code, out, err = _run([*_profile(queue_csv), "-o", f"{tmp}/{where}"], capsys)
    assert (code, out) == (3, "")
    assert _error(err) == "Error: " + line.format(tmp=tmp)
    assert "rows read" not in err  # nothing was read: the check came first
    assert not (tmp / "missing").exists()


@pytest.mark.skipif(not Path("/sys/kernel").is_dir(), reason="needs Linux sysfs")
def test_3_a_folder_that_refuses_files_is_named(
    queue_csv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _run([*_profile(queue_csv), "-o", "/sys/x.json"], capsys)
    assert code == 3
    assert _error(err).startswith("Error: /sys/x.json: cannot write here (")


def _limited(bytes_: int) -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (bytes_, bytes_))


def test_3_a_full_disk_during_the_write_leaves_no_file(
    queue_csv: Path, tmp_path: Path
) -> None:
    # a file size limit makes the kernel refuse the write (EFBIG) as a full disk would
    # (ENOSPC); Python ignores SIGXFSZ, so the write fails instead of killing the process
    target = tmp_path / "profile.json"
    done = subprocess.run(
        [sys.executable, "-m", "foresize.cli.main", *_profile(queue_csv), "-o", str(target)],
        capture_output=True, text=True, preexec_fn=lambda: _limited(512), check=False,
    )
    assert done.returncode == 3, done.stderr
    assert f"Error: {target}: no space left to write it" in done.stderr
    assert "Traceback" not in done.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_3_outputs_follow_the_umask(
    queue_csv: Path, tmp_path: Path, umask: int, mode: int
) -> None:
    target = tmp_path / "profile.json"
    done = subprocess.run(
        [sys.executable, "-m", "foresize.cli.main", *_profile(queue_csv), "-o", str(target)],
        capture_output=True, text=True, preexec_fn=lambda: os.umask(umask) and None,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert target.stat().st_mode & 0o777 == mode


# 4 ------------------------------------------------------------------------------------

def test_4_nothing_to_produce(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # every value of this file is missing (spelled as pandas and R write it)
    source = tmp_path / "t.csv"
    source.write_text("workload,metric,ts,value\nw,qps,0,nan\nw,qps,60,NA\n")
    code, out, err = _run(["forecast", "run", str(source), "--model", "naive"], capsys)
    assert (code, out) == (4, "")
    assert "2 rows read, 0 kept; dropped missing_value=1, nan_value=1" in err
    assert _error(err) == f"Error: {source}: no samples left to forecast"


# 5 ------------------------------------------------------------------------------------

def _backtest(source: Path, *extra: str) -> list[str]:
    return ["forecast", "backtest", str(source), "--map", QUEUE_MAP, "--as-metric",
            "queue_wait_s", "--models", "naive,seasonal_naive", *extra]


def test_5_a_broken_gate_keeps_the_output_and_names_the_rows(
    queue_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "bt.json"
    code, _, err = _run(_backtest(queue_csv, "--check", "mase<=0.01", "--check",
                                  "coverage_95>=0", "-o", str(target)), capsys)
    assert code == 5
    rows = json.loads(target.read_text())["results"]  # written before the gate is judged
    line = _error(err)
    assert line.startswith(f"Error: check failed: mase<=0.01 broken by {len(rows)} of "
                           f"{len(rows)} rows: ")
    for row in rows:
        assert f"{row['model']} ({row['mase']:.4g})" in line
    assert "coverage_95" not in line  # the gate that holds is not reported


def test_5_gates_that_hold_exit_0(queue_csv: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(_backtest(queue_csv, "--check", "mase<1e9", "--check",
                                  "coverage_95>=0", "-f", "json"), capsys)
    assert code == 0
    assert json.loads(out)["results"]


def test_2_a_gate_that_is_malformed_or_names_no_column(
    queue_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # malformed: refused as the flag is read, before the (missing) file is opened
    code, _, err = _run(_backtest(tmp_path / "absent.csv", "--check", "mase=1"), capsys)
    assert code == 2
    assert "--check 'mase=1' is not COLUMN OP NUMBER" in err
    # a typo in the column: a usage error with the valid columns, and nothing written
    target = tmp_path / "bt.json"
    code, _, err = _run(_backtest(queue_csv, "--check", "mse<=1", "-o", str(target)), capsys)
    assert code == 2
    assert "unknown --check column 'mse'" in _error(err)
    assert "Did you mean 'mase'?" in err
    assert not target.exists()


# 141 ----------------------------------------------------------------------------------

def test_141_a_reader_that_closes_the_pipe_is_not_a_crash() -> None:
    # `foresize ... | head`: the reader leaves before the JSON is written
    command = subprocess.Popen(
        [sys.executable, "-m", "foresize.cli.main", "-q", "recommend",
         str(Path(__file__).resolve().parents[2] / "examples/memory-am.parquet"), "-f", "json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    assert command.stdout is not None
    assert command.stderr is not None
    command.stdout.close()
    err = command.stderr.read().decode()
    assert (command.wait(timeout=120), err) == (141, "")


# 130 ----------------------------------------------------------------------------------

_FINALISER = """
import sys
import time
from foresize.cli.errors import redeliver_swallowed_interrupts
if sys.argv[1] == "hook":
    sys.unraisablehook = redeliver_swallowed_interrupts
class Finaliser:
    def __del__(self):
        raise KeyboardInterrupt  # what a Ctrl-C that lands in a finaliser raises
try:
    Finaliser()
    for _ in range(200):  # the redelivery comes from another thread: wait up to 2 s
        time.sleep(0.01)
    print("ran on")
except KeyboardInterrupt:
    print("interrupted")
"""


@pytest.mark.parametrize(("hook", "outcome"), [("hook", "interrupted"), ("none", "ran on")])
def test_130_a_ctrl_c_in_a_finaliser_still_interrupts(hook: str, outcome: str) -> None:
    # Python swallows an exception raised in a __del__ or weakref callback (a real Ctrl-C
    # once landed in an import lock's callback and `evaluate all` ran to its end); the
    # foresize process's hook delivers it again. "none" shows what Python does without it.
    run = subprocess.run([sys.executable, "-c", _FINALISER, hook], capture_output=True,
                         text=True, timeout=120, check=True)
    assert run.stdout.strip() == outcome
    assert ("Exception ignored" in run.stderr) == (hook == "none"), run.stderr


def test_130_the_foresize_process_installs_the_hook() -> None:
    script = ("import sys; from foresize.cli import main as m, errors as e; sys.argv = "
              "['foresize', 'version']\ntry:\n    m.main()\nexcept SystemExit:\n"
              "    print(sys.unraisablehook is e.redeliver_swallowed_interrupts)")
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=120, check=True)
    assert run.stdout.strip().splitlines()[-1] == "True"


_SIGINT_OWNER = """
import ctypes, signal, sys

class Action(ctypes.Structure):  # glibc's struct sigaction on x86-64 and aarch64
    _fields_ = [("handler", ctypes.c_void_p), ("mask", ctypes.c_ulong * 16),
                ("flags", ctypes.c_int), ("restorer", ctypes.c_void_p)]

def handler():
    old = Action()
    assert ctypes.CDLL(None, use_errno=True).sigaction(signal.SIGINT, None, ctypes.byref(old)) == 0
    return old.handler

python = handler()
import polars
after_polars = handler()
from foresize.cli.output import python_owns_ctrl_c
python_owns_ctrl_c()
same = signal.getsignal(signal.SIGINT) is signal.default_int_handler
print(after_polars != python, handler() == python, same)
"""


def test_130_ctrl_c_is_python_s_again_once_work_starts() -> None:
    # polars puts its own SIGINT handler in Python's place when it loads, and with it a
    # Ctrl-C sometimes ended `forecast backtest` at once (130, no output, no message);
    # every progress bar gives SIGINT back to Python's handler first
    run = subprocess.run([sys.executable, "-c", _SIGINT_OWNER], capture_output=True, text=True,
                         timeout=120, check=True)
    assert run.stdout.split() == ["True", "True", "True"], run.stderr
