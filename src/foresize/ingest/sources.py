"""One door for telemetry: a SOURCE is a file path, ``-`` (stdin), a dataset name or
``NAME:TABLE``, or a Prometheus server (``prometheus://HOST:PORT`` with a query).

A :class:`TelemetrySource` is what every command that reads telemetry is given (the CLI
builds it from one group of options); :func:`read_canonical` turns it into the canonical
frame and the ingest reports worth showing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from fnmatch import fnmatchcase
from pathlib import Path

import polars as pl

from foresize.core.errors import InputError
from foresize.core.io import sha256_file
from foresize.ingest.cluster.client import DEFAULT_MAX_RESPONSE_BYTES
from foresize.ingest.cluster.discovery import Scope
from foresize.ingest.cluster.read import DEFAULT_TIMEOUT_S, ClusterRequest, read_cluster
from foresize.ingest.prometheus import open_prometheus, parse_prometheus_source
from foresize.ingest.report import IngestReport
from foresize.ingest.tabular import STDIN, TsUnit, collect_input, scan_telemetry
from foresize.ingest.units import value_ranges, warn_on_units
from foresize.ingest.validate import canonicalize


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
    namespaces: tuple[str, ...] = ()
    owner_kinds: tuple[str, ...] = ()
    selector: str | None = None
    cluster_label: str | None = None
    timeout_s: float = DEFAULT_TIMEOUT_S
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES


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
        if parse_prometheus_source(source) is not None and options.query is None:
            cluster = read_cluster(cluster_request(source, options))
            frames.append(cluster.frame.lazy())
            reports.append(cluster.report)
        elif parse_prometheus_source(source) is not None:
            frame_eager, report = open_prometheus(
                source, query=options.query, since_s=options.since_s, until=options.until,
                step_s=options.step_s, mapping=options.mapping, metric=options.metric,
                deadline_s=options.timeout_s,
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
            frame, dataset_reports = _open_dataset(source, mirror=options.mirror,
                                                   timeout_s=options.timeout_s)
            frames.append(frame)
            reports.extend(dataset_reports)
            hashes.update({r.source: r.sha256 for r in dataset_reports if r.sha256})
    stacked = pl.concat(frames, how="diagonal_relaxed") if len(frames) > 1 else frames[0]
    return Telemetry(stacked, ", ".join(sources), reports, hashes)


def cluster_request(source: str, options: ReadOptions) -> ClusterRequest:
    """A Prometheus SOURCE without ``--query`` is a whole cluster (``ingest.cluster``)."""
    scope = Scope(namespaces=options.namespaces, owner_kinds=options.owner_kinds,
                  selector=options.selector, cluster_label=options.cluster_label)
    return ClusterRequest(source, since_s=options.since_s, until=options.until,
                          step_s=options.step_s, scope=scope, timeout_s=options.timeout_s,
                          max_response_bytes=options.max_response_bytes)


def is_cluster_source(source: TelemetrySource) -> bool:
    """One Prometheus SOURCE and no ``--query``: cluster mode."""
    return (len(source.sources) == 1 and source.options.query is None
            and parse_prometheus_source(source.sources[0]) is not None)


def _open_dataset(address: str, *, mirror: Path | None,
                  timeout_s: float) -> tuple[pl.LazyFrame, list[IngestReport]]:
    """A dataset address's telemetry tables, downloaded within ``--timeout`` if need be."""
    from foresize.ingest import datasets

    frames, reports = datasets.read_telemetry_tables(address, mirror=mirror, timeout_s=timeout_s)
    return pl.concat([f.lazy() for f in frames], how="diagonal_relaxed"), reports


@dataclass(frozen=True, slots=True)
class TelemetrySource:
    """Telemetry to read: the SOURCEs, how to read them, and which rows to keep.

    ``workloads`` are globs and ``metrics`` names (empty keeps all); ``strict`` makes an
    invalid row an error instead of a counted drop.
    """

    sources: tuple[str, ...]
    options: ReadOptions = field(default_factory=ReadOptions)
    workloads: tuple[str, ...] = ()
    metrics: tuple[str, ...] = ()
    strict: bool = False
    scale: float = 1.0

    @property
    def label(self) -> str:
        """The sources as one line, for titles and messages."""
        return ", ".join(self.sources)


@dataclass(frozen=True, slots=True)
class CanonicalTelemetry:
    """Canonical telemetry rows, where they came from and what reading them dropped."""

    frame: pl.DataFrame
    label: str
    reports: list[IngestReport]
    sha256: dict[str, str]


def open_source(source: TelemetrySource) -> Telemetry:
    """Open the sources lazily and keep only the workloads (globs) and metrics asked for."""
    telemetry = open_telemetry(source.sources, source.options)
    frame = telemetry.frame
    if source.metrics:
        frame = frame.filter(pl.col("metric").is_in(list(source.metrics)))
    if source.workloads:
        patterns = list(source.workloads)
        frame = frame.filter(
            pl.col("workload").map_elements(
                lambda name: any(fnmatchcase(name, p) for p in patterns),
                return_dtype=pl.Boolean,
            )
        )
    if source.scale != 1.0:
        frame = _scaled(frame, source.scale, label=telemetry.label)
    telemetry.frame = frame
    return telemetry


def _scaled(frame: pl.LazyFrame, scale: float, *, label: str) -> pl.LazyFrame:
    """``--scale``: every value times ``scale``, before validation sees it."""
    dtype = frame.collect_schema().get("value")
    if dtype is None or not dtype.is_numeric():
        raise InputError(f"{label}: --scale needs numbers in column 'value', found {dtype}")
    return frame.with_columns(pl.col("value") * scale)


def shown_reports(opened: Telemetry, final: IngestReport) -> list[IngestReport]:
    """The reports worth showing: each dataset table's own, plus the final pass over the
    stacked rows where it found something more (or where nothing validated them before).
    """
    if not opened.reports or final.n_dropped or final.reordered:
        return [*opened.reports, final]
    return list(opened.reports)


def read_canonical(source: TelemetrySource) -> CanonicalTelemetry:
    """Open, filter and canonicalise ``source``: the frame and its ingest reports."""
    opened = open_source(source)
    raw = collect_input(opened.frame, source=opened.label)
    frame, report = canonicalize(raw, source=opened.label, strict=source.strict)
    warn_on_units(value_ranges(frame), source=opened.label)
    return CanonicalTelemetry(frame, opened.label, shown_reports(opened, report), opened.sha256)
