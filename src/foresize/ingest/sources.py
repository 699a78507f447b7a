"""One door for telemetry: a SOURCE is a file path, ``-`` (stdin), a dataset name or
``NAME:TABLE``, or a Prometheus server (``prometheus://HOST:PORT`` with a query).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import polars as pl

from foresize.core.errors import InputError
from foresize.core.io import sha256_file
from foresize.ingest.prometheus import open_prometheus, parse_prometheus_source
from foresize.ingest.report import IngestReport
from foresize.ingest.tabular import STDIN, TsUnit, scan_telemetry


@dataclass(frozen=True, slots=True)
class ReadOptions:
    """How to read generic files and Prometheus (dataset tables know their own layout)."""

    mapping: Mapping[str, str] = field(default_factory=dict)
    metric: str | None = None
    workload: str | None = None
    ts_unit: TsUnit = "s"
    ts_format: str | None = None
    mirror: Path | None = None
    query: str | None = None
    since_s: float = 7 * 86400.0
    until: datetime | None = None
    step_s: float = 60.0


@dataclass(slots=True)
class Telemetry:
    """Telemetry opened from one or more sources, lazily where the source allows it.

    ``reports`` holds what dataset readers already validated; rows from generic files
    are validated when collected (``profile_telemetry`` and ``ingest`` do that).
    """

    frame: pl.LazyFrame
    label: str
    reports: list[IngestReport]
    sha256: dict[str, str]


def _looks_like_file(text: str) -> bool:
    return text == STDIN or Path(text).exists() or "/" in text or Path(text).suffix.lower() in {
        ".csv", ".parquet", ".pq", ".gz", ".tgz", ".tsv",
    }


def open_telemetry(sources: Sequence[str], options: ReadOptions | None = None) -> Telemetry:
    """Open every SOURCE as canonical telemetry columns and stack them."""
    options = options or ReadOptions()
    if not sources:
        raise InputError("no telemetry source given")
    frames: list[pl.LazyFrame] = []
    reports: list[IngestReport] = []
    hashes: dict[str, str] = {}
    for source in sources:
        if parse_prometheus_source(source) is not None:
            frame_eager, report = open_prometheus(
                source, query=options.query, since_s=options.since_s, until=options.until,
                step_s=options.step_s, mapping=options.mapping, metric=options.metric,
            )
            frames.append(frame_eager.lazy())
            reports.append(report)
        elif _looks_like_file(source):
            if Path(source).is_file():
                hashes[source] = sha256_file(source)
            frames.append(
                scan_telemetry(
                    source, mapping=options.mapping, metric=options.metric,
                    workload=options.workload, ts_unit=options.ts_unit,
                    ts_format=options.ts_format,
                )
            )
        else:
            frame, dataset_reports = _open_dataset(source, mirror=options.mirror)
            frames.append(frame)
            reports.extend(dataset_reports)
            hashes.update({r.source: r.sha256 for r in dataset_reports if r.sha256})
    stacked = pl.concat(frames, how="diagonal_relaxed") if len(frames) > 1 else frames[0]
    return Telemetry(stacked, ", ".join(sources), reports, hashes)


def _open_dataset(address: str, *, mirror: Path | None) -> tuple[pl.LazyFrame, list[IngestReport]]:
    from foresize.ingest import datasets

    frames, reports = datasets.read_telemetry_tables(address, mirror=mirror)
    return pl.concat([f.lazy() for f in frames], how="diagonal_relaxed"), reports
