from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from foresize import __version__
from foresize.cli.main import main


def test_env_json_names_versions_cache_and_devices(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["env", "-f", "json"]) == 0
    out, err = capsys.readouterr()
    facts = json.loads(out)
    assert err == ""
    assert facts["foresize"] == __version__
    assert Path(facts["cache_dir"]) == Path(os.environ["FORESIZE_CACHE_DIR"])
    assert facts["polars"]
    assert "gpus" in facts


def test_version_flag_and_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"foresize {__version__}\n"
    assert main(["version"]) == 0
    assert capsys.readouterr().out == f"foresize {__version__}\n"


def test_env_clean_removes_what_killed_writes_left(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """A SIGKILL during ``-o`` leaves a temporary; ``env --clean`` (and the next write
    into that folder) removes it, and never one of a process still running.
    """
    code = ("import os, sys; from foresize.core.io import atomic_write\n"
            "with atomic_write(sys.argv[1]) as tmp:\n"
            "    tmp.write_bytes(b'x' * 1000); print('ready', flush=True); os.kill(os.getpid(), 9)")
    killed = subprocess.run([sys.executable, "-c", code, str(tmp_path / "out.json")],
                            capture_output=True, text=True, check=False)
    assert killed.returncode == -9
    assert "ready" in killed.stdout
    left = list(tmp_path.glob(".out.json.foresize-*.tmp"))
    assert len(left) == 1
    mine = tmp_path / f".other.json.foresize-{os.getpid()}-x.tmp"
    mine.write_text("still being written")
    assert main(["env", "--clean", "--in", str(tmp_path), "-f", "json"]) == 0
    err = capsys.readouterr().err
    assert f"removed {left[0]}" in err
    assert not left[0].exists()
    assert mine.exists()  # a live process's temporary stays
