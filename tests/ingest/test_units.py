"""Unit sanity: values that contradict their metric's unit are named, with the fix.

The real case is GenTD26's raw ``pod_memory_util`` file, whose values are fractions of 1:
read as ``mem_util_pct`` it must warn, and ``--scale 100`` must give exactly what the
dataset registry (which knows the file) gives. Bytes in MiB and millicores do not occur
in the public traces, so those cases are constructed.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from foresize.cli.main import main
from foresize.ingest.units import suspect_units, value_ranges

MAP = ["--map", "ts=timestamp_anon,workload=container_ip", "--as-metric", "mem_util_pct"]


@pytest.fixture(scope="module")
def raw_memory(gentd26_dir: Path) -> Path:
    return gentd26_dir / "pod_memory_util_anon.tar.gz"


def _telemetry(metric: str, values: list[float]) -> pl.DataFrame:
    return pl.DataFrame({"metric": [metric] * len(values), "value": values})


def test_fractions_read_as_a_percentage_warn_with_the_fix(
    raw_memory: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["profile", "telemetry", str(raw_memory), *MAP, "-f", "json",
                 "-o", str(tmp_path / "p.json")])
    err = capsys.readouterr().err
    assert code == 0, err
    warned = [line for line in err.splitlines() if "looks like" in line]
    assert warned == [f"Warning: {raw_memory}: mem_util_pct ranges 0..0.9932, which looks "
                      "like fractions of 1, not %; if so, read it with --scale 100"]


def test_scale_100_reads_the_raw_file_as_the_registry_does(
    raw_memory: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raw, registry = tmp_path / "raw.json", tmp_path / "registry.json"
    assert main(["recommend", str(raw_memory), *MAP, "--scale", "100", "--strategy", "vpa",
                 "-f", "json", "-o", str(raw)]) == 0
    assert "looks like" not in capsys.readouterr().err
    assert main(["recommend", "gentd26:memory_util", "--strategy", "vpa", "-f", "json",
                 "-o", str(registry)]) == 0

    def requests(path: Path) -> dict[str, float | None]:
        document = json.loads(path.read_text())
        return {r["workload"]: r["recommended"]["request"]
                for r in document["recommendations"]}

    ours, theirs = requests(raw), requests(registry)
    sized = [w for w, request in theirs.items() if request is not None]
    assert len(sized) > 100
    assert ours.keys() == theirs.keys()
    assert [w for w in ours if ours[w] is None] == [w for w in theirs if theirs[w] is None]
    assert all(ours[w] == pytest.approx(theirs[w], rel=1e-9) for w in sized)


@pytest.mark.parametrize("bad", ["0", "-2", "nan", "inf"])
def test_scale_must_be_a_positive_number(raw_memory: Path, bad: str,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["profile", "telemetry", str(raw_memory), *MAP, f"--scale={bad}"]) == 2
    assert "--scale" in capsys.readouterr().err


def test_memory_in_mib_and_cpu_in_millicores_are_named() -> None:
    # constructed: the public traces hold no bytes or cores series in these units
    found = suspect_units(value_ranges(pl.concat([
        _telemetry("gpu_mem_bytes", [4096.0 + i for i in range(20)]),  # MiB of a GPU pod
        _telemetry("mem_bytes", [0.5 + i / 10 for i in range(20)]),  # GiB or MiB: ambiguous
        _telemetry("cpu_cores", [250.0 * i for i in range(20)]),  # millicores, up to 4,750
        _telemetry("cpu_util_pct", [0.0] * 20),  # idle: no range to judge
        _telemetry("gpu_util_pct", [0.5] * 5),  # too few samples to judge
    ])))
    assert [(s.metric, s.likely, s.scale) for s in found] == [
        ("cpu_cores", "millicores", "0.001"),
        ("gpu_mem_bytes", "MiB", "1048576"),
        ("mem_bytes", "MiB or GiB", "1048576 (MiB) or --scale 1073741824 (GiB)"),
    ]


def test_values_in_their_own_unit_are_not_suspected() -> None:
    found = suspect_units(value_ranges(pl.concat([
        _telemetry("mem_util_pct", [0.5, 87.0] * 10),
        _telemetry("gpu_mem_bytes", [3.2e9, 7.9e10] * 10),
        _telemetry("cpu_cores", [0.2, 96.0] * 10),
        _telemetry("qps", [0.001, 0.5] * 10),  # rates have no range a unit rules out
    ])))
    assert found == []
