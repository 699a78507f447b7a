"""Demand series: LoRA concurrency on the real trace, summed telemetry, bad input."""

from __future__ import annotations

import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from foresize.core.errors import InputError
from foresize.ingest.alibaba.gentd26 import read_gentd26_lora
from foresize.ingest.sources import ReadOptions
from foresize.simulate.replicas.demand import (
    lora_concurrency,
    mean_concurrency,
    open_demand,
    peak_concurrency,
    summed_demand,
)


@pytest.fixture(scope="module")
def requests(gentd26_dir: Path) -> pl.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frame, _ = read_gentd26_lora(gentd26_dir / "lora_request_trace.tar.gz")
    return frame


def brute_peak(start: np.ndarray, end: np.ndarray, lo: float, hi: float) -> int:
    """Requests executing at the step start and just after each event inside the step."""
    probes = [lo, *sorted(t for t in np.concatenate([start, end]) if lo < t < hi)]
    return max(int(((start <= p) & (p < end)).sum()) for p in probes)


def test_lora_concurrency_on_the_real_trace(requests: pl.DataFrame) -> None:
    series = lora_concurrency(requests)
    values = series.values
    assert series.step_s == 60.0
    assert (values >= 0).all()
    assert (values == np.round(values)).all()
    assert series.offered is not None
    assert (series.offered <= values + 1e-9).all()
    # total busy time is conserved: sum of mean concurrency x step = sum of exec times
    assert series.offered.sum() * 60 == pytest.approx(requests["exec_time_s"].sum(), rel=1e-9)
    start = requests["ts"].dt.epoch("us").to_numpy() / 1e6
    end = start + requests["exec_time_s"].to_numpy()
    t0 = series.start_us / 1e6
    busiest = int(np.argmax(values))
    for first in (busiest - 30, 5000, 20000):
        for i in range(first, first + 60):
            lo = t0 + 60 * i
            assert values[i] == brute_peak(start, end, lo, lo + 60), i
    assert values.max() == 22  # measured on the mirror


def test_peak_concurrency_boundaries() -> None:
    # [0, 60) and [60, 120): never overlap; [30, 90) overlaps both
    start, end = np.array([0.0, 60.0, 30.0]), np.array([60.0, 120.0, 90.0])
    peaks = peak_concurrency(start, end, t0_s=0.0, step_s=60.0, n=3)
    assert peaks.tolist() == [2.0, 2.0, 0.0]
    mean = mean_concurrency(start, end, t0_s=0.0, step_s=60.0, n=3)
    assert mean.tolist() == [1.5, 1.5, 0.0]
    # zero-length requests never execute
    assert peak_concurrency(
        np.array([5.0]), np.array([5.0]), t0_s=0.0, step_s=60.0, n=1
    ).tolist() == [0.0]


def telemetry(rows: list[tuple[str, int, float]]) -> pl.DataFrame:
    base = datetime(2024, 1, 1, tzinfo=UTC)
    return pl.DataFrame(
        {
            "workload": [w for w, _, _ in rows],
            "metric": ["qps"] * len(rows),
            "ts": [base + timedelta(seconds=s) for _, s, _ in rows],
            "value": [v for _, _, v in rows],
        }
    ).with_columns(pl.col("ts").cast(pl.Datetime("us", "UTC")))


def test_summed_demand_sums_workloads_and_fills_gaps() -> None:
    frame = telemetry(
        [
            ("a", 0, 1.0),
            ("b", 0, 2.0),
            ("a", 60, 2.0),
            ("b", 60, 2.0),
            ("a", 180, 5.0),
            ("a", 240, 1.0),
        ]
    )
    series = summed_demand(frame)
    assert series.step_s == 60.0
    assert series.values.tolist() == [3.0, 4.0, 4.5, 5.0, 1.0]  # 120 s interpolated
    assert series.filled == 1


def test_negative_demand_is_an_input_error() -> None:
    with pytest.raises(InputError, match=r"qps is -1.0 for 'a'"):
        summed_demand(telemetry([("a", 0, 1.0), ("a", 60, -1.0)]))


def test_qps_dataset_is_summed_over_containers(mirror: Path) -> None:
    series = open_demand("alibaba-gentd26:qps", ReadOptions(mirror=mirror), metric="qps")
    assert series.step_s == 57.0
    assert 1300 < series.values.size < 1500
    assert series.values.max() == pytest.approx(6.84)
    assert any("gateway" in note for note in series.notes)
