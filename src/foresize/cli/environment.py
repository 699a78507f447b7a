"""``foresize env`` and ``foresize version``: facts for bug reports."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Annotated

import typer

from foresize import __version__
from foresize.cli.options import FormatOpt, OutputOpt
from foresize.cli.output import Result, emit, info
from foresize.core.io import remove_stale_temporaries, remove_stale_temporaries_below
from foresize.core.paths import cache_dir

_PACKAGES = ("typer", "rich", "polars", "pyarrow", "numpy", "statsmodels", "PyWavelets",
             "lightgbm", "onnx", "torch", "ray")


def _installed(name: str) -> str | None:
    try:
        return package_version(name)
    except PackageNotFoundError:
        return None


def _gpus() -> str:
    """GPUs as ``nvidia-smi -L`` lists them (no torch import: ``env`` must stay fast)."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return "none (no nvidia-smi)"
    try:
        listed = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=10,
                                check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError) as exc:
        return f"unknown (nvidia-smi failed: {exc})"
    return "; ".join(listed.splitlines()) or "none"


def env(
    fmt: FormatOpt = None,
    output: OutputOpt = None,
    clean: Annotated[bool, typer.Option(
        "--clean", help="Remove what killed runs left: temporaries of -o writes in --in "
        "folders and of downloads and extraction anywhere in the cache.")] = False,
    folders: Annotated[list[Path] | None, typer.Option(
        "--in", help="With --clean: a folder outputs were written to (repeatable; default: "
        "the current folder).")] = None,
) -> None:
    """Print versions, the cache folder and the devices, for bug reports."""
    import polars as pl  # here, not at start-up: `foresize version` stays fast

    if clean:
        _clean([*(folders or [Path()])])
    facts: dict[str, str | None] = {
        "foresize": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cache_dir": str(cache_dir()),
        "data_mirror": os.environ.get("FORESIZE_DATA_MIRROR"),
        "cpus": str(os.cpu_count()),
        "gpus": _gpus(),
    }
    facts.update({name.lower(): _installed(name) for name in _PACKAGES})
    frame = pl.DataFrame({"name": list(facts), "value": list(facts.values())},
                         schema={"name": pl.String, "value": pl.String})
    emit(Result(frame, facts, title="foresize environment"), fmt=fmt, output=output)


def _clean(folders: list[Path]) -> None:
    """Remove temporaries of foresize processes that are gone (never a running one's)."""
    removed = remove_stale_temporaries_below(cache_dir())
    for folder in folders:
        removed += remove_stale_temporaries(folder)
    for path in removed:
        info(f"removed {path}")
    info(f"cleaned: {len(removed)} temporar{'y' if len(removed) == 1 else 'ies'} removed")


def version(fmt: FormatOpt = None, output: OutputOpt = None) -> None:
    """Print the foresize version (``-f json`` for scripts, as every command)."""
    if fmt is None and output is None:
        print(f"foresize {__version__}")  # noqa: T201 - data on stdout, the classic line
        return
    import polars as pl  # only a formatted version needs a frame

    frame = pl.DataFrame({"name": ["foresize"], "version": [__version__]})
    emit(Result(frame, {"foresize_version": __version__}), fmt=fmt, output=output)
