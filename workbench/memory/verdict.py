"""Will it fit? The estimate against a memory budget less a named headroom, and what would make it fit."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import workbench.devices
from workbench.memory.advice import Advice, Machine, Suggestion, advise
from workbench.memory.estimator import MemoryEstimate
from workbench.memory.inputs import MemoryInputs
from workbench.memory.spec import ModelSpec
from workbench.units import GIB, format_bytes

if TYPE_CHECKING:
    from workbench.devices import DeviceReport

HEADROOM = {"cuda": 0.10, "cpu": 0.15}
"""Share of the budget a run should leave free, per device kind; the fit line is the rest.

GPU: PyTorch's caching allocator reserves more than live tensors hold (fragmentation between
differently sized blocks, typically a few percent to ~10%), and this estimate's GPU figures are
not yet checked against measured peaks. CPU: under the trainer's allocator measured peak RSS ran
from 11% below to 13% above the estimate over the whole grid and the quick-demo run (the most
above: full fine-tuning at batch 1; bench/memory_accuracy.py, docs/benchmarks.md, fifth session
of 2026-12-01), and free RAM moves as other programs run."""
HEADROOM_REASON = {
    "cuda": "PyTorch's caching allocator reserves more than tensors hold (fragmentation)",
    "cpu": "measured RSS runs up to 13% above the estimate and free RAM moves with other programs",
}


@dataclass(frozen=True)
class Budget:
    """Memory available per device, and where the number comes from."""

    bytes: int | None
    label: str


@dataclass(frozen=True)
class FitVerdict:
    """The estimate against a budget.

    Attributes:
        status: "fits" (under the fit line), "tight" (over the fit line, under the budget),
            "does not fit" (over the budget) or "unknown" (no budget).
        headline: one sentence with the need, the budget and the share.
        budget: what was checked against.
        headroom: the share of the budget left free (HEADROOM, or what the caller chose).
        fit_line_bytes: budget less headroom (None without a budget).
        suggestions: the cheapest combinations of changes that fit, or room to grow.
        advice_note: a sentence about the suggestions ("only shorter sequences fit", ...), or "".
        device: "cuda" or "cpu", whose headroom applies.
    """

    status: str
    headline: str
    budget: Budget
    headroom: float = 0.0
    fit_line_bytes: int | None = None
    suggestions: tuple[Suggestion, ...] = ()
    advice_note: str = ""
    device: str = "cuda"

    @property
    def fit_line_text(self) -> str:
        """'fit line 21.6 GiB = 90% of 24.0 GiB (10% headroom: ...)' — the threshold, shown and explained."""
        if self.fit_line_bytes is None or not self.budget.bytes:
            return ""
        reason = HEADROOM_REASON.get(self.device, "")
        return (f"fit line {format_bytes(self.fit_line_bytes)} = {1 - self.headroom:.0%} of "
                f"{format_bytes(self.budget.bytes)} ({self.headroom:.0%} headroom"
                + (f": {reason})" if reason else ")"))


def memory_budget(inputs: MemoryInputs, devices: "DeviceReport | None" = None, gpu_memory_gib: float | None = None,
                  ram_gib: float | None = None) -> Budget:
    """Per-device memory to check against: a card or an amount of RAM the user names, the free
    memory of the detected GPUs, or available RAM when training on the CPU.

    On the CPU the estimate covers the whole training process (Python and its libraries included),
    so it is checked against all of the available RAM.
    """
    if gpu_memory_gib is not None:
        return Budget(int(gpu_memory_gib * GIB), f"a {gpu_memory_gib:g} GiB GPU")
    if ram_gib is not None and inputs.device == "cpu":
        return Budget(int(ram_gib * GIB), f"{ram_gib:g} GiB of RAM")
    if devices is None:
        devices = workbench.devices.detect_devices()
    if inputs.device == "cpu":
        available = devices.cpu.available_ram_bytes
        return Budget(available, f"{format_bytes(available)} of free RAM")
    if not devices.gpus:
        return Budget(None, "no GPU detected here (give a card's memory to check against one)")
    used = devices.gpus[: inputs.gpus]
    tightest = min(used, key=lambda gpu: gpu.free_bytes)
    count = f"{len(used)}x " if len(used) > 1 else ""
    return Budget(tightest.free_bytes, f"{count}{tightest.name}: {format_bytes(tightest.free_bytes)} free")


def machine_for(inputs: MemoryInputs, devices: "DeviceReport | None", whatif_gpu: bool = False) -> Machine:
    """What the advice may use on this machine (or on a what-if GPU: one current, bf16-capable card
    with bitsandbytes installed, as the README's GPU setup gives)."""
    import importlib.util

    if inputs.device == "cuda" and (whatif_gpu or devices is None or not devices.gpus):
        return Machine(gpus=max(1, inputs.gpus), bitsandbytes=True, native_bf16=True)
    if devices is None:
        devices = workbench.devices.detect_devices()
    if inputs.device == "cpu":
        return Machine(gpus=1, bitsandbytes=False, native_bf16=devices.cpu.supports_native_bf16)
    return Machine(
        gpus=len(devices.gpus),
        bitsandbytes=importlib.util.find_spec("bitsandbytes") is not None,
        native_bf16=all(gpu.supports_bf16 for gpu in devices.gpus[: max(1, inputs.gpus)]),
    )


def _status(total: int, budget: int | None, fit_line: int | None) -> str:
    if budget is None or fit_line is None:
        return "unknown"
    if total <= fit_line:
        return "fits"
    return "tight" if total <= budget else "does not fit"


def fit_line(budget_bytes: int, device: str, headroom: float | None = None) -> int:
    """The budget less its headroom (HEADROOM for the device kind unless given)."""
    share = HEADROOM[device] if headroom is None else headroom
    return int(budget_bytes * (1 - share))


def suggestions(spec: ModelSpec, inputs: MemoryInputs, budget: int, *, machine: Machine | None = None,
                gradient_accumulation: int = 1, headroom: float | None = None) -> list[Suggestion]:
    """The cheapest combinations of changes that fit `budget` bytes less its headroom (see advice.py)."""
    line = fit_line(budget, inputs.device, headroom)
    return list(advise(spec, inputs, line, machine=machine or machine_for(inputs, None),
                       gradient_accumulation=gradient_accumulation).suggestions)


def _advice_note(advice: Advice, seq_len: int) -> str:
    if advice.nothing_fits:
        return "Nothing fits: not even every change at once with the shortest sequences."
    if advice.only_shorter_sequences:
        return (f"No combination fits at {seq_len} tokens, so these shorten the sequences and lose the "
                "part of longer samples past the new length (a ! option keeps them but is tight).")
    return ""


def check_fit(estimate: MemoryEstimate, budget: Budget, *, headroom: float | None = None,
              machine: Machine | None = None, gradient_accumulation: int = 1) -> FitVerdict:
    """The verdict for an estimate against a budget, with the cheapest changes that fit.

    Args:
        headroom: share of the budget to leave free (default: HEADROOM for the device kind).
        machine: what the advice may use (default: this machine, see `machine_for`).
        gradient_accumulation: the run's accumulation, so a smaller batch keeps the effective batch.
    """
    total = estimate.total_bytes
    inputs = estimate.inputs
    share = HEADROOM[inputs.device] if headroom is None else headroom
    if budget.bytes is None:
        return FitVerdict("unknown", f"Needs about {format_bytes(total)} per device; {budget.label}.", budget, share,
                          device=inputs.device)
    line = fit_line(budget.bytes, inputs.device, share)
    status = _status(total, budget.bytes, line)
    used = total / budget.bytes if budget.bytes > 0 else float("inf")
    if status == "fits":
        headline = f"Fits: needs {format_bytes(total)} of {budget.label} ({used:.0%})."
    elif status == "tight":
        headline = (f"Tight: needs {format_bytes(total)} of {budget.label} ({used:.0%}), above the fit line "
                    f"({share:.0%} headroom: {HEADROOM_REASON[inputs.device]}).")
    else:
        headline = (f"Does not fit: needs {format_bytes(total)}, "
                    f"{format_bytes(total - budget.bytes)} more than {budget.label}.")
    if budget.bytes <= 0:
        return FitVerdict(status, headline, budget, share, line, device=inputs.device)
    advice = advise(estimate.spec, inputs, line, machine=machine or machine_for(inputs, None),
                    gradient_accumulation=gradient_accumulation, budget=budget.bytes)
    return FitVerdict(status, headline, budget, share, line, advice.suggestions, _advice_note(advice, inputs.seq_len),
                      inputs.device)
