"""Files in the exact upstream layouts, and independent (stdlib) readers of them."""

from __future__ import annotations

import csv
import io
import tarfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import polars as pl

from foresize.core.schemas import TELEMETRY, TELEMETRY_OPTIONAL
from foresize.ingest.report import IngestReport


def write_csv(path: Path, header: Sequence[str] | None, rows: Iterable[Sequence[object]]) -> Path:
    """A CSV as the traces write it (comma separated, minimal quoting, '\\n' lines)."""
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        if header is not None:
            writer.writerow(header)
        writer.writerows(rows)
    return path


def write_tar_gz(csv_path: Path) -> Path:
    """Pack one CSV into NAME.tar.gz beside it, as upstream ships each table."""
    archive = csv_path.with_name(csv_path.name.removesuffix(".csv") + ".tar.gz")
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(csv_path, arcname=csv_path.name)
    return archive


def truncate(path: Path) -> Path:
    """Cut a file in half, like an interrupted download."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def tar_csv_text(archive: Path) -> str:
    with tarfile.open(archive, "r:gz") as tar:
        member = next(m for m in tar.getmembers() if m.isfile())
        handle = tar.extractfile(member)
        assert handle is not None
        return handle.read().decode()


def tar_dict_rows(archive: Path) -> list[dict[str, str]]:
    """Rows of the CSV inside a tar.gz, read with the csv module (independent of polars)."""
    return list(csv.DictReader(io.StringIO(tar_csv_text(archive))))


def tar_rows(archive: Path) -> list[list[str]]:
    """Headerless rows of the CSV inside a tar.gz."""
    return list(csv.reader(io.StringIO(tar_csv_text(archive))))


def assert_balanced(report: IngestReport) -> None:
    assert report.rows_in == report.rows_out + sum(report.dropped.values())
    assert set(report.first_row) == set(report.dropped)


def assert_canonical(frame: pl.DataFrame) -> None:
    """Canonical telemetry: the schema, UTC, sorted and unique per series and ts."""
    assert frame.select(list(TELEMETRY)).schema == TELEMETRY
    for column in set(frame.columns) - set(TELEMETRY):
        assert frame.schema[column] == TELEMETRY_OPTIONAL[column]
    assert frame.schema["ts"].time_zone == "UTC"  # type: ignore[attr-defined]
    assert frame.equals(frame.sort("workload", "metric", "ts", maintain_order=True))
    assert frame.select(pl.struct("workload", "metric", "ts").is_unique().all()).item()
    assert frame.select(list(TELEMETRY)).null_count().sum_horizontal().item() == 0
    assert frame["value"].is_finite().all()
