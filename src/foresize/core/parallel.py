"""Fan-out of independent tasks: in this process, over local processes, or on Ray.

Forecast backtests (per series chunk) and simulations (per seed) are embarrassingly
parallel. ``run_tasks`` maps a picklable top-level function over argument tuples and
returns the results in input order, so the engine never changes a result, only how
long it takes:

* ``serial``: one after another here (tests, debugging, tiny inputs);
* ``local``: a process pool over this machine's cores (``workers`` or all of them);
* ``ray``: one Ray task per item, on the cluster at ``address`` (``ray.init(address=...)``,
  e.g. ``ray://head:10001`` or ``auto``), or on a local Ray instance when it is None.
  Ray is the optional ``ray`` extra.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from typing import Any, Literal, TypeVar, get_args

from foresize.core.errors import InputError

Engine = Literal["serial", "local", "ray"]
ENGINES: tuple[str, ...] = get_args(Engine)
R = TypeVar("R")


def check_engine(engine: str) -> Engine:
    """The engine name, validated (a typo lists the valid ones)."""
    if engine not in ENGINES:
        raise InputError(f"engine: {engine!r} is not one of {', '.join(ENGINES)}")
    return engine  # type: ignore[return-value]


def default_workers() -> int:
    """Cores this process may use (the affinity mask, not the machine's total)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def run_tasks(
    fn: Callable[..., R],
    items: Sequence[tuple[Any, ...]],
    *,
    engine: str = "serial",
    workers: int | None = None,
    address: str | None = None,
) -> list[R]:
    """``[fn(*item) for item in items]``, computed on ``engine``, in input order."""
    chosen = check_engine(engine)
    if chosen == "serial" or len(items) <= 1:
        return [fn(*item) for item in items]
    if chosen == "local":
        n = min(workers or default_workers(), len(items))
        # spawn, not fork: forking a process that runs polars' thread pool can deadlock
        with ProcessPoolExecutor(max_workers=n, mp_context=get_context("spawn")) as pool:
            futures = [pool.submit(fn, *item) for item in items]
            return [f.result() for f in futures]
    return _run_ray(fn, items, address=address)


def _run_ray(
    fn: Callable[..., R], items: Sequence[tuple[Any, ...]], *, address: str | None
) -> list[R]:
    try:
        import ray
    except ImportError:
        raise InputError(
            "engine 'ray' needs Ray: pip install 'foresize[ray]'", hint="or use --engine local"
        ) from None
    if not ray.is_initialized():
        ray.init(
            address=address, include_dashboard=False, log_to_driver=False, configure_logging=False
        )
    remote = ray.remote(fn)
    return list(ray.get([remote.remote(*item) for item in items]))
