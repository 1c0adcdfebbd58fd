"""The run config schema.

Field names follow Hugging Face `TrainingArguments`, PEFT `LoraConfig` and TRL `SFTConfig` where
an equivalent exists, so users recognise them. Every section forbids unknown keys; `workbench.config.io`
turns pydantic's errors into one line per problem with a "did you mean".
"""

from __future__ import annotations

from typing import Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from workbench.config.optimizers import OPTIMIZER_NAMES
from workbench.data.chat_templates import BUILTIN_TEMPLATE_NAMES
from workbench.data.formats import FORMAT_CHOICES
from workbench.data.row_bounds import DEFAULT_MAX_SEQ_LENGTH

AttentionImplementation = Literal["sdpa", "eager", "flash_attention_2"]
PrecisionChoice = Literal["auto", "fp32", "mixed-bf16", "mixed-fp16", "bf16", "fp16"]
DataFormat = Literal[FORMAT_CHOICES]
MixStrategy = Literal["interleave_under", "interleave_over"]
MethodType = Literal["lora", "qlora", "full"]
SchedulerType = Literal["linear", "cosine", "constant", "constant_with_warmup"]
OptimizerName = Literal[OPTIMIZER_NAMES]
Tracker = Literal["tensorboard", "wandb", "mlflow"]


class Section(BaseModel):
    # inf and nan pass `gt=0` checks (num_train_epochs: .inf trained for ever); no field wants them
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


class ModelSection(Section):
    name_or_path: str = Field("default", description="'default' (SmolLM2-135M-Instruct), a local model directory or a Hub id")
    trust_remote_code: bool = Field(False, description="run Python code shipped with the model (only for models you trust)")
    attn_implementation: AttentionImplementation = Field(
        "sdpa",
        description="attention kernel: sdpa (PyTorch, works everywhere; on a GPU packed rows run through PyTorch's "
        "flex attention with document masks), eager, or flash_attention_2 (CUDA; packed rows as variable-length sequences)",
    )
    precision: PrecisionChoice = Field(
        "auto",
        description="auto picks per hardware; mixed-* keep fp32 master weights; bf16/fp16 train in pure half precision",
    )


DATA_PATH_HELP = (
    "a .json, .jsonl, .csv, .parquet or .arrow file, a `datasets` save_to_disk directory, "
    "a dataset id already in the local Hugging Face datasets cache (owner/name, never downloaded), "
    "or one entry of a LLaMA-Factory dataset_info.json as path/to/dataset_info.json#entry_name"
)


class DataColumns(Section):
    """Which of a file's columns (and which role names) hold what: LLaMA-Factory's dataset_info.json
    `columns` and `tags` in one mapping. Unset keys keep the format's usual names."""

    prompt: Optional[str] = Field(None, description="column of the instruction (alpaca `instruction`) or, with a `completion` column, the prompt")
    query: Optional[str] = Field(None, description="column of the extra input appended to the instruction (alpaca `input`)")
    response: Optional[str] = Field(None, description="column of the answer (alpaca `output`)")
    completion: Optional[str] = Field(None, description="column of the completion (TRL prompt/completion)")
    history: Optional[str] = Field(None, description="column of earlier [question, answer] pairs (alpaca `history`)")
    system: Optional[str] = Field(None, description="column of the system prompt")
    tools: Optional[str] = Field(None, description="column of the tool schemas offered to the model (JSON text or a list)")
    messages: Optional[str] = Field(None, description="column of the conversation turns (`conversations` / `messages`)")
    text: Optional[str] = Field(None, description="column of raw text rows, every token trained (TRL `text`)")
    role_tag: Optional[str] = Field(None, description="key naming a turn's speaker (`from` / `role`)")
    content_tag: Optional[str] = Field(None, description="key holding a turn's text (`value` / `content`)")
    user_tag: Optional[str] = Field(None, description="speaker name of user turns (e.g. human)")
    assistant_tag: Optional[str] = Field(None, description="speaker name of assistant turns (e.g. gpt)")
    observation_tag: Optional[str] = Field(None, description="speaker name of tool results (e.g. observation)")
    function_tag: Optional[str] = Field(None, description="speaker name of the assistant's tool calls (e.g. function_call)")
    system_tag: Optional[str] = Field(None, description="speaker name of system turns (e.g. system)")


class DataSource(Section):
    """One training source of a mixture."""

    path: str = Field(..., min_length=1, description=f"the data: {DATA_PATH_HELP}")
    name: Optional[str] = Field(None, description="short name in reports and events (default: the file's stem or the entry name)")
    format: DataFormat = Field("auto", description="row format; auto-detected by default")
    columns: Optional[DataColumns] = Field(None, description="column mapping, when the columns have other names")
    weight: Optional[float] = Field(
        None, gt=0,
        description="share of the training mix (weights are normalized: 1 and 3 mean 25% and 75%); "
        "set on every source or on none (none: every row of every source, once)",
    )
    split: Optional[str] = Field(None, description="split to train on for a save_to_disk directory or cached dataset id (default train)")
    subset: Optional[str] = Field(None, description="configuration (subset) name of a cached dataset id")
    validation_file: Optional[str] = Field(None, description="this source's own validation data")
    validation_split: Optional[float] = Field(
        None, ge=0.0, lt=1.0, description="fraction of this source held out for eval loss (default data.validation_split)"
    )

    @property
    def display_name(self) -> str:
        """`name`, else the dataset_info entry, the file's stem or the dataset id's last part."""
        if self.name:
            return self.name
        if "#" in self.path:
            return self.path.rsplit("#", 1)[1]
        tail = self.path.rstrip("/\\").replace("\\", "/").rsplit("/", 1)[-1]
        return tail.split(".", 1)[0] if "." in tail[1:] else tail


class DataSection(Section):
    train_file: Optional[str] = Field(None, description=f"training data: {DATA_PATH_HELP}")
    validation_file: Optional[str] = Field(None, description="separate validation data; else validation_split is used")
    validation_split: float = Field(0.1, ge=0.0, lt=1.0, description="fraction of train_file held out for eval loss")
    format: DataFormat = Field("auto", description="data format of train_file and validation_file; auto-detected by default")
    columns: Optional[DataColumns] = Field(
        None,
        description="column mapping for train_file and validation_file, e.g. {prompt: question, response: answer} "
        "or {messages: dialog, role_tag: speaker, content_tag: text, user_tag: customer, assistant_tag: agent}",
    )
    sources: list[DataSource] = Field(
        default_factory=list,
        description="a mixture of training sources instead of train_file, each with its own path, format, columns "
        "and weight, e.g. [{path: domain.jsonl, weight: 0.3}, {path: general.json, weight: 0.7}]",
    )
    mix_strategy: MixStrategy = Field(
        "interleave_under",
        description="with weights: interleave_under stops when a source runs out (no row repeats), "
        "interleave_over goes on until every row was used (smaller sources repeat)",
    )

    @model_validator(mode="after")
    def _one_kind_of_training_data(self):
        if self.sources and self.train_file:
            raise ValueError("set data.train_file or data.sources, not both (a mixture lists every file in sources)")
        weighted = [source.weight is not None for source in self.sources]
        if any(weighted) and not all(weighted):
            missing = ", ".join(f"sources[{i}]" for i, has in enumerate(weighted) if not has)
            raise ValueError(f"set a weight on every source or on none; {missing} has none")
        names = [source.display_name for source in self.sources]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"sources share the name {repeated[0]!r}; give each a distinct name")
        return self

    max_seq_length: int = Field(DEFAULT_MAX_SEQ_LENGTH, gt=0, description="longest training sequence in tokens; longer samples are truncated")
    packing: bool = Field(True, description="pack several samples into one sequence (faster; samples never attend to each other)")
    assistant_only_loss: bool = Field(True, description="learn only from the assistant's replies (loss masking)")
    system_prompt: Optional[str] = Field(
        None,
        description="system message for samples that have none; null keeps the chat template's own default, "
        "an empty string gives an empty system message",
    )
    chat_template: str = Field(
        "auto",
        min_length=1,
        description=f"chat template: auto (the tokenizer's own; base models have none), a built-in "
        f"({', '.join(BUILTIN_TEMPLATE_NAMES)}) or a path to a .jinja file",
    )


class MethodSection(Section):
    type: MethodType = Field("lora", description="lora, qlora (4-bit base, CUDA only) or full fine-tuning")
    r: int = Field(16, gt=0, description="LoRA rank: the size of the small matrices trained beside each adapted layer")
    lora_alpha: float = Field(32, gt=0, description="LoRA scaling numerator (scale = alpha / r)")
    lora_dropout: float = Field(
        0.0, ge=0.0, lt=1.0,
        description="dropout on the LoRA path (0: off; drawing the masks costs time, most on the CPU)",
    )
    target_modules: Union[Literal["all-linear"], list[str]] = Field(
        "all-linear", description="which linear layers get adapters"
    )
    use_rslora: bool = Field(False, description="rank-stabilized LoRA scaling (alpha / sqrt(r))")
    use_dora: bool = Field(False, description="DoRA: weight-decomposed LoRA, sometimes better at low rank, slower")
    bnb_4bit_quant_type: Literal["nf4", "fp4"] = Field("nf4", description="QLoRA 4-bit data type")
    bnb_4bit_use_double_quant: bool = Field(True, description="quantize the quantization constants too (QLoRA)")

    @field_validator("target_modules")
    @classmethod
    def _non_empty_targets(cls, value):
        if isinstance(value, list) and not value:
            raise ValueError("needs at least one module name, or 'all-linear'")
        return value


class OptimizationSection(Section):
    learning_rate: float = Field(2e-4, gt=0, description="peak learning rate: how big each update to the weights is")
    num_train_epochs: float = Field(3, gt=0, description="passes over the training data")
    max_steps: int = Field(-1, description="stop after this many optimizer steps (-1: use epochs)")
    per_device_train_batch_size: int = Field(4, gt=0, description="samples per step on each device")
    gradient_accumulation_steps: int = Field(1, gt=0, description="steps summed before each update")
    warmup_ratio: float = Field(0.05, ge=0.0, lt=1.0, description="fraction of steps spent warming up")
    warmup_steps: int = Field(0, ge=0, description="warm-up steps (overrides warmup_ratio when > 0)")
    lr_scheduler_type: SchedulerType = Field("cosine", description="learning-rate schedule after warm-up")
    weight_decay: float = Field(0.0, ge=0.0, description="L2-style decay on weights")
    max_grad_norm: float = Field(1.0, ge=0.0, description="gradient clipping threshold (0 = off)")
    optim: OptimizerName = Field(
        "adamw_torch",
        description="optimizer; adamw_torch runs PyTorch's fused AdamW; the 8-bit and paged ones (bitsandbytes, CUDA) save optimizer memory",
    )
    neftune_noise_alpha: Optional[float] = Field(None, gt=0, description="NEFTune embedding noise (off when empty)")
    gradient_checkpointing: bool = Field(False, description="recompute activations to save memory (~30% slower)")
    torch_compile: bool = Field(
        False,
        description="compile the model's repeated layers with torch.compile before the first step (regional "
        "compilation; needs a C++ compiler on the CPU, Triton on GPUs): faster steps after a one-off compile",
    )
    use_liger_kernel: bool = Field(
        False,
        description="Liger's Triton kernels for RMSNorm, RoPE, SwiGLU and cross-entropy (CUDA GPUs; "
        "pip install 'sft-workbench[liger]')",
    )
    seed: int = Field(42, ge=0, le=2**32 - 1, description="random seed for shuffling, splits and initialization")
    extra: dict[str, Any] = Field(
        default_factory=dict,
        description="any other TrainingArguments field, passed through as is (e.g. {adam_beta2: 0.95, dataloader_num_workers: 2})",
    )

    @field_validator("max_steps")
    @classmethod
    def _max_steps_positive_or_off(cls, value: int) -> int:
        if value == 0 or value < -1:
            raise ValueError("must be a positive number of steps, or -1 to use num_train_epochs")
        return value


class EvaluationSection(Section):
    eval_steps: int = Field(20, gt=0, description="evaluate every N optimizer steps")
    save_steps: int = Field(20, gt=0, description="save a checkpoint every N optimizer steps")
    logging_steps: int = Field(1, gt=0, description="log train loss every N steps")
    per_device_eval_batch_size: int = Field(8, gt=0, description="samples per eval step on each device")
    early_stopping_patience: Optional[int] = Field(
        None, gt=0, description="stop after eval loss fails to improve this many evaluations (off when empty)"
    )
    load_best_model_at_end: bool = Field(True, description="keep the checkpoint with the lowest eval loss as 'best'")
    save_total_limit: int = Field(2, gt=0, description="keep the last K checkpoints (plus the best)")
    sample_max_new_tokens: int = Field(48, gt=0, description="length of prompt-deck generations at each evaluation")
    deck_expected: list[str] = Field(
        default_factory=list,
        description="expected answers for the prompt deck, one line per prompt in deck order: accepted answers "
        "separated by '|', '-' for a prompt not scored; the monitor shows the deck's hit rate at each evaluation",
    )
    eval_file: Optional[str] = Field(
        None,
        description="questions `workbench eval` asks besides the validation rows (JSONL: prompt with expect_any, "
        "regex or reference; or any data file)",
    )
    report_to: Union[Literal["none"], Tracker, list[Tracker]] = Field(
        "none", description="experiment trackers that also get the logs: none, tensorboard, wandb, mlflow, or a list"
    )


class DevicesSection(Section):
    gpus: Union[Literal["all"], list[int]] = Field("all", description="which GPUs (indices) training, chat and export use")
    num_processes: int = Field(
        1, gt=0,
        description="training processes in all, one per GPU (on every machine together); "
        ">1 starts them with accelerate launch (data-parallel, DDP)",
    )
    use_cpu: bool = Field(False, description="train on the CPU even when a GPU is present")
    accelerate_config: Optional[str] = Field(
        None,
        description="an accelerate config file (from `accelerate config`) that `workbench train` hands to "
        "accelerate launch: num_machines, machine_rank, main_process_ip/port for several machines",
    )
    deepspeed: Optional[str] = Field(
        None,
        description="DeepSpeed for the Trainer: zero2 or zero3 (ZeRO configs shipped with the workbench) "
        "or the path of a DeepSpeed JSON config",
    )
    fsdp: Optional[str] = Field(
        None, description="FSDP for the Trainer: its sharding options (e.g. 'full_shard auto_wrap', 'shard_grad_op')"
    )
    fsdp_config: dict[str, Any] = Field(
        default_factory=dict,
        description="the Trainer's fsdp_config, e.g. {transformer_layer_cls_to_wrap: [LlamaDecoderLayer], "
        "activation_checkpointing: true}",
    )


class RunConfig(Section):
    """One training run: what the Hyperparameters form edits, the Memory pane estimates and `workbench train` runs."""

    name: str = Field("run", min_length=1, description="run name, used in the run directory")
    model: ModelSection = Field(default_factory=ModelSection)
    data: DataSection = Field(default_factory=DataSection)
    method: MethodSection = Field(default_factory=MethodSection)
    optimization: OptimizationSection = Field(default_factory=OptimizationSection)
    evaluation: EvaluationSection = Field(default_factory=EvaluationSection)
    devices: DevicesSection = Field(default_factory=DevicesSection)
    prompts: list[str] = Field(default_factory=list, description="prompt deck generated at each evaluation")

    @property
    def effective_batch_size(self) -> int:
        o = self.optimization
        return o.per_device_train_batch_size * o.gradient_accumulation_steps * self.devices.num_processes
