from __future__ import annotations

from pathlib import Path

from foresize.cli.docs import MARKER, render_reference

CLI_MD = Path(__file__).resolve().parents[2] / "cli.md"


def test_cli_md_is_up_to_date() -> None:
    text = CLI_MD.read_text(encoding="utf-8")
    _, found, generated = text.partition(MARKER)
    assert found, "cli.md lost its marker line"
    assert generated.strip() == render_reference().strip(), (
        "cli.md is stale: run `python -m foresize.cli.docs`"
    )


def test_every_command_has_examples() -> None:
    reference = render_reference()
    for command in ("foresize demo", "foresize profile telemetry", "foresize profile ingest",
                    "foresize datasets fetch", "foresize datasets path"):
        section = reference.split(f"## `{command}`")[1].split("\n## ")[0]
        assert "Examples" in section, command
