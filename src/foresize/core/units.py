"""Human formatting and parsing of quantities whose unit is carried in the name."""

from __future__ import annotations

import math
import re

from foresize.core.errors import UsageError
from foresize.core.metrics import metric_info

_BINARY = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")
_DURATION_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0,
                   "w": 604800.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(us|ms|s|m|h|d|w)\s*$")


def human_bytes(value: float) -> str:
    """``30064771072`` -> ``'28.0 GiB'``."""
    if not math.isfinite(value):
        return str(value)
    size = abs(value)
    for unit in _BINARY:
        if size < 1024 or unit == _BINARY[-1]:
            return f"{math.copysign(size, value):.1f} {unit}"
        size /= 1024
    raise AssertionError  # pragma: no cover - the loop always returns


def human_duration(seconds: float) -> str:
    """``93784`` -> ``'1d 2h'``; sub-minute values keep one decimal."""
    if not math.isfinite(seconds):
        return str(seconds)
    if abs(seconds) < 60:
        return f"{seconds:.1f}s"
    parts = []
    remaining = round(abs(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, remaining = divmod(remaining, size)
        if count:
            parts.append(f"{count}{unit}")
        if len(parts) == 2:
            break
    return ("-" if seconds < 0 else "") + " ".join(parts)


def parse_duration(text: str) -> float:
    """``'14d'`` -> ``1209600.0`` seconds. Durations always carry a unit."""
    match = _DURATION.match(text)
    if not match:
        raise UsageError(
            f"duration {text!r} needs a number and a unit (us, ms, s, m, h, d, w), "
            "e.g. '90s', '24h'"
        )
    return float(match.group(1)) * _DURATION_UNITS[match.group(2)]


def parse_steps(text: str, step_s: float, *, option: str) -> int:
    """Whole steps of ``step_s``: ``"30"`` is 30 steps, ``"30m"`` a duration rounded up."""
    spec = text.strip()
    if spec.isdigit():
        return int(spec)
    try:
        seconds = parse_duration(spec)
    except UsageError:
        raise UsageError(
            f"{option} {text!r} is neither a number of steps nor a duration like 2m"
        ) from None
    return math.ceil(seconds / step_s - 1e-9)


def parse_levels(text: str, *, option: str = "--levels") -> tuple[int, ...]:
    """``"80,95"`` -> (80, 95), each an integer percent strictly between 0 and 100."""
    try:
        levels = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise UsageError(f"{option}: expected integers like 80,95, got {text!r}") from None
    if not levels or any(not 0 < level < 100 for level in levels):
        raise UsageError(f"{option}: each level must be between 0 and 100, got {text!r}")
    return levels


def short_id(name: str, width: int = 14, longest: int = 24) -> str:
    """Hashed ids (GenTD26 container_ip is an md5) shortened for tables, like git hashes."""
    return name if len(name) <= longest else name[: width - 1] + "…"


def human_metric(metric: str, value: float | None) -> str:
    """A value in its metric's unit, for tables: bytes and seconds humanised."""
    unit = metric_info(metric).unit
    if value is None:
        return "-"
    if unit == "bytes":
        return human_bytes(value)
    if unit == "s":
        return human_duration(value)
    suffix = "%" if unit == "%" else ""
    return f"{value:,.1f}{suffix}" if abs(value) < 1e6 else f"{value:,.3g}{suffix}"
