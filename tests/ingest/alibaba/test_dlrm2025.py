from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from foresize.core.errors import InputError, SchemaMismatchError
from foresize.ingest.alibaba.dlrm2025 import DLRM_INSTANCES, read_dlrm_instances

from ._helpers import assert_balanced, write_csv

GIB = 2**30
HEADER = ["instance_sn", "role", "app_name", "cpu_request", "cpu_limit", "gpu_request",
          "gpu_limit", "rdma_request", "rdma_limit", "memory_request", "memory_limit",
          "disk_request", "disk_limit", "max_instance_per_node", "creation_time",
          "scheduled_time", "deletion_time"]
# the README's sample, with its all-empty first row
SAMPLE = [
    [""] * 17,
    ["instance_7185", "HN", "app_0", "12", "12", "1", "1", "25", "25", "120.0", "120.0",
     "680.0", "800.0", "8", "", "", ""],
    ["instance_13574", "CN", "app_130", "64", "64", "0", "0", "1", "1", "320.0", "320.0",
     "255.0", "300.0", "-1", "1435629.0", "1435629.0", "1435760.0"],
]


def test_readme_sample(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "disaggregated_DLRM_trace.csv", HEADER, SAMPLE)
    instances, report = read_dlrm_instances(path)
    assert instances.schema == DLRM_INSTANCES
    assert report.rows_in == 3
    assert report.dropped == {"empty_row": 1}
    assert report.first_row == {"empty_row": 1}
    assert instances.rows() == [
        ("instance_7185", "HN", "app_0", 12.0, 12.0, 1.0, 1.0, 25.0, 25.0, 120 * GIB, 120 * GIB,
         680 * GIB, 800 * GIB, 8, None, None, None),
        ("instance_13574", "CN", "app_130", 64.0, 64.0, 0.0, 0.0, 1.0, 1.0, 320 * GIB,
         320 * GIB, 255 * GIB, 300 * GIB, None, 1435629.0, 1435629.0, 1435760.0),
    ]


def test_nan_times_are_outside_the_window(tmp_path: Path) -> None:
    row = [*SAMPLE[2][:14], "NaN", "NaN", "1435760.0"]
    instances, _ = read_dlrm_instances(write_csv(tmp_path / "d.csv", HEADER, [row]))
    assert instances.select("creation_s", "scheduled_s", "deletion_s").row(0) == (
        None, None, 1435760.0)


def test_rules_drop_and_count(tmp_path: Path) -> None:
    good = SAMPLE[2]

    def edit(**changes: str) -> list[str]:
        row = list(good)
        for column, value in changes.items():
            row[HEADER.index(column)] = value
        return row

    rows = [
        good,
        edit(instance_sn=""),
        edit(instance_sn="i2", cpu_request="-4"),
        edit(instance_sn="i3", memory_limit=""),
        edit(instance_sn="i4", max_instance_per_node="-3"),
        edit(instance_sn="i5", deletion_time="100.0"),
        edit(instance_sn="i6", disk_request="inf"),
        edit(instance_sn="i7", scheduled_time="5.0"),
        good,
    ]
    path = write_csv(tmp_path / "d.csv", HEADER, rows)
    instances, report = read_dlrm_instances(path)
    assert_balanced(report)
    assert report.dropped == {
        "missing_instance": 1, "negative_resource": 1, "missing_resource": 1,
        "invalid_max_instance_per_node": 1, "deletion_before_creation": 1,
        "invalid_resource": 1, "scheduled_before_creation": 1, "duplicate_instance": 1,
    }
    assert report.first_row["duplicate_instance"] == 9
    assert instances["instance"].to_list() == ["instance_13574"]
    with pytest.raises(InputError, match=(r"d\.csv: row 2: field 'instance_sn' is empty; "
                                          r"8 invalid rows in all")):
        read_dlrm_instances(path, strict=True)


@pytest.mark.parametrize(("text", "message"), [
    (",".join(HEADER[:-1]) + "\n", r"missing required column 'deletion_time'"),
    (",".join(HEADER) + "\ni,CN,a,many,1,0,0,1,1,1,1,1,1,-1,,,\n",
     r"column 'cpu_request' is String \(e\.g\. 'many'\), expected a number"),
    ("", r"file is empty"),
])
def test_bad_input_names_file_and_field(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "disaggregated_DLRM_trace.csv"
    path.write_text(text)
    with pytest.raises(InputError, match=message) as caught:
        read_dlrm_instances(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert "\n" not in str(caught.value)
    if text:
        assert isinstance(caught.value, SchemaMismatchError)


_CELL = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-3, 10**6).map(str),
    st.sampled_from(["", "NaN", "-1", "x", "1e400", "12.5"]),
)


@settings(max_examples=50, deadline=None)
@given(rows=st.lists(st.tuples(
    st.sampled_from(["i1", "i2", "i3", ""]), st.sampled_from(["CN", "HN", ""]),
    st.sampled_from(["app_0", ""]), *([_CELL] * 14)), max_size=20))
def test_property_dlrm(
    tmp_path_factory: pytest.TempPathFactory, rows: list[tuple[str, ...]]
) -> None:
    path = write_csv(tmp_path_factory.mktemp("d") / "trace.csv", HEADER, rows)
    try:
        instances, report = read_dlrm_instances(path)
    except InputError as exc:
        event(f"InputError: {str(exc).split(': ', 1)[1][:30]}")
        return
    event("read")
    assert instances.schema == DLRM_INSTANCES
    assert_balanced(report)
    assert report.rows_in == len(rows)
    assert instances["instance"].is_unique().all()
    assert instances["instance"].null_count() == 0
    assert (instances["memory_request_bytes"] >= 0).all()
    assert (instances["max_instance_per_node"].drop_nulls() >= 0).all()
