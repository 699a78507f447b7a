"""The autoscale figure a person can read: the busiest day step by step, every day summed.

Built on the real GenTD26 LoRA trace (552 h at one-minute steps, the series whose
single-axis plot hid every policy behind the others).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from foresize.ingest.sources import ReadOptions
from foresize.simulate.replicas.demand import DemandSeries, open_demand
from foresize.simulate.replicas.study import (
    Study,
    busiest_window,
    plot_study,
    run_study,
    service_config,
    study_figure,
)

pytest.importorskip("matplotlib", reason="the plot extra")
POLICIES = ("static", "hpa", "predictive", "hybrid", "oracle")


@pytest.fixture(scope="module")
def lora(mirror: Path) -> tuple[DemandSeries, Study, float]:
    series = open_demand("gentd26:lora", ReadOptions(mirror=mirror))
    config = service_config(series, capacity="1", startup="2m", drain="0", service_time=None,
                            slo=None)
    settings: dict[str, dict[str, Any]] = {"hpa": {"target": 0.7}}
    study = run_study(series, POLICIES, config, settings=settings)
    return series, study, config.capacity


def test_busiest_window_holds_the_most_demand() -> None:
    demand = np.zeros(100)
    demand[70:75] = 5.0
    assert busiest_window(demand, 60.0, 600.0) == (65, 75)
    assert busiest_window(demand[:8], 60.0, 600.0) == (0, 8)


def test_figure_has_a_busy_day_and_a_daily_summary(
        lora: tuple[DemandSeries, Study, float]) -> None:
    import matplotlib.pyplot as plt

    series, study, capacity = lora
    assert series.values.size * series.step_s > 20 * 86400  # weeks of one-minute steps
    fig = study_figure(series, study, capacity)
    busy, summary = fig.axes
    low, high = busy.get_xlim()
    assert high - low <= 24.0 + 1e-9
    peak_h = float(np.argmax(series.values)) * series.step_s / 3600.0
    start, end = busiest_window(series.values / capacity, series.step_s)
    window_peak_h = (start + int(np.argmax(series.values[start:end]))) * series.step_s / 3600
    assert low <= window_peak_h < high
    # the day with the most demand holds the trace's peak or one near it
    assert series.values[start:end].max() >= 0.5 * series.values.max(), peak_h
    assert "hours" in busy.get_xlabel()
    assert "replicas" in busy.get_ylabel()
    assert "day" in summary.get_xlabel()
    assert "replica-hours" in summary.get_ylabel()
    days = summary.lines[0].get_xdata()
    assert len(days) == int(np.ceil(series.values.size * series.step_s / 86400))
    # one line per policy in each panel (plus demand), each with its own style and colour
    for ax in (busy, summary):
        # the dash pattern itself: get_linestyle() names every custom dash "--"
        styles = [(str(line._unscaled_dash_pattern), line.get_color()) for line in ax.lines[1:]]
        assert len(styles) == len(POLICIES)
        assert len({s for s, _ in styles}) == len(POLICIES)
        assert len({c for _, c in styles}) == len(POLICIES)
    legend_labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend_labels == ["demand / capacity", *POLICIES]
    assert not busy.get_legend()
    assert not summary.get_legend()
    plt.close(fig)


def test_plot_study_writes_a_png(lora: tuple[DemandSeries, Study, float], tmp_path: Path
                                 ) -> None:
    series, study, capacity = lora
    target = tmp_path / "lora.png"
    plot_study(series, study, capacity, target)
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
