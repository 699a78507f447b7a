"""The reference strategies against the upstream constants, on hand-made inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from foresize.recommend.strategies import STRATEGIES, History, make_strategy, units_for
from foresize.recommend.strategies.base import MIB, UNITS
from foresize.recommend.strategies.krr import size_krr
from foresize.recommend.strategies.simple import oracle_sizing
from foresize.recommend.strategies.vpa import (
    ExponentialHistogram,
    confidence,
    decay_weights,
    memory_peaks,
    oom_bump,
    size_vpa,
    with_confidence,
)

DAY = 86400.0


def history(values: list[float] | np.ndarray, step_s: float = 60.0) -> History:
    y = np.asarray(values, dtype=np.float64)
    return History("w", y, np.arange(y.size) * step_s)


def test_buckets_grow_five_percent_from_first_bucket() -> None:
    cpu = ExponentialHistogram(first_bucket=0.01, max_value=1000.0)
    assert cpu.bucket_start(0) == 0.0
    assert cpu.bucket_start(1) == pytest.approx(0.01)
    assert cpu.bucket_start(2) == pytest.approx(0.01 + 0.0105)
    widths = np.diff([cpu.bucket_start(i) for i in range(10)])
    assert widths[1:] / widths[:-1] == pytest.approx(np.full(8, 1.05))
    memory = ExponentialHistogram(first_bucket=1e7, max_value=1e12)
    assert memory.bucket_start(1) == pytest.approx(1e7)


def test_percentile_returns_the_bucket_end() -> None:
    h = ExponentialHistogram(first_bucket=0.01, max_value=1000.0)
    h.add(np.array([1.0]), np.array([1.0]))
    bucket = int(h.find_buckets(np.array([1.0]))[0])
    assert h.bucket_start(bucket) <= 1.0 < h.bucket_start(bucket + 1)
    assert h.percentile(0.9) == pytest.approx(h.bucket_start(bucket + 1))
    assert h.percentile(0.5) > 1.0
    empty = ExponentialHistogram(first_bucket=0.01, max_value=1000.0)
    assert empty.percentile(0.9) == 0.0


def test_percentiles_are_p50_p90_p95_of_weights() -> None:
    h = ExponentialHistogram(first_bucket=0.01, max_value=1000.0)
    values = np.arange(1, 101, dtype=np.float64)  # 1..100 cores, equal weights
    h.add(values, np.ones(100))
    for p, expected in ((0.5, 50.0), (0.9, 90.0), (0.95, 95.0)):
        end = h.percentile(p)
        assert expected < end <= expected * 1.05 + 0.01


def test_decay_half_life_is_one_day() -> None:
    w = decay_weights(np.array([0.0, DAY, 2 * DAY]), 0.1)
    assert w == pytest.approx([0.1, 0.2, 0.4])


def test_memory_uses_one_peak_per_day_and_keeps_eight() -> None:
    ts = np.arange(10 * 24) * 3600.0  # 10 days, hourly
    values = np.ones(ts.size)
    values[::24] = np.arange(10) + 2.0  # one peak per day: 2, 3, ..., 11
    peaks, _ = memory_peaks(History("w", values, ts))
    assert peaks.tolist() == [4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0]


def test_confidence_and_bounds_scaling() -> None:
    one_day = history(np.full(1441, 1.0))  # 24 h of minutes
    assert confidence(one_day) == pytest.approx(1.0)
    half = history(np.full(100, 1.0), step_s=864.0)  # 1 day span but only 100 samples
    assert confidence(half) == pytest.approx(100 / 1440)
    assert with_confidence(10.0, 1.0, 1.0, 1.0) == pytest.approx(20.0)  # upper x (1 + 1/c)
    assert with_confidence(10.0, 1.0, 0.001, -2.0) == pytest.approx(10.0 / 1.001**2)


def test_vpa_cpu_target_margin_and_minimum() -> None:
    cpu = UNITS["cores"]
    sizing = size_vpa(history(np.full(1441, 2.0)), cpu)
    assert sizing.limit is None  # VPA leaves CPU unlimited here
    assert sizing.base > 2.0
    assert sizing.base <= 2.0 * 1.05 + 0.01
    assert sizing.request == pytest.approx(sizing.base * 1.15)  # 15 % safety margin
    assert sizing.upper == pytest.approx(
        sizing.request * (1 + 1 / confidence(history(np.full(1441, 2.0)))), rel=0.06
    )
    tiny = size_vpa(history(np.full(200, 0.001)), cpu)
    assert tiny.request == pytest.approx(0.025)  # 25 millicores pod minimum
    small_mem = size_vpa(history(np.full(200, 1e6)), UNITS["bytes"])
    assert small_mem.request == pytest.approx(250 * MIB)  # 250 MiB pod minimum


def test_vpa_memory_sizes_from_the_daily_peak() -> None:
    values = np.full(1000, 4e9)
    values[500] = 8e9  # one peak; the other samples do not count for memory
    sizing = size_vpa(history(values), UNITS["bytes"])
    assert sizing.limit == sizing.request
    assert 8e9 * 1.15 < sizing.request <= 8e9 * 1.05 * 1.15 + 2e7


def test_oom_bump() -> None:
    assert oom_bump(100 * MIB, UNITS["bytes"]) == pytest.approx(200 * MIB)  # +100 MiB wins
    assert oom_bump(10e9, UNITS["bytes"]) == pytest.approx(12e9)  # x1.2 wins


def test_krr_simple_constants() -> None:
    values = np.arange(1, 201, dtype=np.float64)  # 200 points, 1..200
    cpu = size_krr(history(values / 100), UNITS["cores"])
    assert cpu.request == pytest.approx(np.percentile(values / 100, 95))
    assert cpu.limit is None
    mem = size_krr(history(values * 1e8), UNITS["bytes"])
    assert mem.request == mem.limit == pytest.approx(200e8 * 1.15)
    assert size_krr(history(np.full(200, 1.0)), UNITS["bytes"]).request == 100 * MIB
    assert size_krr(history(np.full(200, 0.001)), UNITS["cores"]).request == 0.01


def test_krr_reads_only_the_last_fourteen_days() -> None:
    ts = np.arange(20 * 24) * 3600.0
    values = np.full(ts.size, 1e9)
    values[:24] = 9e9  # a peak 20 days ago is outside KRR's history
    mem = size_krr(History("w", values, ts), UNITS["bytes"])
    assert mem.request == pytest.approx(1e9 * 1.15)


def test_percent_metrics_scale_the_floors() -> None:
    assert units_for("mem_util_pct").kind == "memory"
    assert units_for("mem_util_pct").vpa_min == 1.0
    assert units_for("gpu_util_pct").kind == "util"
    assert units_for("cpu_cores").vpa_min == 0.025


def test_registry_and_oracle() -> None:
    assert STRATEGIES.names() == ["foresize", "vpa", "krr", "max"]
    with pytest.raises(ValueError, match="Did you mean 'vpa'"):
        make_strategy("vap")
    sized = make_strategy("max", margin=0.1)(
        {"w": history([1.0] * 50 + [3.0])}, metric="mem_bytes", risk=0.01, horizon_frac=0.3
    )
    assert sized["w"].limit == pytest.approx(3.3)
    assert oracle_sizing(np.array([1.0, 5.0, 2.0])).enforced == 5.0
    assert math.isclose(sized["w"].margin, 0.1)
