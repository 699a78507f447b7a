"""Caps on what one command may take from the machine: bytes, requests, time.

Hostile or careless input (a gzip bomb, a Prometheus answer of gigabytes, a window of
millions of steps) must end in a one-line error, not in the OOM killer or a run that
never ends. Each cap has a default sized to this machine (free memory, free disk) and an
environment variable that overrides it; a value that cannot be read is an ``InputError``
naming the variable, never a crash.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from foresize.core.errors import InputError, UsageError

_UNITS = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$", re.IGNORECASE)
_FALLBACK_MEMORY = 4 * 2**30  # when the machine will not say how much memory is free


def parse_size(text: str, *, name: str) -> int:
    """``"8G"``, ``"512MiB"``, ``"1000"`` -> bytes; anything else names ``name`` in an error."""
    match = _SIZE.match(text)
    if match is None:
        raise InputError(
            f"{name}={text!r}: expected a size in bytes such as 1000, 512M or 8G"
        )
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def env_size(name: str, default: int) -> int:
    """The size in ``$name`` (see :func:`parse_size`), else ``default``."""
    text = os.environ.get(name, "").strip()
    return parse_size(text, name=name) if text else default


def env_count(name: str, default: int) -> int:
    """The positive whole number in ``$name``, else ``default``."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    if not text.isdigit() or int(text) < 1:
        raise InputError(f"{name}={text!r}: expected a positive whole number")
    return int(text)


def available_memory() -> int:
    """Bytes of memory this process could still take before the machine swaps."""
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except (ImportError, OSError):
        return _FALLBACK_MEMORY


def free_disk(path: Path) -> int:
    """Free bytes on the disk holding ``path`` (its nearest existing parent)."""
    for folder in (path, *path.parents):
        if folder.exists():
            return shutil.disk_usage(folder).free
    return shutil.disk_usage(Path.cwd()).free


@dataclass(slots=True)
class Deadline:
    """A point in time an operation of many steps (pages, reads) must finish by.

    A per-read socket timeout bounds one silence, not a server that sends one byte every
    few seconds forever; this bounds the whole.
    """

    seconds: float
    started: float = 0.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.seconds) and self.seconds > 0):
            raise UsageError(f"--timeout must be a positive duration (got {self.seconds!r} s)")
        self.started = time.monotonic()

    def remaining(self) -> float:
        """Seconds left (0 when passed)."""
        return max(0.0, self.started + self.seconds - time.monotonic())

    @property
    def expired(self) -> bool:
        """True once the deadline has passed."""
        return self.remaining() <= 0
