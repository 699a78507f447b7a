"""``foresize forecast``: the run and backtest commands on the real GenTD26 trace."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from foresize.cli.main import main

GPU = "alibaba-gentd26:gpu_duty_cycle"
FEW = ["--workload", "0e*"]  # four real containers


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_forecast_json_with_phases(mirror: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        ["forecast", GPU, "--mirror", str(mirror), *FEW, "--model", "naive",
         "--horizon", "10m", "--by-phase", "-f", "json"],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    document = json.loads(out)
    assert document["parameters"]["horizon_steps"] == 11  # ceil(600 s / 57 s)
    assert document["panel"]["step_s"] == 57
    rows = document["forecasts"]
    assert len(rows) == 11 * document["panel"]["series"] == 44
    assert {"mean", "lo_80", "hi_95", "phase", "phase_p95", "mixture_p95"} <= set(rows[0])
    assert all(r["lo_95"] <= r["mean"] <= r["hi_95"] for r in rows)
    assert "interpolated" in err


def test_forecast_writes_parquet_atomically(
    mirror: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "fc.parquet"
    code, _, err = run(
        ["forecast", "run", GPU, "--mirror", str(mirror), *FEW, "-m", "window_average",
         "-H", "5", "--levels", "50,90", "-o", str(target)],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    frame = pl.read_parquet(target)
    assert {"lo_50", "hi_50", "lo_90", "hi_90"} <= set(frame.columns)
    assert frame["step"].max() == 5


def test_backtest_table_ranks_models(mirror: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        ["forecast", "backtest", GPU, "--mirror", str(mirror), *FEW,
         "--models", "naive,window_average", "-f", "json"],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    results = json.loads(out)["results"]
    assert [r["model"] for r in results] == sorted(
        [r["model"] for r in results],
        key=lambda m: next(x["mase"] for x in results if x["model"] == m),
    )
    assert {r["model"] for r in results} == {"naive", "window_average"}
    assert all(0 <= r["coverage_95"] <= 1 and r["series"] == 4 for r in results)
    assert "best MASE" in err


@pytest.mark.parametrize(
    ("args", "message", "code"),
    [
        (["--model", "naiv"], "Did you mean 'naive'", 2),
        (["--horizon", "0"], "at least one step", 2),
        (["--levels", "80,120"], "between 0 and 100", 2),
        (["--metric", "qps"], "'qps' does not appear", 3),
    ],
)
def test_bad_input_is_one_line(
    args: list[str], message: str, code: int, mirror: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    got, out, err = run(["forecast", GPU, "--mirror", str(mirror), *FEW, *args], capsys)
    assert got == code
    assert out == ""
    assert message in err
    assert "Traceback" not in err


def test_backtest_engine_does_not_change_results(
    mirror: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["forecast", "backtest", GPU, "--mirror", str(mirror), *FEW, "--models", "naive",
            "-f", "json"]  # fmt: skip
    found = {}
    for engine in ("serial", "local"):
        code, out, err = run([*args, "--engine", engine], capsys)
        assert code == 0, err
        document = json.loads(out)
        assert document["parameters"]["engine"] == engine
        found[engine] = document["results"]
    for a, b in zip(found["serial"], found["local"], strict=True):
        assert a["mase"] == pytest.approx(b["mase"])
        assert a["coverage_95"] == pytest.approx(b["coverage_95"])


def test_percent_forecasts_stay_at_or_below_100(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A duty cycle that has jumped by 40 points at a time and now sits at 100 %: naive's
    band from there would reach 140 %, which no device can be busy; the same numbers
    under a unitless metric name are left as they are. (Constructed: no GenTD26 duty
    cycle sits at 100 % after such jumps, so the real trace cannot show it.)
    """
    values = ([20.0] * 30 + [60.0] * 30) * 4 + [100.0] * 30
    rows = "\n".join(f"a,{{metric}},{60 * i},{v}" for i, v in enumerate(values))
    highs = {}
    for metric in ("gpu_util_pct", "busy_units"):
        source = tmp_path / f"{metric}.csv"
        source.write_text("workload,metric,ts,value\n" + rows.format(metric=metric) + "\n")
        code, out, err = run(
            ["forecast", str(source), "--model", "naive", "--horizon", "30", "-f", "json"],
            capsys,
        )
        assert code == 0, err
        highs[metric] = max(r["hi_95"] for r in json.loads(out)["forecasts"])
    assert highs["gpu_util_pct"] == 100.0
    assert highs["busy_units"] > 100.0
