from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from foresize.core.errors import InputError, InsufficientDataError, SchemaMismatchError
from foresize.evaluate.pai import (
    FETCH_COMMAND,
    PAI_INSTANCES,
    evaluate_pai,
    join_pai_instances,
    locate_pai_tables,
    pai_sections,
)
from foresize.ingest.alibaba.pai2020 import pai_usage, read_pai_table

from ..ingest.alibaba._helpers import truncate, write_csv, write_tar_gz

REPO = Path(__file__).resolve().parents[2]
GIB = 2**30


def _generator() -> ModuleType:
    """benchmarks/make_pai_sample.py: the upstream-format generator the benchmark uses."""
    spec = importlib.util.spec_from_file_location(
        "make_pai_sample", REPO / "benchmarks" / "make_pai_sample.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pai5k")
    _generator().make_pai_sample(out, rows=5000, seed=3, chunk_rows=2000)
    return out


def _write(folder: Path, tables: dict[str, list[list[str]]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in tables.items():
        write_tar_gz(write_csv(folder / f"pai_{name}_table.csv", None, rows))
        (folder / f"pai_{name}_table.csv").unlink()
    return folder


def _task(job: str, task: str, cpu: float, mem: float, gpu: float, gpu_type: str = "T4"):
    return [job, task, "1.0", "Terminated", "1", "2", str(cpu), str(mem), str(gpu), gpu_type]


def _inst(job: str, task: str, worker: str, status: str, start: float, end: float | str):
    return [job, task, "i", worker, "id", status, str(start), str(end), "m1"]


def _sensor(
    job: str, task: str, worker: str, cpu: float, gpu: float | str, avg_mem: float, max_mem: float
):
    return [
        job,
        task,
        worker,
        "id",
        "m1",
        "/dev/nvidia0",
        str(cpu),
        str(gpu),
        str(avg_mem),
        str(max_mem),
        "1",
        "2",
        "0",
        "0",
        "0",
        "0",
    ]


def _hand_tables() -> dict[str, list[list[str]]]:
    """j1/worker (6 cores, half a GPU, 10 GB) x 2 workers, w0 re-run after a failure;
    j2/ps (4 cores, no GPU, 8 GB); a Waiting worker without sensors; a sensor row for a
    worker the instance table does not have.
    """
    return {
        "task": [_task("j1", "worker", 600, 10, 50), _task("j2", "ps", 400, 8, 0)],
        "instance": [
            _inst("j1", "worker", "w0", "Failed", 3600, 7200),
            _inst("j1", "worker", "w0", "Terminated", 7200, 14400),  # 2 h, kept
            _inst("j1", "worker", "w1", "Terminated", 3600, 7200),  # 1 h
            _inst("j2", "ps", "p0", "Terminated", 3600, 18000),  # 4 h
            _inst("j2", "ps", "p1", "Waiting", 0, 0),
        ],
        "sensor": [
            _sensor("j1", "worker", "w0", 150, 25, 2, 4),
            _sensor("j1", "worker", "w1", 300, 10, 5, 12),
            _sensor("j2", "ps", "p0", 200, "", 1, 2),
            _sensor("j9", "worker", "ghost", 100, 10, 1, 1),
        ],
    }


def test_per_instance_join_hand_computed(tmp_path: Path) -> None:
    paths = locate_pai_tables(_write(tmp_path, _hand_tables()))
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    # two rows a partition: the 5 instance rows are joined in 3 hash partitions
    frame = join_pai_instances(paths, scratch, partition_rows=2).collect()
    assert len(list(scratch.glob("instances-*.parquet"))) == 3
    frame = frame.sort("start_s", "plan_gpu", nulls_last=True)
    assert frame.schema == PAI_INSTANCES
    expected = pl.DataFrame(
        [
            ("ps", "T4", "Terminated", 3600.0, 4.0, 4.0, 2.0, 0.0, None, 8.0, 1.0, 2.0, True, True),
            (
                "worker",
                "T4",
                "Terminated",
                3600.0,
                1.0,
                6.0,
                3.0,
                0.5,
                0.1,
                10.0,
                5.0,
                12.0,
                True,
                True,
            ),
            (
                "worker",
                "T4",
                "Terminated",
                7200.0,
                2.0,
                6.0,
                1.5,
                0.5,
                0.25,
                10.0,
                2.0,
                4.0,
                True,
                True,
            ),
            ("ps", "T4", "Waiting", None, None, 4.0, None, 0.0, None, 8.0, None, None, True, False),
        ],
        schema=PAI_INSTANCES,
        orient="row",
    )
    assert_frame_equal(frame, expected)


def test_usage_totals_hand_computed(tmp_path: Path) -> None:
    report = evaluate_pai(_write(tmp_path, _hand_tables()), risk=0.5, min_group=1)
    assert report.counts == {
        "n_workers": 4,
        "n_with_plan": 4,
        "n_with_sensor": 3,
        "n_matched": 3,
        "n_usable": 3,
        "n_train": 2,
        "n_test": 1,
    }
    usage = {row["resource"]: row for row in report.usage.iter_rows(named=True)}
    # hours: w0 2, w1 1, p0 4
    assert usage["cpu"]["planned"] == pytest.approx(6 * 2 + 6 * 1 + 4 * 4)
    assert usage["cpu"]["used"] == pytest.approx(1.5 * 2 + 3 * 1 + 2 * 4)
    assert usage["cpu"]["planned_over_used"] == pytest.approx(34 / 14)
    # the ps planned no GPU: only the two workers count
    assert usage["gpu"]["n_instances"] == 2
    assert usage["gpu"]["planned"] == pytest.approx(0.5 * 3)
    assert usage["gpu"]["used"] == pytest.approx(0.25 * 2 + 0.1 * 1)
    assert (usage["gpu"]["util_p10"], usage["gpu"]["util_p90"]) == (0.2, 0.5)
    assert usage["gpu"]["overprov_p90"] == pytest.approx(5.0)
    # memory is judged on the peak: 4 of 10, 12 of 10, 2 of 8 GiB
    assert usage["mem"]["used"] == pytest.approx(4 * 2 + 12 * 1 + 2 * 4)
    assert usage["mem"]["share_above_plan"] == pytest.approx(1 / 3)
    assert usage["mem"]["overprov_p50"] == pytest.approx(1 / 0.4)


def _one_group(n: int, ratios: list[float]) -> dict[str, list[list[str]]]:
    """n workers of one task (8 cores) started an hour apart, each running one hour."""
    tasks = [_task("j", "worker", 800, 16, 100)]
    instances = [
        _inst("j", "worker", f"w{i}", "Terminated", 3600 * (i + 1), 3600 * (i + 2))
        for i in range(n)
    ]
    sensors = [
        _sensor("j", "worker", f"w{i}", 800 * r, 100 * r, 16 * r, 16 * r)
        for i, r in enumerate(ratios)
    ]
    return {"task": tasks, "instance": instances, "sensor": sensors}


def test_recommendation_quantile_split_and_violations(tmp_path: Path) -> None:
    # first 7 by start time train, last 3 test; q = the 0.8 quantile ("higher") of the
    # training ratios 0.1..0.7 = 0.6, so the recommendation is 0.6 x 8 = 4.8 cores
    ratios = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.5, 0.65, 0.9]
    report = evaluate_pai(_write(tmp_path, _one_group(10, ratios)), risk=0.2, min_group=5)
    assert (report.counts["n_train"], report.counts["n_test"]) == (7, 3)
    assert report.split_start_s == 3600 * 8
    score = {row["resource"]: row for row in report.score.iter_rows(named=True)}
    cpu = score["cpu"]
    assert cpu["n_instances"] == 3
    assert cpu["planned"] == pytest.approx(3 * 8)
    assert cpu["used"] == pytest.approx(8 * (0.5 + 0.65 + 0.9))
    assert cpu["recommended"] == pytest.approx(3 * 4.8)
    assert cpu["violation_share"] == pytest.approx(2 / 3)
    assert cpu["plan_violation_share"] == 0
    assert cpu["share_group_level"] == 1
    assert cpu["recommended_over_used"] == pytest.approx(14.4 / (8 * 2.05))
    assert cpu["saving"] == pytest.approx(0.4)
    group = report.groups.row(0, named=True)
    assert (group["n_train"], group["rec_cpu_cores"], group["rec_gpu"]) == (7, 4.8, 0.6)
    assert group["rec_mem_gib"] == pytest.approx(16 * 0.6)
    # below min_group the group falls back to the (here identical) fleet quantile
    fallback = evaluate_pai(tmp_path, risk=0.2, min_group=8)
    assert fallback.score["share_fleet_level"].to_list() == [1.0, 1.0, 1.0]
    assert fallback.score["recommended"].to_list() == pytest.approx([14.4, 1.8, 3 * 9.6])
    assert fallback.groups["level_cpu"].to_list() == ["fleet"]


def test_generated_sample_matches_the_eager_reader(sample: Path) -> None:
    report = evaluate_pai(sample, risk=0.01)
    tables = {
        t: read_pai_table(sample / f"pai_{t}_table.tar.gz")[0]
        for t in ("task", "instance", "sensor")
    }
    usage = pai_usage(tables["task"], tables["instance"], tables["sensor"])
    hours = (pl.col("end") - pl.col("start")).dt.total_microseconds() / 3.6e9
    usable = usage.filter(pl.col("used_cpu_cores").is_not_null() & (hours >= 0))
    counts = report.counts
    assert counts["n_with_sensor"] == 5000 == tables["sensor"].height
    assert counts["n_workers"] == usage.height
    assert counts["n_usable"] == usable.height
    assert counts["n_train"] + counts["n_test"] == counts["n_usable"]
    assert counts["n_train"] / counts["n_usable"] == pytest.approx(0.7, abs=0.01)
    row = {r["resource"]: r for r in report.usage.iter_rows(named=True)}
    assert row["cpu"]["planned"] == pytest.approx(
        usable.select(pl.col("plan_cpu_cores") * hours).sum().item()
    )
    assert row["cpu"]["used"] == pytest.approx(
        usable.select(pl.col("used_cpu_cores") * hours).sum().item()
    )
    gpu = usable.filter(pl.col("plan_gpu") > 0)
    assert row["gpu"]["n_instances"] == gpu.height
    assert row["gpu"]["used"] == pytest.approx(gpu.select(pl.col("used_gpu") * hours).sum().item())
    assert row["mem"]["used"] == pytest.approx(
        usable.select(pl.col("max_mem_bytes") / GIB * hours).sum().item()
    )
    # what the trace is known for: plans far above use; foresize reserves less than planned
    for resource in ("cpu", "gpu"):
        assert row[resource]["planned_over_used"] > 2
    score = report.score.filter(pl.col("resource") == "cpu").row(0, named=True)
    assert score["recommended"] < score["planned"]
    assert 0 <= score["violation_share"] < 0.1
    assert report.groups["n_train"].sum() == counts["n_train"]
    text = json.dumps(report.to_dict(), allow_nan=False)
    assert json.loads(text)["params"] == {"risk": 0.01, "train_frac": 0.7, "min_group": 100}


def test_missing_table_names_file_and_fetch_command(tmp_path: Path) -> None:
    folder = _write(tmp_path, {k: v for k, v in _hand_tables().items() if k != "sensor"})
    with pytest.raises(InputError) as caught:
        evaluate_pai(folder)
    message = str(caught.value)
    assert str(folder / "pai_sensor_table.tar.gz") in message
    assert FETCH_COMMAND == "foresize datasets fetch alibaba-pai-2020"
    assert f"`{FETCH_COMMAND}`" in message
    assert "\n" not in message
    with pytest.raises(InputError, match=r"nowhere: no such folder; .*datasets fetch"):
        evaluate_pai(tmp_path / "nowhere")


def test_registry_without_the_tables(monkeypatch: pytest.MonkeyPatch, mirror: Path) -> None:
    # the shared mirror has only the .header files and the machine spec of PAI 2020
    monkeypatch.delenv("FORESIZE_DATA_MIRROR", raising=False)
    in_mirror = (
        r"pai_task_table\.tar\.gz: .*not in the mirror.*`foresize datasets fetch alibaba-pai-2020`"
    )
    with pytest.raises(InputError, match=in_mirror):
        pai_sections(mirror=mirror)
    monkeypatch.setenv("FORESIZE_DATA_MIRROR", str(mirror))
    with pytest.raises(InputError, match=in_mirror):
        evaluate_pai()
    monkeypatch.delenv("FORESIZE_DATA_MIRROR")
    with pytest.raises(
        InputError,
        match=r"pai_task_table\.tar\.gz: .*not fetched yet; "
        r"download the trace with `foresize datasets fetch",
    ):
        evaluate_pai()


def test_corrupt_archive_is_one_line(tmp_path: Path, sample: Path) -> None:
    folder = _write(tmp_path, _hand_tables())
    big = sample / "pai_sensor_table.tar.gz"
    (folder / "pai_sensor_table.tar.gz").write_bytes(big.read_bytes())
    truncate(folder / "pai_sensor_table.tar.gz")
    with pytest.raises(InputError, match=r"truncated or corrupt tar\.gz") as caught:
        evaluate_pai(folder)
    assert str(caught.value).startswith(str(folder / "pai_sensor_table.tar.gz"))
    assert "\n" not in str(caught.value)


def test_bad_values_header_and_no_usable_instances(tmp_path: Path) -> None:
    tables = _hand_tables()
    tables["sensor"][1][6] = "lots"
    with pytest.raises(
        InputError,
        match=r"pai_sensor_table\.tar\.gz: could not parse `lots`"
        r".*'cpu_usage'",
    ) as caught:
        evaluate_pai(_write(tmp_path / "bad", tables))
    assert "\n" not in str(caught.value)
    folder = _write(tmp_path / "header", _hand_tables())
    (folder / "pai_task_table.header").write_text("job_name,task_name\n")
    with pytest.raises(SchemaMismatchError, match=r"pai_task_table\.header: columns"):
        evaluate_pai(folder)
    waiting = _hand_tables()
    waiting["instance"] = [_inst("j1", "worker", "w0", "Waiting", 0, 0)]
    with pytest.raises(InsufficientDataError, match="no instance has a plan, a sensor row"):
        evaluate_pai(_write(tmp_path / "waiting", waiting))
    with pytest.raises(InputError, match="risk must be in"):
        evaluate_pai(folder, risk=1.5)


def test_report_section(monkeypatch: pytest.MonkeyPatch, sample: Path) -> None:
    from foresize.evaluate import pai

    # the registry only hands out files with upstream's sha256: point it at the sample
    monkeypatch.setattr(
        pai,
        "locate_pai_tables",
        lambda _source, mirror: {
            t: sample / f"pai_{t}_table.tar.gz" for t in ("task", "instance", "sensor")
        },
    )
    (section,) = pai_sections(mirror=sample)
    assert list(section.tables) == [
        "What the trace shows (all usable instances)",
        "Planned vs recommended on the held-out instances",
        "Recommendation per task group (20 largest)",
    ]
    assert section.tables["Recommendation per task group (20 largest)"].height == 20
    assert "cpu: planned/used" in section.text
    assert section.data["params"]["risk"] == 0.01
    json.dumps(section.data, allow_nan=False)
