"""What every evaluation needs: reading a dataset table quietly, and smoke subsets."""

from __future__ import annotations

import warnings
from pathlib import Path

import polars as pl

from foresize.core.errors import InsufficientDataError
from foresize.ingest.sources import ReadOptions, open_telemetry


def read_table(address: str, *, mirror: Path | None = None) -> pl.DataFrame:
    """A dataset table as canonical telemetry, eager; the ingest counts stay in the report."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frame = open_telemetry([address], ReadOptions(mirror=mirror)).frame
        return frame.collect() if isinstance(frame, pl.LazyFrame) else frame


def first_workloads(frame: pl.DataFrame, n: int | None) -> pl.DataFrame:
    """The first ``n`` workloads by name (all when ``n`` is None): the smoke subset."""
    if n is None:
        return frame
    names = sorted(frame["workload"].unique().to_list())[:n]
    return frame.filter(pl.col("workload").is_in(names))


def require_rows(frame: pl.DataFrame, what: str) -> pl.DataFrame:
    """Fail with a clear message when an evaluation has nothing to work on."""
    if frame.is_empty():
        raise InsufficientDataError(f"{what}: no usable series to evaluate")
    return frame
