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

``on_result(index, result)`` is called here, in the calling process, as each task
finishes (not in input order), so a progress bar advances while the work runs and a
caller interrupted by Ctrl-C still holds every result that had arrived. Workers ignore
SIGINT: the caller alone handles Ctrl-C, and stops the workers that are still busy.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from multiprocessing import get_context
from typing import Any, Literal, TypeVar, get_args

from foresize.core.errors import InputError, UsageError

Engine = Literal["serial", "local", "ray"]
ENGINES: tuple[str, ...] = get_args(Engine)
R = TypeVar("R")


def check_engine(engine: str) -> Engine:
    """The engine name, validated (a typo lists the valid ones)."""
    if engine not in ENGINES:
        raise UsageError(f"--engine {engine!r} is not one of {', '.join(ENGINES)}")
    return engine  # type: ignore[return-value]


def default_workers() -> int:
    """Cores this process may use (the affinity mask, not the machine's total)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _ignore_sigint() -> None:
    """Worker initializer: Ctrl-C reaches the whole process group; only the caller acts."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _nothing(_index: int, _result: object) -> None:
    return None


def run_tasks(
    fn: Callable[..., R],
    items: Sequence[tuple[Any, ...]],
    *,
    engine: str = "serial",
    workers: int | None = None,
    address: str | None = None,
    on_result: Callable[[int, R], None] | None = None,
) -> list[R]:
    """``[fn(*item) for item in items]``, computed on ``engine``, in input order.

    ``on_result(i, result)`` is called as task ``i`` finishes (see the module docstring).
    """
    chosen = check_engine(engine)
    report: Callable[[int, R], None] = on_result or _nothing
    if chosen == "serial" or len(items) <= 1:
        results = []
        for i, item in enumerate(items):
            results.append(fn(*item))
            report(i, results[-1])
        return results
    if chosen == "local":
        return _run_local(fn, items, workers=workers, report=report)
    return _run_ray(fn, items, address=address, report=report)


def _run_local(
    fn: Callable[..., R], items: Sequence[tuple[Any, ...]], *, workers: int | None,
    report: Callable[[int, R], None],
) -> list[R]:
    n = min(workers or default_workers(), len(items))
    # spawn, not fork: forking a process that runs polars' thread pool can deadlock
    pool = ProcessPoolExecutor(max_workers=n, mp_context=get_context("spawn"),
                               initializer=_ignore_sigint)
    try:
        futures: dict[Future[R], int] = {pool.submit(fn, *item): i
                                         for i, item in enumerate(items)}
        results: dict[int, R] = {}
        pending: set[Future[R]] = set(futures)
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in sorted(finished, key=futures.__getitem__):
                results[futures[future]] = future.result()
                report(futures[future], results[futures[future]])
        return [results[i] for i in range(len(items))]
    except BaseException:
        # Ctrl-C or a failed task: drop the queued tasks and stop the busy workers now,
        # not after their task ends (no public way to do this before Python 3.14)
        pool.shutdown(wait=False, cancel_futures=True)
        for process in list((getattr(pool, "_processes", None) or {}).values()):
            process.terminate()
        raise
    finally:
        pool.shutdown(wait=True)


def _run_ray(
    fn: Callable[..., R], items: Sequence[tuple[Any, ...]], *, address: str | None,
    report: Callable[[int, R], None],
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
    refs = [remote.remote(*item) for item in items]
    index = {ref: i for i, ref in enumerate(refs)}
    results: dict[int, R] = {}
    pending = list(refs)
    try:
        while pending:
            finished, pending = ray.wait(pending, num_returns=1)
            for ref in finished:
                results[index[ref]] = ray.get(ref)
                report(index[ref], results[index[ref]])
    except BaseException:
        for ref in pending:
            ray.cancel(ref, force=True)
        raise
    return [results[i] for i in range(len(items))]
