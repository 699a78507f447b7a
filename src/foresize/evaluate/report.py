"""Evaluation reports: a markdown file with tables and PNG figures, plus the same as JSON.

Every report states what produced it (foresize version, command parameters, seeds,
input hashes) at the top, so a number in it can be traced and reproduced. The folder
is written atomically: a failed evaluation leaves the previous report, or nothing.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from foresize import __version__
from foresize.core.io import atomic_folder

Figure = Callable[[Path], None]  # draws itself into the PNG path it is given


@dataclass(slots=True)
class Section:
    """A heading, prose, tables (caption -> frame) and figures (file stem -> drawer)."""

    heading: str
    text: str = ""
    tables: dict[str, pl.DataFrame] = field(default_factory=dict)
    figures: dict[str, Figure] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Report:
    """A titled list of sections with the parameters that produced them."""

    title: str
    parameters: dict[str, Any]
    sections: list[Section] = field(default_factory=list)

    def add(self, section: Section) -> Section:
        """Append ``section`` and return it."""
        self.sections.append(section)
        return section

    def header(self) -> dict[str, Any]:
        """Version, time and parameters: what every report file starts with."""
        return {
            "foresize_version": __version__,
            "generated_at": datetime.now(UTC).replace(microsecond=0).isoformat(),
            "parameters": self.parameters,
        }


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a"
        if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-3):
            return f"{value:.3g}"
        return f"{value:,.3f}".rstrip("0").rstrip(".") if abs(value) < 1e5 else f"{value:,.0f}"
    return str(value).replace("|", "\\|")


def markdown_table(frame: pl.DataFrame) -> str:
    """A GitHub-flavoured markdown table of ``frame`` (numbers to 3 decimals)."""
    head = "| " + " | ".join(frame.columns) + " |"
    rule = "|" + "|".join("---" if frame.schema[c] == pl.String else "---:" for c in frame.columns)
    rows = ["| " + " | ".join(_cell(v) for v in row) + " |" for row in frame.iter_rows()]
    return "\n".join([head, rule + "|", *rows])


def render_markdown(report: Report, figure_names: dict[str, str]) -> str:
    """The report as markdown; ``figure_names`` maps each figure key to its file name."""
    header = report.header()
    lines = [f"# {report.title}", ""]
    lines.append(f"foresize {header['foresize_version']} · generated {header['generated_at']}")
    lines.append("")
    lines.append("Parameters: " + ", ".join(f"`{k}={v}`" for k, v in report.parameters.items()))
    for section in report.sections:
        lines += ["", f"## {section.heading}", ""]
        if section.text:
            lines += [section.text.strip(), ""]
        for caption, frame in section.tables.items():
            lines += [f"**{caption}**", "", markdown_table(frame), ""]
        for key in section.figures:
            lines += [f"![{key}]({figure_names[key]})", ""]
    return "\n".join(lines).rstrip() + "\n"


def _plain(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def write_report(report: Report, folder: str | Path) -> list[Path]:
    """Write ``report.md``, ``report.json`` and one PNG per figure into ``folder``."""
    written: list[str] = []
    with atomic_folder(folder) as tmp:
        names: dict[str, str] = {}
        for section in report.sections:
            for key, draw in section.figures.items():
                names[key] = f"{key}.png"
                draw(tmp / names[key])
                written.append(names[key])
        (tmp / "report.md").write_text(render_markdown(report, names), encoding="utf-8")
        document = {
            **report.header(),
            "title": report.title,
            "sections": [
                {
                    "heading": s.heading,
                    "tables": {k: v.to_dicts() for k, v in s.tables.items()},
                    "figures": [names[k] for k in s.figures],
                    **({"data": s.data} if s.data else {}),
                }
                for s in report.sections
            ],
        }
        (tmp / "report.json").write_text(
            json.dumps(_plain(document), indent=2, default=str), encoding="utf-8"
        )
    return [Path(folder) / name for name in ["report.md", "report.json", *written]]
