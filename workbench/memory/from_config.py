"""Memory inputs from the shared run config, so the Memory pane estimates exactly what Train will run."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import workbench.devices
from workbench.config.distributed import zero_stage
from workbench.data.chat_templates import new_token_count
from workbench.errors import WorkbenchError
from workbench.memory.inputs import ALL_LINEAR, MemoryInputs
from workbench.precision import resolve_training_precision

if TYPE_CHECKING:
    from workbench.config import RunConfig
    from workbench.devices import DeviceReport

_ATTENTION = {"sdpa": "sdpa", "eager": "eager", "flash_attention_2": "flash"}


def _sharding(deepspeed: str | None, fsdp: str | None) -> str:
    if fsdp:
        return "zero3" if "full_shard" in fsdp else "zero2" if "shard_grad_op" in fsdp else "ddp"
    if deepspeed:
        # an unreadable file counts as plain DDP here; `config check` reports it
        return {2: "zero2", 3: "zero3"}.get(zero_stage(deepspeed), "ddp")
    return "ddp"


def memory_inputs_from_config(config: "RunConfig", devices: "DeviceReport | None" = None) -> tuple[str, MemoryInputs]:
    """(model name or path, MemoryInputs) for a RunConfig; resolve the name with `resolve_model_spec`.

    The sequence length is data.max_seq_length (what packing fills and padding pads up to). Batches
    carry an attention mask when packing (block-diagonal) or padding (batch > 1) is in play. A run
    with validation data evaluates at evaluation.per_device_eval_batch_size.
    """
    if devices is None:
        devices = workbench.devices.detect_devices()
    on_gpu = devices.has_cuda and not config.devices.use_cpu
    method, optimization = config.method, config.optimization
    targets = method.target_modules
    attention = _ATTENTION[config.model.attn_implementation]
    batch = optimization.per_device_train_batch_size
    inputs = MemoryInputs(
        method=method.type,
        precision=resolve_training_precision(config.model.precision, devices, on_gpu, method.type).label,
        optimizer=optimization.optim,
        lora_r=method.r,
        lora_targets=(ALL_LINEAR,) if targets == ALL_LINEAR else tuple(targets),
        lora_dropout=method.lora_dropout if method.type != "full" else 0.0,
        dora=method.use_dora and method.type != "full",
        double_quant=method.bnb_4bit_use_double_quant,
        batch_size=batch,
        seq_len=config.data.max_seq_length,
        gradient_checkpointing=optimization.gradient_checkpointing,
        attention=attention,
        attention_mask=attention != "flash" and (config.data.packing or batch > 1),
        gpus=config.devices.num_processes if on_gpu else 1,
        sharding=_sharding(config.devices.deepspeed, config.devices.fsdp),
        device="cuda" if on_gpu else "cpu",
        new_token_rows=_new_token_rows(config),
        eval_batch_size=config.evaluation.per_device_eval_batch_size if _evaluates(config) else 0,
    )
    return config.model.name_or_path, inputs


def _evaluates(config: "RunConfig") -> bool:
    """Whether the run holds validation data out (a file, or a split of the training data)."""
    data = config.data
    return bool(data.validation_file or data.validation_split > 0
                or any(source.validation_file or (source.validation_split or 0) > 0
                       for source in getattr(data, "sources", None) or []))


def _new_token_rows(config: "RunConfig") -> int:
    """Tokens data.chat_template adds to the model's tokenizer (0 when that cannot be told cheaply:
    the default model not converted yet, or a choice `config check` reports as wrong)."""
    try:
        return new_token_count(config.model.name_or_path, config.data.chat_template, trust_remote_code=config.model.trust_remote_code)
    except (WorkbenchError, OSError):
        return 0


# MemoryInputs fields a suggestion changes -> the run-config field that says the same.
_CONFIG_FIELDS = {
    "gradient_checkpointing": "optimization.gradient_checkpointing",
    "batch_size": "optimization.per_device_train_batch_size",
    "seq_len": "data.max_seq_length",
    "optimizer": "optimization.optim",
    "precision": "model.precision",
    "method": "method.type",
    "gpus": "devices.num_processes",
    "sharding": "devices.deepspeed",
    "eval_batch_size": "evaluation.per_device_eval_batch_size",
}


def config_changes(changes: dict[str, Any], gradient_accumulation: int | None = None) -> dict[str, Any]:
    """The run-config edits (dotted field -> value) that make a config estimate as `changes` say.

    The inverse of `memory_inputs_from_config` for the fields the advice changes: ZeRO stages name
    the DeepSpeed configs shipped with the workbench (devices.deepspeed zero2 / zero3).
    """
    edits: dict[str, Any] = {}
    for name, value in changes.items():
        if name == "sharding":
            value = None if value == "ddp" else value
            edits["devices.fsdp"] = None
        edits[_CONFIG_FIELDS[name]] = value
    if gradient_accumulation is not None:
        edits["optimization.gradient_accumulation_steps"] = gradient_accumulation
    return edits
