"""What hardware this machine has, detected once, and which precision suits it.

Detection uses NVML (nvidia-ml-py) and /proc, not torch, so the header can show devices
without paying torch's import time.
"""

from __future__ import annotations

import functools
import os
import platform
from dataclasses import dataclass, field
from typing import Literal

Precision = Literal["fp32", "bf16", "fp16"]
PRECISION_CHOICES = ("auto", "fp32", "bf16", "fp16")

# CPU flags that mean bf16 matmul runs natively. Without them PyTorch emulates bf16, reported at
# 0.3 GFLOP/s against 142 GFLOP/s for fp32 on one host of this kind; with avx512_bf16 (another host,
# measured 2026-11-21) bf16 ran at 413 GFLOP/s against 129 for fp32.
NATIVE_BF16_CPU_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


@dataclass(frozen=True)
class GpuInfo:
    index: int
    name: str
    total_bytes: int
    free_bytes: int
    compute_capability: tuple[int, int]

    @property
    def supports_bf16(self) -> bool:
        # bf16 tensor cores arrive with Ampere (compute capability 8.0).
        return self.compute_capability >= (8, 0)


@dataclass(frozen=True)
class CpuInfo:
    name: str
    cores: int
    total_ram_bytes: int
    available_ram_bytes: int
    flags: frozenset[str] = field(default_factory=frozenset)

    @property
    def supports_native_bf16(self) -> bool:
        return bool(self.flags & NATIVE_BF16_CPU_FLAGS)


@dataclass(frozen=True)
class DeviceReport:
    cpu: CpuInfo
    gpus: tuple[GpuInfo, ...] = ()

    @property
    def has_cuda(self) -> bool:
        return bool(self.gpus)

    def summary(self) -> str:
        """A short line for the header, e.g. 'CPU 2 cores, 24 GiB' or '2× NVIDIA H100 (80 GiB)'."""
        if not self.gpus:
            return f"CPU · {self.cpu.cores} cores · {self.cpu.total_ram_bytes / 2**30:.0f} GiB RAM"
        names = {g.name for g in self.gpus}
        if len(names) == 1:
            gpu = self.gpus[0]
            count = f"{len(self.gpus)}× " if len(self.gpus) > 1 else ""
            return f"{count}{gpu.name} · {gpu.free_bytes / 2**30:.0f}/{gpu.total_bytes / 2**30:.0f} GiB free"
        return ", ".join(f"GPU{g.index} {g.name}" for g in self.gpus)


def _read_cpu_info() -> CpuInfo:
    import psutil

    name, flags = platform.processor() or platform.machine(), frozenset()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name":
                    name = value.strip()
                elif key == "flags" and not flags:
                    flags = frozenset(value.split())
    except OSError:
        pass
    memory = psutil.virtual_memory()
    return CpuInfo(
        name=name,
        cores=os.cpu_count() or 1,
        total_ram_bytes=memory.total,
        available_ram_bytes=memory.available,
        flags=flags,
    )


def _read_gpus() -> tuple[GpuInfo, ...]:
    try:
        import pynvml
    except ImportError:
        return ()
    try:
        pynvml.nvmlInit()
    except Exception:  # NVML missing means no usable NVIDIA GPU; not an error for the user.
        return ()
    try:
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        count = pynvml.nvmlDeviceGetCount()
        indices = range(count)
        if visible is not None:
            indices = [int(i) for i in visible.split(",") if i.strip().isdigit() and int(i) < count]
        gpus = []
        for position, index in enumerate(indices):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
            name = pynvml.nvmlDeviceGetName(handle)
            if isinstance(name, bytes):
                name = name.decode()
            major, minor = pynvml.nvmlDeviceGetCudaComputeCapability(handle)
            gpus.append(GpuInfo(position, name, int(memory.total), int(memory.free), (major, minor)))
        return tuple(gpus)
    finally:
        pynvml.nvmlShutdown()


@functools.lru_cache(maxsize=1)
def detect_devices() -> DeviceReport:
    """Detect the CPU and the visible CUDA GPUs once per process."""
    return DeviceReport(cpu=_read_cpu_info(), gpus=_read_gpus())


def choose_precision(requested: str, report: DeviceReport, use_gpu: bool | None = None) -> Precision:
    """Resolve a requested precision ("auto", "fp32", "bf16", "fp16") for this hardware.

    "auto" picks bf16 only where it runs natively (CUDA with bf16 support, or a CPU with
    avx512_bf16/amx), fp16 on older GPUs, and fp32 on other CPUs.
    """
    if requested != "auto":
        if requested not in PRECISION_CHOICES:
            raise ValueError(f"unknown precision {requested!r}; choose one of {', '.join(PRECISION_CHOICES)}")
        return requested  # type: ignore[return-value]
    on_gpu = report.has_cuda if use_gpu is None else (use_gpu and report.has_cuda)
    if on_gpu:
        return "bf16" if all(g.supports_bf16 for g in report.gpus) else "fp16"
    return "bf16" if report.cpu.supports_native_bf16 else "fp32"


def inference_placement() -> tuple[Precision, str]:
    """(dtype, device) for chatting with a model: a CUDA GPU when torch can use one, and the
    precision "auto" picks there. On a CPU with native bf16, bf16 decodes about 1.5x faster than
    fp32 and a batch of two rows costs little more than one (docs/benchmarks.md, Chat)."""
    import torch

    use_gpu = torch.cuda.is_available()
    return choose_precision("auto", detect_devices(), use_gpu=use_gpu), "cuda" if use_gpu else "cpu"


def visible_gpu_environment(gpus: "str | list[int]", use_cpu: bool) -> str | None:
    """The CUDA_VISIBLE_DEVICES value for the config's GPU choice (None: leave it as it is).

    Indices in the config count the GPUs this process can see (as `detect_devices` numbers them), so
    an existing CUDA_VISIBLE_DEVICES is narrowed rather than replaced.
    """
    if use_cpu:
        return ""
    if gpus == "all":
        return None
    current = os.environ.get("CUDA_VISIBLE_DEVICES")
    if current is None:
        return ",".join(str(index) for index in gpus)
    visible = [part.strip() for part in current.split(",") if part.strip()]
    return ",".join(visible[index] for index in gpus if index < len(visible))
