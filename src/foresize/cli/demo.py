"""``foresize demo``: the main job on the embedded synthetic telemetry (placeholder)."""

from __future__ import annotations

EPILOG = ""


def demo() -> None:
    """Profile the embedded synthetic telemetry."""
