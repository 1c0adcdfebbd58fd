"""What a training run looks like to the memory estimator."""

from __future__ import annotations

from dataclasses import dataclass, replace

from workbench.config.optimizers import OPTIMIZER_NAMES as OPTIMIZERS
from workbench.errors import WorkbenchError

METHODS = ("full", "lora", "qlora", "8bit-base")
PRECISIONS = ("fp32", "mixed-bf16", "mixed-fp16", "bf16", "fp16")
ATTENTIONS = ("eager", "sdpa", "flash")
SHARDINGS = ("ddp", "zero2", "zero3")
DEVICE_KINDS = ("cuda", "cpu")
ALL_LINEAR = "all-linear"


@dataclass(frozen=True)
class MemoryInputs:
    """One training configuration, per device.

    Attributes:
        method: full fine-tuning, LoRA, QLoRA (4-bit NF4 base) or LoRA on an 8-bit (LLM.int8) base.
        precision: fp32; mixed-bf16/mixed-fp16 (autocast; full fine-tuning keeps fp32 master weights,
            adapter methods load the base in 16 bits); bf16/fp16 (pure half precision, no autocast).
        optimizer: the config's `optimization.optim` (workbench.config.optimizers: adamw_torch,
            adamw_8bit, paged_adamw_8bit, paged_adamw_32bit, sgd).
        lora_targets: linear-layer names (e.g. q_proj, v_proj) or "all-linear".
        lora_dropout: dropout on the LoRA path; above 0 each adapted layer keeps its own dropped copy
            of its input and the dropout mask (1 byte per value on CUDA, a full noise tensor on CPU).
        double_quant: QLoRA double quantization (4.127 instead of 4.5 bits per weight).
        batch_size: sequences per step on each device (before gradient accumulation).
        seq_len: tokens per sequence (the padded or packed length).
        attention: eager materializes the seq x seq score matrix; sdpa and flash do not.
        attention_mask: batches carry a padding or packing mask, so a batch x seq x seq mask exists
            and on CUDA sdpa repeats grouped K/V heads (no enable_gqa with a mask there; the CPU
            trainer hands them over grouped, `attention.cpu_training_environment`); flash needs none.
        gpus: data-parallel devices; sharding ddp replicates everything, zero2 shards gradients and
            optimizer state, zero3 also shards the weights.
        device: cuda (adds the CUDA context) or cpu (RAM; K/V heads stay grouped under a mask).
        new_token_rows: tokens the chat template adds to the tokenizer: the embedding (and an untied
            output layer) grow by these rows, and they are trained (PEFT trainable tokens under LoRA).
        eval_batch_size: sequences per evaluation step on each device (0: the run never evaluates).
            Evaluation runs the forward pass without gradients, but its logits can outgrow training's
            when this batch is the larger one (the run config's default is 8).
    """

    method: str = "lora"
    precision: str = "mixed-bf16"
    optimizer: str = "adamw_torch"
    lora_r: int = 16
    lora_targets: tuple[str, ...] = (ALL_LINEAR,)
    lora_dropout: float = 0.0
    dora: bool = False
    double_quant: bool = True
    batch_size: int = 1
    seq_len: int = 1024
    gradient_checkpointing: bool = False
    attention: str = "sdpa"
    attention_mask: bool = True
    gpus: int = 1
    sharding: str = "ddp"
    device: str = "cuda"
    new_token_rows: int = 0
    eval_batch_size: int = 0

    def __post_init__(self) -> None:
        for name, value, allowed in (
            ("method", self.method, METHODS),
            ("precision", self.precision, PRECISIONS),
            ("optimizer", self.optimizer, OPTIMIZERS),
            ("attention", self.attention, ATTENTIONS),
            ("sharding", self.sharding, SHARDINGS),
            ("device", self.device, DEVICE_KINDS),
        ):
            if value not in allowed:
                raise WorkbenchError(f"{name}: {value!r} is not one of {', '.join(allowed)}")
        for name in ("lora_r", "batch_size", "seq_len", "gpus"):
            if getattr(self, name) < 1:
                raise WorkbenchError(f"{name}: must be at least 1, got {getattr(self, name)}")
        if self.new_token_rows < 0:
            raise WorkbenchError(f"new_token_rows: must be 0 or more, got {self.new_token_rows}")
        if self.eval_batch_size < 0:
            raise WorkbenchError(f"eval_batch_size: must be 0 or more, got {self.eval_batch_size}")
        if not 0.0 <= self.lora_dropout < 1.0:
            raise WorkbenchError(f"lora_dropout: must be in [0, 1), got {self.lora_dropout}")
        if not self.lora_targets:
            raise WorkbenchError("lora_targets: name at least one linear layer, or 'all-linear'")

    @property
    def autocast(self) -> bool:
        return self.precision.startswith("mixed-")

    def with_changes(self, **changes) -> "MemoryInputs":
        return replace(self, **changes)
