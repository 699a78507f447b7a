"""Request traces: the Azure LLM traces through the registry, any file through --map."""

from __future__ import annotations

from pathlib import Path

import pytest

from foresize.core.errors import InputError, SchemaMismatchError
from foresize.ingest.requests import (
    AZURE_COLUMNS,
    REQUEST_TRACE,
    parse_request_mapping,
    read_request_source,
    read_requests,
    replay,
)


@pytest.mark.parametrize(
    ("table", "rows", "input_mean", "output_mean"),
    [("code", 8_819, 2_047.848, 27.883), ("conv", 19_366, 1_154.697, 211.126)],
)
def test_the_azure_traces_read_through_the_registry_with_known_counts(
    mirror: Path, table: str, rows: int, input_mean: float, output_mean: float
) -> None:
    frame, report = read_request_source(f"azure-llm:{table}", mirror=mirror)
    assert frame.schema == REQUEST_TRACE
    assert (report.rows_in, report.rows_out) == (rows, rows)
    assert (report.reordered, report.dropped) == (0, {})
    assert frame["input_tokens"].mean() == pytest.approx(input_mean, abs=1e-3)
    assert frame["output_tokens"].mean() == pytest.approx(output_mean, abs=1e-3)
    assert frame["ts"].is_sorted()
    assert report.sha256 is not None
    assert len(report.sha256) == 64


def _write(tmp_path: Path, text: str, name: str = "t.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_map_reads_other_column_names_and_json_lines(tmp_path: Path) -> None:
    csv = _write(tmp_path, "t,p,g,m\n10,5,2,a\n11,7,3,b\n")
    frame, _ = read_requests(csv, mapping=parse_request_mapping(
        "ts=t,input_tokens=p,output_tokens=g,model=m"))
    assert frame.columns == ["ts", "input_tokens", "output_tokens", "model"]
    assert frame["input_tokens"].to_list() == [5, 7]
    lines = _write(tmp_path, '{"ts": 1, "input_tokens": 3, "output_tokens": 4}\n'
                   '{"ts": 2, "input_tokens": 5, "output_tokens": 6}\n', "t.jsonl")
    frame, _ = read_requests(lines)
    assert frame["output_tokens"].to_list() == [4, 6]
    with pytest.raises(InputError, match="unknown key 'prompt'"):
        parse_request_mapping("prompt=p")
    with pytest.raises(SchemaMismatchError, match="missing ts, input_tokens, output_tokens"):
        read_requests(csv)


def test_unsorted_and_duplicate_rows_are_sorted_dropped_and_counted(tmp_path: Path) -> None:
    path = _write(tmp_path, "ts,input_tokens,output_tokens\n3,1,1\n1,2,2\n2,3,3\n2,3,3\n2,4,4\n")
    frame, report = read_requests(path)
    assert frame["input_tokens"].to_list() == [2, 3, 4, 1]
    assert (report.rows_in, report.rows_out, report.reordered) == (5, 4, 4)
    assert report.dropped == {"duplicate_row": 1}
    assert report.rows_in == report.rows_out + report.n_dropped
    assert "share an arrival time" in report.notes[0]


@pytest.mark.parametrize("bad", ["0", "-3", "2.5"])
def test_a_token_count_that_is_not_a_positive_whole_number_is_an_input_error(
    tmp_path: Path, bad: str
) -> None:
    path = _write(tmp_path, f"ts,input_tokens,output_tokens\n1,4,4\n2,5,{bad}\n")
    with pytest.raises(InputError, match=r"row 2: output_tokens = .*1 rows fail") as info:
        read_requests(path)
    assert info.value.exit_code == 3


def test_replay_scales_the_rate_and_splices_copies_conserving_requests(mirror: Path) -> None:
    frame, _ = read_request_source("azure-llm:code", mirror=mirror)
    us = frame["ts"].dt.epoch("us")
    span = (int(us.max() or 0) - int(us.min() or 0)) / 1e6
    _, info = replay(frame, rate_scale=4.0)
    assert info.n_requests == frame.height
    assert info.duration_s == pytest.approx(span / 4, rel=1e-6)
    longer, info = replay(frame, rate_scale=2.0, splice=3)
    assert longer.height == 3 * frame.height
    assert longer["ts"].is_sorted()
    assert longer["input_tokens"].sum() == 3 * frame["input_tokens"].sum()
    assert info.describe() == "rate x2, spliced x3"
    assert replay(frame)[1].describe() == "as recorded"
    with pytest.raises(InputError, match="--rate-scale"):
        replay(frame, rate_scale=0)


def test_rfc3339_arrivals_read_as_the_same_instants(mirror: Path, tmp_path: Path) -> None:
    # synthetic only in its spelling: the real Azure code trace with its naive UTC stamps
    # rewritten as RFC 3339 ('T' and 'Z'), as many exporters write them
    expected, _ = read_request_source("azure-llm:code", mirror=mirror)
    azure = mirror.parent / "azure-llm-inference-2023" / "AzureLLMInferenceTrace_code.csv"
    lines = azure.read_text().splitlines()
    zoned = [lines[0]] + [line.replace(" ", "T", 1).replace(",", "Z,", 1) for line in lines[1:]]
    assert zoned[1].startswith("2023-11-16T18:17:03.9799600Z,")
    frame, report = read_requests(_write(tmp_path, "\n".join(zoned) + "\n"),
                                  mapping=AZURE_COLUMNS)
    assert report.rows_out == 8_819
    assert frame.equals(expected)
