"""What would make a run fit: the cheapest combination of changes, searched with the estimator itself.

Every combination of the levers below is a candidate; each is priced by what it costs in speed or
quality (costs add up over a combination), tried in order of cost, and estimated with
`estimate_training_memory`, so every figure shown is the estimate of exactly that combination.

Cost model (the ranking key; 1.0 = "the run takes twice as long", or a loss of that weight):
- gradient checkpointing: each layer's forward runs again during backward. A forward pass is 2N
  FLOPs per token of a 6N step (full fine-tuning) or a 4N step (adapters: the frozen base needs
  no weight gradients), so a step is ~33% (full) or ~50% (LoRA, QLoRA) slower.
- a smaller per-device batch with gradient accumulation raised to keep the effective batch: the
  same updates in smaller matmuls; 5% per halving (GPUs lose utilisation at small batches).
- 8-bit AdamW (bitsandbytes, CUDA only): the optimizer's moments in 8 bits; in the bitsandbytes
  paper (Dettmers et al., 2022) fine-tuning matches 32-bit Adam; 5% for the small risk.
- mixed bf16 instead of fp32, where bf16 is native: faster, slightly coarser numbers; 5%.
- QLoRA instead of LoRA (CUDA only): the frozen base in 4-bit NF4, dequantized for every matmul:
  ~30% slower and slightly lossy (the QLoRA paper: within about a point of 16-bit LoRA); 40%.
- LoRA instead of full fine-tuning: trains under 1% of the weights, so less capacity; 50%.
- ZeRO over the machine's other GPUs: 10% for ZeRO-2 (gradients and optimizer state sharded),
  20% for ZeRO-3 (weights too, gathered for every layer).
- a smaller evaluation batch: evaluation's logits (batch x length x vocabulary, with their fp32
  copies) can outgrow training's; scoring fewer sequences at a time leaves training untouched and
  only makes evaluation a little slower; 1% per halving.
- shorter sequences: samples longer than the new length are cut, so data is lost. Searched only
  when no combination of the others fits (the advice says so): 100% plus the share of length cut.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field, replace
from typing import Any

from workbench.config.optimizers import OPTIMIZERS
from workbench.memory.estimator import estimate_training_memory
from workbench.memory.inputs import MemoryInputs
from workbench.memory.spec import ModelSpec

CHECKPOINTING_COST = {"full": 1 / 3, "adapters": 1 / 2}
BATCH_HALVING_COST = 0.05
EVAL_BATCH_HALVING_COST = 0.01
EIGHT_BIT_OPTIMIZER_COST = 0.05
BF16_COST = 0.05
QLORA_COST = 0.40
LORA_INSTEAD_OF_FULL_COST = 0.50
ZERO_COST = {"zero2": 0.10, "zero3": 0.20}
SHORTER_SEQUENCES_COST = 1.0
SHOWN = 3
"""Suggestions shown: the cheapest combinations that fit."""
SEQ_STEP = 64
"""Shortened sequence lengths are multiples of this (a padded or packed row's usual granularity)."""
_MAX_BATCH = 512
# A further combination is shown beside a cheaper one it contains only when it frees this share of
# the fit line more (e.g. QLoRA + checkpointing beside checkpointing alone: room for a larger batch).
_WORTH_MORE_ROOM = 0.10


@dataclass(frozen=True)
class Machine:
    """What the levers may use.

    Attributes:
        gpus: GPUs the run could spread over (ZeRO is offered up to this many).
        bitsandbytes: bitsandbytes is installed (8-bit optimizers and QLoRA run); when not, those
            changes are still offered on a GPU, marked "needs bitsandbytes".
        native_bf16: the device runs bf16 natively (mixed bf16 is offered instead of fp32).
    """

    gpus: int = 1
    bitsandbytes: bool = True
    native_bf16: bool = True


@dataclass(frozen=True)
class Step:
    """One change of one lever."""

    lever: str
    text: str
    cost: float
    cost_text: str
    changes: dict[str, Any]
    severity: int = 1
    """Within one lever, a larger severity goes further (batch 1 after batch 2)."""
    gradient_accumulation: int | None = None


@dataclass(frozen=True)
class Suggestion:
    """A combination of changes, with the estimate it leads to.

    Attributes:
        text: the changes in words, joined with " + ".
        total_bytes: the estimator's peak for the changed inputs.
        fits: under the fit line (the budget less its headroom).
        changes: MemoryInputs fields to change (`inputs.with_changes(**changes)`).
        cost: the summed cost of its steps (see the module docstring).
        cost_text: what it costs, in words.
        gradient_accumulation: the new accumulation when the batch changed (None: unchanged).
        cuts_data: shortens sequences below what the run asked for.
    """

    text: str
    total_bytes: int
    fits: bool
    changes: dict[str, Any] = field(default_factory=dict)
    steps: tuple[Step, ...] = ()
    cost: float = 0.0
    cost_text: str = ""
    gradient_accumulation: int | None = None
    cuts_data: bool = False


def _combine(steps: tuple[Step, ...], total: int, fits: bool, cuts_data: bool = False) -> Suggestion:
    changes: dict[str, Any] = {}
    accumulation = None
    for step in steps:
        changes.update(step.changes)
        accumulation = step.gradient_accumulation or accumulation
    return Suggestion(
        text=" + ".join(step.text for step in steps),
        total_bytes=total,
        fits=fits,
        changes=changes,
        steps=steps,
        cost=sum(step.cost for step in steps),
        cost_text="; ".join(step.cost_text for step in steps),
        gradient_accumulation=accumulation,
        cuts_data=cuts_data,
    )


def _levers(inputs: MemoryInputs, machine: Machine, accumulation: int) -> list[list[Step]]:
    """Each lever's possible changes (an empty lever is left out)."""
    levers: list[list[Step]] = []
    on_gpu = inputs.device == "cuda"
    needs_bnb = "" if machine.bitsandbytes else " (needs bitsandbytes)"
    if not inputs.gradient_checkpointing:
        share = CHECKPOINTING_COST["full" if inputs.method == "full" else "adapters"]
        levers.append([Step("gradient_checkpointing", "gradient checkpointing on", share,
                            f"~{share:.0%} slower (each layer's forward runs again in backward)",
                            {"gradient_checkpointing": True})])
    if inputs.batch_size > 1:
        effective = inputs.batch_size * accumulation
        smaller = [size for size in range(inputs.batch_size - 1, 0, -1) if effective % size == 0]
        levers.append([
            Step("batch", f"batch {size} × accumulation {effective // size}",
                 BATCH_HALVING_COST * math.log2(inputs.batch_size / size),
                 f"same effective batch of {effective}, smaller steps (~{BATCH_HALVING_COST:.0%} slower per halving)",
                 {"batch_size": size}, severity, effective // size)
            for severity, size in enumerate(smaller, start=1)
        ])
    if inputs.eval_batch_size > 1:
        sizes = []
        size = inputs.eval_batch_size
        while size > 1:
            size //= 2
            sizes.append(size)
        levers.append([
            Step("eval_batch", f"evaluation batch {size}",
                 EVAL_BATCH_HALVING_COST * math.log2(inputs.eval_batch_size / size),
                 "evaluation scores fewer sequences at a time (training unchanged, evaluation a little slower)",
                 {"eval_batch_size": size}, severity)
            for severity, size in enumerate(sizes, start=1)
        ])
    if on_gpu and OPTIMIZERS[inputs.optimizer].state == "fp32":
        levers.append([Step("optimizer", "8-bit AdamW" + needs_bnb, EIGHT_BIT_OPTIMIZER_COST,
                            "8-bit optimizer state (matches 32-bit AdamW in published fine-tuning results)",
                            {"optimizer": "adamw_8bit"})])
    if inputs.precision == "fp32" and machine.native_bf16:
        levers.append([Step("precision", "mixed bf16 instead of fp32", BF16_COST,
                            "16-bit matmuls (native here, faster; slightly coarser numbers)",
                            {"precision": "mixed-bf16"})])
    methods: list[Step] = []
    if inputs.method == "full":
        methods.append(Step("method", "LoRA instead of full fine-tuning", LORA_INSTEAD_OF_FULL_COST,
                            "trains small adapters (<1% of the weights): less capacity", {"method": "lora"}))
    if on_gpu and inputs.method in ("full", "lora", "8bit-base"):
        base_cost = LORA_INSTEAD_OF_FULL_COST if inputs.method == "full" else 0.0
        methods.append(Step("method", "QLoRA (4-bit base)" + needs_bnb, base_cost + QLORA_COST,
                            "~30% slower and slightly lossy (the frozen base in 4-bit NF4)", {"method": "qlora"},
                            severity=len(methods) + 1))
    if methods:
        levers.append(methods)
    if on_gpu and machine.gpus > 1 and (inputs.gpus < machine.gpus or inputs.sharding == "ddp"):
        levers.append([
            Step("sharding", f"ZeRO-{stage[-1]} over {machine.gpus} GPUs", ZERO_COST[stage],
                 f"shards {'weights, ' if stage == 'zero3' else ''}gradients and optimizer state "
                 f"over {machine.gpus} GPUs (communication: ~{ZERO_COST[stage]:.0%} slower)",
                 {"gpus": machine.gpus, "sharding": stage}, severity)
            for severity, stage in enumerate(("zero2", "zero3"), start=1)
            if not (inputs.gpus == machine.gpus and inputs.sharding == stage)
        ])
    return [lever for lever in levers if lever]


def _combinations(levers: list[list[Step]]) -> list[tuple[Step, ...]]:
    """Every non-empty combination (at most one step per lever), cheapest first."""
    options = [[None, *lever] for lever in levers]
    combos = [tuple(step for step in choice if step is not None) for choice in itertools.product(*options)]
    combos = [combo for combo in combos if combo]
    combos.sort(key=lambda combo: (sum(step.cost for step in combo), len(combo)))
    return combos


def _contains(bigger: tuple[Step, ...], smaller: tuple[Step, ...]) -> bool:
    """Whether `bigger` goes at least as far as `smaller` on every lever `smaller` changes."""
    by_lever = {step.lever: step for step in bigger}
    return all(step.lever in by_lever and by_lever[step.lever].severity >= step.severity for step in smaller)


def _total(spec: ModelSpec, inputs: MemoryInputs, steps: tuple[Step, ...], **extra) -> int:
    changes: dict[str, Any] = {}
    for step in steps:
        changes.update(step.changes)
    return estimate_training_memory(spec, inputs.with_changes(**changes, **extra)).total_bytes


def _longest_fitting_seq(spec: ModelSpec, inputs: MemoryInputs, steps: tuple[Step, ...], fit_line: int) -> int | None:
    """The longest sequence (a multiple of SEQ_STEP below the current one) that fits, by bisection."""
    low, high = SEQ_STEP, (inputs.seq_len - 1) // SEQ_STEP * SEQ_STEP
    if high < low or _total(spec, inputs, steps, seq_len=low) > fit_line:
        return None
    while high > low:
        middle = (low + high + SEQ_STEP) // (2 * SEQ_STEP) * SEQ_STEP
        if _total(spec, inputs, steps, seq_len=middle) <= fit_line:
            low = middle
        else:
            high = middle - SEQ_STEP
    return low


def _fitting_combinations(spec, inputs, combos, fit_line: int) -> list[Suggestion]:
    """The cheapest combinations that fit, none containing a cheaper fitting one unless it frees
    clearly more room."""
    found: list[Suggestion] = []
    extra: list[Suggestion] = []
    for combo in combos:
        if len(found) >= SHOWN:
            break
        contained = [s for s in found + extra if _contains(combo, s.steps)]
        if contained and len(found) + len(extra) >= SHOWN:
            continue
        total = _total(spec, inputs, combo)
        if total > fit_line:
            continue
        suggestion = _combine(combo, total, True)
        if not contained:
            found.append(suggestion)
        elif all(s.total_bytes - total >= _WORTH_MORE_ROOM * fit_line for s in contained):
            extra.append(suggestion)
    return sorted(found + extra, key=lambda s: s.cost)[:SHOWN]


def _shortened(spec, inputs, combos, everything: tuple[Step, ...], fit_line: int) -> list[Suggestion]:
    """Combinations that fit only with shorter sequences, cheapest first (branch and bound: the
    length that every change at once reaches bounds the data cut of all combinations)."""
    best_length = _longest_fitting_seq(spec, inputs, everything, fit_line)
    if best_length is None:
        return []
    found: list[tuple[float, Suggestion]] = []
    for combo in [(), *combos]:
        base = sum(step.cost for step in combo)
        bound = base + SHORTER_SEQUENCES_COST * (1 + (1 - best_length / inputs.seq_len))
        if len(found) >= SHOWN and bound >= found[SHOWN - 1][0]:
            break
        length = _longest_fitting_seq(spec, inputs, combo, fit_line)
        if length is None:
            continue
        cut = 1 - length / inputs.seq_len
        shorten = Step("seq_len", f"sequences of {length} tokens", SHORTER_SEQUENCES_COST * (1 + cut),
                       f"loses data: samples longer than {length} tokens are cut ({cut:.0%} of the length)",
                       {"seq_len": length})
        suggestion = _combine((*combo, shorten), _total(spec, inputs, combo, seq_len=length), True, cuts_data=True)
        found.append((suggestion.cost, suggestion))
        found.sort(key=lambda pair: pair[0])
    return [suggestion for _, suggestion in found[:SHOWN]]


def _room_to_grow(spec: ModelSpec, inputs: MemoryInputs, fit_line: int) -> list[Suggestion]:
    """For a run that fits: checkpointing off when it is not needed, and the largest batch that fits."""
    found: list[Suggestion] = []
    if inputs.gradient_checkpointing:
        total = estimate_training_memory(spec, inputs.with_changes(gradient_checkpointing=False)).total_bytes
        if total <= fit_line:
            share = CHECKPOINTING_COST["full" if inputs.method == "full" else "adapters"]
            found.append(Suggestion("gradient checkpointing off", total, True, {"gradient_checkpointing": False},
                                    cost=-share, cost_text=f"~{share:.0%} faster: nothing is recomputed"))

    def fits_at(batch: int) -> bool:
        return estimate_training_memory(spec, inputs.with_changes(batch_size=batch)).total_bytes <= fit_line

    low, high = inputs.batch_size, _MAX_BATCH
    if high > low and fits_at(low):
        if fits_at(high):
            low = high
        while high - low > 1:
            middle = (low + high) // 2
            low, high = (middle, high) if fits_at(middle) else (low, middle)
        if low > inputs.batch_size:
            total = estimate_training_memory(spec, inputs.with_changes(batch_size=low)).total_bytes
            found.append(Suggestion(f"raise the batch size to {low} (the largest that fits)", total, True,
                                    {"batch_size": low}, cost_text="more sequences per step: faster epochs"))
    return found


@dataclass(frozen=True)
class Advice:
    """What the search found.

    Attributes:
        suggestions: the cheapest combinations that fit (at most SHOWN), or room to grow when the
            run already fits.
        only_shorter_sequences: no combination fits without cutting sequences, so every
            suggestion shortens them.
        nothing_fits: not even every change at once with the shortest sequences fits.
    """

    suggestions: tuple[Suggestion, ...]
    only_shorter_sequences: bool = False
    nothing_fits: bool = False


def advise(spec: ModelSpec, inputs: MemoryInputs, fit_line: int, *, machine: Machine = Machine(),
           gradient_accumulation: int = 1, budget: int | None = None) -> Advice:
    """The cheapest combinations of changes that bring the peak under `fit_line` bytes.

    The current sequence length is taken as what the data needs: shorter sequences are searched
    only when no combination of the other levers fits. Then, given the `budget` itself, the
    cheapest combination that stays within it without cutting data is added as a tight option
    (`fits` False: over the fit line, under the budget).
    """
    if estimate_training_memory(spec, inputs).total_bytes <= fit_line:
        return Advice(tuple(_room_to_grow(spec, inputs, fit_line)))
    levers = _levers(inputs, machine, gradient_accumulation)
    combos = _combinations(levers)
    found = _fitting_combinations(spec, inputs, combos, fit_line)
    if found:
        return Advice(tuple(found))
    everything = tuple(lever[-1] for lever in levers)  # each lever's furthest step saves the most
    shortened = _shortened(spec, inputs, combos, everything, fit_line)
    tight = _fitting_combinations(spec, inputs, combos, budget)[:1] if budget and budget > fit_line else []
    tight = [replace(suggestion, fits=False) for suggestion in tight]
    return Advice(tuple(shortened + tight), only_shorter_sequences=bool(shortened), nothing_fits=not shortened)
