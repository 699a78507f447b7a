"""Accelerator catalogue and a roofline model: how long a workload takes, how many devices.

Peak rates are NVIDIA datasheet figures for *dense* math: where a datasheet prints only
the 2:4-sparsity number (marked "*" there, e.g. H100, L4), the dense rate is half of it.
Memory capacities are the datasheet "GB", which for HBM and GDDR parts is binary (an
"80GB" A100 reports 81920 MiB); the driver, ECC and the CUDA context take some of it,
hence :data:`USABLE_MEMORY_FRACTION`. Bandwidths are decimal (1 GB/s = 1e9 bytes/s), as
the datasheets print them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from foresize.core.errors import InputError
from foresize.core.registry import Registry

GiB = 2**30
TERA = 1e12
GB_S = 1e9

# Of a device's memory, the part a framework can count on: the CUDA context (~0.3-0.5 GiB),
# ECC/driver reservations and the caching allocator's fragmentation take the rest. 0.9 is
# a planning figure (vLLM's default gpu_memory_utilization is 0.9 for the same reason).
USABLE_MEMORY_FRACTION = 0.9


@dataclass(frozen=True, slots=True)
class Device:
    """One accelerator: memory, bandwidth and dense peak FLOP/s by compute dtype."""

    name: str
    memory_bytes: int
    bandwidth_bytes_per_s: float
    peak_flops: Mapping[str, float]
    source: str
    link_bytes_per_s: float | None = None  # device-to-device, both directions together

    def peak(self, dtype: str) -> float:
        """Dense peak FLOP/s (ops/s for int8) in ``dtype``; a missing dtype is an error."""
        if dtype not in self.peak_flops:
            raise InputError(
                f"{self.name} has no {dtype} peak in the catalogue; "
                f"known: {', '.join(self.peak_flops)}"
            )
        return self.peak_flops[dtype]


DEVICES: Registry[Device] = Registry("device")


def _add(
    name: str,
    memory_gib: int,
    bandwidth_gb_s: float,
    peak_tflops: dict[str, float],
    source: str,
    link_gb_s: float | None = None,
) -> None:
    """Register a device from datasheet units (GiB, GB/s, TFLOP/s).

    ``link_gb_s`` is the datasheet's GPU-to-GPU bandwidth (NVLink, else the PCIe slot),
    both directions together, as datasheets print it.
    """
    peaks = {dtype: tflops * TERA for dtype, tflops in peak_tflops.items()}
    link = None if link_gb_s is None else link_gb_s * GB_S
    DEVICES.add(name, Device(name, memory_gib * GiB, bandwidth_gb_s * GB_S, peaks, source, link))


# NVIDIA A100 Tensor Core GPU datasheet (2021, 1758950-r4), SXM column; dense figures
# (the datasheet prints sparse ones separately). Link bandwidths below are each
# datasheet's NVLink figure for SXM parts (A100 600 GB/s, H100/H200 900, V100 300) and
# the PCIe slot's for cards (H100 PCIe Gen5 128, L4 Gen4 64, T4 Gen3 32).
_A100 = "NVIDIA A100 datasheet (nvidia-a100-datasheet-us-nvidia-1758950-r4-web.pdf)"
_add(
    "a100_40gb",
    40,
    1555,
    {"fp32": 19.5, "tf32": 156, "bf16": 312, "fp16": 312, "int8": 624},
    _A100,
    600,
)
_add(
    "a100_80gb",
    80,
    2039,
    {"fp32": 19.5, "tf32": 156, "bf16": 312, "fp16": 312, "int8": 624},
    _A100,
    600,
)
# NVIDIA H100 Tensor Core GPU datasheet (2023); tensor figures there are with sparsity:
# SXM TF32 989, BF16/FP16 1979, INT8 3958; PCIe TF32 756, BF16/FP16 1513, INT8 3026.
_H100 = "NVIDIA H100 Tensor Core GPU datasheet (2023), dense = sparse / 2"
_add(
    "h100_sxm",
    80,
    3350,
    {"fp32": 67, "tf32": 494.5, "bf16": 989.5, "fp16": 989.5, "int8": 1979},
    _H100,
    900,
)
_add(
    "h100_pcie",
    80,
    2000,
    {"fp32": 51, "tf32": 378, "bf16": 756.5, "fp16": 756.5, "int8": 1513},
    _H100,
    128,  # PCIe Gen5 x16 (an NVLink bridge pairs two cards at 600)
)
# NVIDIA H200 Tensor Core GPU datasheet (2024), SXM: 141 GB HBM3e at 4.8 TB/s, the H100
# SXM's compute (sparse TF32 989, BF16/FP16 1979, INT8 3958).
_add(
    "h200",
    141,
    4800,
    {"fp32": 67, "tf32": 494.5, "bf16": 989.5, "fp16": 989.5, "int8": 1979},
    "NVIDIA H200 datasheet (2024), dense = sparse / 2",
    900,
)
# NVIDIA L4 Tensor Core GPU datasheet (2023): 24 GB GDDR6, 300 GB/s; sparse TF32 120,
# BF16/FP16 242, INT8 485.
_add(
    "l4",
    24,
    300,
    {"fp32": 30.3, "tf32": 60, "bf16": 121, "fp16": 121, "int8": 242.5},
    "NVIDIA L4 datasheet (2023), dense = sparse / 2",
    64,  # PCIe Gen4 x16
)
# NVIDIA T4 Tensor Core GPU datasheet (Turing, no sparsity, no TF32/BF16): 16 GB GDDR6,
# 320 GB/s, FP32 8.1, mixed FP16/FP32 65, INT8 130.
_add("t4", 16, 320, {"fp32": 8.1, "fp16": 65, "int8": 130}, "NVIDIA T4 datasheet (2019)", 32)
# NVIDIA V100 Tensor Core GPU datasheet (Volta, SXM2): 900 GB/s, FP32 15.7, tensor
# (FP16) 125; no TF32, BF16 or INT8 tensor cores.
_V100 = "NVIDIA V100 datasheet (volta-v100-datasheet-update-us-1165301-r5), SXM2"
_add("v100_16gb", 16, 900, {"fp32": 15.7, "fp16": 125}, _V100, 300)
_add("v100_32gb", 32, 900, {"fp32": 15.7, "fp16": 125}, _V100, 300)
# A generic server CPU socket, not a product: 32 cores x 2 AVX-512 FMA units x 16 fp32
# lanes x 2 FLOPs x 2.0 GHz = 4.1 TFLOP/s; 8 channels of DDR4-3200 = 8 x 25.6 GB/s; 256 GiB.
_add("cpu", 256, 204.8, {"fp32": 4.096}, "illustrative AVX-512 socket (see comment)")


# What people type for a product family: the form most deployed (SXM, the larger memory).
FAMILY_ALIASES: Mapping[str, str] = {
    "h100": "h100_sxm",
    "a100": "a100_80gb",
    "v100": "v100_32gb",
    "a100_40g": "a100_40gb",
    "a100_80g": "a100_80gb",
    "v100_16g": "v100_16gb",
    "v100_32g": "v100_32gb",
}


def device_name(name: str) -> str:
    """The catalogue name for what a user typed: ``H100``, ``h100-sxm``, ``A100-80GB``.

    Case and ``-``/``_`` do not matter; a family name alone means its most deployed form
    (:data:`FAMILY_ALIASES`). Anything else is returned as typed, for the registry's
    unknown-name error and suggestion.
    """
    key = name.strip().lower().replace("-", "_").replace(" ", "_")
    key = FAMILY_ALIASES.get(key, key)
    return key if key in DEVICES else name


def get_device(device: str | Device) -> Device:
    """A Device as given, or looked up by name (a typo gets a suggestion)."""
    return device if isinstance(device, Device) else DEVICES.get(device_name(device))


def roofline_time(
    flops: float, bytes_moved: float, device: str | Device, dtype: str
) -> tuple[float, Literal["compute", "memory"]]:
    """Lower-bound time of a kernel and what bounds it (Williams et al. 2009, "Roofline").

    A kernel cannot finish before its math at peak rate nor before its traffic at full
    bandwidth, so the time is the larger of the two. It is memory-bound when its arithmetic
    intensity (FLOPs per byte) is below the device's ridge point ``peak / bandwidth``;
    exactly at the ridge it is called compute-bound.
    """
    if flops < 0 or bytes_moved < 0:
        raise InputError(f"flops and bytes_moved must be >= 0, got {flops} and {bytes_moved}")
    spec = get_device(device)
    compute_s = flops / spec.peak(dtype)
    memory_s = bytes_moved / spec.bandwidth_bytes_per_s
    if compute_s >= memory_s:
        return compute_s, "compute"
    return memory_s, "memory"


def fits(
    total_bytes: float, device: str | Device, *, usable_fraction: float = USABLE_MEMORY_FRACTION
) -> int:
    """Devices needed to hold ``total_bytes``, at least one.

    Assumes the footprint can be split evenly (tensor parallelism, ZeRO-3), so it is a
    lower bound when some parts are replicated.
    """
    if total_bytes < 0:
        raise InputError(f"total_bytes must be >= 0, got {total_bytes}")
    if not 0 < usable_fraction <= 1:
        raise InputError(f"usable_fraction must be in (0, 1], got {usable_fraction}")
    usable = get_device(device).memory_bytes * usable_fraction
    return max(1, math.ceil(total_bytes / usable))


# NCCL's own cost model of a ring all-reduce, Simple protocol, NVLink (src/graph/tuning.cc:
# a base latency and one hardware latency per ring step); PCIe hops are slower, so these
# keep the time a lower bound on any link
ALLREDUCE_BASE_S = 8.4e-6
ALLREDUCE_STEP_S = 3.4e-6


def allreduce_time(n_bytes: float, degree: int, device: str | Device) -> float:
    """Lower-bound time of a ring all-reduce of ``n_bytes`` over ``degree`` devices.

    Each device sends and receives ``2 (degree - 1) / degree x n_bytes`` (Patarasuk and
    Yuan 2009), at half its two-way link bandwidth each way, in ``2 (degree - 1)`` steps
    that each pay a hop's latency, after a base latency (``ALLREDUCE_*_S``): a decode
    step's all-reduce of a few KiB is all latency. A device without a link in the
    catalogue (``cpu``) cannot be split: an error.
    """
    if degree == 1:
        return 0.0
    latency = ALLREDUCE_BASE_S + 2 * (degree - 1) * ALLREDUCE_STEP_S
    return latency + 2 * (degree - 1) / degree * n_bytes / (_link(device) / 2)


def send_time(n_bytes: float, device: str | Device) -> float:
    """Lower-bound time to pass ``n_bytes`` to the next device (a pipeline stage boundary):
    one hop's latency and one direction of the link.
    """
    return ALLREDUCE_STEP_S + n_bytes / (_link(device) / 2)


def _link(device: str | Device) -> float:
    """The two-way device-to-device bandwidth, or an error for a device without a link."""
    spec = get_device(device)
    if spec.link_bytes_per_s is None:
        raise InputError(f"{spec.name} has no device-to-device link in the catalogue")
    return spec.link_bytes_per_s
