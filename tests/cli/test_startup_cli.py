"""Start-up: no heavy library at CLI start, lazy groups that match their help, and a
quiet exit 130 on Ctrl-C while the CLI loads (issue 22, point 11).
"""

from __future__ import annotations

import inspect
import signal
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("polars", "numpy", "pyarrow", "scipy", "statsmodels", "lightgbm", "onnx", "torch",
         "pywt", "rich.progress")  # not pydantic: typer itself loads it to run a command


def loaded_after(code: str) -> set[str]:
    """The heavy modules in ``sys.modules`` after running ``code`` in a fresh interpreter."""
    probe = (f"{code}\nimport sys\n"
             f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules), file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=300, check=True)
    return set(done.stderr.split())


def test_cli_start_imports_no_heavy_library() -> None:
    assert loaded_after("import foresize.cli.main") == set()


def every_help() -> list[list[str]]:
    """``--help`` of the root, of each top-level command and of each subcommand of a
    group, found from the CLI itself so a new command is covered without listing it here.
    """
    from typer.core import TyperGroup

    from foresize.cli.main import LAZY, load_command

    found = [["--help"]]
    for name in LAZY:
        found.append([name, "--help"])
        command = load_command(name)
        if isinstance(command, TyperGroup):
            found += [[name, sub, "--help"] for sub in command.commands]
    return found


HELPS = every_help()


def test_every_group_and_subcommand_has_a_help_probe() -> None:
    """The enumeration reaches the subcommands (it cannot silently find only groups)."""
    assert ["recommend", "serve", "--help"] in HELPS
    assert ["simulate", "schedule", "--help"] in HELPS
    assert ["evaluate", "all", "--help"] in HELPS
    assert ["demo", "--help"] in HELPS


@pytest.mark.parametrize("args", [["version"], *HELPS], ids=" ".join)
def test_help_and_light_commands_import_no_heavy_library(args: list[str]) -> None:
    code = f"from foresize.cli.main import main\nassert main({args!r}) == 0"
    assert loaded_after(code) == set()


def test_the_help_lists_of_names_match_their_registries() -> None:
    """Help texts list strategies and forecasters from light tuples (no numpy to print
    them); those are the registries' names, in order.
    """
    from foresize.forecast.choices import FORECASTER_NAMES
    from foresize.forecast.models import FORECASTERS
    from foresize.recommend.choices import STRATEGY_NAMES
    from foresize.recommend.strategies import STRATEGIES

    assert FORECASTERS.names() == list(FORECASTER_NAMES)
    assert STRATEGIES.names() == list(STRATEGY_NAMES)


def test_sizing_a_config_loads_polars_only(tmp_path: Path) -> None:
    """``profile model config.json`` (issue 18's start-up target) builds a polars frame for
    its table and nothing heavier: no ONNX, numpy op tables or forecasting stack.
    """
    config = Path(__file__).resolve().parents[2] / "examples" / "llama-2-7b" / "config.json"
    args = ["-q", "profile", "model", str(config), "-f", "json", "-o", str(tmp_path / "m.json")]
    code = f"from foresize.cli.main import main\nassert main({args!r}) == 0"
    assert loaded_after(code) == {"polars"}


def test_heavy_libraries_load_when_a_command_runs() -> None:
    """The probe can fail: a command that builds a frame has polars once it runs."""
    assert "polars" in loaded_after(
        "from foresize.cli.main import main\nmain(['-q', 'forecast', 'models', '-f', 'json'])")


def test_root_help_lists_each_command_as_it_describes_itself() -> None:
    from foresize.cli.main import LAZY, load_command

    for name, entry in LAZY.items():
        command = load_command(name)
        first = inspect.cleandoc(command.help or "").split("\n\n")[0]
        assert entry.help == " ".join(first.split()), name


def test_root_help_names_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    from foresize.cli.main import LAZY, main

    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(f" {name} " in out for name in LAZY)


GATE = """\
import sys


class Gate:
    '''Blocks the first import of typer (inside foresize's start-up) until stdin closes,
    after saying so on stderr: a deterministic window for Ctrl-C during start-up.'''

    def find_spec(self, name, path=None, target=None):
        if name == "typer":
            sys.meta_path.remove(self)
            sys.stderr.write("importing typer\\n")
            sys.stderr.flush()
            sys.stdin.read()
        return None


sys.meta_path.insert(0, Gate())
"""


@pytest.mark.parametrize("how", ["console-script", "module"])
def test_ctrl_c_during_start_up_exits_130_quietly(how: str, tmp_path: Path) -> None:
    (tmp_path / "sitecustomize.py").write_text(GATE)
    script = Path(sys.executable).parent / "foresize"
    command = [str(script)] if how == "console-script" else [sys.executable, "-m",
                                                             "foresize.cli.main"]
    if how == "console-script" and not script.is_file():
        pytest.fail(f"{script} not found: install the package (pip install -e .)")
    loading = subprocess.Popen([*command, "--help"], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert loading.stderr is not None
    assert loading.stderr.readline() == "importing typer\n"  # readiness: inside start-up
    loading.send_signal(signal.SIGINT)
    out, err = loading.communicate(timeout=120)
    assert loading.returncode == 130, err  # an exit code, not death by SIGINT (-2)
    assert "Traceback" not in err
    assert "KeyboardInterrupt" not in err
    assert out == ""
