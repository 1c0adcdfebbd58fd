"""Will it fit? The estimate against a memory budget, and what would make it fit."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from workbench.memory.estimator import GIB, MemoryEstimate, estimate_training_memory
from workbench.memory.inputs import MemoryInputs
from workbench.memory.spec import ModelSpec

if TYPE_CHECKING:
    from workbench.devices import DeviceReport

# Below this share of the budget a run fits with room for allocator fragmentation and spikes.
COMFORT_SHARE = 0.9
# A CPU training process holds ~0.4 GiB (Python, PyTorch and transformers imported) before any
# tensor exists; the estimate starts after that, the RAM check must not.
CPU_PROCESS_BASELINE_BYTES = 400 * 2**20
_MAX_BATCH = 512
_MAX_SEQ = 131072
_SEQ_STEP = 64


@dataclass(frozen=True)
class Budget:
    """Memory available per device, and where the number comes from."""

    bytes: int | None
    label: str


@dataclass(frozen=True)
class Suggestion:
    """A change that lowers (or uses) memory, with the estimate it leads to."""

    text: str
    total_bytes: int
    fits: bool
    changes: dict = field(default_factory=dict)


@dataclass(frozen=True)
class FitVerdict:
    status: str  # "fits", "tight", "does not fit" or "unknown"
    headline: str
    budget: Budget
    suggestions: tuple[Suggestion, ...] = ()


def format_bytes(count: float) -> str:
    """Human units, binary: '512 MiB', '12.3 GiB'."""
    if abs(count) >= GIB:
        return f"{count / GIB:.1f} GiB"
    if abs(count) >= 2**20:
        return f"{count / 2**20:.0f} MiB"
    return f"{count / 2**10:.0f} KiB"


def memory_budget(inputs: MemoryInputs, devices: "DeviceReport | None" = None, gpu_memory_gib: float | None = None) -> Budget:
    """Per-device memory to check against: a card the user names, the free memory of the detected GPUs,
    or available RAM (less the Python/PyTorch baseline) when training on the CPU."""
    if gpu_memory_gib is not None:
        return Budget(int(gpu_memory_gib * GIB), f"a {gpu_memory_gib:g} GiB GPU")
    if devices is None:
        from workbench.devices import detect_devices

        devices = detect_devices()
    if inputs.device == "cpu":
        available = devices.cpu.available_ram_bytes - CPU_PROCESS_BASELINE_BYTES
        return Budget(available, f"{format_bytes(available)} of free RAM")
    if not devices.gpus:
        return Budget(None, "no GPU detected here (give a card's memory to check against one)")
    used = devices.gpus[: inputs.gpus]
    tightest = min(used, key=lambda gpu: gpu.free_bytes)
    count = f"{len(used)}x " if len(used) > 1 else ""
    return Budget(tightest.free_bytes, f"{count}{tightest.name}: {format_bytes(tightest.free_bytes)} free")


def _status(total: int, budget: int | None) -> str:
    if budget is None:
        return "unknown"
    if total <= budget * COMFORT_SHARE:
        return "fits"
    return "tight" if total <= budget else "does not fit"


def _fits(total: int, budget: int) -> bool:
    return total <= budget * COMFORT_SHARE


def _largest(spec: ModelSpec, inputs: MemoryInputs, budget: int, name: str, upper: int, step: int) -> int | None:
    """The largest value of `name` (batch_size or seq_len, a multiple of step) that fits, by bisection."""
    def total_at(value: int) -> int:
        return estimate_training_memory(spec, inputs.with_changes(**{name: value})).total_bytes

    low = step
    if not _fits(total_at(low), budget):
        return None
    high = upper
    if _fits(total_at(high), budget):
        return high
    while high - low > step:
        middle = (low + high) // (2 * step) * step
        if _fits(total_at(middle), budget):
            low = middle
        else:
            high = middle
    return low


def suggestions(spec: ModelSpec, inputs: MemoryInputs, budget: int) -> list[Suggestion]:
    """What would make the run fit (or how far it could grow), best first."""
    current = estimate_training_memory(spec, inputs).total_bytes
    found: list[Suggestion] = []

    def consider(text: str, **changes) -> None:
        total = estimate_training_memory(spec, inputs.with_changes(**changes)).total_bytes
        if total < current:
            found.append(Suggestion(text, total, _fits(total, budget), changes))

    fits_now = _fits(current, budget)
    batch = _largest(spec, inputs, budget, "batch_size", _MAX_BATCH, 1)
    if batch is not None and batch != inputs.batch_size:
        total = estimate_training_memory(spec, inputs.with_changes(batch_size=batch)).total_bytes
        verb = "raise" if batch > inputs.batch_size else "lower"
        found.append(Suggestion(f"{verb} the batch size to {batch} (the largest that fits)", total, True,
                                {"batch_size": batch}))
    if not fits_now:
        seq = _largest(spec, inputs, budget, "seq_len", min(_MAX_SEQ, inputs.seq_len), _SEQ_STEP)
        if seq is not None and seq < inputs.seq_len:
            total = estimate_training_memory(spec, inputs.with_changes(seq_len=seq)).total_bytes
            found.append(Suggestion(f"shorten sequences to {seq} tokens (the longest that fits)", total, True,
                                    {"seq_len": seq}))
        if not inputs.gradient_checkpointing:
            consider("turn on gradient checkpointing (about 30% slower)", gradient_checkpointing=True)
        if inputs.optimizer in ("adamw", "paged_adamw"):
            consider("use the 8-bit AdamW optimizer", optimizer="adamw8bit")
        if inputs.method == "full":
            consider("train LoRA adapters instead of all weights", method="lora")
        if inputs.method in ("full", "lora", "8bit-base") and inputs.device == "cuda":
            consider("use QLoRA (4-bit base model)", method="qlora")
        if inputs.device == "cuda" and inputs.method == "full":
            for gpus in (2, 4, 8):
                if gpus > inputs.gpus:
                    total = estimate_training_memory(spec, inputs.with_changes(gpus=gpus, sharding="zero3")).total_bytes
                    if _fits(total, budget):
                        found.append(Suggestion(f"shard across {gpus} GPUs with ZeRO-3", total, True,
                                                {"gpus": gpus, "sharding": "zero3"}))
                        break
    found.sort(key=lambda suggestion: not suggestion.fits)  # stable: keeps the least drastic first
    return found


def check_fit(estimate: MemoryEstimate, budget: Budget) -> FitVerdict:
    """The verdict for an estimate against a budget, with suggestions."""
    total = estimate.total_bytes
    status = _status(total, budget.bytes)
    if budget.bytes is None:
        return FitVerdict(status, f"Needs about {format_bytes(total)} per device; {budget.label}.", budget)
    share = total / budget.bytes if budget.bytes > 0 else float("inf")
    if status == "fits":
        headline = f"Fits: needs {format_bytes(total)} of {budget.label} ({share:.0%})."
    elif status == "tight":
        headline = (f"Tight: needs {format_bytes(total)} of {budget.label} ({share:.0%}); "
                    "fragmentation or a long batch may still run out of memory.")
    else:
        headline = f"Does not fit: needs {format_bytes(total)}, {format_bytes(total - budget.bytes)} more than {budget.label}."
    hints = tuple(suggestions(estimate.spec, estimate.inputs, budget.bytes)) if budget.bytes > 0 else ()
    return FitVerdict(status, headline, budget, hints)
