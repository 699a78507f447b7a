from __future__ import annotations

import hashlib
import math
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from foresize.core.errors import InputError, SchemaMismatchError, UnknownNameError
from foresize.core.schemas import TELEMETRY
from foresize.ingest.alibaba.gentd26 import (
    GENTD26_TABLES,
    LORA_REQUESTS,
    lora_arrivals,
    read_gentd26,
    read_gentd26_lora,
    scan_gentd26,
    table_for,
)

from ._helpers import (
    assert_balanced,
    assert_canonical,
    tar_dict_rows,
    truncate,
    write_csv,
    write_tar_gz,
)

T0 = 1662858720.0  # first timestamp_anon of the mirrored GenTD26 tables


def reference(rows: list[dict[str, str]], *, scale: float, gateway: bool) -> dict[str, list[float]]:
    """What the reader must keep, computed with plain Python from the raw rows.

    Empty container: the gateway's series in gateway tables, else dropped; negative
    values dropped; a repeated (container, timestamp) keeps its first valid row.
    """
    series: dict[str, list[float]] = {}
    seen: set[tuple[str, float]] = set()
    for row in rows:
        workload = row["container_ip"] or ("gateway" if gateway else "")
        value = float(row["value"])
        key = (workload, float(row["timestamp_anon"]))
        if not workload or value < 0 or key in seen:
            continue
        seen.add(key)
        series.setdefault(workload, []).append(value * scale)
    return series


@pytest.mark.parametrize(
    ("table", "file", "rows", "n_series", "dropped"),
    [
        ("gpu_duty_cycle", "pod_gpu_duty_cycle_anon", 157_417, 143, {}),
        ("memory_util", "pod_memory_util_anon", 214_890, 207,
         {"missing_key": 49, "negative_value": 1, "duplicate_ts": 1}),
        ("qps", "qps", 24_627, 108, {}),
        ("queue_size", "queue_size_raw_anon", 1_434, 1, {}),
        ("queue_rt", "queue_rt_raw_anon", 23_478, 106, {}),
    ],
)
def test_real_tables_match_an_independent_reading(
    gentd26_dir: Path, table: str, file: str, rows: int, n_series: int, dropped: dict[str, int]
) -> None:
    path = gentd26_dir / f"{file}.tar.gz"
    spec = GENTD26_TABLES[table]
    raw = tar_dict_rows(path)
    expected = reference(raw, scale=spec.scale, gateway=spec.gateway_when_empty)

    frame, report = read_gentd26(path)

    assert table_for(path) == table
    assert_canonical(frame)
    assert_balanced(report)
    assert report.rows_in == len(raw) == rows
    assert report.dropped == dropped
    assert report.rows_out == sum(len(v) for v in expected.values())
    assert report.n_series == len(expected) == n_series
    assert report.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert set(frame["metric"]) == {spec.metric}
    stats = frame.group_by("workload").agg(
        pl.col("value").mean().alias("mean"), pl.col("value").max().alias("max"), pl.len()
    )
    for workload, mean, top, count in stats.iter_rows():
        assert count == len(expected[workload])
        assert mean == pytest.approx(float(np.mean(expected[workload])), rel=1e-12)
        assert top == pytest.approx(max(expected[workload]), rel=1e-12)
    first = min(float(r["timestamp_anon"]) for r in raw)
    assert frame["ts"].min() == datetime.fromtimestamp(first, UTC)


def test_memory_util_fractions_become_percent(gentd26_dir: Path) -> None:
    raw = tar_dict_rows(gentd26_dir / "pod_memory_util_anon.tar.gz")
    values = np.array([float(r["value"]) for r in raw])
    assert values.max() < 1.0  # the README says percent; the data are fractions
    frame, _ = read_gentd26(gentd26_dir / "pod_memory_util_anon.tar.gz")
    assert frame["value"].max() == pytest.approx(values.max() * 100)
    assert frame["value"].min() >= 0.0
    assert frame["value"].max() <= 100.0


def test_qps_keeps_request_type_as_tenant_and_gateway_rows(gentd26_dir: Path) -> None:
    raw = tar_dict_rows(gentd26_dir / "qps.tar.gz")
    frame, _ = read_gentd26(gentd26_dir / "qps.tar.gz")
    kinds = Counter((r["container_ip"] == "", r["request_type"]) for r in raw)
    assert kinds == {(True, "API Requests"): 1114, (False, "Generative Requests"): 23513}
    tenants = frame.group_by(pl.col("workload") == "gateway", "tenant").len()
    assert sorted(tenants.rows()) == [(False, "generative_requests", 23513),
                                      (True, "api_requests", 1114)]


def test_queue_times_are_seconds(gentd26_dir: Path) -> None:
    raw = tar_dict_rows(gentd26_dir / "queue_rt_raw_anon.tar.gz")
    frame, _ = read_gentd26(gentd26_dir / "queue_rt_raw_anon.tar.gz")
    assert frame["value"].sum() == pytest.approx(sum(float(r["value"]) for r in raw) / 1000)
    assert set(frame["metric"]) == {"queue_wait_s"}


def test_scan_is_lazy_and_canonical_named(gentd26_dir: Path) -> None:
    lazy = scan_gentd26(gentd26_dir / "queue_size_raw_anon.tar.gz")
    assert isinstance(lazy, pl.LazyFrame)
    assert lazy.collect_schema() == TELEMETRY
    assert set(lazy.collect()["workload"]) == {"gateway"}


@pytest.mark.parametrize(
    ("name", "table"),
    [
        ("pod_gpu_duty_cycle_anon.tar.gz", "gpu_duty_cycle"),
        ("pod_memory_util_anon.csv", "memory_util"),
        ("pod_gpu_memory_used_bytes_anon.tgz", "gpu_memory"),
        ("pipeline_inference_data_anon.csv", "pipeline_inference"),
        ("qps.tar.gz", "qps"),
        ("memory_util.csv", "memory_util"),
        ("lora_request_trace.tar.gz", "lora"),
    ],
)
def test_table_for_names(name: str, table: str) -> None:
    assert table_for(Path("/x") / name) == table


def test_table_for_unknown_file_names_the_file() -> None:
    with pytest.raises(InputError, match=r"^/x/other\.csv: cannot tell the GenTD26 table"):
        table_for("/x/other.csv")


def test_gpu_memory_in_upstream_format(tmp_path: Path) -> None:
    rows = [
        [T0, 17179869184, "c1"],
        [T0 + 57, 17179869185, "c1"],
        [T0, 2147483648, "c2"],
        [T0 + 57, 1, ""],  # no container: dropped, counted
    ]
    csv_path = write_csv(tmp_path / "pod_gpu_memory_used_bytes_anon.csv",
                         ["timestamp_anon", "value", "container_ip"], rows)
    frame, report = read_gentd26(write_tar_gz(csv_path))
    assert_canonical(frame)
    assert frame.rows() == [
        ("c1", "gpu_mem_bytes", datetime.fromtimestamp(T0, UTC), 17179869184.0),
        ("c1", "gpu_mem_bytes", datetime.fromtimestamp(T0 + 57, UTC), 17179869185.0),
        ("c2", "gpu_mem_bytes", datetime.fromtimestamp(T0, UTC), 2147483648.0),
    ]
    assert report.dropped == {"missing_key": 1}
    assert report.first_row == {"missing_key": 4}


def test_latency_tables_are_distinct_metrics(tmp_path: Path) -> None:
    header = ["timestamp_anon", "value", "container_ip"]
    predict = write_csv(tmp_path / "model_predict_data_anon.csv", header,
                        [[T0, 1500.0, "c1"], [T0 + 60, 2500.0, "c1"]])
    pipeline = write_csv(tmp_path / "pipeline_inference_data_anon.csv", header,
                         [[T0, 4000.0, "c1"], [T0 + 60, 250.0, "NULL"]])
    a, _ = read_gentd26(predict)
    b, report = read_gentd26(pipeline)
    assert a.select("metric", "value").rows() == [
        ("predict_latency_s", 1.5), ("predict_latency_s", 2.5)]
    assert b.select("metric", "value").rows() == [("latency_s", 4.0)]
    assert report.dropped == {"missing_key": 1}  # "NULL" is the trace's empty container


def test_strict_names_the_row(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "pod_memory_util_anon.csv",
                     ["value", "timestamp_anon", "container_ip"],
                     [[0.5, T0, "c1"], [-0.1, T0 + 57, "c1"]])
    message = r"pod_memory_util_anon\.csv: row 2: field 'value' is negative"
    with pytest.raises(InputError, match=message):
        read_gentd26(path, strict=True)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("value,timestamp_anon\n1,2\n",
         r"missing required column 'container_ip' \(found: value, timestamp_anon\)"),
        ("value,timestamp_anon,container_ip\nhigh,1662858720,c1\n",
         r"column 'value' is String \(e\.g\. 'high'\), expected a number"),
        ("value,timestamp_anon,container_ip\n1,yesterday,c1\n",
         r"column 'timestamp_anon' is String \(e\.g\. 'yesterday'\)"),
    ],
)
def test_bad_columns_name_file_and_field(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "pod_gpu_duty_cycle_anon.csv"
    path.write_text(text)
    with pytest.raises(SchemaMismatchError, match=message) as caught:
        read_gentd26(path)
    assert str(caught.value).startswith(str(path))
    assert "\n" not in str(caught.value)


def test_truncated_archive_names_the_file(tmp_path: Path) -> None:
    rows = [[float(i), T0 + i, f"c{i % 7}"] for i in range(5000)]
    csv_path = write_csv(tmp_path / "qps_src.csv", ["value", "timestamp_anon", "container_ip"],
                         rows)
    archive = truncate(write_tar_gz(csv_path).rename(tmp_path / "pod_gpu_duty_cycle_anon.tar.gz"))
    with pytest.raises(InputError, match="truncated or corrupt") as caught:
        read_gentd26(archive)
    assert str(caught.value).startswith(str(archive))
    assert "\n" not in str(caught.value)


def test_empty_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "qps.csv"
    path.write_text("")
    with pytest.raises(InputError, match=r"qps\.csv: file is empty"):
        read_gentd26(path)


def test_unknown_table_and_lora_as_telemetry(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "x.csv", ["value", "timestamp_anon", "container_ip"], [[1, 2, "c"]])
    with pytest.raises(UnknownNameError, match="Did you mean 'qps'"):
        read_gentd26(path, table="qsp")
    with pytest.raises(InputError, match="holds requests, not telemetry"):
        read_gentd26(path, table="lora")


# --- LoRA request trace -----------------------------------------------------------------

LORA_HEADER = [
    "gmt_create", "predict_type", "predict_status", "exec_time_seconds", "groupId",
    "prompt_length", "negative_prompt_length", "num_images_per_prompt", "num_inference_steps",
    "checkpoint_model_version_id", "num_lora",
]


def test_real_lora_trace(gentd26_dir: Path) -> None:
    path = gentd26_dir / "lora_request_trace.tar.gz"
    raw = tar_dict_rows(path)
    requests, report = read_gentd26_lora(path)
    assert requests.schema == LORA_REQUESTS
    assert_balanced(report)
    assert report.rows_in == report.rows_out == len(raw) == 26_823
    assert requests["ts"].is_sorted()
    assert Counter(requests["predict_type"]) == Counter(r["predict_type"] for r in raw)
    assert dict(Counter(requests["status"])) == {
        "SUCCEED": 26392, "FAILED": 398, "PENDING": 30, "PROCESSING": 3}
    assert requests["exec_time_s"].mean() == pytest.approx(
        float(np.mean([float(r["exec_time_seconds"]) for r in raw])))
    assert requests["negative_prompt_length"].null_count() == sum(
        r["negative_prompt_length"] == "" for r in raw) == 6215
    assert requests["num_lora"].sum() == sum(int(r["num_lora"]) for r in raw)
    assert requests["ts"].min() == datetime(2024, 11, 15, 16, 57, 50, tzinfo=UTC)
    assert requests["ts"].max() == datetime(2024, 12, 8, 17, 33, 57, tzinfo=UTC)


def test_lora_drops_bad_rows_with_reasons(tmp_path: Path) -> None:
    good = ["TXT_2_IMG", "SUCCEED", "30.0", "G1", "10.0", "", "1.0", "30.0", "M1", "0"]
    rows = [
        ["2024-11-15 16:57:50", *good],
        ["2024-11-15 16:57:40", *good],  # earlier: kept, sorted, counted as reordered
        ["15/11/2024 16:57", *good],
        ["2024-11-15 16:58:00", "TXT_2_IMG", "SUCCEED", "NaN", *good[3:]],
        ["2024-11-15 16:58:00", "TXT_2_IMG", "SUCCEED", "-2", *good[3:]],
        ["2024-11-15 16:58:00", *good[:6], "2.5", *good[7:]],
    ]
    path = write_csv(tmp_path / "lora_request_trace.csv", LORA_HEADER, rows)
    requests, report = read_gentd26_lora(path)
    assert report.dropped == {"invalid_ts": 1, "invalid_exec_time": 1, "negative_exec_time": 1,
                              "invalid_num_images_per_prompt": 1}
    assert report.first_row == {"invalid_ts": 3, "invalid_exec_time": 4,
                                "negative_exec_time": 5, "invalid_num_images_per_prompt": 6}
    assert report.reordered == 1
    assert requests["ts"].to_list() == [datetime(2024, 11, 15, 16, 57, 40, tzinfo=UTC),
                                        datetime(2024, 11, 15, 16, 57, 50, tzinfo=UTC)]
    with pytest.raises(InputError, match=(
            r"lora_request_trace\.csv: row 3: field 'gmt_create' is not a time like "
            r".*\(got '15/11/2024 16:57'\); 4 invalid rows in all")):
        read_gentd26_lora(path, strict=True)


@pytest.mark.parametrize(("rows", "message"), [
    ([LORA_HEADER[:-1], ["2024-11-15 16:57:50", "TXT_2_IMG", "SUCCEED", "3", "G", "1", "", "1",
                         "30", "M"]],
     r"missing required column 'num_lora'"),
    ([LORA_HEADER, ["2024-11-15 16:57:50", "TXT_2_IMG", "SUCCEED", "half a minute", "G", "1",
                    "", "1", "30", "M", "0"]],
     r"column 'exec_time_seconds' is String \(e\.g\. 'half a minute'\), expected a number"),
])
def test_lora_bad_columns_name_file_and_field(
    tmp_path: Path, rows: list[list[str]], message: str
) -> None:
    path = write_csv(tmp_path / "lora_request_trace.csv", None, rows)
    with pytest.raises(SchemaMismatchError, match=message) as caught:
        read_gentd26_lora(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert "\n" not in str(caught.value)


def test_lora_arrivals_counts_and_zero_fills() -> None:
    ts = [datetime(2024, 1, 1, 0, 0, 5, tzinfo=UTC), datetime(2024, 1, 1, 0, 0, 50, tzinfo=UTC),
          datetime(2024, 1, 1, 0, 3, 0, tzinfo=UTC), datetime(2024, 1, 1, 0, 1, 10, tzinfo=UTC)]
    requests = pl.DataFrame({"ts": ts, "predict_type": ["A", "A", "A", "B"]},
                            schema={"ts": LORA_REQUESTS["ts"], "predict_type": pl.String})
    arrivals = lora_arrivals(requests, every="1m")
    assert_canonical(arrivals)
    minute = [datetime(2024, 1, 1, 0, m, tzinfo=UTC) for m in range(4)]
    assert arrivals.rows() == [
        *(("A", "arrivals", t, v) for t, v in zip(minute, [2.0, 0.0, 0.0, 1.0], strict=True)),
        *(("B", "arrivals", t, v) for t, v in zip(minute, [0.0, 1.0, 0.0, 0.0], strict=True)),
    ]
    with pytest.raises(InputError, match="The 'every' parameter of lora_arrivals"):
        lora_arrivals(requests, every="soon")
    assert lora_arrivals(requests.clear()).schema == TELEMETRY


def test_real_lora_arrivals_add_up(gentd26_dir: Path) -> None:
    requests, _ = read_gentd26_lora(gentd26_dir / "lora_request_trace.tar.gz")
    arrivals = lora_arrivals(requests, every="15m")
    assert_canonical(arrivals)
    totals = dict(arrivals.group_by("workload").agg(pl.col("value").sum()).rows())
    assert totals == {"TXT_2_IMG": 24438.0, "IMG_2_IMG": 2199.0, "INPAINTING": 186.0}
    first, last = (math.floor(t.timestamp() / 900) for t in (requests["ts"].min(),
                                                             requests["ts"].max()))
    lengths = set(arrivals.group_by("workload").len()["len"])
    assert lengths == {last - first + 1}


# --- property tests ---------------------------------------------------------------------

def _number_text() -> st.SearchStrategy[str]:
    return st.one_of(
        st.floats(allow_nan=True, allow_infinity=True).map(repr),
        st.integers(-10**6, 10**6).map(str),
        st.sampled_from(["", "NaN", "nan", "-1", "abc", "1e400", "None"]),
    )


_TS_TEXT = st.one_of(st.floats(T0 - 1e5, T0 + 1e5).map(repr),
                     st.sampled_from(["", "NaN", "inf", "-1e300", "1662858720"]))
_CONTAINER = st.sampled_from(["", "c1", "c2", "NULL", "None", "0123"])
_ROW = st.tuples(_number_text(), _TS_TEXT, _CONTAINER, st.sampled_from(
    ["API Requests", "Generative Requests", ""]))


@settings(max_examples=50, deadline=None)
@given(table=st.sampled_from(sorted(GENTD26_TABLES)), rows=st.lists(_ROW, max_size=25))
def test_property_gentd26_telemetry(
    tmp_path_factory: pytest.TempPathFactory, table: str, rows: list[tuple[str, ...]]
) -> None:
    spec = GENTD26_TABLES[table]
    header = ["value", "timestamp_anon", "container_ip", "request_type"]
    path = write_csv(tmp_path_factory.mktemp("g") / f"{spec.file}.csv", header, rows)
    try:
        frame, report = read_gentd26(path)
    except InputError as exc:
        event(f"InputError: {str(exc).split(': ', 1)[1][:30]}")
        return
    event("read")
    assert_canonical(frame)
    assert_balanced(report)
    assert report.rows_in == len(rows)
    assert set(frame["metric"]) <= {spec.metric}


_LORA_ROW = st.tuples(
    st.sampled_from(["2024-11-15 16:57:50", "2024-11-15 16:57:49", "", "bad",
                     "2024-02-30 00:00:00"]),
    st.sampled_from(["TXT_2_IMG", "IMG_2_IMG", ""]),
    st.sampled_from(["SUCCEED", "FAILED", ""]),
    _number_text(), st.sampled_from(["G1", ""]), _number_text(),
    st.sampled_from(["", "3.0"]), _number_text(), st.sampled_from(["30.0", ""]),
    st.sampled_from(["M1", ""]), st.sampled_from(["0", "1", "-1", "x"]),
)


@settings(max_examples=50, deadline=None)
@given(rows=st.lists(_LORA_ROW, max_size=20), every=st.sampled_from(["1m", "1h", "10s"]))
def test_property_lora(
    tmp_path_factory: pytest.TempPathFactory, rows: list[tuple[str, ...]], every: str
) -> None:
    path = write_csv(tmp_path_factory.mktemp("l") / "lora_request_trace.csv", LORA_HEADER, rows)
    try:
        requests, report = read_gentd26_lora(path)
    except InputError as exc:
        event(f"InputError: {str(exc).split(': ', 1)[1][:30]}")
        return
    event("read")
    assert requests.schema == LORA_REQUESTS
    assert_balanced(report)
    assert report.rows_in == len(rows)
    assert requests["ts"].is_sorted()
    assert (requests["exec_time_s"] >= 0).all()
    arrivals = lora_arrivals(requests, every=every)
    assert_canonical(arrivals)
    assert arrivals["value"].sum() == requests.height
