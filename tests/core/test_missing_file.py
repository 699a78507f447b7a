"""A missing input names the closest file there is: the bundled example, or a near spelling."""

from __future__ import annotations

from pathlib import Path

import pytest

from foresize.cli.main import main
from foresize.core.paths import BUNDLED_EXAMPLES, missing_file

REPO = Path(__file__).resolve().parents[2]


def test_bundled_examples_are_the_checkouts() -> None:
    assert BUNDLED_EXAMPLES == REPO / "examples"
    assert (BUNDLED_EXAMPLES / "llama-2-7b" / "config.json").is_file()


def test_a_readme_path_points_at_its_example_from_the_root(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    message = str(missing_file("llama-2-7b/config.json"))
    assert message == ("llama-2-7b/config.json: no such file "
                       "(an example is in examples/llama-2-7b/config.json)")


def test_the_longest_matching_tail_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Three config.json are bundled; llama-2-70b/config.json must not get the 7b one."""
    monkeypatch.chdir(tmp_path)
    message = str(missing_file("llama-2-70b/config.json"))
    assert message.endswith(f"(an example is in {REPO}/examples/llama-2-70b/config.json)")


def test_a_near_spelling_in_the_same_folder(tmp_path: Path) -> None:
    (tmp_path / "memory-week1.parquet").write_bytes(b"x")
    message = str(missing_file(tmp_path / "memory-weeek1.parquet", dataset_names=True))
    assert f"(a close name: {tmp_path}/memory-week1.parquet; a dataset name looks like " in message
    assert "see 'foresize datasets list')" in message


def test_nothing_close_says_only_what_is_missing(tmp_path: Path) -> None:
    assert str(missing_file(tmp_path / "zzz.bin")) == f"{tmp_path}/zzz.bin: no such file"


@pytest.mark.parametrize(("argv", "expected"), [
    (["profile", "model", "llama-2-7b/config.json"],
     "Error: llama-2-7b/config.json: no such file (an example is in "
     "examples/llama-2-7b/config.json)"),
    (["profile", "telemetry", "memory-am.parquet"],
     "Error: memory-am.parquet: no such file (an example is in examples/memory-am.parquet; "
     "a dataset name looks like gentd26:memory_util, see 'foresize datasets list')"),
    (["profile", "model", "model.onnx", "--dim", "batch=1"],
     "Error: model.onnx: no such file (an example is in examples/model.onnx)"),
])
def test_the_cli_error_is_one_line_with_the_hint(
        argv: list[str], expected: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(REPO)
    assert main(argv) == 3
    first, *rest = capsys.readouterr().err.splitlines()
    assert first == expected
    assert all(line.startswith("Hint: ") for line in rest)
