from __future__ import annotations

import csv
import gzip
import io
import tarfile
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from foresize.core.errors import InputError
from foresize.core.schemas import TELEMETRY
from foresize.ingest.tabular import parse_mapping, read_telemetry, scan_telemetry

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_long_csv_with_epoch_seconds(tmp_path: Path) -> None:
    path = write(tmp_path / "t.csv", "workload,metric,ts,value\nsvc,qps,1767225600,3.5\n"
                 "svc,qps,1767225660,4\n")
    frame, report = read_telemetry(path)
    assert frame.schema == TELEMETRY
    assert frame["ts"].to_list() == [T0, T0.replace(minute=1)]
    assert frame["value"].to_list() == [3.5, 4.0]
    assert report.rows_in == report.rows_out == 2
    assert report.sha256 is not None


def test_wide_csv_melts_numeric_columns(tmp_path: Path) -> None:
    path = write(tmp_path / "wide.csv", "time,pod,gpu_util_pct,mem_bytes,note\n"
                 "2026-01-01 00:00:00,p1,50,1024,x\n2026-01-01 00:01:00,p1,60,2048,y\n")
    frame, _ = read_telemetry(path, mapping=parse_mapping("ts=time,workload=pod"))
    assert sorted(frame["metric"].unique().to_list()) == ["gpu_util_pct", "mem_bytes"]
    assert frame.filter(pl.col("metric") == "mem_bytes")["value"].to_list() == [1024.0, 2048.0]


def test_value_only_file_takes_metric_and_workload_from_options(tmp_path: Path) -> None:
    path = write(tmp_path / "gpu.csv", "t,util\n0,1\n60,2\n")
    frame, _ = read_telemetry(path, mapping=parse_mapping("ts=t,value=util"),
                              metric="gpu_util_pct", workload="job-1")
    assert set(frame["metric"]) == {"gpu_util_pct"}
    assert set(frame["workload"]) == {"job-1"}


def test_parquet_round_trip(tmp_path: Path) -> None:
    source = pl.DataFrame({"workload": ["a", "a"], "metric": ["qps", "qps"],
                           "ts": [T0, T0.replace(minute=5)], "value": [1.0, 2.0]},
                          schema=TELEMETRY)
    path = tmp_path / "t.parquet"
    source.write_parquet(path)
    frame, _ = read_telemetry(path)
    assert frame.equals(source)


def test_real_gentd26_csv_with_mapping(gentd26_dir: Path) -> None:
    lazy = scan_telemetry(gentd26_dir / "queue_size_raw_anon.tar.gz",
                          mapping=parse_mapping("ts=timestamp_anon,workload=container_ip"),
                          metric="queue_len")
    with tarfile.open(gentd26_dir / "queue_size_raw_anon.tar.gz") as raw:
        member = raw.extractfile(raw.getmembers()[0])
        assert member is not None
        lines = member.read().decode().splitlines()[1:]
    assert lazy.collect().height == len(lines)


@pytest.mark.parametrize(
    ("content", "mapping", "message"),
    [
        ("a,b\n1,2\n", None, r"missing required column 'ts' \(found: a, b\)"),
        ("ts,workload,metric,value\n1,w,qps,high\n", None,
         r"row 1: column 'value' holds 'high', expected a number$"),
        ("ts,w\n1,2\n", "ts=ts,workload=pod", r"--map workload=pod: no column 'pod'"),
        (
            "ts,workload,metric,value\n2026-01-01,w,qps,1\n2026-13-01,w,qps,1\n",
            None,
            r"t.csv: row 2: column 'ts' value '2026-13-01' is not a timestamp",
        ),
    ],
)
def test_bad_files_raise_one_line_input_errors(
    tmp_path: Path, content: str, mapping: str | None, message: str
) -> None:
    path = write(tmp_path / "t.csv", content)
    with pytest.raises(InputError, match=message) as info:
        read_telemetry(path, mapping=parse_mapping(mapping))
    assert "\n" not in str(info.value)
    assert str(path) in str(info.value)


def test_missing_and_empty_files(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        read_telemetry(tmp_path / "nope.csv")
    with pytest.raises(InputError, match="file is empty"):
        read_telemetry(write(tmp_path / "empty.csv", ""))


def test_corrupt_parquet(tmp_path: Path) -> None:
    good = tmp_path / "good.parquet"
    pl.DataFrame({"ts": [1], "value": [1.0]}).write_parquet(good)
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(InputError, match=r"bad.parquet: unreadable"):
        read_telemetry(bad)


def test_truncated_tar_gz(tmp_path: Path) -> None:
    payload = ("value,timestamp_anon,container_ip\n" + "1.0,1662858720.0,abc\n" * 5000).encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("x.csv")
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    data = buffer.getvalue()
    path = tmp_path / "x.tar.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=r"x.tar.gz: truncated or corrupt tar.gz"):
        read_telemetry(path)
    assert gzip.decompress(data)  # the intact archive was valid


def test_mapping_syntax_errors() -> None:
    with pytest.raises(InputError, match="is not KEY=COLUMN"):
        parse_mapping("ts")
    with pytest.raises(InputError, match="unknown key 'time'"):
        parse_mapping("time=t")


cells = st.one_of(
    st.integers(-5, 1_800_000_000).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.sampled_from(["", "NULL", "nan", "2026-01-01 00:00:00", "2026-13-01", "x", "-1"]),
    st.text(alphabet="abc,\"\n 0123456789.-", max_size=6),
)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.tuples(st.sampled_from(["w1", "w2", ""]), st.sampled_from(["qps", "x"]),
                               cells, cells), max_size=25))
def test_generic_csv_property(tmp_path: Path, rows: list[tuple[str, str, str, str]]) -> None:
    path = tmp_path / "prop.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["workload", "metric", "ts", "value"])
        writer.writerows(rows)
    try:
        frame, report = read_telemetry(path)
    except InputError:
        return
    assert frame.schema == TELEMETRY
    assert report.rows_in == report.rows_out + report.n_dropped == len(rows)
    assert frame.equals(frame.sort("workload", "metric", "ts"))
    assert frame["ts"].dtype == pl.Datetime("us", "UTC")


def _real_queue_extract(gentd26_dir: Path) -> pl.DataFrame:
    """GenTD26's queue_rt_raw_anon (23,478 rows) from the upstream tar.gz, all as text."""
    with tarfile.open(gentd26_dir / "queue_rt_raw_anon.tar.gz") as raw:
        member = raw.extractfile(raw.getmembers()[0])
        assert member is not None
        return pl.read_csv(member.read(), infer_schema=False)


_QUEUE_MAP = parse_mapping("ts=timestamp_anon,workload=container_ip")


@pytest.mark.parametrize(
    ("stamp", "offset_s"),
    [
        ("%Y-%m-%dT%H:%M:%SZ", 0),
        ("%Y-%m-%dT%H:%M:%S+00:00", 0),
        ("%Y-%m-%dT%H:%M:%S.%fZ", 0),
        ("%Y-%m-%dt%H:%M:%Sz", 0),  # RFC 3339 allows lower case
        ("%Y-%m-%dT%H:%M:%S+02:00", 7200),  # local time two hours east of UTC
        ("%Y-%m-%d %H:%M:%S.%f-05:30", -19800),
        ("%Y-%m-%dT%H:%M:%S+0100", 3600),
    ],
)
def test_rfc3339_and_zoned_iso_timestamps_read_as_their_utc_instant(
    tmp_path: Path, gentd26_dir: Path, stamp: str, offset_s: int
) -> None:
    # synthetic only in its spelling: the real extract's epoch seconds rewritten as zoned
    # text (real traces ship epoch numbers), each shifted by its offset so that the
    # instant, and so the canonical frame, stays the same
    real = _real_queue_extract(gentd26_dir)
    (tmp_path / "epoch.csv").write_text(real.write_csv())
    rewritten = real.with_columns(
        timestamp_anon=pl.Series([
            datetime.fromtimestamp(float(t) + offset_s, UTC).strftime(stamp)
            for t in real["timestamp_anon"]
        ])
    )
    (tmp_path / "zoned.csv").write_text(rewritten.write_csv())
    expected, expected_report = read_telemetry(tmp_path / "epoch.csv", mapping=_QUEUE_MAP,
                                               metric="queue_wait_s")
    frame, report = read_telemetry(tmp_path / "zoned.csv", mapping=_QUEUE_MAP,
                                   metric="queue_wait_s")
    assert frame.height == expected.height > 20_000
    assert frame.equals(expected)
    assert report.dropped == expected_report.dropped


def test_naive_text_timestamps_are_taken_as_utc(tmp_path: Path) -> None:
    path = write(tmp_path / "t.csv", "workload,metric,ts,value\nw,qps,2026-01-01 00:00:00,1\n"
                 "w,qps,2026-01-01T00:01:00Z,2\n")
    frame, _ = read_telemetry(path)
    assert frame["ts"].to_list() == [T0, datetime(2026, 1, 1, 0, 1, tzinfo=UTC)]


def test_missing_value_spellings_are_dropped_and_counted(
    tmp_path: Path, gentd26_dir: Path
) -> None:
    # the real extract with some values blanked the ways other tools write "missing"
    real = _real_queue_extract(gentd26_dir)
    spellings = ["nan", "NaN", "NA", "null", "None", ""]
    blanked = real.with_columns(
        value=pl.when(pl.int_range(pl.len()) < len(spellings))
        .then(pl.Series(spellings + [""] * (real.height - len(spellings))))
        .otherwise(pl.col("value"))
    )
    path = write(tmp_path / "blanked.csv", blanked.write_csv())
    frame, report = read_telemetry(path, mapping=_QUEUE_MAP, metric="queue_wait_s")
    assert report.rows_in == real.height
    assert report.dropped == {"missing_value": 4, "nan_value": 2}
    assert report.rows_out == frame.height == real.height - 6
    assert frame["value"].is_finite().all()


def test_a_number_column_with_text_names_file_column_row_and_text(
    tmp_path: Path, gentd26_dir: Path
) -> None:
    real = _real_queue_extract(gentd26_dir)
    bad = real.with_columns(
        value=pl.when(pl.int_range(pl.len()) == 700).then(pl.lit("abc"))
        .otherwise(pl.col("value"))
    )
    path = write(tmp_path / "bad.csv", bad.write_csv())
    with pytest.raises(InputError) as caught:
        read_telemetry(path, mapping=_QUEUE_MAP, metric="queue_wait_s")
    assert str(caught.value) == f"{path}: row 701: column 'value' holds 'abc', expected a number"
