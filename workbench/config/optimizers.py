"""The optimizers a run config can name, in each vocabulary that needs them: the config's
`optimization.optim`, transformers' `TrainingArguments.optim` and the memory estimator's.

The schema's choice list, the argument builder, the checks, the trainer and the memory estimator
all read this one table.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Optimizer:
    """One optimizer choice.

    Attributes:
        name: the config's name (`optimization.optim`).
        training_arguments: `TrainingArguments.optim`.
        memory: the memory estimator's name (`MemoryInputs.optimizer`, `workbench estimate --optimizer`).
        bitsandbytes: needs bitsandbytes, and so a CUDA GPU.
    """

    name: str
    training_arguments: str
    memory: str
    bitsandbytes: bool = False


OPTIMIZERS: dict[str, Optimizer] = {
    optimizer.name: optimizer
    for optimizer in (
        Optimizer("adamw_torch", "adamw_torch", "adamw"),
        Optimizer("adamw_8bit", "adamw_bnb_8bit", "adamw8bit", bitsandbytes=True),
        Optimizer("paged_adamw_8bit", "paged_adamw_8bit", "paged_adamw8bit", bitsandbytes=True),
        Optimizer("paged_adamw_32bit", "paged_adamw_32bit", "paged_adamw", bitsandbytes=True),
        Optimizer("sgd", "sgd", "sgd"),
    )
}

OPTIMIZER_NAMES = tuple(OPTIMIZERS)
"""The config's names, in the order the form lists them."""

BITSANDBYTES_OPTIMIZERS = tuple(name for name, optimizer in OPTIMIZERS.items() if optimizer.bitsandbytes)
