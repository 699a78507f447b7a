"""Progress of long runs: totals and ETAs from the start, heartbeats when piped, Ctrl-C
that keeps the finished work (issue 22, point 2).
"""

from __future__ import annotations

import json
import re
import threading
import time
from pathlib import Path

import pytest

from foresize.cli.output import SETTINGS, Bar, heartbeat_interval, progress
from foresize.core.errors import InputError
from tests.interrupt import interrupt_when


def test_heartbeat_line_counts_elapsed_and_eta() -> None:
    bar = Bar("backtest", 170, "series", done=40, started=time.monotonic() - 130)
    line = bar.line()
    assert line.startswith("backtest: 40/170 series, 2m10s elapsed, ETA 7m")  # 130/40*130 s
    assert Bar("backtest", 170, "series").line().endswith("ETA unknown until the first finishes")
    assert "ETA" not in Bar("rows", None).line()


@pytest.mark.parametrize("text", ["0", "-1", "soon", "nan"])
def test_heartbeat_interval_must_be_positive(text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORESIZE_HEARTBEAT_S", text)
    with pytest.raises(InputError, match="FORESIZE_HEARTBEAT_S: expected a positive number"):
        heartbeat_interval()


def test_piped_progress_beats_and_quiet_silences_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FORESIZE_HEARTBEAT_S", "0.01")
    seen = ""
    with progress("work", 3, unit="cells") as bar:  # stderr is captured: not a terminal
        bar.advance()
        deadline = time.monotonic() + 60
        while "work: 1/3 cells" not in seen:  # wait for the heartbeat itself, no fixed sleep
            assert time.monotonic() < deadline, seen
            seen += capsys.readouterr().err
            time.sleep(0.01)
    assert re.search(r"^work: 1/3 cells, [\d.ms]+ elapsed, ETA ", seen, re.M), seen
    assert "foresize-heartbeat" not in {t.name for t in threading.enumerate()}  # stopped
    capsys.readouterr()  # beats written after the loop saw one, before the bar closed
    monkeypatch.setattr(SETTINGS, "quiet", True)
    with progress("work", 3) as bar:
        bar.advance(2)
        assert "foresize-heartbeat" not in {t.name for t in threading.enumerate()}
    assert bar.done == 2  # still counted, for the interrupted summary
    assert capsys.readouterr().err == ""


def test_ctrl_c_keeps_finished_backtest_series(tmp_path: Path, mirror: Path) -> None:
    """A real backtest on GenTD26's 207 memory series, interrupted once a chunk is done."""
    target = tmp_path / "bt.json"
    beat = re.compile(r"backtest: (\d+)/(\d+) \(model, series\) pairs, ")
    seen, err = interrupt_when(
        ["forecast", "backtest", "alibaba-gentd26:memory_util", "--mirror", str(mirror),
         "--models", "naive,arima", "-o", str(target)],
        ready=lambda line: bool((m := beat.match(line)) and int(m.group(1)) >= 1),
    )  # readiness: a heartbeat that shows a finished pair
    beats = [(int(m.group(1)), int(m.group(2))) for line in seen if (m := beat.match(line))]
    assert beats[0][1] == 2 * 207  # the total shows from the first line
    document = json.loads(target.read_text())
    assert document["interrupted"] is document["partial"] is True
    assert document["pairs_total"] == 2 * document["panel"]["series"] == 2 * 207
    assert document["pairs_done"] >= beats[-1][0]
    kept = {r["model"]: r["series"] for r in document["results"]}
    assert kept["naive"] >= 1
    assert sum(kept.values()) <= document["pairs_done"]
    assert all(0 <= r["coverage_95"] <= 1 for r in document["results"])
    assert re.search(rf"^interrupted: {document['pairs_done']}/414 \(model, series\) pairs "
                     r"done, kept in the output and marked partial", err, re.M), err
    assert not list(tmp_path.glob(".*.tmp"))


def test_ctrl_c_keeps_the_series_a_per_series_model_finished(tmp_path: Path, mirror: Path) -> None:
    """`forecast run --model arima` on GenTD26's 207 memory series counts series from the
    first line; a real SIGINT after a chunk keeps that chunk's forecasts."""
    target = tmp_path / "fc.json"
    beat = re.compile(r"forecasting with arima: (\d+)/(\d+) series, ")
    seen, err = interrupt_when(
        ["forecast", "run", "alibaba-gentd26:memory_util", "--mirror", str(mirror), "--model",
         "arima", "-o", str(target)],
        ready=lambda line: bool((m := beat.match(line)) and 0 < int(m.group(1)) < 150),
    )  # readiness: a heartbeat that counts a finished chunk
    beats = [(int(m.group(1)), int(m.group(2))) for line in seen if (m := beat.match(line))]
    assert beats[0][1] == 207  # the total shows from the first line
    document = json.loads(target.read_text())
    assert document["interrupted"] is document["partial"] is True
    kept = {row["series"] for row in document["forecasts"]}
    assert beats[-1][0] <= len(kept) < 207
    assert re.search(rf"^interrupted: {len(kept)}/207 series forecast, kept in the output",
                     err, re.M), err
