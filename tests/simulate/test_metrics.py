"""Known answers for the metric functions."""

from __future__ import annotations

import math

import pytest

from foresize.simulate.cluster.metrics import (
    allocated_gpu_fraction,
    delay_stats,
    fragmentation_rate,
    jain_fairness,
    unallocated_gpu_fraction,
)


def test_gpu_fractions() -> None:
    assert allocated_gpu_fraction(750, 1000) == 0.75
    assert unallocated_gpu_fraction(750, 1000) == 0.25
    assert fragmentation_rate(100, 400) == 0.25
    assert fragmentation_rate(0, 0) == 0.0


def test_delay_stats() -> None:
    stats = delay_stats(list(range(101)))
    assert stats == {"mean_s": 50.0, "p50_s": 50.0, "p95_s": 95.0, "p99_s": 99.0}
    assert math.isnan(delay_stats([])["mean_s"])


def test_jain_fairness() -> None:
    assert jain_fairness([1, 1, 1, 1]) == 1.0
    assert jain_fairness([1, 0, 0, 0]) == 0.25
    assert jain_fairness([1, 3]) == pytest.approx(16 / 20)

