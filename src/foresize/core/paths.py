"""Where foresize keeps downloaded and extracted data."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """``$FORESIZE_CACHE_DIR``, else ``$XDG_CACHE_HOME/foresize``, else ``~/.cache/foresize``."""
    if explicit := os.environ.get("FORESIZE_CACHE_DIR"):
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "foresize"
