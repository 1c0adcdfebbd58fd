"""How a run stores and computes numbers: the one resolution of the config's `model.precision`.

The trainer, the Hugging Face argument builder (`workbench.config.hf_arguments`), `workbench
estimate` and the Memory pane all resolve "auto" here, so the estimate sizes the precision the run
trains in. Cheap to import: nothing heavy is loaded until `torch_dtype` is called.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from workbench.devices import choose_precision

if TYPE_CHECKING:
    from workbench.devices import DeviceReport

DTYPE_NAMES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}
"""The workbench's short dtype names -> torch's (what `from_pretrained(dtype=...)` is given)."""

ADAPTER_METHODS = ("lora", "qlora")
"""Methods whose base weights are frozen, so mixed precision needs no fp32 master copy of them."""


@dataclass(frozen=True)
class TrainingPrecision:
    """How numbers are stored and computed during training.

    Attributes:
        weights: dtype the (frozen, for LoRA) weights are loaded in: "fp32", "bf16" or "fp16".
        autocast: "bf16"/"fp16" when matmuls run in half precision over fp32 master weights, else None.
        label: what the user reads and the memory estimator takes, e.g. "mixed-bf16" or "fp32".
    """

    weights: str
    autocast: str | None
    label: str

    @property
    def compute(self) -> str:
        """The dtype matmuls run in: the autocast type, else the weights' own."""
        return self.autocast or self.weights


def resolve_training_precision(requested: str, devices: "DeviceReport", on_gpu: bool, method: str) -> TrainingPrecision:
    """Resolve the config's precision for this hardware.

    "auto" follows `devices.choose_precision`: fp32 on a CPU without native bf16, mixed bf16 where
    bf16 is native (a GPU of compute capability 8.0+, or a CPU with AVX512-BF16/AMX), mixed fp16 on
    older GPUs. With LoRA under mixed precision the frozen base weights are stored in the half type
    (they get no updates, so no fp32 master copy is needed) while the adapters stay fp32.

    Args:
        requested: `model.precision` ("auto", "fp32", "mixed-bf16", "mixed-fp16", "bf16", "fp16").
        devices: the hardware.
        on_gpu: the run trains on a CUDA GPU (not on the CPU); on a machine without one, a what-if GPU.
        method: `method.type` ("lora", "qlora" or "full").
    """
    if requested == "auto":
        if on_gpu and not devices.has_cuda:
            chosen = "bf16"  # a what-if GPU (Memory pane, `estimate --gpu-memory`): a current, bf16-capable one
        else:
            chosen = choose_precision("auto", devices, use_gpu=on_gpu)
        requested = "fp32" if chosen == "fp32" else f"mixed-{chosen}"
    if requested.startswith("mixed-"):
        half = requested.removeprefix("mixed-")
        return TrainingPrecision(half if method in ADAPTER_METHODS else "fp32", half, requested)
    return TrainingPrecision(requested, None, requested)


def torch_dtype(name: str):
    """torch's dtype for a short name ("fp32", "bf16", "fp16")."""
    import torch

    return getattr(torch, DTYPE_NAMES[name])
