"""What an ingestor read, kept and dropped: nothing leaves a reader silently."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class IngestReport:
    """Counts of one ingestion: rows in, rows out and why the difference was dropped.

    ``rows_in == rows_out + sum(dropped.values())`` always holds. ``reordered`` counts
    rows that arrived out of time order within their series; they are kept and sorted.
    ``first_row`` gives, per drop reason, the 1-based data row where it first occurred.
    """

    source: str
    rows_in: int = 0
    rows_out: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    first_row: dict[str, int] = field(default_factory=dict)
    reordered: int = 0
    n_series: int = 0
    sha256: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def n_dropped(self) -> int:
        """Rows dropped for any reason."""
        return sum(self.dropped.values())

    def merge(self, other: IngestReport) -> IngestReport:
        """Add another report's counts into this one (chunks or files of one ingestion)."""
        offset = self.rows_in
        self.rows_in += other.rows_in
        self.rows_out += other.rows_out
        for reason, count in other.dropped.items():
            self.dropped[reason] = self.dropped.get(reason, 0) + count
        for reason, row in other.first_row.items():
            self.first_row.setdefault(reason, row + offset)
        self.reordered += other.reordered
        self.n_series += other.n_series
        self.notes.extend(other.notes)
        return self

    def summary(self) -> str:
        """One human line for stderr."""
        text = f"{self.source}: {self.rows_in:,} rows read, {self.rows_out:,} kept"
        if self.dropped:
            reasons = ", ".join(f"{k}={v:,}" for k, v in sorted(self.dropped.items()))
            text += f"; dropped {reasons}"
        if self.reordered:
            text += f"; {self.reordered:,} out-of-order rows sorted"
        return text

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready form."""
        return {
            "source": self.source,
            "sha256": self.sha256,
            "rows_in": self.rows_in,
            "rows_out": self.rows_out,
            "dropped": dict(sorted(self.dropped.items())),
            "first_row": dict(sorted(self.first_row.items())),
            "reordered": self.reordered,
            "n_series": self.n_series,
            "notes": list(self.notes),
        }
