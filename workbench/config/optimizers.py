"""The optimizers a run config can name: the config's `optimization.optim` (the one spelling the
workbench uses, `workbench estimate --optimizer` and the memory estimator included), what
transformers' `TrainingArguments.optim` calls each, and the state each keeps.

The schema's choice list, the argument builder, the checks, the trainer and the memory estimator
all read this one table.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Optimizer:
    """One optimizer choice.

    Attributes:
        name: the config's name (`optimization.optim`, `MemoryInputs.optimizer`).
        training_arguments: `TrainingArguments.optim`.
        state: what it keeps per trained parameter: "fp32" (two fp32 Adam moments), "8bit" (two
            8-bit moments) or "none" (plain SGD).
        bitsandbytes: needs bitsandbytes, and so a CUDA GPU (its update is one fused kernel, so it
            builds no per-parameter temporaries).
    """

    name: str
    training_arguments: str
    state: str
    bitsandbytes: bool = False


OPTIMIZERS: dict[str, Optimizer] = {
    optimizer.name: optimizer
    for optimizer in (
        # The fused kernel (transformers' own default since torch 2.8) updates each tensor in one
        # pass and builds no temporaries. Against the per-tensor loop that "adamw_torch" runs on CPU
        # (bench/optimizer_step.py, 2-core Xeon with AMX, docs/benchmarks.md, fifth session):
        # 14.6 against 51.2 ms a step for the quick-demo LoRA's 420 tensors, 119 against 397 ms
        # for the full 135M model; the parameters agree to 7.5e-9 after 20 steps.
        Optimizer("adamw_torch", "adamw_torch_fused", "fp32"),
        Optimizer("adamw_8bit", "adamw_bnb_8bit", "8bit", bitsandbytes=True),
        Optimizer("paged_adamw_8bit", "paged_adamw_8bit", "8bit", bitsandbytes=True),
        Optimizer("paged_adamw_32bit", "paged_adamw_32bit", "fp32", bitsandbytes=True),
        Optimizer("sgd", "sgd", "none"),
    )
}

OPTIMIZER_NAMES = tuple(OPTIMIZERS)
"""The config's names, in the order the form lists them."""

BITSANDBYTES_OPTIMIZERS = tuple(name for name, optimizer in OPTIMIZERS.items() if optimizer.bitsandbytes)
