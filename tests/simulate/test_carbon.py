"""Carbon series, cost/energy/carbon accounting, and carbon-aware admission."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from foresize.core.errors import InputError
from foresize.simulate.cluster.carbon import CarbonAware, Series, account, diurnal, read_series
from foresize.simulate.cluster.engine import replay
from foresize.simulate.cluster.placement import PLACEMENT
from foresize.simulate.cluster.queue import QUEUE
from foresize.simulate.cluster.traces import synthetic_workload, with_deadlines
from foresize.simulate.cluster.workload import Workload

from .helpers import make_cluster, make_workload


def test_series_integral_is_exact_and_cyclic() -> None:
    s = Series(np.array([100.0, 300.0]), "gCO2/kWh", "t")
    assert s.integral(0, 7200) == pytest.approx(400 * 3600)
    assert s.integral(1800, 5400) == pytest.approx((100 + 300) * 1800)
    assert s.integral(7200, 14400) == pytest.approx(400 * 3600)  # wraps
    assert s.at([0, 3600, 7200]).tolist() == [100.0, 300.0, 100.0]
    d = diurnal()
    assert d.values.argmin() == 12
    assert d.values.mean() == pytest.approx(400)


def test_read_series_csv(tmp_path: Path) -> None:
    path = tmp_path / "ci.csv"
    path.write_text("ts,value\n2024-01-01T01:00:00Z,200\n2024-01-01T00:00:00Z,100\n")
    s = read_series(path)
    assert s.values.tolist() == [100.0, 200.0]
    assert s.step_s == 3600
    path.write_text("ts,value\n0,1\n3600,2\n9000,3\n")
    with pytest.raises(InputError, match="evenly spaced"):
        read_series(path)


def test_account_splits_idle_and_dynamic_power() -> None:
    cluster = make_cluster([8000], [2], models=["T4"])
    flat = Series(np.array([500.0]), "gCO2/kWh", "flat")
    out = account(cluster, flat, node=np.array([0]), start_s=np.array([0.0]),
                  end_s=np.array([3600.0]), gpus=np.array([1.0]), span_s=(0.0, 3600.0))
    # T4: 12 W idle x 2 GPUs for 1 h, plus (70 - 12) W for the one allocated GPU-hour
    assert out["energy_kwh"] == pytest.approx((24 + 58) / 1000)
    assert out["carbon_kg"] == pytest.approx(out["energy_kwh"] * 0.5)
    assert out["cost_usd"] == pytest.approx(0.98)
    assert out["gpu_hours"] == 1.0


def test_carbon_aware_holds_flexible_jobs_to_greener_hours() -> None:
    signal = Series(np.array([500.0, 500.0, 100.0, 100.0]), "gCO2/kWh", "step")
    policy = CarbonAware(signal)
    w = make_workload_with_deadline()
    assert policy.release_at(0, 0.0, w) == 7200.0  # first green hour, within its slack
    assert policy.release_at(1, 0.0, w) == 0.0  # no deadline: never held
    assert policy.release_at(2, 0.0, w) == 0.0  # no slack
    cluster = make_cluster([64000], [8])
    w = with_deadlines(synthetic_workload(60, seed=3, mean_interarrival_s=600,
                                          mean_duration_s=1800), 4.0)
    args = (w, cluster, PLACEMENT.get("best_fit")(w, cluster), QUEUE.get("fifo")())
    base, aware = replay(*args), replay(*args, admission=CarbonAware(diurnal()))
    b, a = base.summary(w, cluster), aware.summary(w, cluster)
    assert a["held"]["n"] > 0
    assert a["energy"]["dynamic_carbon_kg"] < b["energy"]["dynamic_carbon_kg"]
    assert a["energy"]["gpu_hours"] == pytest.approx(b["energy"]["gpu_hours"])


def make_workload_with_deadline() -> Workload:
    """Three 1-hour jobs: 5 h of slack, no deadline, no slack."""
    w = make_workload([(1000, 1, 1000)] * 3, duration=[3600.0, 3600.0, 3600.0])
    return replace(w, deadline_s=np.array([6 * 3600.0, np.nan, 3600.0]))
