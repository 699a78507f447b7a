"""Placement: which GPU type holds a workload, and as whole GPUs or a fractional share.

The memory need comes from the static analysis (a ``size_architecture`` report, or a plain
byte count); the compute need from the workload's measured GPU utilisation (P95, as a
fraction of one device). Per device type in :data:`foresize.graph.devices.DEVICES`:

* too big for one device -> whole devices, split by tensor parallelism (the degree rounded
  up to a power of two, since attention heads and hidden sizes split evenly that way);
* fits on one device and MIG-capable (A100, H100, H200) -> the smallest MIG profile whose
  memory holds it and whose compute share (g/7 of the SMs) covers the P95 utilisation;
* fits, no MIG (L4, T4, V100) -> a milli-GPU share (time-slicing / GPU-sharing device
  plugins, as in Alibaba's ``gpu_milli``) sized by the larger of the memory and compute
  fractions; a share that reaches the whole device is a whole device.

MIG profiles are NVIDIA's, from the MIG User Guide, "Supported MIG Profiles"
(docs.nvidia.com/datacenter/tesla/mig-user-guide/supported-mig-profiles.html): a GPU has
7 compute slices and 8 memory slices; ``1g`` = 1/7 SMs + 1/8 memory (7 instances),
``1g`` with double memory = 1/7 + 2/8 (4), ``2g`` = 2/7 + 2/8 (3), ``3g`` = 3/7 + 4/8 (2),
``4g`` = 4/7 + 4/8 (1), ``7g`` = all (1). Names follow the memory (A100-40GB: 1g.5gb ...
7g.40gb; A100-80GB and H100: 1g.10gb ... 7g.80gb; H200: 1g.18gb ... 7g.141gb). A slice's
memory is taken as its fraction of the device's, then the same usable fraction as a whole
device (each instance has its own CUDA context).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from foresize.core.errors import InputError
from foresize.core.units import human_bytes
from foresize.graph.devices import DEVICES, USABLE_MEMORY_FRACTION, Device, get_device

Mode = Literal["whole", "mig", "milli"]
MILLI = 1000
# Tensor parallelism inside one node: NVLink domains of HGX boards hold 8 GPUs.
MAX_DEVICES = 8


@dataclass(frozen=True, slots=True)
class MigProfile:
    """One MIG GPU-instance profile: compute slices of 7, memory slices of 8."""

    name: str
    compute_slices: int
    memory_slices: int
    instances: int

    @property
    def compute_fraction(self) -> float:
        """Share of the device's SMs."""
        return self.compute_slices / 7

    @property
    def memory_fraction(self) -> float:
        """Share of the device's memory."""
        return self.memory_slices / 8

    @property
    def resource_name(self) -> str:
        """The extended resource the NVIDIA device plugin advertises (mixed strategy)."""
        return f"nvidia.com/mig-{self.name}"


def _profiles(gb: tuple[int, int, int, int, int, int]) -> tuple[MigProfile, ...]:
    """The six standard profiles of a 7-slice GPU, named by their memory in GB."""
    shape = ((1, 1, 7), (1, 2, 4), (2, 2, 3), (3, 4, 2), (4, 4, 1), (7, 8, 1))
    return tuple(
        MigProfile(f"{g}g.{mem}gb", g, m, n) for (g, m, n), mem in zip(shape, gb, strict=True)
    )


MIG_PROFILES: dict[str, tuple[MigProfile, ...]] = {
    "a100_40gb": _profiles((5, 10, 10, 20, 20, 40)),
    "a100_80gb": _profiles((10, 20, 20, 40, 40, 80)),
    "h100_sxm": _profiles((10, 20, 20, 40, 40, 80)),
    "h100_pcie": _profiles((10, 20, 20, 40, 40, 80)),
    "h200": _profiles((18, 35, 35, 71, 71, 141)),
}


@dataclass(frozen=True, slots=True)
class Placement:
    """How a workload sits on one device type.

    ``gpu_fraction`` is what it occupies in whole-GPU units (2.0 for two GPUs, 1/7 for a
    1g slice, 0.25 for 250 milli) -- the figure cost multiplies by the GPU-hour price.
    """

    device: str
    mode: Mode
    devices: int
    profile: str | None
    gpu_milli: int | None
    gpu_fraction: float
    memory_need_bytes: float
    memory_per_unit_bytes: float
    compute_need: float | None
    compute_share: float
    rationale: str

    @property
    def resources(self) -> dict[str, int]:
        """Kubernetes extended resources to request for this placement.

        Whole GPUs and MIG slices have standard NVIDIA device-plugin names; a milli share
        has none (vendors differ), so it is left to the caller.
        """
        if self.mode == "whole":
            return {"nvidia.com/gpu": self.devices}
        if self.mode == "mig" and self.profile is not None:
            return {f"nvidia.com/mig-{self.profile}": 1}
        return {}

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for JSON output."""
        return {
            "device": self.device,
            "mode": self.mode,
            "devices": self.devices,
            "profile": self.profile,
            "gpu_milli": self.gpu_milli,
            "gpu_fraction": self.gpu_fraction,
            "memory_need_bytes": self.memory_need_bytes,
            "memory_per_unit_bytes": self.memory_per_unit_bytes,
            "compute_need": self.compute_need,
            "compute_share": self.compute_share,
            "resources": self.resources,
            "rationale": self.rationale,
        }


def memory_need_from_sizing(report: Mapping[str, Any], *, train: bool | None = None) -> float:
    """GPU memory a ``size_architecture`` report says the workload needs, per replica.

    Training memory when the report has it (or ``train=True``), else inference memory.
    Size with ``tensor_parallel=1``: placement chooses the split itself, and a report made
    with a split holds per-device figures.
    """
    use_training = ("training" in report) if train is None else train
    section = "training" if use_training else "inference"
    if section not in report or "total_bytes" not in report[section]:
        raise InputError(
            f"sizing report has no {section}.total_bytes; re-run the sizing "
            f"{'with train=True' if use_training else ''}".rstrip()
        )
    return float(report[section]["total_bytes"])


def _usable(device: Device, usable_fraction: float) -> float:
    return device.memory_bytes * usable_fraction


def _pow2(n: int) -> int:
    return 1 << (n - 1).bit_length()


def _whole(device: Device, need: float, compute: float | None, usable_fraction: float) -> int:
    """Devices needed: memory split evenly, compute above one device spread too."""
    by_memory = math.ceil(need / _usable(device, usable_fraction))
    by_compute = math.ceil(compute - 1e-9) if compute is not None and compute > 1 else 1
    return _pow2(max(1, by_memory, by_compute))


def place_on(
    need_bytes: float,
    device: str | Device,
    *,
    util_p95: float | None = None,
    dtype: str | None = None,
    sharing: bool = True,
    milli_step: int = 50,
    usable_fraction: float = USABLE_MEMORY_FRACTION,
    max_devices: int = MAX_DEVICES,
) -> Placement | None:
    """The placement of a workload on ``device``; None when even ``max_devices`` are too few
    or the device has no math in ``dtype`` (e.g. bf16 on a T4 or V100).

    ``util_p95`` is the P95 GPU utilisation as a fraction of one such device; when it is
    unknown (None) the workload gets whole devices, since a share could throttle it.
    ``milli_step`` rounds milli shares up.
    """
    spec = get_device(device)
    if util_p95 is not None and not (math.isfinite(util_p95) and util_p95 >= 0):
        raise InputError(f"util_p95 must be a fraction >= 0 of one GPU, got {util_p95}")
    if dtype is not None and dtype not in spec.peak_flops:
        return None
    usable = _usable(spec, usable_fraction)
    count = _whole(spec, need_bytes, util_p95, usable_fraction)
    if count > max_devices:
        return None
    compute = util_p95
    if count == 1 and sharing:
        share = _mig(spec, need_bytes, compute, usable_fraction) or _milli(
            spec, need_bytes, compute, usable_fraction, milli_step
        )
        if share is not None:
            return share
    reason = (
        f"{human_bytes(need_bytes)} needs {count} x {spec.name} "
        f"({human_bytes(usable)} usable each)"
        + (", tensor-parallel split (power of two)" if count > 1 else "")
    )
    return Placement(
        device=spec.name,
        mode="whole",
        devices=count,
        profile=None,
        gpu_milli=None,
        gpu_fraction=float(count),
        memory_need_bytes=need_bytes,
        memory_per_unit_bytes=usable,
        compute_need=compute,
        compute_share=float(count),
        rationale=reason,
    )


def _mig(
    spec: Device, need: float, compute: float | None, usable_fraction: float
) -> Placement | None:
    """The smallest MIG profile (by compute, then memory) holding ``need`` and ``compute``."""
    for profile in sorted(
        MIG_PROFILES.get(spec.name, ()), key=lambda p: (p.compute_slices, p.memory_slices)
    ):
        if profile.compute_slices == 7:
            return None  # the full-GPU profile is a whole device
        memory = spec.memory_bytes * profile.memory_fraction * usable_fraction
        covers = compute is not None and compute <= profile.compute_fraction + 1e-9
        if need <= memory and covers:
            return Placement(
                device=spec.name,
                mode="mig",
                devices=1,
                profile=profile.name,
                gpu_milli=None,
                gpu_fraction=profile.compute_slices / 7,
                memory_need_bytes=need,
                memory_per_unit_bytes=memory,
                compute_need=compute,
                compute_share=profile.compute_fraction,
                rationale=(
                    f"MIG {profile.name} on {spec.name}: {human_bytes(memory)} usable >= "
                    f"{human_bytes(need)}, {profile.compute_slices}/7 SMs >= P95 "
                    f"{compute:.0%}"
                ),
            )
    return None


def _milli(
    spec: Device, need: float, compute: float | None, usable_fraction: float, step: int
) -> Placement | None:
    """A milli-GPU share on a device without MIG; None when it would be the whole device."""
    if spec.name in MIG_PROFILES or compute is None:
        return None
    memory_share = need / (spec.memory_bytes * usable_fraction)
    share = max(memory_share, compute)
    milli = min(MILLI, math.ceil(share * MILLI / step - 1e-9) * step)
    if milli >= MILLI:
        return None
    return Placement(
        device=spec.name,
        mode="milli",
        devices=1,
        profile=None,
        gpu_milli=milli,
        gpu_fraction=milli / MILLI,
        memory_need_bytes=need,
        memory_per_unit_bytes=spec.memory_bytes * usable_fraction * milli / MILLI,
        compute_need=compute,
        compute_share=milli / MILLI,
        rationale=(
            f"{milli} milli-GPU of {spec.name}: memory {memory_share:.0%} and P95 "
            f"compute {compute:.0%} of the device, rounded up to {step} milli"
        ),
    )


@dataclass(frozen=True, slots=True)
class PlacementPlan:
    """Every device type that can hold the workload, and the one chosen."""

    need_bytes: float
    util_p95: float | None
    dtype: str | None
    options: tuple[Placement, ...]
    best: Placement

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for JSON output."""
        return {
            "need_bytes": self.need_bytes,
            "util_p95": self.util_p95,
            "dtype": self.dtype,
            "best": self.best.to_dict(),
            "options": [o.to_dict() for o in self.options],
        }


def _memory_reserved(p: Placement) -> float:
    return p.memory_per_unit_bytes * (p.devices if p.mode == "whole" else 1)


def place(
    need: float | Mapping[str, Any],
    *,
    util_p95: float | None = None,
    dtype: str | None = None,
    devices: Iterable[str] | None = None,
    sharing: bool = True,
    hourly_price: Mapping[str, float] | None = None,
    usable_fraction: float = USABLE_MEMORY_FRACTION,
    max_devices: int = MAX_DEVICES,
) -> PlacementPlan:
    """Place a workload on every candidate GPU type and choose one.

    ``need`` is the GPU memory in bytes or a ``size_architecture`` report (which also gives
    the ``dtype``: devices without math in it are left out). Candidates are ``devices``
    (default: every GPU in the catalogue). The choice is the cheapest when ``hourly_price``
    (GPU type -> price per GPU-hour) is given -- price only, not speed -- otherwise the one
    reserving the least GPU memory (ties: fewer devices). A workload no candidate can hold
    with ``max_devices`` devices is an :class:`InputError` naming the largest device.
    """
    if isinstance(need, Mapping):
        need_bytes = memory_need_from_sizing(need)
        dtype = dtype or need.get("inference", {}).get("dtype")
    else:
        need_bytes = float(need)
    if not (math.isfinite(need_bytes) and need_bytes > 0):
        raise InputError(f"GPU memory need must be a positive number of bytes, got {need_bytes}")
    names = [n for n in DEVICES if n != "cpu"] if devices is None else list(devices)
    if not names:
        raise InputError("no candidate devices to place on")
    options = [
        p
        for name in names
        if (
            p := place_on(
                need_bytes,
                name,
                util_p95=util_p95,
                dtype=dtype,
                sharing=sharing,
                usable_fraction=usable_fraction,
                max_devices=max_devices,
            )
        )
        is not None
    ]
    if not options:
        largest = max((get_device(n) for n in names), key=lambda d: d.memory_bytes)
        in_dtype = f" in {dtype}" if dtype else ""
        raise InputError(
            f"the workload needs {human_bytes(need_bytes)} of GPU memory{in_dtype}; "
            "no candidate holds "
            f"it on {max_devices} devices: the largest, {largest.name}, has "
            f"{human_bytes(_usable(largest, usable_fraction))} usable per device "
            f"({human_bytes(_usable(largest, usable_fraction) * max_devices)} on {max_devices})"
        )
    if hourly_price is not None:
        missing = sorted({o.device for o in options} - set(hourly_price))
        if missing:
            raise InputError(f"no hourly price for GPU type(s) {', '.join(missing)}")
        best = min(options, key=lambda o: (o.gpu_fraction * hourly_price[o.device], o.devices))
    else:
        best = min(options, key=lambda o: (_memory_reserved(o), o.devices))
    return PlacementPlan(
        need_bytes=need_bytes, util_p95=util_p95, dtype=dtype, options=tuple(options), best=best
    )
