"""Regenerate the command reference in ``cli.md`` from the typer app.

``python -m foresize.cli.docs`` rewrites everything below the marker line and keeps the
hand-written front matter above it; a test fails when the file is stale.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from typer.cli import get_docs_for_click

MARKER = "<!-- Generated below by `python -m foresize.cli.docs`; do not edit by hand. -->"


def render_reference() -> str:
    """The Markdown reference of every command, as typer renders it."""
    from foresize.cli.main import app

    command = typer.main.get_command(app)
    ctx = typer.Context(command)
    ctx.obj = {}
    return get_docs_for_click(obj=command, ctx=ctx, name="foresize").strip() + "\n"


def update(path: Path) -> bool:
    """Rewrite the generated part of ``path``; return whether it changed."""
    text = path.read_text(encoding="utf-8")
    head, found, _ = text.partition(MARKER)
    if not found:
        msg = f"{path}: marker line not found"
        raise SystemExit(msg)
    new = f"{head}{MARKER}\n\n{render_reference()}"
    if new == text:
        return False
    path.write_text(new, encoding="utf-8")
    return True


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("cli.md")
    changed = update(target)
    sys.stderr.write(f"{target}: {'updated' if changed else 'up to date'}\n")
