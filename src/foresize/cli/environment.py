"""``foresize env`` and ``foresize version``: facts for bug reports."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version

import polars as pl

from foresize import __version__
from foresize.cli.options import FormatOpt, OutputOpt
from foresize.cli.output import Result, emit
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


def env(fmt: FormatOpt = None, output: OutputOpt = None) -> None:
    """Print versions, the cache folder and the devices, for bug reports."""
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


def version() -> None:
    """Print the foresize version."""
    print(f"foresize {__version__}")  # noqa: T201 - data on stdout
