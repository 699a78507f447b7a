"""Real GenTD26 panels shared by the forecasting tests."""

from __future__ import annotations

import warnings
from pathlib import Path

import polars as pl
import pytest

from foresize.forecast.panel import to_panel
from foresize.ingest.sources import ReadOptions, open_telemetry


def _frame(address: str, mirror: Path) -> pl.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        opened = open_telemetry([address], ReadOptions(mirror=mirror))
        frame = opened.frame
        return frame.collect() if isinstance(frame, pl.LazyFrame) else frame


@pytest.fixture(scope="session")
def gpu_telemetry(mirror: Path) -> pl.DataFrame:
    """GenTD26 pod_gpu_duty_cycle as canonical telemetry (143 containers, 57 s steps)."""
    return _frame("alibaba-gentd26:gpu_duty_cycle", mirror)


@pytest.fixture(scope="session")
def gpu_panel(gpu_telemetry: pl.DataFrame) -> pl.DataFrame:
    """The GPU duty-cycle panel on its regular grid."""
    return to_panel(gpu_telemetry)[0]


@pytest.fixture(scope="session")
def gpu_subset(gpu_panel: pl.DataFrame) -> pl.DataFrame:
    """Twelve real containers (the first by name) for tests that fit models."""
    names = sorted(gpu_panel["series"].unique().to_list())[:12]
    return gpu_panel.filter(pl.col("series").is_in(names))
