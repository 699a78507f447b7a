"""``foresize evaluate``: report folders on the real traces, and bad input."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from foresize.cli.main import main
from tests.interrupt import interrupt_when


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_rightsize_report(mirror: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "report"
    code, out, err = run(
        ["evaluate", "rightsize", "--dataset", "gentd26", "--smoke", "25", "--mirror",
         str(mirror), "-o", str(folder), "-f", "json"],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    files = {Path(f["file"]).name for f in json.loads(out)["files"]}
    assert files == {"report.md", "report.json", "rightsize_frontier.png"}
    text = (folder / "report.md").read_text()
    assert "| foresize |" in text
    assert "| vpa |" in text
    assert "| oracle |" in text
    assert "foresize 0." in text
    assert "`seed=0`" in text
    document = json.loads((folder / "report.json").read_text())
    strategies = document["sections"][0]["tables"]["Strategies"]
    oracle = next(r for r in strategies if r["strategy"] == "oracle")
    assert oracle["reserved/oracle"] == pytest.approx(1.0)
    assert oracle["violated"] == 0


def test_schedule_report_has_the_papers_column(
    mirror: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "sched"
    code, _, err = run(
        ["evaluate", "schedule", "--smoke", "1", "--mirror", str(mirror), "--output-dir",
         str(folder), "--no-plots", "--engine", "serial"],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    rows = json.loads((folder / "report.json").read_text())["sections"][0]["tables"]
    table = rows["Allocated GPU share by arrived demand"]
    fgd = next(r for r in table if r["policy"] == "fgd")
    assert fgd["paper_allocated_at_100_frac"] == pytest.approx(0.9523)
    assert 0.9 < fgd["allocated_at_100_frac"] <= 1.0
    assert not list(folder.glob("*.png"))


@pytest.mark.parametrize(
    ("args", "exit_code", "message"),
    [  # names typed as flags are usage errors (2); a dataset the protocol cannot read, 3
        (["evaluate", "forecast", "--dataset", "openb"], 3, "runs on alibaba-gentd26"),
        (["evaluate", "rightsize", "--dataset", "nope"], 2, "unknown dataset 'nope'"),
        (["evaluate", "forecast", "--anchors", "sf_naiv"], 2, "Did you mean 'sf_naive'"),
        (["evaluate", "all", "--engine", "spark"], 2, "not one of serial, local, ray"),
    ],
)
def test_bad_input_leaves_no_report(
    args: list[str],
    exit_code: int,
    message: str,
    tmp_path: Path,
    mirror: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    folder = tmp_path / "never"
    code, _out, err = run([*args, "--mirror", str(mirror), "--output-dir", str(folder)], capsys)
    assert code == exit_code
    assert message in err
    assert "Traceback" not in err
    assert not folder.exists()


def test_unwritable_report_folder_fails_before_any_work(
    mirror: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    code, _, err = run(
        ["evaluate", "rightsize", "--mirror", str(mirror), "--output-dir",
         str(blocker / "report")],
        capsys,
    )
    assert code == 3
    assert f"{blocker / 'report'}: {blocker} is a file, not a folder" in err
    assert blocker.read_text() == "not a folder"


def test_a_smoke_run_too_short_to_backtest_still_reports(
    mirror: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # one series is shorter than a backtest needs: no sample figure to draw (was exit 1)
    folder = tmp_path / "report"
    code, out, err = run(
        ["evaluate", "forecast", "--smoke", "1", "--anchors", "none", "--mirror", str(mirror),
         "--output-dir", str(folder), "-f", "json"],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    files = {Path(f["file"]).name for f in json.loads(out)["files"]}
    assert {"report.md", "report.json"} <= files
    panels = {name.removesuffix("_by_horizon.png") for name in files
              if name.endswith("_by_horizon.png")}
    sampled = {name.removesuffix("_samples.png") for name in files if name.endswith("_samples.png")}
    assert sampled < panels  # the panel with nothing backtested has no samples to show


def test_ctrl_c_keeps_the_finished_kinds(mirror: Path, tmp_path: Path) -> None:
    """`evaluate all`, interrupted once the first kind is done (a real SIGINT)."""
    folder = tmp_path / "report"
    _, err = interrupt_when(
        ["evaluate", "all", "--smoke", "1", "--anchors", "none", "--no-plots", "--mirror",
         str(mirror), "--output-dir", str(folder)],
        ready=lambda line: re.match(r"evaluating: [1-3]/4 kinds, ", line) is not None,
    )  # readiness: a heartbeat that counts a finished kind
    document = json.loads((folder / "report.json").read_text())
    parameters = document["parameters"]
    assert parameters["interrupted"] is parameters["partial"] is True
    done = list(parameters["seconds"])
    assert done == ["forecast", "rightsize", "autoscale", "schedule"][: len(done)]
    assert 1 <= len(done) < 4
    assert re.search(rf"^interrupted: {len(done)}/4 kinds done \({', '.join(done)}\), kept "
                     rf"in {re.escape(str(folder))} and marked partial", err, re.M), err
    assert "partial=True" in (folder / "report.md").read_text()


def test_check_gates_every_report_table_with_the_column(
    mirror: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["evaluate", "rightsize", "--smoke", "25", "--no-plots", "--mirror", str(mirror)]
    code, _, err = run([*base, "--output-dir", str(tmp_path / "a"), "--check",
                        "violated<=1000", "--check", "slack>=-1"], capsys)
    assert code == 0, err
    folder = tmp_path / "b"
    code, _, err = run([*base, "--output-dir", str(folder), "--check", "violated<=0"], capsys)
    assert code == 5
    assert (folder / "report.json").exists()  # the evidence of why the gate broke
    line = next(x for x in err.splitlines() if x.startswith("Error: "))
    assert line.startswith("Error: check failed: violated<=0 broken by ")
    assert "vpa (" in line
    folder = tmp_path / "c"
    code, _, err = run([*base, "--output-dir", str(folder), "--check", "violatd<=0"], capsys)
    assert code == 2
    assert "unknown --check column 'violatd'" in err
    assert "Did you mean 'violated'?" in err
    assert not folder.exists()
