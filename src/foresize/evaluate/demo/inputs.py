"""The demo's inputs from a registered dataset: local tables only, a small subset.

``foresize demo`` promises to run offline, so a dataset is read only from a mirror or
from the cache a ``foresize datasets fetch`` filled, never downloaded here; a table
that is not local is a one-line error with the command that fetches it. Real traces
hold hundreds of containers; the demo takes the ``limit`` workloads covered by the most
metrics, so every stage has something to chew on and the run stays short.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from foresize.core.errors import InputError, InsufficientDataError, UsageError
from foresize.evaluate.common import read_table
from foresize.ingest.datasets import Table, parse_address, table_path
from foresize.ingest.synthetic import (
    GPU_MEM_GIB,
    SERVICE_KINDS,
    TRAINING_KINDS,
    describe_synthetic,
    generate_telemetry,
)
from foresize.recommend.strategies import MIN_POINTS

# per dataset, the tables the demo reads (the default: every telemetry table it has)
DEMO_TABLES = {"alibaba-gentd26": ("gpu_duty_cycle", "memory_util", "qps")}


@dataclass(frozen=True, slots=True)
class DatasetInput:
    """Telemetry of the chosen workloads, the tables it came from and their hashes."""

    frame: pl.DataFrame
    dataset: str
    tables: tuple[str, ...]
    sha256: dict[str, str | None]
    workloads_total: int


def demo_tables(address: str) -> list[Table]:
    """The tables the demo reads for ``address`` (``NAME`` or ``NAME:TABLE``)."""
    dataset, named = parse_address(address)
    if named is not None:
        tables = [named]
    elif dataset.name in DEMO_TABLES:
        tables = [dataset.table(name) for name in DEMO_TABLES[dataset.name]]
    else:
        tables = [t for t in dataset.tables if t.kind == "telemetry"]
    usable = [t for t in tables if t.telemetry_reader is not None]
    if not usable:
        kinds = ", ".join(sorted({t.kind for t in dataset.tables}))
        raise InputError(
            f"{address}: {dataset.name} holds no telemetry for the demo (it has {kinds} "
            "tables); try --dataset alibaba-gentd26"
        )
    return usable


def _local(table: Table, mirror: Path | None) -> None:
    """Raise a one-line InputError unless ``table`` is in the mirror or the cache."""
    try:
        table_path(table.address, mirror=mirror)
    except InputError as exc:
        where = f"the mirror {mirror}" if mirror is not None else "the cache"
        raise InputError(
            f"{table.address} is not in {where}; fetch it first: "
            f"foresize datasets fetch {table.address}"
            + (f" --mirror {mirror}" if mirror is not None else "")
        ) from exc


def select_workloads(frame: pl.DataFrame, limit: int | None) -> list[str]:
    """The ``limit`` workloads with enough samples of the most metrics, then by name."""
    counts = frame.group_by("workload", "metric").agg(pl.col("ts").n_unique().alias("n"))
    scored = (
        counts.filter(pl.col("n") >= MIN_POINTS)
        .group_by("workload")
        .agg(pl.len().alias("metrics"))
        .sort(["metrics", "workload"], descending=[True, False])
    )
    names = [str(w) for w in scored["workload"].to_list()]
    return names if limit is None else names[:limit]


def load_dataset(address: str, *, mirror: Path | None, limit: int | None) -> DatasetInput:
    """Read the demo tables of ``address`` from local files and keep ``limit`` workloads."""
    if limit is not None and limit < 1:
        raise UsageError(f"--limit must be >= 1, got {limit}")
    tables = demo_tables(address)
    for table in tables:
        _local(table, mirror)
    frames: list[pl.DataFrame] = []
    for table in tables:
        try:
            frames.append(read_table(table.address, mirror=mirror))
        except OSError as exc:
            raise InputError(f"{table.address}: cannot read ({exc})") from exc
    frame = pl.concat(frames, how="diagonal_relaxed")
    chosen = select_workloads(frame, limit)
    if not chosen:
        raise InsufficientDataError(
            f"{address}: no workload has {MIN_POINTS} samples of any metric; nothing to demo"
        )
    dataset, _ = parse_address(address)
    return DatasetInput(
        frame=frame.filter(pl.col("workload").is_in(chosen)),
        dataset=dataset.name,
        tables=tuple(t.address for t in tables),
        sha256={t.address: t.sha256 for t in tables},
        workloads_total=frame["workload"].n_unique(),
    )


@dataclass(frozen=True, slots=True)
class Assumptions:
    """What telemetry cannot say and the plan needs: replica capacity and today's GPUs.

    ``capacity[w]`` is the demand one replica of service ``w`` serves at 100 %; a service
    without one gets its observed peak / ``peak_replicas`` (its peak needs that many).
    ``gpus[w]`` is the GPUs a pod of ``w`` holds today (default 1, a whole GPU).
    """

    capacity: Mapping[str, float] = field(default_factory=dict)
    gpus: Mapping[str, float] = field(default_factory=dict)
    peak_replicas: int = 8
    notes: tuple[str, ...] = ()


def synthetic_assumptions(workloads: Sequence[str]) -> Assumptions:
    """The synthetic generator's own sizes: capacity = nominal peak / peak load per service
    kind (``infer-chat``: 40 qps at 80 % -> 50 qps a replica), GPUs per training kind.
    """
    services = {f"infer-{k.name}": k.peak_qps / k.peak_load for k in SERVICE_KINDS}
    training = {f"train-{k.name}": float(k.gpus) for k in TRAINING_KINDS}
    capacity: dict[str, float] = {}
    gpus: dict[str, float] = {}
    for name in workloads:
        kind = name.rsplit("-", 1)[0]
        if kind in services:
            capacity[name] = services[kind]
            gpus[name] = 1.0
        elif kind in training:
            gpus[name] = training[kind]
    return Assumptions(
        capacity=capacity,
        gpus=gpus,
        notes=(
            "replica capacity = the synthetic service's nominal peak / its load at peak "
            + ", ".join(f"{k} {v:g} qps" for k, v in services.items()),
            f"original pods hold whole {GPU_MEM_GIB:g} GiB GPUs: "
            + ", ".join(f"{k} {v:g}" for k, v in training.items())
            + ", services 1",
        ),
    )


@dataclass(frozen=True, slots=True)
class DemoInput:
    """What the demo runs on: telemetry, its label and hashes, the assumptions, and how
    it was made (the summary's ``source``).
    """

    telemetry: pl.DataFrame
    label: str
    assumptions: Assumptions
    inputs: dict[str, str | None]
    source: dict[str, Any]


def synthetic_input(*, seed: int, duration: str, step: str) -> DemoInput:
    """The embedded synthetic telemetry of ``seed``, with the generator's own sizes."""
    telemetry = generate_telemetry(seed=seed, duration=duration, step=step)
    workloads = sorted(telemetry["workload"].unique().to_list())
    made = {"seed": seed, "duration": duration, "step": step,
            "workload_kinds": describe_synthetic()}
    return DemoInput(telemetry, "synthetic", synthetic_assumptions(workloads), {},
                     {"synthetic": made})


def dataset_input(address: str, *, mirror: Path | None, limit: int) -> DemoInput:
    """A registered dataset read offline, each service's capacity from its own peak."""
    loaded = load_dataset(address, mirror=mirror, limit=limit)
    assumptions = Assumptions(notes=(
        f"replica capacity = each service's observed peak / {Assumptions().peak_replicas}",
        "original pods hold one whole GPU with the node's CPU and memory per GPU",
    ))
    made = {"name": loaded.dataset, "tables": list(loaded.tables),
            "workloads": loaded.frame["workload"].n_unique(),
            "workloads_total": loaded.workloads_total, "limit": limit}
    return DemoInput(loaded.frame, loaded.dataset, assumptions, dict(loaded.sha256),
                     {"dataset": made})
