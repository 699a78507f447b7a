from __future__ import annotations

import csv
import hashlib
from collections import Counter
from pathlib import Path

import polars as pl
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from foresize.core.errors import InputError, SchemaMismatchError
from foresize.ingest.alibaba.openb import (
    OPENB_NODES,
    OPENB_PODS,
    read_openb_nodes,
    read_openb_pods,
)

from ._helpers import assert_balanced, write_csv

NODE_HEADER = ["sn", "cpu_milli", "memory_mib", "gpu", "model"]
POD_HEADER = ["name", "cpu_milli", "memory_mib", "num_gpu", "gpu_milli", "gpu_spec", "qos",
              "pod_phase", "creation_time", "deletion_time", "scheduled_time"]


def csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.parametrize(("file", "rows", "cpu_only"), [
    ("openb_node_list_all_node.csv", 1523, 310),
    ("openb_node_list_gpu_node.csv", 1213, 0),
])
def test_real_node_lists(openb_dir: Path, file: str, rows: int, cpu_only: int) -> None:
    path = openb_dir / file
    raw = csv_rows(path)
    nodes, report = read_openb_nodes(path)
    assert nodes.schema == OPENB_NODES
    assert_balanced(report)
    assert report.rows_in == report.rows_out == len(raw) == rows
    assert report.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert nodes["node"].to_list() == [r["sn"] for r in raw]
    assert nodes["cpu_milli"].sum() == sum(int(r["cpu_milli"]) for r in raw)
    assert nodes["memory_mib"].max() == max(int(r["memory_mib"]) for r in raw)
    assert nodes["gpu"].sum() == sum(int(r["gpu"]) for r in raw)
    assert nodes["gpu_model"].null_count() == sum(r["model"] == "" for r in raw) == cpu_only
    assert Counter(nodes["gpu_model"].drop_nulls()) == Counter(r["model"] for r in raw
                                                               if r["model"])
    # a CPU-only node is exactly one without a GPU model
    assert nodes.filter(pl.col("gpu") == 0).height == cpu_only


@pytest.mark.parametrize(("file", "constrained"), [
    ("openb_pod_list_default.csv", 0),
    ("openb_pod_list_gpuspec10.csv", 732),
    ("openb_pod_list_gpuspec33.csv", 2388),
])
def test_real_pod_lists_lose_no_row(openb_dir: Path, file: str, constrained: int) -> None:
    path = openb_dir / file
    raw = csv_rows(path)
    pods, report = read_openb_pods(path)
    assert pods.schema == OPENB_PODS
    assert_balanced(report)
    assert report.rows_in == report.rows_out == len(raw) == 8152
    assert report.dropped == {}
    assert pods["pod"].to_list() == [r["name"] for r in raw]
    assert pods["gpu_milli"].sum() == sum(int(r["gpu_milli"]) for r in raw)
    assert pods["num_gpu"].value_counts().sort("num_gpu").rows() == sorted(
        Counter(int(r["num_gpu"]) for r in raw).items())
    specs = [r["gpu_spec"].split("|") if r["gpu_spec"] else [] for r in raw]
    assert pods["gpu_spec"].to_list() == specs
    assert sum(bool(s) for s in specs) == constrained
    assert pods["scheduled_s"].null_count() == sum(r["scheduled_time"] == "" for r in raw) == 897
    pending = pods.filter(pl.col("pod_phase") == "Pending")
    assert pending.height == 897
    assert pending["scheduled_s"].null_count() == 897
    assert pods["creation_s"].min() == 0
    assert pods["deletion_s"].max() == max(int(r["deletion_time"]) for r in raw)


def test_pod_rules_drop_and_count(tmp_path: Path) -> None:
    ok = ["4000", "16384", "1", "500", "", "LS", "Running", "10", "20", "11"]
    rows = [
        ["p0", *ok],
        ["p1", "-1", *ok[1:]],                                    # negative cpu
        ["p2", *ok[:3], "1200", *ok[4:]],                         # gpu_milli > 1000
        ["p3", ok[0], ok[1], "2", "500", *ok[4:]],                # 2 GPUs but a share
        ["p4", ok[0], ok[1], "0", "300", *ok[4:]],                # a share of no GPU
        ["p5", *ok[:7], "20", "10", ""],                          # deleted before created
        ["p6", *ok[:7], "10", "", "5"],                           # scheduled before created
        ["p0", *ok],                                              # repeated name
        ["", *ok],                                                # no name
        ["p7", "2.5", *ok[1:]],                                   # fractional milli-CPU
        ["p8", ok[0], ok[1], "8", "1000", "V100M16| V100M32 ", "BE", "Pending", "0", "", ""],
    ]
    path = write_csv(tmp_path / "pods.csv", POD_HEADER, rows)
    pods, report = read_openb_pods(path)
    assert_balanced(report)
    assert report.dropped == {
        "negative_resource": 1, "gpu_milli_out_of_range": 1, "inconsistent_gpu_milli": 2,
        "deletion_before_creation": 1, "scheduled_before_creation": 1, "duplicate_pod": 1,
        "missing_name": 1, "invalid_resource": 1,
    }
    assert report.first_row["duplicate_pod"] == 8
    assert pods["pod"].to_list() == ["p0", "p8"]
    assert pods["gpu_spec"].to_list() == [[], ["V100M16", "V100M32"]]
    assert pods.row(1, named=True)["deletion_s"] is None
    with pytest.raises(InputError, match=(
            r"pods\.csv: row 2: field 'cpu_milli' is negative \(got -1\.0\); "
            r"9 invalid rows in all: deletion_before_creation=1, ")):
        read_openb_pods(path, strict=True)


def test_node_rules_drop_and_count(tmp_path: Path) -> None:
    rows = [["n0", "32000", "262144", "0", ""], ["n1", "64000", "", "2", "P100"],
            ["n0", "8000", "32768", "1", "T4"], ["n2", "96000", "393216", "-8", "G2"]]
    path = write_csv(tmp_path / "nodes.csv", NODE_HEADER, rows)
    nodes, report = read_openb_nodes(path)
    assert nodes.rows() == [("n0", 32000, 262144, 0, None)]
    assert report.dropped == {"missing_resource": 1, "duplicate_node": 1, "negative_resource": 1}
    with pytest.raises(InputError, match=r"nodes\.csv: row 2: field 'memory_mib' is empty; "):
        read_openb_nodes(path, strict=True)


@pytest.mark.parametrize(("reader", "text", "message"), [
    (read_openb_nodes, "sn,cpu_milli,memory_mib,gpu\nn0,1,2,0\n",
     r"missing required column 'model' \(found: sn, cpu_milli, memory_mib, gpu\)"),
    (read_openb_nodes, "sn,cpu_milli,memory_mib,gpu,model\nn0,lots,2,0,\n",
     r"column 'cpu_milli' is String \(e\.g\. 'lots'\), expected a number"),
    (read_openb_pods, ",".join(POD_HEADER[:4]) + "\np,1,1,0\n",
     r"missing required column 'gpu_milli'"),
    (read_openb_pods, ",".join(POD_HEADER) + "\np,1,1,0,0,,LS,Running,0,1,soon\n",
     r"column 'scheduled_time' is String \(e\.g\. 'soon'\)"),
])
def test_bad_columns_name_file_and_field(tmp_path: Path, reader, text: str, message: str) -> None:
    path = tmp_path / "openb.csv"
    path.write_text(text)
    with pytest.raises(SchemaMismatchError, match=message) as caught:
        reader(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("reader", [read_openb_nodes, read_openb_pods])
def test_empty_or_missing_file(tmp_path: Path, reader) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(InputError, match=r"empty\.csv: file is empty"):
        reader(empty)
    with pytest.raises(InputError, match=r"absent\.csv: no such file"):
        reader(tmp_path / "absent.csv")


# --- property tests ---------------------------------------------------------------------

_INT_TEXT = st.one_of(
    st.integers(-5, 2000).map(str),
    st.sampled_from(["", "NaN", "1.5", "inf", "-0", "99999999999999999999", "1000.0", "x"]),
)
_NAME = st.sampled_from(["a", "b", "c", "", "nan"])


@settings(max_examples=50, deadline=None)
@given(rows=st.lists(st.tuples(
    _NAME, _INT_TEXT, _INT_TEXT, st.sampled_from(["0", "1", "2", "8", "-1", ""]), _INT_TEXT,
    st.sampled_from(["", "T4", "V100M16|V100M32", "|", "nan"]),
    st.sampled_from(["LS", "BE", ""]), st.sampled_from(["Running", "Pending", ""]),
    _INT_TEXT, _INT_TEXT, _INT_TEXT), max_size=20))
def test_property_openb_pods(
    tmp_path_factory: pytest.TempPathFactory, rows: list[tuple[str, ...]]
) -> None:
    path = write_csv(tmp_path_factory.mktemp("p") / "pods.csv", POD_HEADER, rows)
    try:
        pods, report = read_openb_pods(path)
    except InputError as exc:
        event(f"InputError: {str(exc).split(': ', 1)[1][:30]}")
        return
    event("read")
    assert pods.schema == OPENB_PODS
    assert_balanced(report)
    assert report.rows_in == len(rows)
    assert pods["pod"].is_unique().all()
    assert pods["pod"].null_count() == 0
    assert all((pods[c] >= 0).all() for c in ("cpu_milli", "memory_mib", "num_gpu", "gpu_milli"))
    assert (pods["gpu_milli"] <= 1000).all()
    assert pods.filter(pl.col("deletion_s") < pl.col("creation_s")).is_empty()


@settings(max_examples=50, deadline=None)
@given(rows=st.lists(st.tuples(_NAME, _INT_TEXT, _INT_TEXT, _INT_TEXT,
                               st.sampled_from(["", "T4", "nan", "G2"])), max_size=20))
def test_property_openb_nodes(
    tmp_path_factory: pytest.TempPathFactory, rows: list[tuple[str, ...]]
) -> None:
    path = write_csv(tmp_path_factory.mktemp("n") / "nodes.csv", NODE_HEADER, rows)
    try:
        nodes, report = read_openb_nodes(path)
    except InputError as exc:
        event(f"InputError: {str(exc).split(': ', 1)[1][:30]}")
        return
    event("read")
    assert nodes.schema == OPENB_NODES
    assert_balanced(report)
    assert report.rows_in == len(rows)
    assert nodes["node"].is_unique().all()
    assert all((nodes[c] >= 0).all() for c in ("cpu_milli", "memory_mib", "gpu"))


def test_five_column_layout_reads_with_documented_defaults(openb_dir: Path,
                                                           tmp_path: Path) -> None:
    """The multigpu* lists publish only the five requests; derive that layout from a list
    with GPU-model constraints (gpuspec33), so dropping gpu_spec visibly lifts them.
    """
    full, _ = read_openb_pods(openb_dir / "openb_pod_list_gpuspec33.csv")
    requests = ["name", "cpu_milli", "memory_mib", "num_gpu", "gpu_milli"]
    path = tmp_path / "openb_pod_list_multigpu_like.csv"
    pl.read_csv(openb_dir / "openb_pod_list_gpuspec33.csv").select(requests).write_csv(path)
    pods, report = read_openb_pods(path)
    assert report.rows_in == report.rows_out == 8152
    assert pods.schema == OPENB_PODS
    keys = ["pod", "cpu_milli", "memory_mib", "num_gpu", "gpu_milli"]
    assert pods.select(keys).equals(full.select(keys))
    assert pods["gpu_spec"].list.len().sum() == 0  # no GPU-model constraint
    for column in ("qos", "pod_phase", "creation_s", "deletion_s", "scheduled_s"):
        assert pods[column].null_count() == 8152, column
    assert full["gpu_spec"].list.len().gt(0).sum() > 500  # the source did constrain pods


def test_wrong_type_names_the_row(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "pods.csv", POD_HEADER[:5],
                     [["p0", "1000", "1", "0", "0"], ["p1", "many", "1", "0", "0"]])
    with pytest.raises(SchemaMismatchError,
                       match=r"pods\.csv: row 2: column 'cpu_milli' is String \(e\.g\. 'many'\)"):
        read_openb_pods(path)
