"""``foresize profile``: the telemetry side (placeholder)."""

from __future__ import annotations

import typer

app = typer.Typer(help="Telemetry: canonicalise files and traces, profile their patterns.",
                  no_args_is_help=True)
