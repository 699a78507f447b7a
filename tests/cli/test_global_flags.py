"""``-q``, ``-v`` and ``--debug`` work wherever they are typed (CLI.md: shared flags have
one name and one meaning everywhere; its CI example ends ``... -q -f json -o eval.json``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from foresize.cli.main import hoist_root_flags, main

MEMORY = str(Path(__file__).resolve().parents[2] / "examples/memory-am.parquet")


@pytest.mark.parametrize(("typed", "run"), [
    (["forecast", "models", "-q"], ["-q", "forecast", "models"]),
    (["--seed", "3", "forecast", "run", "x", "-vv", "--debug"],
     ["--seed", "3", "-vv", "--debug", "forecast", "run", "x"]),
    (["recommend", "x", "--quiet", "-f", "json"], ["--quiet", "recommend", "x", "-f", "json"]),
    (["-q", "version"], ["-q", "version"]),  # already in place
    (["demo", "-q"], ["demo", "-q"]),  # demo's own -q (no terminal summary) keeps its meaning
    (["profile", "run", "--", "python", "-q"], ["profile", "run", "--", "python", "-q"]),
    (["forecast", "run", "--metric", "qps"], ["forecast", "run", "--metric", "qps"]),
])
def test_root_flags_move_before_the_command(typed: list[str], run: list[str]) -> None:
    assert hoist_root_flags(typed) == run


def test_quiet_after_the_command_silences_the_messages(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "plan.json"
    assert main(["recommend", MEMORY, "-o", str(target)]) == 0
    assert f"wrote {target}" in capsys.readouterr().err
    assert main(["recommend", MEMORY, "-o", str(target), "-q"]) == 0
    assert capsys.readouterr().err == ""
    assert main(["recommend", MEMORY, "-q", "-v"]) == 2  # still exclusive, wherever typed
    assert "--quiet and --verbose exclude each other" in capsys.readouterr().err
