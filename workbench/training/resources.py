"""Memory and utilisation readings for the trainer's events: process RSS on the CPU, torch's
allocator and NVML on GPUs."""

from __future__ import annotations

import os
import resource
from typing import Any, Optional


class ResourceProbe:
    """Reads memory per device. NVML is opened once and kept; without it GPUs report torch figures only.

    Args:
        on_gpu: the trainer runs on CUDA (this process's device is `torch.cuda.current_device()`).
    """

    def __init__(self, on_gpu: bool) -> None:
        self.on_gpu = on_gpu
        self._nvml_handles: list[Any] = []
        if on_gpu:
            self._open_nvml()

    def _open_nvml(self) -> None:
        try:
            import pynvml

            pynvml.nvmlInit()
            visible = os.environ.get("CUDA_VISIBLE_DEVICES")
            count = pynvml.nvmlDeviceGetCount()
            physical = range(count)
            if visible:
                physical = [int(part) for part in visible.split(",") if part.strip().isdigit() and int(part) < count]
            self._nvml_handles = [pynvml.nvmlDeviceGetHandleByIndex(index) for index in physical]
        except Exception:  # no NVML: GPU figures come from torch alone
            self._nvml_handles = []

    def snapshot(self) -> dict[str, Any]:
        """{cpu_rss_bytes, gpus: [{index, allocated_bytes, reserved_bytes, utilization}]} (the events contract)."""
        import psutil

        reading: dict[str, Any] = {"cpu_rss_bytes": psutil.Process().memory_info().rss, "gpus": []}
        if not self.on_gpu:
            return reading
        import torch

        own = torch.cuda.current_device()
        count = max(len(self._nvml_handles), own + 1)
        for index in range(count):
            gpu: dict[str, Optional[float]] = {"index": index, "allocated_bytes": None, "reserved_bytes": None, "utilization": None}
            used = self._nvml_used(index)
            if index == own:
                gpu["allocated_bytes"] = torch.cuda.memory_allocated(index)
                gpu["reserved_bytes"] = torch.cuda.memory_reserved(index)
            else:  # another rank's GPU: only the driver's view is available from here
                gpu["allocated_bytes"] = gpu["reserved_bytes"] = used
            gpu["utilization"] = self._nvml_utilization(index)
            reading["gpus"].append(gpu)
        return reading

    def _nvml_used(self, index: int) -> Optional[int]:
        if index >= len(self._nvml_handles):
            return None
        try:
            import pynvml

            return int(pynvml.nvmlDeviceGetMemoryInfo(self._nvml_handles[index]).used)
        except Exception:
            return None

    def _nvml_utilization(self, index: int) -> Optional[float]:
        if index >= len(self._nvml_handles):
            return None
        try:
            import pynvml

            return float(pynvml.nvmlDeviceGetUtilizationRates(self._nvml_handles[index]).gpu)
        except Exception:
            return None

    def peak_bytes(self) -> int:
        """Peak memory of this process: the CUDA caching allocator's peak on a GPU, peak RSS on the CPU."""
        if self.on_gpu:
            import torch

            return int(torch.cuda.max_memory_reserved())
        # ru_maxrss is in KiB on Linux
        return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024
