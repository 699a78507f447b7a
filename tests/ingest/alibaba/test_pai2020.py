from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from foresize.core.errors import InputError, SchemaMismatchError, UnknownNameError
from foresize.ingest.alibaba.pai2020 import PAI_TABLES, PAI_USAGE, pai_usage, read_pai_table

from ._helpers import assert_balanced, tar_rows, truncate, write_csv, write_tar_gz

GIB = 2**30


@pytest.fixture(scope="module")
def pai_dir(mirror: Path) -> Path:
    return mirror / "cluster-trace-gpu-v2020" / "data"


@pytest.mark.parametrize("table", sorted(PAI_TABLES))
def test_embedded_columns_match_the_mirrors_header_files(pai_dir: Path, table: str) -> None:
    spec = PAI_TABLES[table]
    header = (pai_dir / f"{spec.file}.header").read_text().strip()
    assert ",".join(spec.columns) == header


def test_real_machine_spec(pai_dir: Path) -> None:
    path = pai_dir / "pai_machine_spec.tar.gz"
    raw = tar_rows(path)
    frame, report = read_pai_table(path)
    assert frame.schema == PAI_TABLES["machine_spec"].columns
    assert_balanced(report)
    assert report.rows_in == report.rows_out == len(raw) == 1897
    assert dict(Counter(frame["gpu_type"])) == dict(Counter(r[1] for r in raw))
    assert dict(Counter(frame["gpu_type"])) == {
        "P100": 798, "T4": 497, "MISC": 280, "V100M32": 135, "V100": 104, "CPU": 83}
    assert frame["cap_gpu"].sum() == sum(int(r[4]) for r in raw)
    assert frame["cap_mem"].to_list() == [int(r[3]) for r in raw]
    assert frame["machine"].is_unique().all()
    assert frame.filter(pl.col("gpu_type") == "CPU")["cap_gpu"].unique().to_list() == [0]


@pytest.mark.parametrize(("name", "table"), [
    ("pai_task_table.tar.gz", "task"), ("pai_job_table.csv", "job"),
    ("pai_machine_spec.tar.gz", "machine_spec"), ("pai_group_tag_table.tar.gz", "group_tag"),
    ("pai_machine_metric.csv", "machine_metric"), ("sensor.csv", "sensor"),
])
def test_table_from_file_name(tmp_path: Path, name: str, table: str) -> None:
    n_columns = len(PAI_TABLES[table].columns)
    csv_path = write_csv(tmp_path / name.replace(".tar.gz", ".csv"), None,
                         [["k"] + ["1"] * (n_columns - 1)])
    path = write_tar_gz(csv_path) if name.endswith(".tar.gz") else csv_path
    frame, _ = read_pai_table(path)
    assert frame.schema == PAI_TABLES[table].columns


def test_unknown_names(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "jobs.csv", None, [["a"]])
    with pytest.raises(InputError, match=r"jobs\.csv: cannot tell the PAI table"):
        read_pai_table(path)
    with pytest.raises(UnknownNameError, match="Did you mean 'task'"):
        read_pai_table(path, table="tsak")


def test_column_count_mismatch_names_file_and_counts(tmp_path: Path) -> None:
    path = write_tar_gz(write_csv(tmp_path / "pai_task_table.csv", None,
                                  [["j", "worker", "1.0", "Terminated", "1", "2", "600"]]))
    with pytest.raises(SchemaMismatchError, match=(
            r"pai_task_table\.tar\.gz: 7 columns in the first row, the PAI task table has 10 "
            r"\(job_name, task_name, .*, gpu_type\)$")):
        read_pai_table(path)


def test_header_line_is_accepted(tmp_path: Path) -> None:
    columns = list(PAI_TABLES["machine_spec"].columns)
    path = write_csv(tmp_path / "pai_machine_spec.csv", columns, [["m1", "T4", "96", "512", "2"]])
    frame, report = read_pai_table(path)
    assert frame.rows() == [("m1", "T4", 96, 512, 2)]
    assert report.rows_in == 1


def test_bad_value_type_names_file_and_field(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "pai_machine_spec.csv", None,
                     [["m1", "T4", "96", "512", "2"], ["m2", "T4", "many", "512", "2"]])
    with pytest.raises(InputError, match=r"pai_machine_spec\.csv: .*`many`.*'cap_cpu'") as caught:
        read_pai_table(path)
    assert "\n" not in str(caught.value)


def test_truncated_and_empty(tmp_path: Path) -> None:
    rows = [[f"m{i}", "T4", "96", "512", "2"] for i in range(20000)]
    archive = truncate(write_tar_gz(write_csv(tmp_path / "pai_machine_spec.csv", None, rows)))
    with pytest.raises(InputError, match="truncated or corrupt") as caught:
        read_pai_table(archive)
    assert str(caught.value).startswith(str(archive))
    assert "\n" not in str(caught.value)
    empty = tmp_path / "pai_job_table.csv"
    empty.write_text("")
    with pytest.raises(InputError, match=r"pai_job_table\.csv: file is empty"):
        read_pai_table(empty)


def test_drops_and_strict(tmp_path: Path) -> None:
    rows = [["j1", "worker", "1.0", "Terminated", "10", "20", "600", "29.296875", "50", "T4"],
            ["j1", "", "1.0", "Terminated", "10", "20", "600", "1", "50", "T4"],
            ["j2", "ps", "1.0", "Failed", "10", "20", "-600", "1", "NaN", "MISC"]]
    path = write_csv(tmp_path / "pai_task_table.csv", None, rows)
    frame, report = read_pai_table(path)
    assert report.dropped == {"missing_key": 1, "negative_value": 1}
    assert frame.rows() == [("j1", "worker", 1.0, "Terminated", 10.0, 20.0, 600.0, 29.296875,
                             50.0, "T4")]
    with pytest.raises(InputError, match=r"row 2: field 'task_name' is empty; 2 invalid rows"):
        read_pai_table(path, strict=True)


def _tables(tmp_path: Path) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """A job with a worker task of two instances, one re-run, plus a PS never started."""
    task = [["j1", "worker", "2.0", "Terminated", "100", "500", "600", "29.296875", "50", "T4"],
            ["j1", "ps", "1.0", "Terminated", "100", "500", "400", "8", "", "T4"]]
    instance = [
        ["j1", "worker", "i0", "w0", "id1", "Failed", "100", "150", "m1"],
        ["j1", "worker", "i0", "w0", "id1", "Terminated", "160", "500", "m2"],
        ["j1", "worker", "i1", "w1", "id1", "Terminated", "100", "500", "m1"],
        ["j1", "ps", "i2", "p0", "id1", "Waiting", "0", "0", "m3"],
        ["j1", "ps", "i3", "", "id1", "Waiting", "0", "0", ""],
    ]
    sensor = [["j1", "worker", "w0", "id1", "m2", "/dev/nvidia0", "140", "16", "1.5", "2",
               "1.25", "2.5", "1000", "2000", "10", "20"],
              ["j1", "ps", "p0", "id1", "m3", "", "80", "", "0.5", "0.75", "", "", "0", "0",
               "0", "0"]]
    frames = []
    for name, rows in (("pai_task_table", task), ("pai_instance_table", instance),
                       ("pai_sensor_table", sensor)):
        archive = write_tar_gz(write_csv(tmp_path / f"{name}.csv", None, rows))
        frame, report = read_pai_table(archive)
        assert report.rows_in == len(rows)
        frames.append(frame)
    return frames[0], frames[1], frames[2]


def test_usage_join_hand_computed(tmp_path: Path) -> None:
    tasks, instances, sensors = _tables(tmp_path)
    usage = pai_usage(tasks, instances, sensors).sort("worker_name")
    assert usage.schema == PAI_USAGE

    def at(seconds: int) -> datetime:
        return datetime.fromtimestamp(seconds, UTC)

    expected = [
        # p0: never started (times 0 -> null), PS plans no GPU, sensors have no GPU data
        ("j1", "ps", "p0", "m3", "T4", "Waiting", None, None,
         4.0, 0.8, None, None, 8 * GIB, 0.5 * GIB, 0.75 * GIB, None, None),
        # w0: the Terminated re-run is kept, not the Failed first attempt
        ("j1", "worker", "w0", "m2", "T4", "Terminated", at(160), at(500),
         6.0, 1.4, 0.5, 0.16, 30000 * 2**20, 1.5 * GIB, 2 * GIB, 1.25 * GIB, 2.5 * GIB),
        # w1: no sensor row -> usage null
        ("j1", "worker", "w1", "m1", "T4", "Terminated", at(100), at(500),
         6.0, None, 0.5, None, 30000 * 2**20, None, None, None, None),
    ]
    assert_frame_equal(usage, pl.DataFrame(expected, schema=PAI_USAGE, orient="row"))


def test_usage_names_a_missing_column(tmp_path: Path) -> None:
    tasks, instances, sensors = _tables(tmp_path)
    with pytest.raises(SchemaMismatchError, match=r"pai_usage sensors: missing required column "
                                                  r"'gpu_wrk_util'"):
        pai_usage(tasks, instances, sensors.drop("gpu_wrk_util"))


_CELL = st.one_of(st.sampled_from(["", "NaN", "-5", "0", "x", "T4", "1.5", "inf"]),
                  st.integers(-10, 10**6).map(str))


@settings(max_examples=50, deadline=None)
@given(table=st.sampled_from(["machine_spec", "task", "job"]),
       rows=st.lists(st.lists(_CELL, min_size=5, max_size=10), min_size=1, max_size=15),
       archive=st.booleans())
def test_property_pai_table(
    tmp_path_factory: pytest.TempPathFactory, table: str, rows: list[list[str]], archive: bool
) -> None:
    spec = PAI_TABLES[table]
    width = len(spec.columns)
    rows = [(row * 2)[:width] for row in rows]  # the upstream width, garbage inside
    csv_path = write_csv(tmp_path_factory.mktemp("pai") / f"{spec.file}.csv", None, rows)
    path = write_tar_gz(csv_path) if archive else csv_path
    try:
        frame, report = read_pai_table(path)
    except InputError as exc:
        event(f"InputError: {str(exc).split(': ', 1)[1][:30]}")
        return
    event("read")
    assert frame.schema == spec.columns
    assert_balanced(report)
    assert report.rows_in == len(rows) - (rows[0] == list(spec.columns))
    for key in spec.keys:
        assert frame[key].null_count() == 0
    for column in spec.nonnegative:
        assert (frame[column].drop_nulls() >= 0).all()
