"""Sample a running process tree into canonical telemetry (psutil, plus NVML when present).

Each tick reads the root process and all its descendants: CPU cores used (from CPU-time
deltas, so short-lived children that started since the last tick still count),
resident and unique memory, disk read/write rates and threads, summed over the tree
(or kept per process); network rates when the tree has its own network namespace.
The loop is scheduled on a monotonic clock so samples do not drift, and it wakes as
soon as the root exits.
"""

from __future__ import annotations

import os
import resource
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import psutil

from foresize.core.errors import InputError, UsageError
from foresize.core.schemas import TS_DTYPE
from foresize.ingest.nvml import GpuProbe

HOST_METRICS = ("cpu_cores", "mem_bytes", "mem_uss_bytes", "disk_read_bytes_per_s",
                "disk_write_bytes_per_s", "threads")
NET_METRICS = ("net_rx_bytes_per_s", "net_tx_bytes_per_s")
_GRACE_S = 10.0  # how long an interrupted command gets to exit before it is terminated


@dataclass(slots=True)
class _Seen:
    """What the previous tick saw of one process, for rates."""

    proc: psutil.Process
    cpu_s: float
    read_bytes: float
    write_bytes: float
    at: float


def _net_namespace(pid: int | str) -> int | None:
    try:
        return Path(f"/proc/{pid}/ns/net").stat().st_ino
    except OSError:
        return None


def _interface_bytes(pid: int) -> tuple[float, float] | None:
    """Received and sent bytes over every interface of ``pid``'s network namespace.

    psutil only counts the host's interfaces, so the namespace's own table is read.
    """
    try:
        lines = Path(f"/proc/{pid}/net/dev").read_text().splitlines()[2:]
    except OSError:
        return None
    rx = tx = 0.0
    for line in lines:
        fields = line.split(":", 1)[1].split()
        rx += float(fields[0])
        tx += float(fields[8])
    return rx, tx


@dataclass(slots=True)
class _NetCounter:
    """Network rates of a tree that has a network namespace of its own (a container,
    ``unshare -n``): only then is the traffic attributable to it rather than the host.
    """

    pid: int
    last: tuple[float, float, float] | None = None

    @classmethod
    def for_root(cls, pid: int) -> _NetCounter | None:
        own, theirs = _net_namespace("self"), _net_namespace(pid)
        return cls(pid) if own is not None and theirs is not None and own != theirs else None

    def rates(self, now: float) -> dict[str, float]:
        counts = _interface_bytes(self.pid)
        if counts is None:
            return {}
        before, self.last = self.last, (*counts, now)
        if before is None:
            return dict.fromkeys(NET_METRICS, 0.0)
        elapsed = max(now - before[2], 1e-6)
        return {"net_rx_bytes_per_s": max(counts[0] - before[0], 0.0) / elapsed,
                "net_tx_bytes_per_s": max(counts[1] - before[1], 0.0) / elapsed}


@dataclass(slots=True)
class TreeSampler:
    """Reads one process tree per call of :meth:`sample`."""

    root: psutil.Process
    name: str
    per_process: bool = False
    gpu: GpuProbe | None = None
    _seen: dict[int, _Seen] = field(default_factory=dict)
    _net: _NetCounter | None = None

    def sample(self) -> dict[str, dict[str, float]] | None:
        """Metric values per workload now, or ``None`` once the root process is gone."""
        try:
            if self.root.status() == psutil.STATUS_ZOMBIE:
                return None
            procs = [self.root, *self.root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return None
        now = time.time()
        rows: dict[str, dict[str, float]] = {}
        alive: dict[int, _Seen] = {}
        for proc in procs:
            reading = self._read(proc, now)
            if reading is None:
                continue
            seen, values = reading
            alive[proc.pid] = seen
            key = self._workload(proc) if self.per_process else self.name
            totals = rows.setdefault(key, dict.fromkeys(HOST_METRICS, 0.0))
            for metric, value in values.items():
                totals[metric] += value
        self._seen = alive
        if not rows:
            return None
        tree = rows.setdefault(self._workload(self.root) if self.per_process else self.name,
                               dict.fromkeys(HOST_METRICS, 0.0))
        # checked every tick: a wrapper such as `unshare -n` enters its namespace only
        # after it has started, so the first tick may still see the host's
        self._net = self._net or _NetCounter.for_root(self.root.pid)
        if self._net is not None:
            tree.update(self._net.rates(now))
        if self.gpu is not None:
            tree.update(self.gpu.sample(alive))
        return rows

    def _workload(self, proc: psutil.Process) -> str:
        try:
            return f"{self.name}/{proc.name()}[{proc.pid}]"
        except psutil.Error:
            return f"{self.name}/[{proc.pid}]"

    def _read(self, proc: psutil.Process, now: float) -> tuple[_Seen, dict[str, float]] | None:
        try:
            with proc.oneshot():
                times = proc.cpu_times()
                memory = proc.memory_full_info()
                io = proc.io_counters() if hasattr(proc, "io_counters") else None
                threads = proc.num_threads()
                created = proc.create_time()
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            return None
        except psutil.AccessDenied:
            return None
        cpu_s = times.user + times.system
        read_b = float(io.read_bytes) if io else 0.0
        write_b = float(io.write_bytes) if io else 0.0
        before = self._seen.get(proc.pid)
        if before is None:  # new since the last tick: its usage so far counts from its start
            before = _Seen(proc, 0.0, 0.0, 0.0, min(created, now))
        elapsed = max(now - before.at, 1e-6)
        values = {
            "cpu_cores": max(cpu_s - before.cpu_s, 0.0) / elapsed,
            "mem_bytes": float(memory.rss),
            "mem_uss_bytes": float(memory.uss),
            "disk_read_bytes_per_s": max(read_b - before.read_bytes, 0.0) / elapsed,
            "disk_write_bytes_per_s": max(write_b - before.write_bytes, 0.0) / elapsed,
            "threads": float(threads),
        }
        return _Seen(proc, cpu_s, read_b, write_b, now), values


@dataclass(slots=True)
class Recording:
    """Everything one ``run``/``attach`` session produced."""

    telemetry: pl.DataFrame
    exit_code: int | None
    interrupted: bool
    wall_s: float
    sampler_cpu_s: float
    gpu_note: str

    @property
    def sampler_cpu_pct(self) -> float:
        """The sampler's own CPU time as a percentage of one core over the session."""
        return 100.0 * self.sampler_cpu_s / self.wall_s if self.wall_s > 0 else 0.0


Tick = Callable[[datetime, dict[str, dict[str, float]]], None]


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def record(
    root: psutil.Process,
    *,
    name: str,
    interval_s: float,
    per_process: bool = False,
    own_child: bool = False,
    on_tick: Tick | None = None,
) -> Recording:
    """Sample ``root`` every ``interval_s`` until it exits or Ctrl-C; never loses samples.

    With ``own_child`` (``run``), Ctrl-C is passed on to the command, which gets
    ``_GRACE_S`` to exit before it is terminated, and its exit code is returned.
    """
    if interval_s <= 0:
        raise UsageError(f"--interval must be positive. Got {interval_s} instead.")
    gpu, gpu_note = GpuProbe.open()
    sampler = TreeSampler(root, name, per_process=per_process, gpu=gpu)
    columns: dict[str, list[object]] = {"workload": [], "metric": [], "ts": [], "value": []}
    started, cpu_start = time.monotonic(), _cpu_s()
    next_at = started
    interrupted = False
    try:
        while (snapshot := sampler.sample()) is not None:
            stamp = datetime.now(UTC)
            for workload, values in snapshot.items():
                for metric, value in values.items():
                    columns["workload"].append(workload)
                    columns["metric"].append(metric)
                    columns["ts"].append(stamp)
                    columns["value"].append(value)
            if on_tick is not None:
                on_tick(stamp, snapshot)
            next_at += interval_s
            if _exited(root, max(next_at - time.monotonic(), 0.0)):
                break
    except KeyboardInterrupt:
        interrupted = True
        if own_child:
            _stop(root)
    finally:
        if gpu is not None:
            gpu.close()
    exit_code = _exit_code(root) if own_child else None
    frame = pl.DataFrame(columns, schema={"workload": pl.String, "metric": pl.String,
                                          "ts": TS_DTYPE, "value": pl.Float64})
    return Recording(frame, exit_code, interrupted, time.monotonic() - started,
                     _cpu_s() - cpu_start, gpu_note)


def _exited(root: psutil.Process, timeout: float) -> bool:
    try:
        root.wait(timeout=timeout)
    except psutil.TimeoutExpired:
        return False
    return True


def _stop(root: psutil.Process) -> None:
    """Let an interrupted command finish on SIGINT, then terminate, then kill it."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
        try:
            if not root.is_running() or root.status() == psutil.STATUS_ZOMBIE:
                return
            root.send_signal(sig)
            root.wait(timeout=_GRACE_S if sig == signal.SIGINT else 2.0)
        except psutil.TimeoutExpired:
            continue
        except psutil.NoSuchProcess:
            return
        return


def _exit_code(root: psutil.Process) -> int | None:
    try:
        code = root.wait(timeout=_GRACE_S)
    except (psutil.TimeoutExpired, psutil.NoSuchProcess):
        return None
    if code is None:
        return None
    status = int(code)
    return status if status >= 0 else 128 - status  # killed by signal N -> 128 + N, as a shell


def start_command(argv: Sequence[str]) -> psutil.Popen:
    """Start ``argv`` with the terminal's stdin/stdout/stderr; exit codes as a shell's."""
    if not argv:
        raise InputError("no command given: foresize profile run -- COMMAND [ARGS...]")
    try:
        return psutil.Popen(list(argv))
    except FileNotFoundError as exc:
        raise CommandError(f"command not found: {argv[0]}", exit_code=127) from exc
    except PermissionError as exc:
        raise CommandError(f"command not executable: {argv[0]}", exit_code=126) from exc


def attach_process(pid: int) -> psutil.Process:
    """The running process ``pid``, or a one-line error if it does not exist."""
    if pid == os.getpid():
        raise InputError(f"PID {pid} is foresize itself")
    try:
        proc = psutil.Process(pid)
        proc.status()
    except psutil.NoSuchProcess as exc:
        raise InputError(f"no process with PID {pid}") from exc
    except psutil.AccessDenied as exc:
        raise InputError(f"PID {pid}: permission denied (run as its user or root)") from exc
    return proc


class CommandError(InputError):
    """The wrapped command could not be started; carries the shell's exit code."""

    def __init__(self, message: str, *, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code  # type: ignore[misc]  # per-instance code: 126/127
