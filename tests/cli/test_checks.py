"""``--check`` gates: the grammar, and how rows are judged and named (known answers)."""

from __future__ import annotations

import math

import polars as pl
import pytest

from foresize.cli.checks import Check, check_gate_columns, enforce, parse_checks
from foresize.core.errors import CheckFailedError, UnknownNameError, UsageError


@pytest.mark.parametrize(("text", "check"), [
    ("mase<=1.0", Check("mase", "<=", 1.0)),
    (" attainment >= 0.99 ", Check("attainment", ">=", 0.99)),
    ("gpu_hours<1e3", Check("gpu_hours", "<", 1000.0)),
    ("p99_ttft_s>-2", Check("p99_ttft_s", ">", -2.0)),
])
def test_the_grammar(text: str, check: Check) -> None:
    assert parse_checks([text]) == [check]


@pytest.mark.parametrize("text", ["mase=1", "mase<=", "<=1", "mase<=nan", "mase<=inf",
                                  "mase<=1 extra", "1mase<=1", "mase=<1"])
def test_malformed_gates_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError, match="is not COLUMN OP NUMBER"):
        parse_checks([text])


def test_every_row_must_hold_and_a_missing_value_breaks() -> None:
    frame = pl.DataFrame({"model": ["naive", "arima", "hybrid", "wavelet", "auto"],
                          "mase": [0.9, 1.2, None, 1.0, math.nan]})
    enforce([frame], [])  # no gates: nothing to judge
    with pytest.raises(CheckFailedError) as info:
        enforce([frame], parse_checks(["mase<=1"]))
    assert str(info.value) == ("check failed: mase<=1 broken by 3 of 5 rows: arima (1.2), "
                               "hybrid (no value), auto (no value)")
    with pytest.raises(CheckFailedError, match=r"mase<1 broken by 4 of 5 rows: arima \(1.2\), "
                       r"hybrid \(no value\), wavelet \(1\), \+1 more$"):
        enforce([frame], parse_checks(["mase<1"]))


def test_rows_without_a_text_column_are_numbered() -> None:
    frame = pl.DataFrame({"replicas": [1, 3], "attainment": [0.999, 0.95]})
    with pytest.raises(CheckFailedError, match=r"broken by 1 of 2 rows: row 2 \(0.95\)$"):
        enforce([frame], parse_checks(["attainment>=0.99"]))
    enforce([frame], parse_checks(["attainment>=0.9", "replicas<=3"]))


def test_a_gate_names_a_numeric_column() -> None:
    frame = pl.DataFrame({"model": ["naive"], "mase": [0.5]})
    check_gate_columns([frame], parse_checks(["mase<1"]))
    for text in ("mse<1", "model<1"):  # a typo, and a text column
        with pytest.raises(UnknownNameError, match="valid: mase"):
            check_gate_columns([frame], parse_checks([text]))
