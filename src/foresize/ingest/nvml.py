"""NVIDIA GPUs through NVML (nvidia-ml-py), used only when the library and a driver exist.

Absent NVML is the normal case on CPU machines: ``GpuProbe.open`` then returns ``None``
with the reason, and sampling records host metrics only.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

NO_GPU = "no NVIDIA GPU found"


@dataclass(slots=True)
class GpuProbe:
    """Reads per-process GPU memory and the utilisation and power of the devices used."""

    nvml: Any
    handles: list[Any]

    @classmethod
    def open(cls) -> tuple[GpuProbe | None, str]:
        """The probe, or ``None`` and why not (module missing, no driver, no device)."""
        try:
            import pynvml
        except ImportError:
            return None, f"{NO_GPU} (nvidia-ml-py is not installed: pip install 'foresize[gpu]')"
        try:
            pynvml.nvmlInit()
            count = pynvml.nvmlDeviceGetCount()
        except pynvml.NVMLError as exc:
            return None, f"{NO_GPU} ({exc})"
        if count == 0:
            return None, NO_GPU
        handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
        names = ", ".join(str(pynvml.nvmlDeviceGetName(h)) for h in handles)
        return cls(pynvml, handles), f"{count} NVIDIA GPU(s): {names}"

    def sample(self, pids: Iterable[int]) -> dict[str, float]:
        """GPU memory used by ``pids``, and utilisation/power of the devices they use.

        Utilisation is the mean over those devices; power their sum. A process tree
        that uses no GPU yields ``gpu_mem_bytes = 0`` and no device metrics.
        """
        wanted = set(pids)
        used_bytes = 0.0
        devices = []
        for handle in self.handles:
            on_device = [
                p for p in self._processes(handle) if p.pid in wanted
            ]
            if on_device:
                devices.append(handle)
                used_bytes += sum(float(p.usedGpuMemory or 0) for p in on_device)
        values = {"gpu_mem_bytes": used_bytes}
        if devices:
            utils = [float(self.nvml.nvmlDeviceGetUtilizationRates(h).gpu) for h in devices]
            values["gpu_util_pct"] = sum(utils) / len(utils)
            values["power_w"] = sum(self.nvml.nvmlDeviceGetPowerUsage(h) / 1000 for h in devices)
        return values

    def _processes(self, handle: Any) -> list[Any]:
        found: list[Any] = []
        for query in (self.nvml.nvmlDeviceGetComputeRunningProcesses,
                      self.nvml.nvmlDeviceGetGraphicsRunningProcesses):
            try:
                found.extend(query(handle))
            except self.nvml.NVMLError:
                continue
        return found

    def close(self) -> None:
        """Release NVML."""
        self.nvml.nvmlShutdown()
