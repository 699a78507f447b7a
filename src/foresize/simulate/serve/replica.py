"""A serving replica built from the static analysis: iteration times, KV capacity, start-up.

A replica is one model on ``tp`` devices of one kind (tensor parallel). Its costs come
from ``graph``: the architecture's parameters and FLOPs per token, the weights' bytes in
the serving dtype, the KV cache's bytes per token, and the device's datasheet peak and
bandwidth. One engine iteration (continuous batching, as vLLM schedules it) runs ``n``
new tokens (decoding sequences plus a chunk of prompt tokens) over ``C`` cached tokens:

    t = overhead + max(W, N) + (1 - overlap) x min(W, N) + C x kv_bytes / BW'
        + TP all-reduce(n),   W = weights / BW',  N = (n x flops_per_token
                                                       + prompt-attention FLOPs) / F'

``BW' = bandwidth x bw_efficiency`` and ``F' = peak x flops_efficiency``: a decode step
reads every weight once (memory-bound until the batch is large), a prefill chunk is
compute-bound, and the attention of every running sequence reads its cached keys and
values. ``overlap`` says how much of the shorter of the weight read and the GEMM compute
hides under the longer: 1 is the roofline's ``max``, 0 (the default) their sum (kernels
near the ridge point reach neither peak). ``overlap = 0`` and ``flops_efficiency = 0.7``
are what every leave-one-pair-out fold of the validation chose, whichever pair it was
tuned on (``datasets/serve-validation.md``). All efficiencies, the overhead and the link
figures are stated defaults that a caller can override (``ReplicaSpec``);
``validation`` compares the result with published measurements of real servers
(``datasets/serve-validation.md``).

KV capacity: ``memory x gpu_memory_utilization - weights / tp - workspace`` per device,
divided by the per-device KV bytes of one token (vLLM's rule; 0.9 is its default).
Start-up: container start plus the weights' bytes over the load bandwidth.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from foresize.core.errors import InputError, UsageError
from foresize.graph.devices import DEVICES, Device, get_device
from foresize.graph.hf_config import Architecture
from foresize.graph.memory import (
    DTYPE_BYTES,
    dtype_bytes,
    inference_workspace_bytes,
    weight_bytes,
)

# Board power at full load (W), from the same datasheets as graph.devices: A100 SXM 400 W,
# H100 SXM 700 W (PCIe 350 W), H200 SXM 700 W, L4 72 W, T4 70 W, V100 SXM2 300 W.
DEVICE_POWER_W: dict[str, float] = {
    "a100_40gb": 400.0, "a100_80gb": 400.0, "h100_sxm": 700.0, "h100_pcie": 350.0,
    "h200": 700.0, "l4": 72.0, "t4": 70.0, "v100_16gb": 300.0, "v100_32gb": 300.0,
    "cpu": 250.0,
}
# Idle draw as a share of board power (nvidia-smi shows 60-90 W idle on a 700 W H100).
IDLE_POWER_FRACTION = 0.15
# GPU-to-GPU bandwidth per direction for the all-reduce (GB/s): NVLink 3 (A100) 300,
# NVLink 4 (H100/H200) 450; PCIe parts without a bridge go over PCIe 4/5 (32/64).
LINK_GB_S: dict[str, float] = {
    "a100_40gb": 300.0, "a100_80gb": 300.0, "h100_sxm": 450.0, "h100_pcie": 64.0,
    "h200": 450.0, "l4": 32.0, "t4": 16.0, "v100_16gb": 150.0, "v100_32gb": 150.0,
    "cpu": 16.0,
}


@dataclass(frozen=True, slots=True)
class ReplicaSpec:
    """What to build a replica from, with every assumed figure named and overridable."""

    device: str = "h100_sxm"
    tp: int = 1
    dtype: str = "bf16"
    kv_dtype: str | None = None  # default: dtype, or fp16 for quantised weights
    flops_efficiency: float = 0.7  # achieved / peak dense FLOP/s in GEMMs (prefill)
    bw_efficiency: float = 0.8  # achieved / peak HBM bandwidth (decode)
    overhead_s: float = 0.003  # scheduler, sampling and launch time per iteration
    overlap: float = 0.0  # 1: weight read and GEMM compute overlap (max); 0: they add
    allreduce_latency_s: float = 8e-6  # per all-reduce (2 per layer) under TP
    gpu_memory_utilization: float = 0.9  # vLLM's default share of device memory
    max_num_seqs: int = 256  # vLLM default: sequences in one batch
    max_batched_tokens: int = 2048  # tokens per iteration (chunked prefill budget)
    container_start_s: float = 30.0  # pull cached image, start the server, warm up
    load_gb_s: float = 2.0  # weights from storage to GPU memory (GB/s, whole replica)

    def with_overrides(self, **values: Any) -> ReplicaSpec:
        """A copy with some fields replaced (unknown names are an error)."""
        return replace(self, **values)


@dataclass(frozen=True, slots=True)
class ReplicaModel:
    """The cost model of one replica: times in seconds, memory in tokens.

    ``alpha`` terms are per iteration, ``per_token_s`` per new token in an iteration,
    ``kv_read_s`` per cached token read by attention.
    """

    model: str
    spec: ReplicaSpec
    device: Device
    n_params: int
    weight_bytes: int
    kv_bytes_per_token: float  # whole replica (all devices)
    kv_capacity_tokens: int
    weight_read_s: float
    per_token_s: float
    attention_s_per_token2: float  # prompt attention: per token x attended position
    kv_read_s: float
    allreduce_s_per_token: float
    allreduce_fixed_s: float
    startup_s: float
    power_w: float
    max_context: int

    @property
    def gpus(self) -> int:
        """Devices per replica."""
        return self.spec.tp

    def iteration_s(self, new_tokens: int, cached_tokens: int, prompt_attention: float = 0.0
                    ) -> float:
        """Time of one engine iteration (see the module docstring)."""
        compute = new_tokens * self.per_token_s + prompt_attention * self.attention_s_per_token2
        comm = self.allreduce_fixed_s + new_tokens * self.allreduce_s_per_token
        hidden = (1 - self.spec.overlap) * min(self.weight_read_s, compute)
        return (self.spec.overhead_s + max(self.weight_read_s, compute) + hidden
                + cached_tokens * self.kv_read_s + comm)

    def prefill_s(self, prompt_tokens: int) -> float:
        """Time to prefill one prompt alone on an idle replica, chunk by chunk."""
        budget, done, total = self.spec.max_batched_tokens, 0, 0.0
        while done < prompt_tokens:
            q = min(budget, prompt_tokens - done)
            total += self.iteration_s(q, done, q * (done + q / 2))
            done += q
        return total

    def decode_step_s(self, batch: int, context: int) -> float:
        """One decode step of ``batch`` sequences holding ``context`` tokens each."""
        return self.iteration_s(batch, batch * context)

    def describe(self) -> dict[str, Any]:
        """JSON-ready: the derived figures and every assumption they rest on."""
        s = self.spec
        return {
            "model": self.model, "device": self.device.name, "tp": s.tp, "dtype": s.dtype,
            "n_params": self.n_params, "weight_bytes": self.weight_bytes,
            "kv_bytes_per_token": self.kv_bytes_per_token,
            "kv_capacity_tokens": self.kv_capacity_tokens,
            "decode_step_s_batch1": self.decode_step_s(1, 1024),
            "prefill_s_1024": self.prefill_s(1024),
            "startup_s": self.startup_s, "power_w": self.power_w,
            "assumptions": {
                "flops_efficiency": s.flops_efficiency, "bw_efficiency": s.bw_efficiency,
                "overhead_s": s.overhead_s, "overlap": s.overlap,
                "allreduce_latency_s": s.allreduce_latency_s,
                "gpu_memory_utilization": s.gpu_memory_utilization,
                "max_num_seqs": s.max_num_seqs, "max_batched_tokens": s.max_batched_tokens,
                "container_start_s": s.container_start_s, "load_gb_s": s.load_gb_s,
                "kv_dtype": s.kv_dtype or _kv_dtype(s.dtype),
            },
        }


def _kv_dtype(dtype: str) -> str:
    return dtype if dtype in ("fp32", "bf16", "fp16") else "fp16"


def _free_bytes(arch: Architecture, device: Device, spec: ReplicaSpec, dtype: str) -> float:
    """Per-device bytes left for the KV cache."""
    usable = device.memory_bytes * spec.gpu_memory_utilization
    work = inference_workspace_bytes(arch, batch=1, context=spec.max_batched_tokens,
                                     dtype=dtype) / spec.tp
    return usable - weight_bytes(arch, dtype) / spec.tp - work


def _kv_per_token(arch: Architecture, kv_dtype: str) -> float:
    """Cached bytes per token across all layers (sliding windows not credited)."""
    return 2 * arch.n_layers * arch.n_kv_heads * arch.head_dim * dtype_bytes(kv_dtype)


def _what_fits(arch: Architecture, spec: ReplicaSpec, need: int) -> str:
    """A remedy: the smallest TP, a bigger device, or a smaller dtype that fits."""
    kv = _kv_per_token(arch, spec.kv_dtype or _kv_dtype(spec.dtype))
    device = get_device(spec.device)
    options: list[str] = []
    for tp in (2, 4, 8):
        if tp > spec.tp and _free_bytes(arch, device, replace(spec, tp=tp), spec.dtype) \
                >= need * kv / tp:
            options.append(f"--tp {tp}")
            break
    for name in DEVICES.names():
        other = DEVICES.get(name)
        if other.memory_bytes > device.memory_bytes and \
                _free_bytes(arch, other, spec, spec.dtype) >= need * kv / spec.tp:
            options.append(f"--device {name} ({other.memory_bytes / 2**30:.0f} GiB)")
            break
    for dtype in ("int8", "int4"):
        if DTYPE_BYTES[dtype] < dtype_bytes(spec.dtype) and \
                _free_bytes(arch, device, spec, dtype) >= need * kv / spec.tp:
            options.append(f"--dtype {dtype}")
            break
    return "try " + " or ".join(options) if options else "no single 8-way replica fits it"


def build_replica(arch: Architecture, spec: ReplicaSpec, *, model: str = "model") -> ReplicaModel:
    """The replica model of ``arch`` served as ``spec``; an ``InputError`` if it cannot fit.

    It fits when, after the weights and one prefill chunk's workspace, the KV cache holds
    at least one sequence of ``min(max positions, 4096)`` tokens.
    """
    if not arch.is_decoder:
        raise InputError(f"{model}: a {arch.model_type} encoder does not generate tokens")
    device = get_device(spec.device)
    if spec.tp < 1 or spec.tp & (spec.tp - 1) or spec.tp > 8:
        raise UsageError(f"--tp must be 1, 2, 4 or 8, got {spec.tp}")
    if arch.n_kv_heads % spec.tp and spec.tp % arch.n_kv_heads:
        raise InputError(f"{model}: {arch.n_kv_heads} KV heads do not split over TP {spec.tp}")
    for name in ("flops_efficiency", "bw_efficiency", "gpu_memory_utilization"):
        value = getattr(spec, name)
        if not 0 < value <= 1:
            raise InputError(f"{name} must be in (0, 1], got {value}")
    if not 0 <= spec.overlap <= 1:
        raise InputError(f"overlap must be in [0, 1], got {spec.overlap}")
    if spec.load_gb_s <= 0 or spec.container_start_s < 0 or spec.overhead_s < 0:
        raise InputError("load bandwidth must be > 0, container start and overhead >= 0")
    kv_dtype = spec.kv_dtype or _kv_dtype(spec.dtype)
    kv_token = _kv_per_token(arch, kv_dtype)
    free = _free_bytes(arch, device, spec, spec.dtype)
    longest = min(arch.max_positions or 4096, 4096)
    capacity = math.floor(free / (kv_token / spec.tp)) if free > 0 else 0
    if capacity < longest:
        weights = weight_bytes(arch, spec.dtype)
        raise InputError(
            f"{model} does not fit {device.name} at TP {spec.tp} in {spec.dtype}: "
            f"{weights / 2**30:.1f} GiB of weights leave room for {max(capacity, 0):,} "
            f"KV tokens, fewer than one {longest:,}-token sequence",
            hint=_what_fits(arch, spec, longest),
        )
    peak = device.peak(spec.dtype if spec.dtype in device.peak_flops else "fp16")
    flops = peak * spec.flops_efficiency * spec.tp
    bandwidth = device.bandwidth_bytes_per_s * spec.bw_efficiency
    weights = weight_bytes(arch, spec.dtype)
    act = 2  # bytes per activation element exchanged by the all-reduce
    link = LINK_GB_S.get(device.name, 32.0) * 1e9
    tp_share = 2 * (spec.tp - 1) / spec.tp  # ring all-reduce traffic per byte reduced
    allreduce_token = (2 * arch.n_layers * arch.hidden * act * tp_share / link
                       if spec.tp > 1 else 0.0)
    return ReplicaModel(
        model=model,
        spec=spec,
        device=device,
        n_params=arch.n_params,
        weight_bytes=weights,
        kv_bytes_per_token=kv_token,
        kv_capacity_tokens=capacity,
        weight_read_s=weights / spec.tp / bandwidth,
        per_token_s=2 * arch.matmul_params / flops,
        attention_s_per_token2=4 * arch.n_layers * arch.attention_width / flops,
        kv_read_s=kv_token / spec.tp / bandwidth,
        allreduce_s_per_token=allreduce_token,
        allreduce_fixed_s=2 * arch.n_layers * spec.allreduce_latency_s if spec.tp > 1 else 0.0,
        startup_s=spec.container_start_s + weights / (spec.load_gb_s * 1e9),
        power_w=DEVICE_POWER_W.get(device.name, 400.0) * spec.tp,
        max_context=arch.max_positions or 4096,
    )
