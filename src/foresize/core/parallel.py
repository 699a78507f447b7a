"""Fan-out of independent tasks: in this process, over local processes, or on Ray; and
one piece of work in a forked child while this process goes on (:class:`Meanwhile`).

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
import select
import signal
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from multiprocessing import get_context
from types import TracebackType
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


# how long a child may take, past which it is taken for hung: its work is of the order
# of what this process did meanwhile, so many times that, and never under half a minute
PATIENCE_FACTOR = 10.0
MIN_PATIENCE_S = 30.0
_CHUNK = 1 << 20


class Meanwhile:
    """``work`` run in a forked child, on another core, while this process goes on.

    For work that holds the GIL (ONNX's shape inference) or is pure Python (a pass over a
    graph of 200k nodes), where a thread would not run in parallel and a spawned worker
    would have to be sent the whole graph: a forked child has it already. The child
    sends ``work()``'s bytes back through a pipe and leaves with ``os._exit``, running no
    exit handler and flushing none of this process's buffers.

    :meth:`result` waits for them, and gives None wherever the child could not deliver:
    no fork (not Linux, one core, ``enabled`` false, or no process to be had), the work
    raised or the child died, someone else reaped it, or it ran past its patience
    (``PATIENCE_FACTOR`` times as long as this process went on, at least
    ``MIN_PATIENCE_S``) and was killed. None tells the caller to do the work itself, so a
    failure there raises where it would have without the child. Use it as a context
    manager: on the way out a child whose result was not asked for is killed and reaped.

    The child must not use a library's thread pool (polars'): a fork keeps only the
    calling thread, and a lock another thread held stays held in the child.
    """

    def __init__(self, work: Callable[[], bytes], *, enabled: bool = True) -> None:
        self._pid: int | None = None
        self._read = -1
        self._started = time.monotonic()
        if not (enabled and sys.platform.startswith("linux") and default_workers() > 1):
            return
        read_end, write_end = os.pipe()
        # Python 3.12+ warns (a DeprecationWarning, hidden by default outside __main__) of
        # a fork in a threaded process (numpy's BLAS pool): the child runs none of their
        # code. No catch_warnings here: leaving it resets every warning's once-only registry.
        try:
            pid = os.fork()
        except OSError:  # no process to be had (a limit, memory)
            os.close(read_end)
            os.close(write_end)
            return
        if pid == 0:  # the child: work, send, and leave without any exit handler
            status = 1
            try:
                os.close(read_end)
                data = memoryview(work())
                while data:
                    data = data[os.write(write_end, data[:_CHUNK]):]
                status = 0
            finally:
                os._exit(status)
        os.close(write_end)
        self._pid, self._read = pid, read_end

    def __enter__(self) -> Meanwhile:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self._stop()

    def result(self) -> bytes | None:
        """The child's bytes once it has exited cleanly; None where it could not deliver."""
        if self._pid is None:
            return None
        patience = max(MIN_PATIENCE_S, PATIENCE_FACTOR * (time.monotonic() - self._started))
        deadline = time.monotonic() + patience
        chunks: list[bytes] = []
        try:
            while (left := deadline - time.monotonic()) > 0:
                if not select.select([self._read], [], [], left)[0]:
                    continue  # the loop's test ends it at the deadline
                chunk = os.read(self._read, _CHUNK)
                if not chunk:  # the child closed its end: done, or dead
                    break
                chunks.append(chunk)
            else:  # hung: give up on it
                self._stop()
                return None
            os.close(self._read)
            self._read = -1
            pid, self._pid = self._pid, None
            try:
                _, status = os.waitpid(pid, 0)
            except ChildProcessError:  # reaped already (SIGCHLD ignored): outcome unknown
                return None
        except BaseException:  # Ctrl-C while waiting: the child goes too
            self._stop()
            raise
        return b"".join(chunks) if status == 0 else None

    def _stop(self) -> None:
        """Kill and reap a child still running; close the pipe."""
        if self._read >= 0:
            os.close(self._read)
            self._read = -1
        if self._pid is not None:
            pid, self._pid = self._pid, None
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
