"""Helpers shared by command modules: reading telemetry and provenance headers."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from foresize import __version__
from foresize.cli.output import SETTINGS, info
from foresize.ingest.report import IngestReport

if TYPE_CHECKING:  # the readers load polars: only the commands that read telemetry pay
    from foresize.ingest.sources import CanonicalTelemetry, TelemetrySource

SCHEMA_VERSION = "1.0"


def announce(reports: list[IngestReport], *, all_reports: bool = False) -> None:
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


def ingest_header(sha256: Mapping[str, str | None], reports: list[IngestReport]) -> dict[str, Any]:
    """The provenance header with the ingest reports of the telemetry read."""
    return {**provenance(sha256), "ingest": [r.to_dict() for r in reports]}


def read_telemetry(
    telemetry: TelemetrySource, *, all_reports: bool = False
) -> tuple[CanonicalTelemetry, dict[str, Any]]:
    """Read the canonical telemetry, report on stderr, and its document header."""
    from foresize.ingest.sources import read_canonical

    read = read_canonical(telemetry)
    announce(read.reports, all_reports=all_reports)
    return read, ingest_header(read.sha256, read.reports)
