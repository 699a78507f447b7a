"""A synthetic Alibaba PAI 2020 trace in the exact upstream format, at any size.

Writes ``pai_task_table.tar.gz``, ``pai_instance_table.tar.gz`` and ``pai_sensor_table.tar.gz``
(each one headerless CSV inside a tar.gz, columns in the order of the upstream ``.header``
files, hex-desensitised names of the upstream lengths, floats written as upstream writes
them: ``600.0``, ``29.296875``) plus the three ``.header`` files beside them.

The content follows what the trace is known for (Weng et al., NSDI '22): most jobs have
one task, some a PS/worker pair; most tasks one instance with a heavy tail of gang-scheduled
workers; plans on a few round sizes (600 = 6 cores, 50 = half a GPU, 29.296875 GB) and
usage far below the plan (a task-level utilisation drawn from a Beta, instance noise around
it, some idle GPUs, a few instances above their CPU plan). About 1 % of workers have a
Failed attempt before their run (same ``worker_name``, as in the trace), a few instances
are still Running (empty ``end_time``) or Waiting (times 0, no sensor row). The sensor table
has exactly ``--rows`` rows, one per started worker.

Rows are made in chunks, so memory stays flat at any ``--rows``; the CSVs are removed after
packing unless ``--keep-csv``. Seeded: the same arguments give the same bytes.

Run: ``python benchmarks/make_pai_sample.py --rows 10000000 --out /tmp/pai10m``
"""

from __future__ import annotations

import argparse
import tarfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO

import numpy as np
import polars as pl

TABLES = {
    "pai_task_table": [
        "job_name",
        "task_name",
        "inst_num",
        "status",
        "start_time",
        "end_time",
        "plan_cpu",
        "plan_mem",
        "plan_gpu",
        "gpu_type",
    ],
    "pai_instance_table": [
        "job_name",
        "task_name",
        "inst_name",
        "worker_name",
        "inst_id",
        "status",
        "start_time",
        "end_time",
        "machine",
    ],
    "pai_sensor_table": [
        "job_name",
        "task_name",
        "worker_name",
        "inst_id",
        "machine",
        "gpu_name",
        "cpu_usage",
        "gpu_wrk_util",
        "avg_mem",
        "max_mem",
        "avg_gpu_wrk_mem",
        "max_gpu_wrk_mem",
        "read",
        "write",
        "read_count",
        "write_count",
    ],
}
SINGLE_ROLES = [
    "tensorflow",
    "PyTorchWorker",
    "worker",
    "xComputeWorker",
    "OpenmpiTracker",
    "evaluator",
]
SINGLE_P = [0.45, 0.2, 0.15, 0.1, 0.05, 0.05]
GPU_TYPES = ["MISC", "T4", "P100", "V100", "V100M32"]
GPU_TYPE_P = [0.35, 0.2, 0.2, 0.15, 0.1]
PLAN_CPU = [100.0, 200.0, 400.0, 600.0, 800.0, 1200.0, 1600.0, 3200.0]
PLAN_CPU_P = [0.05, 0.1, 0.2, 0.35, 0.1, 0.1, 0.05, 0.05]
PLAN_GPU = [25.0, 50.0, 100.0, 200.0, 400.0, 800.0]
PLAN_GPU_P = [0.1, 0.45, 0.3, 0.08, 0.05, 0.02]
PLAN_MEM = [3.814697265625, 7.62939453125, 14.6484375, 29.296875, 58.59375, 97.65625]
PLAN_MEM_P = [0.1, 0.2, 0.25, 0.3, 0.1, 0.05]
TRACE_START_S = 1_500_000.0
TRACE_SPAN_S = 60 * 86_400.0
_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def hex_names(rng: np.random.Generator, n: int, length: int) -> pl.Series:
    """``n`` random lowercase hex strings of ``length`` characters (the trace's hashed names)."""
    nibbles = rng.integers(0, 16, size=(n, length), dtype=np.uint8)
    chars = np.ascontiguousarray(_HEX[nibbles])
    return pl.Series(chars.view(f"S{length}").ravel()).cast(pl.String)


def _pick(
    rng: np.random.Generator, values: Sequence[float | str], p: Sequence[float], n: int
) -> np.ndarray:
    return np.asarray(values)[rng.choice(len(values), size=n, p=p)]


def _tasks(rng: np.random.Generator, n_jobs: int) -> pl.DataFrame:
    """Tasks of ``n_jobs`` jobs: a single task (80 %) or a ps + worker pair, with their plans."""
    pair = rng.random(n_jobs) < 0.2
    job_index = np.repeat(np.arange(n_jobs), np.where(pair, 2, 1))
    first = np.r_[True, job_index[1:] != job_index[:-1]]
    in_pair = pair[job_index]
    role = np.where(
        in_pair, np.where(first, "ps", "worker"), _pick(rng, SINGLE_ROLES, SINGLE_P, len(job_index))
    )
    n = len(job_index)
    is_ps = role == "ps"
    tail = np.minimum(np.ceil(rng.lognormal(2.0, 1.2, n)), 2000)
    inst_num = np.where(
        is_ps, rng.integers(1, 5, n), np.where(rng.random(n) < 0.7, 1, tail)
    ).astype(np.int64)
    plan_gpu = np.where(is_ps, 0.0, _pick(rng, PLAN_GPU, PLAN_GPU_P, n))
    job_start = TRACE_START_S + np.floor(rng.random(n_jobs) * TRACE_SPAN_S)
    start = job_start[job_index] + np.floor(rng.exponential(60.0, n))
    duration = np.minimum(np.ceil(rng.lognormal(np.log(900.0), 1.5, n)), 10 * 86_400.0)
    return pl.DataFrame(
        {
            "job": job_index,
            "task_name": role,
            "inst_num": inst_num,
            "start": start,
            "duration": duration,
            "plan_cpu": _pick(rng, PLAN_CPU, PLAN_CPU_P, n),
            "plan_mem": _pick(rng, PLAN_MEM, PLAN_MEM_P, n),
            "plan_gpu": plan_gpu,
            "gpu_type": _pick(rng, GPU_TYPES, GPU_TYPE_P, n_jobs)[job_index],
            # task-level utilisation of the plan: what the trace shows, far below 1
            "u_cpu": np.where(is_ps, rng.beta(3.0, 4.0, n), rng.beta(1.5, 5.0, n)),
            "u_gpu": rng.beta(1.0, 3.0, n),
            "u_mem": rng.beta(2.0, 6.0, n),
        }
    )


def _chunk(rng: np.random.Generator, n_rows: int) -> dict[str, pl.DataFrame]:
    """Jobs whose started workers give exactly ``n_rows`` sensor rows; the three tables."""
    tasks = _tasks(rng, max(1, n_rows // 5))
    while int(tasks["inst_num"].sum()) < n_rows * 1.05:
        tasks = _tasks(rng, tasks["job"].max() * 2)  # type: ignore[operator]
    n_jobs = int(tasks["job"].max()) + 1  # type: ignore[arg-type]
    job_names = hex_names(rng, n_jobs, 24)
    inst_ids = hex_names(rng, n_jobs, 60)
    tasks = tasks.with_columns(
        job_name=job_names.gather(tasks["job"]), inst_id=inst_ids.gather(tasks["job"])
    )
    task_of = np.repeat(np.arange(tasks.height), tasks["inst_num"].to_numpy())
    n = len(task_of)
    t = tasks[task_of]
    waiting = rng.random(n) < 0.02
    # the instances that started, trimmed to exactly n_rows sensor rows
    started_rank = np.cumsum(~waiting)
    keep = started_rank <= n_rows
    keep &= ~(waiting & (started_rank >= n_rows))
    t, waiting = t.filter(pl.Series(keep)), waiting[keep]
    n = t.height
    status = np.where(
        waiting, "Waiting", _pick(rng, ["Terminated", "Failed", "Running"], [0.84, 0.13, 0.03], n)
    )
    start = t["start"].to_numpy() + rng.integers(0, 6, n)
    run = np.where(status == "Failed", rng.random(n) * 0.5, 0.9 + 0.1 * rng.random(n))
    end = np.floor(start + t["duration"].to_numpy() * run)
    start = np.where(waiting, 0.0, start)
    end = np.where(waiting, 0.0, end)
    machine = hex_names(rng, 2000, 24).gather(rng.integers(0, 2000, n))
    instances = pl.DataFrame(
        {
            "job_name": t["job_name"],
            "task_name": t["task_name"],
            "inst_name": hex_names(rng, n, 60),
            "worker_name": hex_names(rng, n, 60),
            "inst_id": t["inst_id"],
            "status": status,
            "start_time": start,
            "end_time": pl.Series(end).set(pl.Series(status == "Running"), None),
            "machine": machine,
        }
    )
    sensors = _sensors(rng, t.filter(pl.Series(~waiting)), instances.filter(pl.Series(~waiting)))
    # ~1 % of workers failed once before their run: an earlier row, same worker_name
    retried = instances.filter(pl.Series(~waiting & (rng.random(n) < 0.01)))
    retried = retried.with_columns(
        status=pl.lit("Failed"),
        end_time=pl.col("start_time") - 1,
        start_time=pl.col("start_time") - 1 - pl.lit(120.0),
    )
    instances = pl.concat([instances, retried]).sample(
        fraction=1.0, shuffle=True, seed=int(rng.integers(2**31))
    )
    task_table = tasks.select(
        "job_name",
        "task_name",
        pl.col("inst_num").cast(pl.Float64),
        pl.lit("Terminated").alias("status"),
        pl.col("start").alias("start_time"),
        (pl.col("start") + pl.col("duration")).alias("end_time"),
        "plan_cpu",
        "plan_mem",
        "plan_gpu",
        "gpu_type",
    )
    return {
        "pai_task_table": task_table,
        "pai_instance_table": instances,
        "pai_sensor_table": sensors,
    }


def _sensors(rng: np.random.Generator, t: pl.DataFrame, inst: pl.DataFrame) -> pl.DataFrame:
    """One sensor row per started instance: usage = plan x task utilisation x noise."""
    n = t.height
    noise = rng.lognormal(0.0, 0.35, (3, n))
    cpu = t["plan_cpu"].to_numpy() * np.minimum(t["u_cpu"].to_numpy() * noise[0], 1.6)
    plan_gpu = t["plan_gpu"].to_numpy()
    idle = rng.random(n) < 0.1
    gpu = np.where(idle, 0.0, plan_gpu * np.minimum(t["u_gpu"].to_numpy() * noise[1], 1.0))
    avg_mem = t["plan_mem"].to_numpy() * np.minimum(t["u_mem"].to_numpy() * noise[2], 0.9)
    max_mem = avg_mem * (1.0 + rng.exponential(0.3, n))
    gpu_mem = np.minimum(rng.gamma(1.5, 2.0, n), 31.0)
    has_gpu = pl.Series(plan_gpu > 0)

    def gpu_only(values: np.ndarray) -> pl.Series:
        return pl.Series(values).set(~has_gpu, None)

    return pl.DataFrame(
        {
            "job_name": inst["job_name"],
            "task_name": inst["task_name"],
            "worker_name": inst["worker_name"],
            "inst_id": inst["inst_id"],
            "machine": inst["machine"],
            "gpu_name": pl.Series([f"/dev/nvidia{i}" for i in range(8)])
            .gather(rng.integers(0, 8, n))
            .set(~has_gpu, None),
            "cpu_usage": cpu,
            "gpu_wrk_util": gpu_only(gpu),
            "avg_mem": avg_mem,
            "max_mem": max_mem,
            "avg_gpu_wrk_mem": gpu_only(gpu_mem * 0.8),
            "max_gpu_wrk_mem": gpu_only(gpu_mem),
            "read": rng.lognormal(15.0, 2.0, n),
            "write": rng.lognormal(15.0, 2.0, n),
            "read_count": rng.lognormal(7.0, 1.0, n),
            "write_count": rng.lognormal(7.0, 1.0, n),
        }
    ).sample(fraction=1.0, shuffle=True, seed=int(rng.integers(2**31)))


def _pack(csv_path: Path, *, keep_csv: bool) -> Path:
    """``NAME.csv`` -> ``NAME.tar.gz`` holding it, as upstream ships each table."""
    archive = csv_path.with_name(csv_path.name.removesuffix(".csv") + ".tar.gz")
    with tarfile.open(archive, "w:gz", compresslevel=1) as tar:
        tar.add(csv_path, arcname=csv_path.name)
    if not keep_csv:
        csv_path.unlink()
    return archive


def make_pai_sample(
    out: Path, *, rows: int, seed: int = 0, chunk_rows: int = 500_000, keep_csv: bool = False
) -> dict[str, Path]:
    """Write the three tables with ``rows`` sensor rows into ``out``; return the archives."""
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    handles: dict[str, IO[bytes]] = {name: (out / f"{name}.csv").open("wb") for name in TABLES}
    try:
        left = rows
        while left > 0:
            tables = _chunk(rng, min(chunk_rows, left))
            for name, frame in tables.items():
                frame.select(TABLES[name]).write_csv(handles[name], include_header=False)
            left -= tables["pai_sensor_table"].height
    finally:
        for handle in handles.values():
            handle.close()
    archives = {}
    for name, columns in TABLES.items():
        (out / f"{name}.header").write_text(",".join(columns) + "\n")
        archives[name] = _pack(out / f"{name}.csv", keep_csv=keep_csv)
    return archives


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="sensor rows")
    parser.add_argument("--out", type=Path, default=Path("/tmp/pai-sample"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep-csv", action="store_true")
    args = parser.parse_args()
    started = time.perf_counter()
    archives = make_pai_sample(args.out, rows=args.rows, seed=args.seed, keep_csv=args.keep_csv)
    print(f"{args.rows:,} sensor rows in {time.perf_counter() - started:.1f} s")
    for path in archives.values():
        print(f"  {path}  {path.stat().st_size / 2**20:,.1f} MiB")


if __name__ == "__main__":
    main()
