"""A sizing report (nested dict, base units) as ``item, value`` rows for people.

Apart from ``graph.analysis`` so that sizing a config.json loads neither the ONNX
analysis nor its op tables, only polars for the frame it returns.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from foresize.core.units import human_bytes, human_duration

if TYPE_CHECKING:
    import polars as pl


def _flatten(report: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = []
    for key, value in report.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            rows.extend(_flatten(value, f"{name}."))
        else:
            rows.append((name, value))
    return rows


def _human(name: str, value: Any) -> str:
    """One report value for people, by the unit its key carries."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return str(value)
    if name.endswith("bytes_per_s"):  # decimal, as datasheets print bandwidth
        return f"{float(value) / 1e9:,.0f} GB/s"
    if name.endswith("_per_s"):
        return f"{value:,.1f}/s"
    if name.endswith("_bytes") or "bytes." in name:
        return human_bytes(float(value))
    if name.endswith("_s"):
        return human_duration(float(value)) if value >= 60 else f"{value:.4g} s"
    if name.endswith(("flops", "prefill", "forward_per_token")):
        return f"{value:.3e}"
    return f"{value:,.4g}" if isinstance(value, float) else f"{value:,}"


def report_rows(report: dict[str, Any]) -> pl.DataFrame:
    """A sizing report as ``item, value`` rows, values in their units for people."""
    import polars as pl

    rows = _flatten(report)
    return pl.DataFrame({"item": [name for name, _ in rows],
                         "value": [_human(name, value) for name, value in rows]})
