"""Every command's table read at 80 and 120 columns, on the real traces: one line per cell
(only prose columns wrap), one line of headers never broken or cut, no empty column, no
line past the width; ``--wide`` adds columns and still folds nothing.

Each command runs once (small inputs: a few workloads, one seed); its result is then drawn
at each width through the table writer, as a terminal of that width would get it.
"""

from __future__ import annotations

import io
import re
from dataclasses import replace
from itertools import pairwise
from pathlib import Path

import pytest

from foresize.cli import output
from foresize.cli.main import main
from foresize.cli.output import FitTable, Result, short_header, short_ids
from foresize.core.registry import Registry

LLAMA = str(Path(output.__file__).parents[1] / "graph" / "reference" / "llama-2-7b.json")
FEW = ["--workload", "0*"]  # 12-14 GenTD26 containers: every table shape, seconds to run
COMMANDS: dict[str, list[str]] = {
    "profile telemetry": ["profile", "telemetry", "gentd26:gpu_duty_cycle", *FEW],
    "profile phases": ["profile", "phases", "gentd26:gpu_duty_cycle", *FEW],
    "profile model": ["profile", "model", LLAMA, "--device", "h100_sxm"],
    "forecast run": ["forecast", "run", "gentd26:gpu_duty_cycle", *FEW, "--model", "naive"],
    "forecast backtest": ["forecast", "backtest", "gentd26:gpu_duty_cycle", *FEW,
                          "--models", "naive,window_average"],
    "forecast models": ["forecast", "models"],
    "recommend": ["recommend", "gentd26:memory_util", *FEW],
    "recommend --model": ["recommend", "gentd26:gpu_duty_cycle", *FEW, "--model", LLAMA],
    "simulate autoscale": [
        "simulate", "autoscale", "gentd26:lora", "--capacity", "1", "--policies", "static,hpa",
        "--pool", "name=od,gpus=2,gpu_model=A100,price=8.2,delay=3m,max=12",
        "--pool", "name=spot,gpus=2,gpu_model=A100,price=2.9,spot=1,delay=3m,max=4"],
    "simulate schedule": ["simulate", "schedule", "--placement", "best_fit,fgd", "--seeds", "1",
                          "--engine", "serial"],
    "simulate vertical": ["simulate", "vertical", "alibaba-gentd26:memory_util", "--metric",
                          "mem_util_pct", *FEW],
    "simulate serve": ["simulate", "serve", "azure-llm:code", "--model", LLAMA, "--device",
                       "h100", "--policies", "static,hpa"],
    "simulate policies": ["simulate", "policies"],
    "datasets list": ["datasets", "list"],
    "datasets info": ["datasets", "info", "gentd26"],
    "datasets verify": ["datasets", "verify", "gentd26"],
    "env": ["env"],
}
PROSE = {"description", "value", "rationale", "note"}  # free text: may wrap between words
IDS = {"workload", "series"}  # shortened to a unique prefix with an ellipsis
_RESULTS: dict[str, Result] = {}
WRITE_TABLE = output.FORMATS.get("table")  # the real writer (result_of swaps the registry)


def result_of(name: str, mirror: Path, monkeypatch: pytest.MonkeyPatch,
              capsys: pytest.CaptureFixture[str]) -> Result:
    """The Result the command hands to the table writer (run once per command)."""
    if name not in _RESULTS:
        seen: list[Result] = []
        formats: Registry[output.Writer] = Registry("format")
        formats.add("table", lambda result, handle: seen.append(result))
        monkeypatch.setattr(output, "FORMATS", formats)
        monkeypatch.setenv("FORESIZE_DATA_MIRROR", str(mirror))
        code = main(COMMANDS[name])
        assert code == 0, capsys.readouterr().err
        _RESULTS[name] = seen[0]
    return _RESULTS[name]


def draw(result: Result, width: int, *, wide: bool = False) -> str:
    """The table as the writer prints it to a terminal ``width`` columns wide."""
    handle = io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("COLUMNS", str(width))
        WRITE_TABLE(replace(result, wide=wide), handle)
    return handle.getvalue()


def problems(text: str, width: int | None) -> list[str]:
    """What a person would trip on in the drawn tables (empty when none)."""
    found = [f"line wider than {width}: {line!r}" for line in text.splitlines()
             if width is not None and len(line.rstrip()) > width]
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if "┏" in line]
    if not starts:
        found.append("no table drawn")
    for start in starts:
        offset = lines[start].index("┏")
        end = next(i for i in range(start, len(lines)) if "┡" in lines[i])
        stop = next(i for i in range(end, len(lines)) if "└" in lines[i])
        header_lines = lines[start + 1:end]
        if len(header_lines) != 1:
            found.append(f"headers broken over {len(header_lines)} lines: {header_lines}")
        bars = [offset + i for i, ch in enumerate(lines[start + 1][offset:]) if ch == "┃"]
        headers = [lines[start + 1][a + 1:b].strip() for a, b in pairwise(bars)]
        found += [f"header cut: {h!r}" for h in headers if "…" in h]
        found += ["a column without a header" for h in headers if not h]
        body = [[line[a + 1:b].strip() for a, b in pairwise(bars)]
                for line in lines[end + 1:stop]]
        for cells in body:  # a line that continues a row: first cell or most cells blank
            continued = not cells[0] or 2 * sum(not c for c in cells) > len(cells)
            for header, cell in zip(headers, cells, strict=True):
                if continued and cell and header not in PROSE:
                    found.append(f"cell of {header!r} wrapped onto a second line: {cell!r}")
                if cell.endswith("…") and (header not in IDS or len(cell) < 9):
                    found.append(f"cell of {header!r} cut: {cell!r}")
        for j, header in enumerate(headers):
            if body and not any(cells[j] for cells in body):
                found.append(f"column {header!r} is empty")
    return found


@pytest.mark.parametrize("width", [80, 120])
@pytest.mark.parametrize("name", list(COMMANDS))
def test_table_reads_at_width(name: str, width: int, mirror: Path,
                              monkeypatch: pytest.MonkeyPatch,
                              capsys: pytest.CaptureFixture[str]) -> None:
    text = draw(result_of(name, mirror, monkeypatch, capsys), width)
    assert problems(text, width) == [], text


@pytest.mark.parametrize("name", ["profile telemetry", "simulate autoscale", "forecast backtest",
                                  "recommend"])
def test_wide_adds_columns_and_folds_nothing(name: str, mirror: Path,
                                             monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    result = result_of(name, mirror, monkeypatch, capsys)
    summary, wide = draw(result, 80), draw(result, 80, wide=True)
    assert problems(wide, None) == [], wide
    header = next(line for line in summary.splitlines() if "┃" in line)
    wide_header = next(line for line in wide.splitlines() if "┃" in line)
    assert wide_header.count("┃") > header.count("┃")
    assert "--wide or -f json" in summary
    assert "--wide or -f json" not in wide


def test_autoscale_table_of_the_issue_is_readable(mirror: Path,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """Issue #22: at 120 columns this gave 19 columns ~3 characters wide ('sce/nar/io')."""
    text = draw(result_of("simulate autoscale", mirror, monkeypatch, capsys), 120)
    header = next(line for line in text.splitlines() if "┃" in line)
    names = [h.strip() for h in header.split("┃") if h.strip()]
    assert names[:6] == ["scenario", "policy", "replica h", "vs oracle", "unserved %", "cost $"]
    hpa = next(line for line in text.splitlines() if "│ hpa" in line)
    assert re.search(r"│\s+\d\.\d\dx\s+│", hpa)  # vs oracle, e.g. 1.27x, on one line


def test_end_to_end_terminal_width_and_pipe(mirror: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    """Through the real writer: COLUMNS sets the width; a pipe gets the 120-column table."""
    monkeypatch.setenv("FORESIZE_DATA_MIRROR", str(mirror))
    args = ["profile", "telemetry", "gentd26:gpu_duty_cycle", *FEW]
    monkeypatch.setenv("COLUMNS", "80")
    assert main(args) == 0
    narrow = capsys.readouterr().out
    assert problems(narrow, 80) == [], narrow
    monkeypatch.delenv("COLUMNS")
    assert main(args) == 0
    piped = capsys.readouterr().out
    assert problems(piped, output.PIPE_WIDTH) == [], piped
    assert max(len(line) for line in piped.splitlines()) > 80  # more columns than at 80


def test_the_checker_fails_on_a_squeezed_table() -> None:
    """The checker itself: a 19-column table squeezed into 80 columns (as before) fails."""
    from rich.console import Console
    from rich.table import Table

    table = Table()
    for k in range(19):
        table.add_column(f"column_name_{k}", overflow="fold")
    table.add_row(*(f"{12_345 * k:,}" for k in range(19)))
    handle = io.StringIO()
    Console(file=handle, width=80).print(table)
    found = problems(handle.getvalue(), 80)
    assert any("headers broken" in p for p in found)
    assert any("wrapped onto a second line" in p for p in found)


def test_short_ids_are_unique_prefixes() -> None:
    ids = ["00800b6d2cabe5b9ce855ec9eab6e9ff", "00800b6d9999e5b9ce855ec9eab6e9ff",
           "03dc060838ef05053bdea6d483cde7e5", "infer-assist-02"]
    assert short_ids(ids) == ["00800b6d2…", "00800b6d9…", "03dc06083…", "infer-assist-02"]
    assert short_ids(ids[2:]) == ["03dc0608…", "infer-assist-02"]  # at least 8 characters


def test_short_headers_carry_the_unit() -> None:
    assert short_header("idle_frac") == "idle %"
    assert short_header("cost_usd") == "cost $"
    assert short_header("allocated_at_90_frac") == "alloc@90 %"
    assert short_header("n_visits") == "visits"
    assert short_header("size_bytes") == "size"


def test_prose_wraps_between_words_only() -> None:
    """A description column wraps at spaces inside the width; other cells keep one line."""
    columns = [output.Col("model"), output.Col("description", prose=True)]
    text = "The last value carried forward: the anchor that MASE divides by. " * 3
    table = FitTable(columns, [["naive", text.strip()]], title=None, caption=None, wide=False)
    handle = io.StringIO()
    from rich.console import Console

    Console(file=handle, width=60).print(table)
    drawn = handle.getvalue()
    assert problems(drawn, 60) == [], drawn
    words = {w for line in drawn.splitlines() for w in line.strip("│ ").split()}
    assert words >= {"anchor", "carried", "forward:"}  # no word split across lines
