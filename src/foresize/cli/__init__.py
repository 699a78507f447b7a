"""Thin typer layer over the library; no logic of its own."""
