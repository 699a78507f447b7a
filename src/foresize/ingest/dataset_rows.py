"""What the dataset registry shows: a document per dataset, a row per file, and the rows
and one-line summaries of a fetch or a verify (``foresize datasets`` renders them).
"""

from __future__ import annotations

from typing import Any

import polars as pl

from foresize.core.units import human_bytes
from foresize.ingest.datasets import Dataset, FetchedTable, Table, VerifyRow


def dataset_doc(dataset: Dataset) -> dict[str, Any]:
    """A dataset's card: names, license, citation, size, tables, mirrored tables."""
    return {
        "name": dataset.name,
        "alias": dataset.alias,
        "title": dataset.title,
        "description": dataset.description,
        "license": dataset.license,
        "homepage": dataset.homepage,
        "citation": dataset.citation,
        "card": dataset.card,
        "size_bytes": dataset.size_bytes,
        "n_tables": len(dataset.tables),
        "n_mirrored": dataset.n_mirrored,
    }


def file_rows(tables: list[Table]) -> list[dict[str, Any]]:
    """One row per file of the tables: path, size, sha256, mirrored, URL, reader."""
    return [
        {
            "table": t.name,
            "kind": t.kind,
            "file": f.path,
            "size_bytes": f.size_bytes,
            "sha256": f.sha256,
            "mirrored": f.mirrored,
            "url": f.url,
            "reader": t.reader,
            "description": t.description,
        }
        for t in tables
        for f in t.files
    ]


def fetch_summary(fetched: list[FetchedTable]) -> str:
    """One line for stderr: what was verified, from where, and what the mirror lacked."""
    done = [f for f in fetched if f.path is not None]
    size = sum(f.table.size_bytes or 0 for f in done)
    wording = {"mirror": "from the mirror", "download": "downloaded", "cache": "already cached"}
    how = ", ".join(
        f"{n} {words}"
        for origin, words in wording.items()
        if (n := sum(f.origin == origin for f in done))
    )
    tables = "1 table" if len(done) == 1 else f"{len(done)} tables"
    text = f"{fetched[0].table.dataset}: {tables} verified ({human_bytes(size)}; {how})"
    skipped = [f.table.name for f in fetched if f.path is None]
    if skipped:
        text += (
            f"; {len(skipped)} not in the mirror: {', '.join(skipped)} "
            "(drop --mirror to download them)"
        )
    return text


def fetch_rows(fetched: list[FetchedTable]) -> list[dict[str, Any]]:
    """One row per fetched table: where it came from, where it is, its files."""
    return [
        {
            "dataset": f.table.dataset,
            "table": f.table.name,
            "status": "ok" if f.path is not None else "not_in_mirror",
            "origin": f.origin,
            "path": None if f.path is None else str(f.path),
            "size_bytes": f.table.size_bytes,
            "sha256": f.table.sha256,
            "url": f.table.url,
            "files": [str(p) for p in f.paths],
            "missing": list(f.missing),
        }
        for f in fetched
    ]


def verify_frame(rows: list[VerifyRow]) -> pl.DataFrame:
    """One row per file checked: status, expected and actual sha256."""
    return pl.DataFrame(
        [
            {
                "dataset": r.table.dataset,
                "table": r.table.name,
                "file": r.file.path,
                "status": r.status,
                "local_path": str(r.local_path),
                "size_bytes": r.file.size_bytes,
                "expected_sha256": r.file.sha256,
                "actual_sha256": r.actual,
            }
            for r in rows
        ],
        schema_overrides={"size_bytes": pl.Int64, "actual_sha256": pl.String},
    )
