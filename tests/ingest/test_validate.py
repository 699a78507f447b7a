from __future__ import annotations

import warnings
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from foresize.core.errors import DataDroppedWarning, InputError, SchemaMismatchError
from foresize.core.schemas import TELEMETRY
from foresize.ingest.validate import canonicalize

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def frame(rows: list[tuple[str, str, int, float | None]]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "workload": [r[0] for r in rows],
            "metric": [r[1] for r in rows],
            "ts": [T0 + timedelta(minutes=r[2]) for r in rows],
            "value": [r[3] for r in rows],
        },
        schema=TELEMETRY,
    )


def test_drops_are_counted_by_reason_with_first_row() -> None:
    rows = [
        ("a", "gpu_util_pct", 0, 1.0),
        ("a", "gpu_util_pct", 1, float("nan")),
        ("a", "gpu_util_pct", 2, -5.0),
        ("a", "gpu_util_pct", 0, 9.0),  # duplicate ts: the first valid one wins
        ("a", "gpu_util_pct", 3, None),
        ("a", "gpu_util_pct", 4, float("inf")),
        ("b", "custom_score", 0, -2.0),  # custom metrics may be negative
    ]
    with pytest.warns(DataDroppedWarning, match="dropped"):
        out, report = canonicalize(frame(rows), source="t.csv")
    assert out.schema == TELEMETRY
    assert out.rows() == [
        ("a", "gpu_util_pct", T0, 1.0),
        ("b", "custom_score", T0, -2.0),
    ]
    assert report.dropped == {
        "nan_value": 1, "negative_value": 1, "duplicate_ts": 1, "missing_value": 1,
        "infinite_value": 1,
    }
    assert report.first_row == {
        "nan_value": 2, "negative_value": 3, "duplicate_ts": 4, "missing_value": 5,
        "infinite_value": 6,
    }
    assert report.rows_in == report.rows_out + report.n_dropped


def test_nan_row_never_wins_a_duplicate() -> None:
    rows = [("a", "qps", 0, float("nan")), ("a", "qps", 0, 3.0)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataDroppedWarning)
        out, report = canonicalize(frame(rows), source="t")
    assert out["value"].to_list() == [3.0]
    assert report.dropped == {"nan_value": 1}


def test_unsorted_rows_are_sorted_and_counted() -> None:
    rows = [("a", "qps", 2, 1.0), ("a", "qps", 0, 2.0), ("a", "qps", 1, 3.0)]
    out, report = canonicalize(frame(rows), source="t")
    assert out["value"].to_list() == [2.0, 3.0, 1.0]
    assert report.reordered == 1
    assert report.dropped == {}


def test_strict_names_the_first_bad_row() -> None:
    rows = [("a", "qps", 0, 1.0), ("a", "qps", 1, -1.0), ("a", "qps", 1, 2.0)]
    message = (r"^t.csv: row 2: field 'value' is negative for a usage metric \(got -1.0\); "
               r"1 invalid row in all: negative_value=1$")
    with pytest.raises(InputError, match=message):
        canonicalize(frame(rows), source="t.csv", strict=True)


def test_times_no_output_can_hold_are_dropped_and_counted() -> None:
    # constructed (no real trace has them): epoch seconds of -8.8e10 are the year -834,
    # which polars holds and Python's datetime (JSON, tables) cannot
    epoch = pl.Series([1_700_000_000, -88_472_000_000, 1_700_000_060, 400_000_000_000])
    raw = pl.DataFrame({"workload": ["a"] * 4, "metric": ["qps"] * 4,
                        "ts": pl.from_epoch(epoch, time_unit="s").dt.replace_time_zone("UTC"),
                        "value": [1.0, 2.0, 3.0, 4.0]}).cast({"ts": TELEMETRY["ts"]})
    with pytest.warns(DataDroppedWarning):
        out, report = canonicalize(raw, source="t.csv")
    assert report.dropped == {"ts_out_of_range": 2}
    assert out["value"].to_list() == [1.0, 3.0]
    assert len(out.to_dicts()) == 2  # every kept time converts
    with pytest.raises(InputError, match=r"^t.csv: row 2: field 'ts' is outside the years 1 to "
                       r"9999 \(got '-0834-06-08 12:26:40.000000\+00:00'\); 2 invalid rows"):
        canonicalize(raw, source="t.csv", strict=True)


def test_non_numeric_value_column_is_a_schema_error() -> None:
    bad = frame([("a", "qps", 0, 1.0)]).with_columns(value=pl.lit("high"))
    with pytest.raises(SchemaMismatchError,
                       match=r"row 1: column 'value' holds 'high', expected a number$"):
        canonicalize(bad, source="t.csv")


def test_naive_timestamps_are_taken_as_utc() -> None:
    naive = frame([("a", "qps", 0, 1.0)]).with_columns(pl.col("ts").dt.replace_time_zone(None))
    out, _ = canonicalize(naive, source="t")
    assert out["ts"].to_list() == [T0]


values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=64), st.none(),
    st.integers(-5, 5).map(float),
)
rows_strategy = st.lists(
    st.tuples(st.sampled_from(["w1", "w2"]), st.sampled_from(["qps", "gpu_util_pct", "x"]),
              st.integers(0, 20), values),
    max_size=60,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows_strategy)
def test_canonical_invariants(rows: list[tuple[str, str, int, float | None]]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataDroppedWarning)
        out, report = canonicalize(frame(rows), source="prop")
    assert out.schema == TELEMETRY
    assert report.rows_in == len(rows) == report.rows_out + report.n_dropped
    assert out.height == report.rows_out
    assert out.select(pl.struct("workload", "metric", "ts").is_unique().all()).item()
    assert out.equals(out.sort("workload", "metric", "ts"))
    finite = out["value"].is_finite().all() if out.height else True
    assert finite
    assert (out.filter(pl.col("metric") != "x")["value"] >= 0).all()
