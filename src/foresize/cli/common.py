"""Helpers shared by command modules: opening sources and provenance headers."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import polars as pl

from foresize import __version__
from foresize.cli.output import SETTINGS, info
from foresize.core.units import parse_duration
from foresize.ingest.report import IngestReport
from foresize.ingest.sources import ReadOptions, Telemetry, open_telemetry
from foresize.ingest.tabular import TsUnit, collect_input, parse_mapping
from foresize.ingest.validate import canonicalize

SCHEMA_VERSION = "1.0"
TS_UNITS: tuple[TsUnit, ...] = ("s", "ms", "us", "ns")


def read_options(
    *, mapping: str | None, as_metric: str | None, ts_unit: str, ts_format: str | None,
    mirror: Path | None, query: str | None = None, since: str = "7d",
    until: datetime | None = None, step: str = "1m",
) -> ReadOptions:
    """Build reader options from the shared CLI flags."""
    import typer

    if ts_unit not in TS_UNITS:
        raise typer.BadParameter(f"{ts_unit!r} is not one of {', '.join(TS_UNITS)}",
                                 param_hint="--ts-unit")
    unit: TsUnit = ts_unit
    return ReadOptions(mapping=parse_mapping(mapping), metric=as_metric, ts_unit=unit,
                       ts_format=ts_format, mirror=mirror, query=query,
                       since_s=parse_duration(since), until=until, step_s=parse_duration(step))


def open_filtered(
    sources: list[str], options: ReadOptions, *, workloads: list[str] | None,
    metrics: list[str] | None,
) -> Telemetry:
    """Open sources and keep only the workloads (glob) and metrics asked for."""
    telemetry = open_telemetry(sources, options)
    frame = telemetry.frame
    if metrics:
        frame = frame.filter(pl.col("metric").is_in(metrics))
    if workloads:
        patterns = list(workloads)
        frame = frame.filter(
            pl.col("workload").map_elements(
                lambda name: any(fnmatchcase(name, p) for p in patterns),
                return_dtype=pl.Boolean,
            )
        )
    telemetry.frame = frame
    return telemetry


def ingest_reports(opened: Telemetry, final: IngestReport) -> list[IngestReport]:
    """The reports worth showing: each dataset table's own, plus the final pass over the
    stacked rows where it found something more (or where nothing validated them before).
    """
    if not opened.reports or final.n_dropped or final.reordered:
        return [*opened.reports, final]
    return list(opened.reports)


def announce(reports: list[IngestReport], *, all_reports: bool) -> None:
    """One stderr line per report: all of them, or only those that dropped or sorted."""
    for report in reports:
        if all_reports or report.n_dropped or report.reordered:
            info(report.summary())


def provenance(sha256: Mapping[str, str | None]) -> dict[str, Any]:
    """Header every JSON document carries: versions, time, inputs and their hashes."""
    return {
        "schema_version": SCHEMA_VERSION,
        "foresize_version": __version__,
        "generated_at": datetime.now(UTC).replace(microsecond=0).isoformat(),
        "seed": SETTINGS.seed,
        "inputs": [{"source": s, "sha256": h} for s, h in sha256.items()],
    }


def read_canonical(
    sources: list[str], options: ReadOptions, *, strict: bool, workload: list[str] | None,
    metric: list[str] | None, all_reports: bool,
) -> tuple[pl.DataFrame, dict[str, Any]]:
    """Open, filter and canonicalise the sources; report on stderr; provenance header."""
    opened = open_filtered(sources, options, workloads=workload, metrics=metric)
    raw = collect_input(opened.frame, source=opened.label)
    frame, report = canonicalize(raw, source=opened.label, strict=strict)
    reports = ingest_reports(opened, report)
    announce(reports, all_reports=all_reports)
    return frame, {**provenance(opened.sha256), "ingest": [r.to_dict() for r in reports]}
