"""``foresize datasets``: the checksummed registry of public traces (placeholder)."""

from __future__ import annotations

import typer

app = typer.Typer(help="Checksummed registry of public traces: list, info, fetch, verify, path.",
                  no_args_is_help=True)
