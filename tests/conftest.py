"""Shared fixtures: the real-trace mirror, an isolated cache, no network."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
DEFAULT_MIRROR = REPO.parent / "shared" / "datasets" / "alibaba-clusterdata"


@pytest.fixture(scope="session")
def mirror() -> Path:
    """The local mirror of github.com/alibaba/clusterdata that tests read real traces from."""
    path = Path(os.environ.get("FORESIZE_DATA_MIRROR", DEFAULT_MIRROR)).resolve()
    if not (path / "SHA256SUMS").is_file():
        pytest.fail(
            f"dataset mirror not found at {path}; set FORESIZE_DATA_MIRROR to the folder "
            "holding the alibaba-clusterdata mirror (see README)"
        )
    return path


@pytest.fixture(scope="session")
def cluster_server(mirror: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A real Prometheus backfilled with the sample cluster (tests/ingest/cluster_server.py)."""
    from tests.ingest.cluster_server import running

    with running(mirror, tmp_path_factory.mktemp("cluster-prometheus")) as server:
        yield server


@pytest.fixture(scope="session")
def gentd26_dir(mirror: Path) -> Path:
    return mirror / "cluster-trace-v2026-GenAI"


@pytest.fixture(scope="session")
def openb_dir(mirror: Path) -> Path:
    return mirror / "cluster-trace-gpu-v2023" / "csv"


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Point the cache at a per-run folder so tests never touch the user's cache."""
    old = os.environ.get("FORESIZE_CACHE_DIR")
    os.environ["FORESIZE_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))
    yield
    if old is None:
        os.environ.pop("FORESIZE_CACHE_DIR", None)
    else:
        os.environ["FORESIZE_CACHE_DIR"] = old


_real_connect = socket.socket.connect


def _loopback_only(self: socket.socket, address: object) -> None:
    host = address[0] if isinstance(address, tuple) else address
    if self.family == socket.AF_UNIX or host in ("127.0.0.1", "::1", "localhost"):
        _real_connect(self, address)  # type: ignore[arg-type]
        return
    raise RuntimeError(f"tests must not touch the network (tried {address!r})")


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket.socket, "connect", _loopback_only)
