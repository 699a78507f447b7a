from __future__ import annotations

import json
import os
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
