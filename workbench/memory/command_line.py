"""The `workbench estimate` command line for a set of memory inputs, so advice shown anywhere (the
Memory pane, `workbench estimate --advise`) can be reproduced on the CLI exactly.

`workbench_cli/commands/estimate.py` declares its options with these flag names.
"""

from __future__ import annotations

import shlex

from workbench.units import GIB
from workbench.memory.inputs import ALL_LINEAR, MemoryInputs

FLAGS = {
    "method": "--method",
    "precision": "--precision",
    "optimizer": "--optimizer",
    "batch_size": "--batch-size",
    "seq_len": "--seq-len",
    "lora_r": "--lora-r",
    "lora_targets": "--lora-targets",
    "lora_dropout": "--lora-dropout",
    "dora": "--dora",
    "no_double_quant": "--no-double-quant",
    "gradient_checkpointing": "--gradient-checkpointing",
    "attention": "--attention",
    "no_attention_mask": "--no-attention-mask",
    "gpus": "--gpus",
    "sharding": "--sharding",
    "cpu": "--cpu",
    "gpu_memory": "--gpu-memory",
    "ram": "--ram",
    "grad_accum": "--grad-accum",
    "eval_batch_size": "--eval-batch-size",
    "headroom": "--headroom",
}
"""Option names of `workbench estimate`, by MemoryInputs field (or budget setting)."""


def _gib(count: float) -> str:
    return f"{round(count, 2):g}"


def estimate_argv(model: str, inputs: MemoryInputs, *, gpu_memory_gib: float | None = None,
                  ram_bytes: int | None = None, gradient_accumulation: int = 1,
                  headroom: float | None = None) -> list[str]:
    """argv after `workbench estimate` that estimates `inputs` for `model` against the same budget.

    Args:
        gpu_memory_gib: a what-if GPU of this size (inputs.device is then "cuda").
        ram_bytes: the RAM a CPU estimate is checked against (omit to use this machine's).
        headroom: a headroom other than the default, as a share (0.05 = 5%).
    """
    argv = ["--model", model,
            FLAGS["method"], inputs.method,
            FLAGS["precision"], inputs.precision,
            FLAGS["optimizer"], inputs.optimizer,
            FLAGS["batch_size"], str(inputs.batch_size),
            FLAGS["seq_len"], str(inputs.seq_len)]
    if inputs.method != "full":
        targets = ALL_LINEAR if ALL_LINEAR in inputs.lora_targets else ",".join(inputs.lora_targets)
        argv += [FLAGS["lora_r"], str(inputs.lora_r), FLAGS["lora_targets"], targets,
                 FLAGS["lora_dropout"], f"{inputs.lora_dropout:g}"]
        if inputs.dora:
            argv.append(FLAGS["dora"])
    if inputs.method == "qlora" and not inputs.double_quant:
        argv.append(FLAGS["no_double_quant"])
    if inputs.gradient_checkpointing:
        argv.append(FLAGS["gradient_checkpointing"])
    argv += [FLAGS["attention"], inputs.attention]
    if not inputs.attention_mask and inputs.attention != "flash":
        argv.append(FLAGS["no_attention_mask"])
    if inputs.device == "cuda" and inputs.gpus > 1:
        argv += [FLAGS["gpus"], str(inputs.gpus), FLAGS["sharding"], inputs.sharding]
    if inputs.eval_batch_size:
        argv += [FLAGS["eval_batch_size"], str(inputs.eval_batch_size)]
    if gradient_accumulation != 1:
        argv += [FLAGS["grad_accum"], str(gradient_accumulation)]
    if inputs.device == "cuda":
        if gpu_memory_gib is not None:
            argv += [FLAGS["gpu_memory"], _gib(gpu_memory_gib)]
    elif ram_bytes is not None:
        argv += [FLAGS["ram"], _gib(ram_bytes / GIB)]
    else:
        argv.append(FLAGS["cpu"])
    if headroom is not None:
        argv += [FLAGS["headroom"], _gib(headroom * 100)]
    return argv


def estimate_command(model: str, inputs: MemoryInputs, **budget) -> str:
    """The whole shell command (`workbench estimate ...`, quoted) for `estimate_argv`."""
    return shlex.join(["workbench", "estimate", *estimate_argv(model, inputs, **budget)])
