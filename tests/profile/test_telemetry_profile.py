from __future__ import annotations

import csv
import io
import tarfile
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from foresize.core.errors import InsufficientDataError
from foresize.core.schemas import TELEMETRY
from foresize.ingest.tabular import parse_mapping, scan_telemetry
from foresize.profile.shape import describe_shape
from foresize.profile.telemetry import PROFILE_SCHEMA, plan_chunks, profile_telemetry

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def series(values: np.ndarray, *, step_s: float = 60.0, workload: str = "w",
           metric: str = "gpu_util_pct", skip: slice | None = None) -> pl.DataFrame:
    times = [T0 + timedelta(seconds=i * step_s) for i in range(values.size)]
    frame = pl.DataFrame({"workload": workload, "metric": metric, "ts": times,
                          "value": values.astype(float)}, schema=TELEMETRY)
    if skip is not None:
        frame = frame.with_row_index().filter(
            ~pl.col("index").is_between(skip.start, skip.stop - 1)).drop("index")
    return frame


def test_known_answers_on_a_constructed_series() -> None:
    t = np.arange(3 * 1440)  # three days of minutes
    values = 50 + 30 * np.sin(2 * np.pi * t / 1440) + t / 1440  # daily cycle + 1/day trend
    frame = series(values, skip=slice(100, 110))  # a 10-sample hole
    profile, report = profile_telemetry(frame)
    row = profile.row(0, named=True)
    assert row["n_samples"] == t.size - 10
    assert row["interval_s"] == 60.0
    assert row["n_gaps"] == 1
    assert row["gap_s"] == pytest.approx(10 * 60.0)
    assert row["span_s"] == (t.size - 1) * 60.0
    assert row["period_s"] == pytest.approx(86400, rel=0.01)
    assert row["period_strength"] > 0.9
    assert row["trend_per_day"] == pytest.approx(1.0, rel=0.05)
    assert row["trend_r2"] > 0.95
    kept = np.delete(values, np.arange(100, 110))
    assert row["p95"] == pytest.approx(np.percentile(kept, 95))
    assert row["max"] == pytest.approx(kept.max())
    assert row["idle_frac"] == 0.0
    assert report.rows_in == report.rows_out == t.size - 10


def test_white_noise_has_no_dominant_period() -> None:
    rng = np.random.default_rng(7)
    t = np.arange(4096) * 60.0
    assert describe_shape(t, rng.normal(size=t.size), 60.0).periods_s == ()


def test_idle_and_burstiness() -> None:
    values = np.array([0.0] * 60 + [10.0] * 30 + [100.0] * 10)
    profile, _ = profile_telemetry(series(values))
    row = profile.row(0, named=True)
    assert row["idle_frac"] == pytest.approx(0.60)
    assert row["p50"] == 0.0
    assert row["burstiness"] is None  # undefined when the median is zero
    busy, _ = profile_telemetry(series(np.array([10.0] * 90 + [100.0] * 10), metric="qps"))
    assert busy.row(0, named=True)["burstiness"] == pytest.approx(100 / 10, rel=0.01)


def test_chunking_gives_the_same_answer_as_one_pass() -> None:
    rng = np.random.default_rng(1)
    frames = [series(rng.gamma(2.0, 10.0, 500), workload=f"w{i:02d}") for i in range(12)]
    whole = pl.concat(frames)
    one, _ = profile_telemetry(whole)
    chunked, report = profile_telemetry(whole.sample(fraction=1.0, shuffle=True, seed=3).lazy(),
                                        max_rows=1200)
    assert chunked.sort("workload").equals(one.sort("workload"))
    assert report.rows_in == whole.height
    assert report.reordered > 0


def test_plan_chunks_packs_whole_workloads() -> None:
    counts = pl.DataFrame({"workload": ["a", "b", "c", "d"], "n": [5, 5, 20, 1]})
    assert plan_chunks(counts, max_rows=10) == [["a", "b"], ["c"], ["d"]]


def test_empty_input_is_insufficient_data() -> None:
    with pytest.raises(InsufficientDataError, match="no telemetry rows"):
        profile_telemetry(pl.DataFrame(schema=TELEMETRY))


def _raw_gentd26(path: Path) -> dict[str, list[tuple[float, float]]]:
    with tarfile.open(path) as tar:
        member = tar.extractfile(tar.getmembers()[0])
        assert member is not None
        reader = csv.DictReader(io.TextIOWrapper(member))
        by_container: dict[str, list[tuple[float, float]]] = defaultdict(list)
        for row in reader:
            by_container[row["container_ip"]].append(
                (float(row["timestamp_anon"]), float(row["value"])))
    return by_container


def test_real_gentd26_duty_cycle_matches_numpy(gentd26_dir: Path) -> None:
    path = gentd26_dir / "pod_gpu_duty_cycle_anon.tar.gz"
    lazy = scan_telemetry(path, mapping=parse_mapping("ts=timestamp_anon,workload=container_ip"),
                          metric="gpu_util_pct")
    profile, report = profile_telemetry(lazy, source=str(path))
    raw = _raw_gentd26(path)
    assert profile.height == len(raw) == report.n_series
    assert set(profile.columns) == set(PROFILE_SCHEMA)
    assert report.rows_in == sum(len(v) for v in raw.values())
    for row in profile.iter_rows(named=True):
        samples = sorted(raw[row["workload"]])
        times = np.array([s[0] for s in samples])
        values = np.array([s[1] for s in samples])
        assert row["n_samples"] == values.size
        assert row["mean"] == pytest.approx(values.mean())
        for name, q in (("p50", 50), ("p90", 90), ("p95", 95), ("p99", 99)):
            assert row[name] == pytest.approx(np.percentile(values, q), abs=1e-9)
        assert row["max"] == values.max()
        assert row["idle_frac"] == pytest.approx(np.mean(values <= 1.0))
        if values.size > 1:
            steps = np.diff(times)
            assert row["interval_s"] == pytest.approx(np.median(steps))
            assert row["n_gaps"] == int(np.sum(steps > 2 * np.median(steps)))
            assert row["std"] == pytest.approx(values.std(ddof=1))
    # the data's known shape: serving containers are idle most of the time
    assert profile["idle_frac"].median() > 0.5


def test_spike_train_reports_its_fundamental_period() -> None:
    minutes = np.arange(2 * 1440, dtype=float)
    spikes = np.where(minutes % 60 < 4, 100.0, 10.0)  # a 4-minute checkpoint every hour
    shape = describe_shape(minutes * 60, spikes, 60.0)
    assert shape.periods_s[0] == pytest.approx(3600.0)
    assert all(not np.isclose(p, 1800.0) for p in shape.periods_s)


def test_by_phase_labels_unlabelled_data() -> None:
    values = np.array(([0.0] * 30 + [60.0] * 30) * 4) + np.tile(np.linspace(0, 1, 30), 8)
    profile, _ = profile_telemetry(series(values), by_phase=True)
    rows = {row["phase"]: row for row in profile.iter_rows(named=True)}
    assert set(rows) == {"idle", "busy"}
    assert rows["idle"]["n_samples"] + rows["busy"]["n_samples"] == values.size
    assert rows["busy"]["p50"] == pytest.approx(60.5, abs=0.5)
    assert rows["idle"]["max"] <= 1.0
