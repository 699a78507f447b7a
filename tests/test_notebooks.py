"""The notebooks run top to bottom (smoke mode) and are valid jupytext percent files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9]*.py"))


def test_every_notebook_is_found() -> None:
    assert [p.name for p in NOTEBOOKS][:1] == ["01_forecast.py"]
    assert len(NOTEBOOKS) == 4


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_in_smoke_mode(notebook: Path, mirror: Path, tmp_path: Path) -> None:
    import jupytext

    cells = jupytext.read(notebook).cells
    assert sum(c.cell_type == "code" for c in cells) >= 2
    assert cells[0].cell_type == "markdown"
    env = {
        **os.environ,
        "FORESIZE_SMOKE": "6",
        "FORESIZE_NOTEBOOK_OUT": str(tmp_path),
        "FORESIZE_DATA_MIRROR": str(mirror),
        "MPLBACKEND": "Agg",
    }
    done = subprocess.run(
        [sys.executable, str(notebook)], env=env, capture_output=True, text=True, timeout=600,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert list(tmp_path.glob("*.png")), "each notebook draws at least one figure"
