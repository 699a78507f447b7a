"""The canonical telemetry frame (its metric names are in ``core.metrics``).

Every reader maps its source into this long format, so every later stage
(profile, forecast, recommend, simulate) reads one shape only.
"""

from __future__ import annotations

import polars as pl

from foresize.core.errors import SchemaMismatchError

TS_DTYPE = pl.Datetime("us", "UTC")

TELEMETRY = pl.Schema(
    [("workload", pl.String()), ("metric", pl.String()), ("ts", TS_DTYPE), ("value", pl.Float64())]
)
TELEMETRY_OPTIONAL = pl.Schema([("phase", pl.String()), ("tenant", pl.String()),
                                ("node", pl.String())])
SERIES_KEYS = ("workload", "metric")
GAP_FACTOR = 2.0  # a step longer than twice a series' median sampling interval is a gap


def check_telemetry(frame: pl.DataFrame | pl.LazyFrame, *, source: str = "telemetry") -> None:
    """Raise ``SchemaMismatchError`` naming the first column that is missing or mistyped."""
    schema = frame.collect_schema()
    for column, expected in TELEMETRY.items():
        if column not in schema:
            raise SchemaMismatchError(
                f"{source}: missing required column {column!r} "
                f"(found: {', '.join(schema.names()) or 'none'})",
                hint="map your columns with --map ts=COL,workload=COL,metric=COL,value=COL",
            )
        if schema[column] != expected:
            raise SchemaMismatchError(
                f"{source}: column {column!r} is {schema[column]}, expected {expected}"
            )
    for column, expected in TELEMETRY_OPTIONAL.items():
        if column in schema and schema[column] != expected:
            raise SchemaMismatchError(
                f"{source}: column {column!r} is {schema[column]}, expected {expected}"
            )
