"""Deterministic synthetic telemetry of AI training jobs and inference services.

``foresize demo`` must run offline on a fresh machine, so it cannot read the public
Alibaba traces; this generator is its embedded default. The shapes follow what those
traces and practice show: training jobs move through phases (input-bound data
loading, a flat GPU-bound steady state, periodic evaluation and checkpoint spikes)
and some are preempted or stall; inference services follow a daily cycle with bursts,
saturate their GPU and queue as load approaches capacity, and some sit idle outside
office hours, as many GenTD26 serving containers do.

Every workload draws from its own generator seeded by ``(seed, kind, index)``, so one
workload's values do not change when more workloads are asked for. Values are per pod:
``gpu_util_pct`` is the mean over the pod's GPUs, ``gpu_mem_bytes`` their sum.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import numpy.typing as npt
import polars as pl

from foresize.core.errors import InputError
from foresize.core.schemas import TELEMETRY, TELEMETRY_OPTIONAL, TS_DTYPE
from foresize.core.units import human_duration, parse_duration

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

GIB = float(1 << 30)
GPU_MEM_GIB = 80.0  # every synthetic pod runs on 80 GiB devices (A100/H100 class)
SCHEMA = pl.Schema([*TELEMETRY.items(), ("phase", TELEMETRY_OPTIONAL["phase"])])

PHASES = ("data_loading", "training", "evaluation", "checkpoint")
_LOADING, _TRAINING, _EVALUATION, _CHECKPOINT = range(len(PHASES))
_UTIL_LOADING = 4.0  # % GPU busy while the input pipeline fills; the GPU mostly waits
_UTIL_CHECKPOINT = 8.0  # % while the state dict is copied to host and written out
_UTIL_SD = (1.5, 1.2, 3.0, 3.0)  # per-phase noise of GPU util, in points
_EVAL_UTIL_RATIO = 0.65  # forward-only eval batches keep the GPU less busy
_EVAL_MEM_RATIO = 0.97  # eval frees the activations kept for the backward pass
_LOADED_MEM_FRAC = 0.3  # share of the GPU plateau resident when loading ends (weights)
_WARMUP_S = 180.0  # the first steps allocate gradients and optimizer state
_CUDA_CONTEXT_GIB = 0.5  # per GPU, from process start
_STARVE_S = 600.0  # before a stall the loader falls behind and the GPU waits

_BURST_DECAY_S = 300.0  # a burst fades with this time constant
_SATURATION = 2.5  # util = 100 (1 - exp(-k rho)): ~92 % at rho = 1, flat beyond
_QUEUE_FACTOR = 0.5  # Kingman's (ca^2 + cs^2) / 2 for batched, fairly regular service
_MAX_RHO = 0.95  # queueing delay stays bounded: overload sheds or times out requests
_WORKSPACE_GIB = 1.0  # allocator workspace next to weights and KV cache


@dataclass(frozen=True, slots=True)
class TrainingKind:
    """A family of training jobs: its pod, its per-phase levels and its schedule.

    Tuples indexed by phase follow ``PHASES``. Checkpoints start every
    ``checkpoint_every_s`` of training; evaluations every ``eval_every_s``, offset by
    half a checkpoint period so the two never overlap. ``preempt_at``/``stall_at`` are
    fractions of the generated duration where the job stops or its samples pause.
    """

    name: str
    summary: str
    gpus: int
    gpu_mem_frac: tuple[float, float]  # plateau per GPU, fraction of the device, drawn per job
    gpu_util: tuple[float, float]  # steady training util range, drawn per job
    cpu_cores: tuple[float, float, float, float]
    mem_gib: tuple[float, float, float, float]  # data_loading: the level the ramp reaches
    loading_s: float
    checkpoint_every_s: float
    checkpoint_s: float
    eval_every_s: float
    eval_s: float
    dip_every_s: float  # logging / gradient-accumulation boundaries dip the GPU
    preempt_at: float | None = None
    stall_at: float | None = None
    stall_s: float = 1800.0


@dataclass(frozen=True, slots=True)
class ServiceKind:
    """A family of inference services: its traffic shape and its capacity.

    ``trough_ratio`` is trough/peak of the daily cycle; ``office_hours`` (UTC, open <
    close) gates traffic to zero outside them; ``peak_load`` is the utilisation
    (arrivals / capacity) at the daily peak.
    """

    name: str
    summary: str
    peak_qps: float
    trough_ratio: float
    peak_hour_utc: float
    weekend_factor: float
    bursts_per_day: float
    burst_gain: tuple[float, float]
    peak_load: float
    base_latency_s: float
    weights_gib: float
    kv_gib_per_request: float
    kv_max_gib: float
    cpu_cores: float
    cpu_cores_per_qps: float
    mem_gib: float
    office_hours: tuple[float, float] | None = None


def _m(minutes: float) -> float:
    return minutes * 60.0


TRAINING_KINDS = (
    TrainingKind(
        "llm",
        "LLM pre-training on 8 GPUs, runs to the end",
        gpus=8,
        gpu_mem_frac=(0.82, 0.94),
        gpu_util=(91.0, 96.0),
        cpu_cores=(56.0, 18.0, 24.0, 44.0),
        mem_gib=(160.0, 180.0, 190.0, 320.0),
        loading_s=_m(20),
        checkpoint_every_s=_m(60),
        checkpoint_s=_m(4),
        eval_every_s=_m(180),
        eval_s=_m(10),
        dip_every_s=_m(10),
    ),
    TrainingKind(
        "vit",
        "vision fine-tuning on 4 GPUs, CPU-heavy augmentation, preempted",
        gpus=4,
        gpu_mem_frac=(0.55, 0.75),
        gpu_util=(86.0, 92.0),
        cpu_cores=(48.0, 36.0, 30.0, 40.0),
        mem_gib=(64.0, 96.0, 100.0, 130.0),
        loading_s=_m(15),
        checkpoint_every_s=_m(30),
        checkpoint_s=_m(2),
        eval_every_s=_m(60),
        eval_s=_m(6),
        dip_every_s=_m(5),
        preempt_at=0.6,
    ),
    TrainingKind(
        "recsys",
        "recommender on 2 GPUs, host-memory embeddings, data-loader stall",
        gpus=2,
        gpu_mem_frac=(0.6, 0.8),
        gpu_util=(84.0, 90.0),
        cpu_cores=(40.0, 16.0, 20.0, 30.0),
        mem_gib=(220.0, 300.0, 310.0, 450.0),
        loading_s=_m(25),
        checkpoint_every_s=_m(45),
        checkpoint_s=_m(3),
        eval_every_s=_m(90),
        eval_s=_m(8),
        dip_every_s=_m(15),
        stall_at=0.45,
    ),
)

SERVICE_KINDS = (
    ServiceKind(
        "chat",
        "LLM chat, always on, peak/trough 4x",
        peak_qps=40.0,
        trough_ratio=0.25,
        peak_hour_utc=6.0,
        weekend_factor=0.8,
        bursts_per_day=4.0,
        burst_gain=(2.0, 5.0),
        peak_load=0.8,
        base_latency_s=1.5,
        weights_gib=14.0,
        kv_gib_per_request=0.12,
        kv_max_gib=52.0,
        cpu_cores=2.0,
        cpu_cores_per_qps=0.05,
        mem_gib=24.0,
    ),
    ServiceKind(
        "embed",
        "embedding API, always on, peak/trough 2x, re-indexing bursts",
        peak_qps=400.0,
        trough_ratio=0.5,
        peak_hour_utc=3.0,
        weekend_factor=0.9,
        bursts_per_day=6.0,
        burst_gain=(3.0, 6.0),
        peak_load=0.6,
        base_latency_s=0.025,
        weights_gib=1.3,
        kv_gib_per_request=0.004,
        kv_max_gib=6.0,
        cpu_cores=1.0,
        cpu_cores_per_qps=0.01,
        mem_gib=8.0,
    ),
    ServiceKind(
        "assist",
        "office assistant, idle outside 01-10 UTC and at weekends",
        peak_qps=12.0,
        trough_ratio=0.6,
        peak_hour_utc=5.5,
        weekend_factor=0.0,
        bursts_per_day=2.0,
        burst_gain=(2.0, 3.0),
        peak_load=0.7,
        base_latency_s=2.0,
        weights_gib=26.0,
        kv_gib_per_request=0.2,
        kv_max_gib=40.0,
        cpu_cores=1.0,
        cpu_cores_per_qps=0.1,
        mem_gib=32.0,
        office_hours=(1.0, 10.0),
    ),
)


def describe_synthetic() -> dict[str, str]:
    """One line per workload kind (name prefix -> contents), for the demo's help text."""
    lines = {
        f"train-{k.name}": f"{k.summary}; data_loading {human_duration(k.loading_s)}, "
        f"checkpoint every {human_duration(k.checkpoint_every_s)} for "
        f"{human_duration(k.checkpoint_s)}, evaluation every {human_duration(k.eval_every_s)} "
        f"for {human_duration(k.eval_s)}"
        for k in TRAINING_KINDS
    }
    lines.update(
        (
            f"infer-{k.name}",
            f"{k.summary}; ~{k.peak_qps:g} qps at peak, "
            f"{k.peak_load:.0%} of capacity, {k.bursts_per_day:g} bursts/day",
        )
        for k in SERVICE_KINDS
    )
    return lines


@dataclass(frozen=True, slots=True)
class _Grid:
    """The regular sampling grid every workload starts on."""

    t_s: FloatArray  # seconds since start
    ts_us: IntArray  # microseconds since the Unix epoch, UTC
    step_s: float
    duration_s: float

    @property
    def hour_utc(self) -> FloatArray:
        return (self.ts_us / 3.6e9) % 24.0

    @property
    def weekend(self) -> BoolArray:
        day = self.ts_us // 86_400_000_000
        return (day + 3) % 7 >= 5  # 1970-01-01 was a Thursday (Monday = 0)

    def at(self, fraction: float) -> float:
        """Return the grid time nearest ``fraction`` of the duration, so events land on samples."""
        return round(fraction * self.duration_s / self.step_s) * self.step_s


def _grid(start: datetime, duration_s: float, step_s: float) -> _Grid:
    k = np.arange(int(duration_s / step_s + 1e-9), dtype=np.int64)
    start_us = (start - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    step_us = round(step_s * 1e6)
    return _Grid((k * step_s).astype(np.float64), start_us + k * step_us, step_s, duration_s)


def _training_phases(kind: TrainingKind, grid: _Grid) -> IntArray:
    """Phase code per sample: loading first, then training with evals and checkpoints."""
    u = grid.t_s - kind.loading_s
    period = kind.checkpoint_every_s
    w = u - (kind.eval_every_s - period / 2)
    phase = np.full(grid.t_s.size, _TRAINING, dtype=np.int64)
    phase[(w >= 0) & (w % kind.eval_every_s < kind.eval_s)] = _EVALUATION
    phase[(u >= period) & (u % period < kind.checkpoint_s)] = _CHECKPOINT
    phase[u < 0] = _LOADING
    return phase


def _anomalies(kind: TrainingKind, grid: _Grid, phase: IntArray) -> BoolArray:
    """Mark the samples kept: a preempted job stops; a stalled one starves, then falls silent."""
    keep = np.ones(grid.t_s.size, dtype=np.bool_)
    if kind.preempt_at is not None:
        keep &= grid.t_s < grid.at(kind.preempt_at)
    if kind.stall_at is not None:
        begin = grid.at(kind.stall_at)
        # at least three missing steps, so the gap shows at any sampling interval
        end = begin + max(kind.stall_s, 3 * grid.step_s)
        phase[(grid.t_s >= begin - _STARVE_S) & (grid.t_s < begin)] = _LOADING
        keep &= (grid.t_s < begin) | (grid.t_s >= end)
    return keep


def _training_job(
    kind: TrainingKind, rng: np.random.Generator, grid: _Grid
) -> tuple[dict[str, FloatArray], BoolArray, IntArray]:
    """Metrics, kept-sample mask and phase codes of one training job."""
    phase = _training_phases(kind, grid)
    keep = _anomalies(kind, grid, phase)
    n, t, u = grid.t_s.size, grid.t_s, grid.t_s - kind.loading_s
    level = rng.uniform(*kind.gpu_util)
    means = np.array([_UTIL_LOADING, level, level * _EVAL_UTIL_RATIO, _UTIL_CHECKPOINT])
    util = means[phase] + np.array(_UTIL_SD)[phase] * rng.standard_normal(n)
    dips = (phase == _TRAINING) & (u % kind.dip_every_s < grid.step_s)
    util[dips] -= rng.uniform(8.0, 15.0, int(dips.sum()))

    plateau = kind.gpus * GPU_MEM_GIB * GIB * rng.uniform(*kind.gpu_mem_frac)
    context = kind.gpus * _CUDA_CONTEXT_GIB * GIB
    fill = np.where(
        u < 0,
        _LOADED_MEM_FRAC * np.clip(t / kind.loading_s, 0.0, 1.0),
        _LOADED_MEM_FRAC + (1 - _LOADED_MEM_FRAC) * np.clip((u + grid.step_s) / _WARMUP_S, 0, 1),
    )
    gpu_mem = (context + (plateau - context) * fill) * (1 + 0.001 * rng.standard_normal(n))
    gpu_mem[phase == _EVALUATION] *= _EVAL_MEM_RATIO

    scale = rng.uniform(0.9, 1.1)
    cpu = scale * np.array(kind.cpu_cores)[phase] * (1 + 0.06 * rng.standard_normal(n))
    ramp = np.where(u < 0, np.clip((t + grid.step_s) / kind.loading_s, 0.1, 1.0), 1.0)
    mem = scale * np.array(kind.mem_gib)[phase] * GIB * ramp * (1 + 0.01 * rng.standard_normal(n))
    metrics = {"cpu_cores": cpu, "gpu_mem_bytes": gpu_mem, "gpu_util_pct": util, "mem_bytes": mem}
    return metrics, keep, phase


def _daily_shape(kind: ServiceKind, grid: _Grid, peak_hour: float) -> FloatArray:
    """Share of the peak arrival rate by time of day and day of week."""
    hour = grid.hour_utc
    cycle = ((1 + np.cos(2 * np.pi * (hour - peak_hour) / 24)) / 2) ** 1.5
    shape = kind.trough_ratio + (1 - kind.trough_ratio) * cycle
    if kind.office_hours is not None:
        open_h, close_h = kind.office_hours
        gate = 1 / ((1 + np.exp((open_h - hour) / 0.25)) * (1 + np.exp((hour - close_h) / 0.25)))
        # below 2 % the service is idle: nobody is at work, not a trickle of requests
        shape = shape * np.clip((gate - 0.02) / 0.98, 0.0, 1.0)
    return np.where(grid.weekend, kind.weekend_factor, 1.0) * shape


def _bursts(kind: ServiceKind, rng: np.random.Generator, grid: _Grid) -> FloatArray:
    """Multiplier with short spikes of ``burst_gain``x that decay in a few minutes."""
    n = grid.t_s.size
    count = rng.poisson(kind.bursts_per_day * grid.duration_s / 86400)
    impulses = np.zeros(n)
    np.add.at(impulses, rng.integers(0, n, count), rng.uniform(*kind.burst_gain, count) - 1)
    lags = np.arange(math.ceil(5 * _BURST_DECAY_S / grid.step_s) + 1) * grid.step_s
    return 1 + np.convolve(impulses, np.exp(-lags / _BURST_DECAY_S))[:n]


def _service(kind: ServiceKind, rng: np.random.Generator, grid: _Grid) -> dict[str, FloatArray]:
    """Metrics of one inference service, all driven by its measured arrival rate."""
    n, step = grid.t_s.size, grid.step_s
    peak = kind.peak_qps * rng.uniform(0.75, 1.25)
    shape = _daily_shape(kind, grid, kind.peak_hour_utc + rng.uniform(-1.0, 1.0))
    rate = peak * shape * _bursts(kind, rng, grid)
    qps = rng.poisson(rate * step) / step  # counted arrivals: exact zeros when idle
    rho = qps * kind.peak_load / peak
    util = 100 * (1 - np.exp(-_SATURATION * rho)) + 1.5 * rng.standard_normal(n)
    util[qps == 0] = 0.0
    busy = np.minimum(rho, _MAX_RHO)
    latency = kind.base_latency_s * (1 + _QUEUE_FACTOR * busy / (1 - busy))
    latency *= np.exp(0.05 * rng.standard_normal(n))
    in_flight = qps * latency  # Little's law: concurrent requests hold KV cache
    kv = np.minimum(kind.kv_max_gib, in_flight * kind.kv_gib_per_request)
    gpu_mem = (kind.weights_gib + _WORKSPACE_GIB + kv) * GIB * (1 + 0.002 * rng.standard_normal(n))
    cpu = (kind.cpu_cores + kind.cpu_cores_per_qps * qps) * (1 + 0.05 * rng.standard_normal(n))
    mem = kind.mem_gib * GIB * (1 + 0.01 * rng.standard_normal(n))
    return {
        "cpu_cores": cpu,
        "gpu_mem_bytes": gpu_mem,
        "gpu_util_pct": util,
        "latency_s": latency,
        "mem_bytes": mem,
        "qps": qps,
    }


def _frame(
    workload: str,
    grid: _Grid,
    metrics: dict[str, FloatArray],
    keep: BoolArray | None = None,
    phase: IntArray | None = None,
) -> pl.DataFrame:
    """Long rows of one workload: every metric on the kept samples of the grid."""
    keep = np.ones(grid.t_s.size, dtype=np.bool_) if keep is None else keep
    names = sorted(metrics)
    kept = int(keep.sum())
    # noise must not push usage below zero or a percentage above 100
    values = np.concatenate(
        [np.clip(metrics[m][keep], 0.0, 100.0 if m.endswith("_pct") else None) for m in names]
    )
    return pl.DataFrame(
        {
            "workload": pl.repeat(workload, kept * len(names), eager=True),
            "metric": pl.Series(names).gather(np.repeat(np.arange(len(names)), kept)),
            "ts": pl.Series(np.tile(grid.ts_us[keep], len(names))).cast(TS_DTYPE),
            "value": values,
            "phase": (
                pl.Series(PHASES).gather(np.tile(phase[keep], len(names)))
                if phase is not None
                else pl.repeat(None, kept * len(names), dtype=pl.String, eager=True)
            ),
        },
        schema=SCHEMA,
    )


def _check(name: str, must: str, got: object, *, ok: bool) -> None:
    if not ok:
        raise InputError(
            f"The {name!r} parameter of generate_telemetry must be {must}. Got {got!r} instead."
        )


def generate_telemetry(
    *,
    seed: int = 0,
    n_training: int = 3,
    n_inference: int = 3,
    duration: str = "2d",
    step: str = "1m",
    start: datetime = datetime(2026, 1, 5, tzinfo=UTC),
) -> pl.DataFrame:
    """Canonical telemetry of ``n_training`` jobs and ``n_inference`` services.

    Kinds cycle through ``TRAINING_KINDS`` and ``SERVICE_KINDS``; workloads are named
    ``train-<kind>-NN`` and ``infer-<kind>-NN``. Samples lie on a grid of ``step``
    over ``[start, start + duration)``. The frame has the ``TELEMETRY`` columns plus
    ``phase`` (null for services), sorted by workload, metric and ts; the same
    arguments always give the same frame.
    """
    duration_s, step_s = parse_duration(duration), parse_duration(step)
    _check("seed", "a non-negative integer", seed, ok=seed >= 0)
    _check("n_training", "a non-negative integer", n_training, ok=n_training >= 0)
    _check("n_inference", "a non-negative integer", n_inference, ok=n_inference >= 0)
    _check(
        "n_training",
        "positive when 'n_inference' is 0 (nothing to generate)",
        n_training,
        ok=n_training + n_inference > 0,
    )
    _check("step", f"positive and at most duration={duration!r}", step, ok=0 < step_s <= duration_s)
    _check("start", "timezone-aware", start, ok=start.utcoffset() is not None)
    grid = _grid(start, duration_s, step_s)
    frames: dict[str, pl.DataFrame] = {}
    for i in range(n_training):
        kind = TRAINING_KINDS[i % len(TRAINING_KINDS)]
        rng = np.random.default_rng([seed, 0, i])
        metrics, keep, phase = _training_job(kind, rng, grid)
        name = f"train-{kind.name}-{i:02d}"
        frames[name] = _frame(name, grid, metrics, keep, phase)
    for i in range(n_inference):
        service = SERVICE_KINDS[i % len(SERVICE_KINDS)]
        rng = np.random.default_rng([seed, 1, i])
        name = f"infer-{service.name}-{i:02d}"
        frames[name] = _frame(name, grid, _service(service, rng, grid))
    # each frame is already in metric, ts order, so ordering by name sorts the whole
    return pl.concat([frames[name] for name in sorted(frames)])
