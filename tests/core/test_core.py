from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from foresize.core.errors import InputError, SchemaMismatchError, UnknownNameError
from foresize.core.io import atomic_write, sha256_file
from foresize.core.registry import Registry
from foresize.core.schemas import TELEMETRY, check_telemetry
from foresize.core.units import human_bytes, human_duration, parse_duration


def test_registry_suggests_closest_name() -> None:
    registry: Registry[int] = Registry("model")
    registry.add("hybrid_lgbm", 1)
    registry.add("auto_arima", 2)
    assert registry.get("auto_arima") == 2
    with pytest.raises(UnknownNameError) as info:
        registry.get("hybrid-lgbm")
    assert "Did you mean 'hybrid_lgbm'?" in str(info.value)
    assert info.value.exit_code == 2  # names come from flags: a usage error
    with pytest.raises(ValueError, match="registered twice"):
        registry.add("auto_arima", 3)


def test_atomic_write_leaves_nothing_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    def fail_midway() -> None:
        with atomic_write(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        fail_midway()
    assert list(tmp_path.iterdir()) == []
    with atomic_write(target) as tmp:
        tmp.write_text("whole")
    assert target.read_text() == "whole"
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_sha256_matches_known_digest(tmp_path: Path) -> None:
    path = tmp_path / "x"
    path.write_bytes(b"abc")
    assert sha256_file(path) == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )


def test_units_round_trip() -> None:
    assert human_bytes(30064771072) == "28.0 GiB"
    assert human_bytes(512) == "512.0 B"
    assert human_duration(93784) == "1d 2h"
    assert human_duration(42.25) == "42.2s"
    assert parse_duration("14d") == 14 * 86400
    assert parse_duration("90s") == 90
    with pytest.raises(InputError, match="needs a number and a unit"):
        parse_duration("14")


def test_check_telemetry_names_the_column() -> None:
    good = pl.DataFrame(schema=TELEMETRY)
    check_telemetry(good)
    with pytest.raises(SchemaMismatchError, match="missing required column 'value'"):
        check_telemetry(good.drop("value"), source="t.parquet")
    with pytest.raises(SchemaMismatchError, match=r"t.parquet: column 'value' is String"):
        check_telemetry(good.with_columns(pl.col("value").cast(pl.String)), source="t.parquet")


def test_redact_masks_registered_secrets_credentials_and_header_values() -> None:
    from foresize.core import secrets

    secrets.register("SECRET-LINE-ONE\nSECRET-LINE-TWO")
    text = secrets.redact(
        "Invalid header value b'Bearer SECRET-LINE-ONE\\nSECRET-LINE-TWO' for "
        "https://alice:pw0rd@host/x; Authorization: Bearer abcdefgh1234; the bearer token "
        "was refused"
    )
    assert "SECRET" not in text
    assert "alice" not in text
    assert "pw0rd" not in text
    assert "abcdefgh1234" not in text
    assert "the bearer token was refused" in text


def test_an_internal_error_quoting_a_header_is_printed_redacted(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from foresize.cli.errors import report

    code = report(ValueError("Invalid header value b'Bearer zyxwvuts9876\\nrest'"))
    err = capsys.readouterr().err
    assert code == 1
    assert "zyxwvuts9876" not in err
    assert "Bearer ***" in err


@pytest.mark.parametrize("nested", [False, True])
def test_streamed_json_is_byte_for_byte_json_dumps(
    nested: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # rows of scalars take the C encoder's path, a frame with a list column the indented
    # encoder's: the same bytes either way, slice after slice
    import datetime
    import json
    import math

    import polars as pl

    from foresize.cli import output
    from foresize.cli.output import Rows, to_json

    monkeypatch.setattr(output, "ROWS_PER_SLICE", 2)
    utc = datetime.UTC
    frame = pl.DataFrame({"a": [1, None, 3], "b": [1.5, float("inf"), float("nan")],
                          "t": [datetime.datetime(2024, 1, 1)] * 3,
                          "z": [datetime.datetime(2024, 1, 1, 0, 0, 0, 5, tzinfo=utc)] * 3,
                          "s": ["é \"q\"\n", None, "ü"], "ok": [True, False, None]})
    if nested:
        frame = frame.with_columns(l=pl.Series([[1.0], [], None]))
    document = {"n": 1, "empty": [], "none": {}, "nested": [1, {"x": [[], [2]]}],
                "nan": float("nan"), "rows": Rows(frame), "no_rows": Rows(frame.head(0))}
    plain = {**document, "nan": None, "no_rows": [],
             "rows": [{**r, "b": r["b"] if math.isfinite(r["b"]) else None,
                       "t": r["t"].isoformat(), "z": r["z"].isoformat()}
                      for r in frame.to_dicts()]}
    assert to_json(document) == json.dumps(plain, indent=2) + "\n"
