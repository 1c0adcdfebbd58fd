"""The one builder from a RunConfig to the Hugging Face objects a run is made of:
`TrainingArguments`, PEFT `LoraConfig`, `BitsAndBytesConfig` and the `from_pretrained` keyword
arguments, plus the options the workbench's own trainer takes instead of Trainer's.

The trainer (`workbench.training.run`, `workbench.training.model_setup`), the Hyperparameters
pane's Launch tab and `workbench config show --as training-args|lora|model` all call these
functions, so what is shown is what runs, and the run directory records what the Trainer got
(`training_args.json`, see `arguments_record`).

The `*_kwargs` functions build plain dicts and import nothing heavy (the Launch tab shows them);
the `build_*` functions make the real objects. What only a started run knows (its directory, the
world size, whether any eval rows came out of the split, the local rank) comes in `RunFacts`: the
trainer passes what it found (`run_facts`), a display its best knowledge (`display_facts`).

`optimization.extra` passes any other TrainingArguments field through; `pass_through_problems`
checks its keys and value types against TrainingArguments' own dataclass fields.
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import workbench.devices
from workbench.config.distributed import trainer_arguments as distributed_trainer_arguments
from workbench.config.optimizers import OPTIMIZERS
from workbench.config.schema import RunConfig
from workbench.errors import WorkbenchError
from workbench.known_errors import first_line
from workbench.paths import runs_dir
from workbench.precision import DTYPE_NAMES, TrainingPrecision, resolve_training_precision, torch_dtype
from workbench.config.attention import run_attention
from workbench.runs.rundir import CHECKPOINTS_DIR, LOGS_DIR

if TYPE_CHECKING:
    from workbench.devices import DeviceReport

RUN_DIR_PLACEHOLDER = "<YYYYmmdd-HHMMSS>-{name}"
"""How a display names the run directory that `workbench train` will create."""

CONFIG_FIELDS: dict[str, str] = {
    "per_device_train_batch_size": "optimization.per_device_train_batch_size",
    "per_device_eval_batch_size": "evaluation.per_device_eval_batch_size",
    "gradient_accumulation_steps": "optimization.gradient_accumulation_steps",
    "learning_rate": "optimization.learning_rate",
    "num_train_epochs": "optimization.num_train_epochs",
    "max_steps": "optimization.max_steps",
    "lr_scheduler_type": "optimization.lr_scheduler_type",
    "warmup_steps": "optimization.warmup_steps (or optimization.warmup_ratio)",
    "weight_decay": "optimization.weight_decay",
    "max_grad_norm": "optimization.max_grad_norm",
    "optim": "optimization.optim",
    "activation_checkpointing": "optimization.gradient_checkpointing",
    "gradient_checkpointing": "optimization.gradient_checkpointing",
    "torch_compile": "optimization.torch_compile",
    "use_liger_kernel": "optimization.use_liger_kernel",
    "neftune_noise_alpha": "optimization.neftune_noise_alpha (the workbench applies it per packed sample)",
    "seed": "optimization.seed",
    "data_seed": "optimization.seed",
    "logging_steps": "evaluation.logging_steps",
    "eval_steps": "evaluation.eval_steps",
    "save_steps": "evaluation.save_steps",
    "save_total_limit": "evaluation.save_total_limit (the workbench keeps the newest checkpoints and the best)",
    "load_best_model_at_end": "evaluation.load_best_model_at_end",
    "metric_for_best_model": "evaluation.load_best_model_at_end (the best is the lowest eval loss)",
    "greater_is_better": "evaluation.load_best_model_at_end (the best is the lowest eval loss)",
    "report_to": "evaluation.report_to",
    "run_name": "name (trackers name the run after its directory)",
    "use_cpu": "devices.use_cpu",
    "bf16": "model.precision",
    "fp16": "model.precision",
    "deepspeed": "devices.deepspeed",
    "fsdp": "devices.fsdp",
    "fsdp_config": "devices.fsdp_config",
    "output_dir": "the run directory (workbench train --run-dir)",
    "resume_from_checkpoint": "workbench train --resume RUN_DIR",
    "local_rank": "the launcher (torchrun sets it per process)",
}
"""TrainingArguments fields the workbench sets from its own config -> where to change them.
`optimization.extra` refuses these keys, naming the field to use."""

TRAINER_NEEDS: dict[str, str] = {
    "eval_strategy": "the workbench evaluates every evaluation.eval_steps steps when there is eval data",
    "save_strategy": "the workbench saves every evaluation.save_steps steps",
    "logging_strategy": "the workbench logs every evaluation.logging_steps steps",
    "logging_first_step": "the Train pane plots the first step",
    "logging_nan_inf_filter": "a NaN loss must reach the run's status, not be filtered out",
    "include_num_input_tokens_seen": "the workbench counts non-padding tokens for tokens/s",
    "disable_tqdm": "progress goes to events.jsonl and the trainer's own lines",
    "remove_unused_columns": "the workbench's collator reads the rows as they are",
    "label_names": "the workbench's loss reads `labels`",
}
"""TrainingArguments fields the workbench's trainer depends on -> why they cannot be changed."""


@dataclass(frozen=True)
class RunFacts:
    """What only a started run knows; a display passes its best knowledge.

    Attributes:
        run_dir: the run directory (a display may name a placeholder).
        on_gpu: the run trains on CUDA GPUs.
        world_size: training processes.
        has_eval: there are validation rows to evaluate on.
        precision: the resolved `model.precision`.
        local_rank: this process's GPU (QLoRA places the quantized model on it).
    """

    run_dir: str
    on_gpu: bool
    world_size: int
    has_eval: bool
    precision: TrainingPrecision
    local_rank: int = 0

    @property
    def output_dir(self) -> str:
        return str(Path(self.run_dir) / CHECKPOINTS_DIR)

    @property
    def logging_dir(self) -> str:
        return str(Path(self.run_dir) / LOGS_DIR)


def expects_eval_data(config: RunConfig) -> bool:
    """The config asks for validation data (a file, or a share of the training rows held out)."""
    return bool(config.data.validation_file) or config.data.validation_split > 0


def _devices(devices: "DeviceReport | None") -> "DeviceReport":
    if devices is not None:
        return devices
    return workbench.devices.detect_devices()


def run_facts(
    config: RunConfig, run_dir: str | Path, *, on_gpu: bool, world_size: int, has_eval: bool,
    local_rank: int = 0, devices: "DeviceReport | None" = None,
) -> RunFacts:
    """The facts of a started run, as the trainer found them."""
    precision = resolve_training_precision(config.model.precision, _devices(devices), on_gpu, config.method.type)
    return RunFacts(str(run_dir), on_gpu, world_size, has_eval, precision, local_rank)


def display_facts(
    config: RunConfig, devices: "DeviceReport | None" = None, run_dir: str | Path | None = None
) -> RunFacts:
    """Best knowledge before a run starts: this machine's devices, the configured process count,
    eval data when the config asks for it, and a placeholder for the run directory."""
    report = _devices(devices)
    on_gpu = report.has_cuda and not config.devices.use_cpu
    if run_dir is None:
        run_dir = runs_dir() / RUN_DIR_PLACEHOLDER.format(name=config.name)
    return run_facts(
        config, run_dir, on_gpu=on_gpu, world_size=config.devices.num_processes,
        has_eval=expects_eval_data(config), devices=report,
    )


def report_to(config: RunConfig) -> list[str]:
    """The trackers the Trainer reports to (an empty list for none)."""
    value = config.evaluation.report_to
    if value == "none":
        return []
    return [value] if isinstance(value, str) else list(value)


# -- plain dicts (cheap) -----------------------------------------------------------------------


def training_arguments_kwargs(
    config: RunConfig, facts: RunFacts | None = None, *, devices: "DeviceReport | None" = None
) -> dict[str, Any]:
    """Keyword arguments for `transformers.TrainingArguments`: exactly what the trainer passes.

    transformers 5 dropped `warmup_ratio`: a `warmup_steps` below 1 is read as a fraction of the run.
    Checkpoint pruning, the best checkpoint, early stopping and NEFTune are done by the workbench's
    trainer (`workbench_trainer_kwargs`), so Trainer's own versions stay off. `optimization.extra`
    comes last; it may change the defaults at the end of this dict but no field the config owns.

    Args:
        facts: the run's facts; None for a display on `devices` (detected when None).
    """
    if facts is None:
        facts = display_facts(config, devices)
    o, e = config.optimization, config.evaluation
    several = facts.world_size > 1
    trackers = report_to(config)
    kwargs: dict[str, Any] = {
        "output_dir": facts.output_dir,
        "run_name": Path(facts.run_dir).name,
        "per_device_train_batch_size": o.per_device_train_batch_size,
        "per_device_eval_batch_size": e.per_device_eval_batch_size,
        "gradient_accumulation_steps": o.gradient_accumulation_steps,
        "learning_rate": o.learning_rate,
        "num_train_epochs": o.num_train_epochs,
        "max_steps": o.max_steps,
        "lr_scheduler_type": o.lr_scheduler_type,
        "warmup_steps": o.warmup_steps if o.warmup_steps > 0 else o.warmup_ratio,
        "weight_decay": o.weight_decay,
        "max_grad_norm": o.max_grad_norm,
        "optim": OPTIMIZERS[o.optim].training_arguments,
        # transformers 5.23 renamed gradient_checkpointing (the old name still works, with a warning).
        "activation_checkpointing": o.gradient_checkpointing,
        # regional compilation: the workbench's trainer asks accelerate to compile the repeated layers
        "torch_compile": o.torch_compile,
        "use_liger_kernel": o.use_liger_kernel,
        "seed": o.seed,
        "data_seed": o.seed,
        "logging_strategy": "steps",
        "logging_steps": e.logging_steps,
        "logging_first_step": True,
        "logging_nan_inf_filter": False,
        "eval_strategy": "steps" if facts.has_eval else "no",
        "eval_steps": e.eval_steps,
        "save_strategy": "steps",
        "save_steps": e.save_steps,
        "save_total_limit": None,  # the workbench prunes, keeping the best and never a half-deleted one
        "load_best_model_at_end": False,  # the workbench picks the best checkpoint itself
        "include_num_input_tokens_seen": "non_padding",
        "report_to": trackers or "none",
        "disable_tqdm": True,
        "remove_unused_columns": False,
        "label_names": ["labels"],
        "use_cpu": not facts.on_gpu,
        "bf16": facts.precision.autocast == "bf16",
        "fp16": facts.precision.autocast == "fp16",
        # DeepSpeed (zero2/zero3 resolved to the shipped JSON files), FSDP with its fsdp_config
        **distributed_trainer_arguments(config),
        # defaults that optimization.extra may change
        "activation_checkpointing_kwargs": {"use_reentrant": False} if o.gradient_checkpointing else None,
        "ddp_backend": ("gloo" if not facts.on_gpu else None) if several else None,
        "ddp_find_unused_parameters": False if several else None,
        "dataloader_pin_memory": facts.on_gpu,
    }
    kwargs.update(o.extra)
    return kwargs


def workbench_trainer_kwargs(config: RunConfig, facts: RunFacts | None = None) -> dict[str, Any]:
    """What the workbench's trainer does itself instead of Trainer (shown beside TrainingArguments).

    neftune_alpha: NEFTune noise, scaled per packed sample (alpha / sqrt(sample length · hidden)).
    keep_checkpoints: the newest checkpoints kept, besides the best one.
    keep_best: adapter/ is the lowest-eval-loss checkpoint's (needs eval data).
    early_stopping_patience: evaluations without improvement before the run stops.
    """
    e = config.evaluation
    has_eval = facts.has_eval if facts is not None else expects_eval_data(config)
    return {
        "neftune_alpha": config.optimization.neftune_noise_alpha,
        "keep_checkpoints": e.save_total_limit,
        "keep_best": e.load_best_model_at_end and has_eval,
        "early_stopping_patience": e.early_stopping_patience,
    }


def tracking_environment(config: RunConfig, facts: RunFacts) -> dict[str, str]:
    """Environment the trainer sets so each tracker writes under the run directory's logs/.

    transformers 5.23's TensorBoard callback reads TENSORBOARD_LOGGING_DIR (TrainingArguments has no
    logging_dir any more). W&B and MLflow keep a user's own WANDB_DIR / MLFLOW_TRACKING_URI
    (a server, say); the trainer only fills them in when unset.
    """
    trackers = report_to(config)
    environment = {}
    if "tensorboard" in trackers:
        environment["TENSORBOARD_LOGGING_DIR"] = facts.logging_dir
    if "wandb" in trackers:
        environment["WANDB_DIR"] = facts.logging_dir
    if "mlflow" in trackers:
        environment["MLFLOW_TRACKING_URI"] = Path(facts.logging_dir, "mlruns").absolute().as_uri()
    return environment


OVERRIDING_ENVIRONMENT = ("TENSORBOARD_LOGGING_DIR",)
"""Of `tracking_environment`, the variables set even when the user has one: the run's TensorBoard
events always land in its own logs/ folder, where the Train pane says they are."""


def lora_config_kwargs(config: RunConfig, extra_peft_kwargs: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
    """Keyword arguments for `peft.LoraConfig`, or None for full fine-tuning.

    Args:
        extra_peft_kwargs: further LoraConfig fields that depend on the run (e.g.
            `trainable_token_indices` for new special tokens), added last.
    """
    method = config.method
    if method.type == "full":
        return None
    kwargs: dict[str, Any] = {
        "task_type": "CAUSAL_LM",
        "r": method.r,
        "lora_alpha": method.lora_alpha,
        "lora_dropout": method.lora_dropout,
        "target_modules": method.target_modules,
        "use_rslora": method.use_rslora,
        "use_dora": method.use_dora,
        "bias": "none",
    }
    kwargs.update(extra_peft_kwargs or {})
    return kwargs


def quantization_config_kwargs(config: RunConfig, facts: RunFacts | None = None, *, devices: "DeviceReport | None" = None) -> dict[str, Any] | None:
    """Keyword arguments for `transformers.BitsAndBytesConfig` (QLoRA), dtypes by name; else None.

    The 4-bit weights compute (and are stored) in the run's half type; bf16 when the run is fp32,
    since bitsandbytes' 4-bit matmuls have no fp32 path worth taking.
    """
    if config.method.type != "qlora":
        return None
    if facts is None:
        facts = display_facts(config, devices)
    compute = facts.precision.compute if facts.precision.compute != "fp32" else "bf16"
    return {
        "load_in_4bit": True,
        "bnb_4bit_quant_type": config.method.bnb_4bit_quant_type,
        "bnb_4bit_use_double_quant": config.method.bnb_4bit_use_double_quant,
        "bnb_4bit_compute_dtype": DTYPE_NAMES[compute],
        "bnb_4bit_quant_storage": DTYPE_NAMES[compute],
    }


def from_pretrained_kwargs(config: RunConfig, facts: RunFacts | None = None, *, devices: "DeviceReport | None" = None) -> dict[str, Any]:
    """Keyword arguments for `AutoModelForCausalLM.from_pretrained` (dtypes by name; QLoRA's
    `quantization_config` as `BitsAndBytesConfig` keyword arguments)."""
    if facts is None:
        facts = display_facts(config, devices)
    kwargs: dict[str, Any] = {
        "dtype": DTYPE_NAMES[facts.precision.weights],
        "attn_implementation": run_attention(config, facts),
        "trust_remote_code": config.model.trust_remote_code,
        "use_safetensors": True,
    }
    quantization = quantization_config_kwargs(config, facts)
    if quantization is not None:
        kwargs["dtype"] = quantization["bnb_4bit_compute_dtype"]
        kwargs["quantization_config"] = quantization
        kwargs["device_map"] = {"": facts.local_rank}
    return kwargs


# -- real objects (import transformers / peft) ------------------------------------------------


def build_training_arguments(config: RunConfig, facts: RunFacts):
    """The `TrainingArguments` the Trainer gets; pass-through problems raise one WorkbenchError."""
    problems = pass_through_problems(config, construct=False)
    if problems:
        raise WorkbenchError("\n".join(f"{field}: {message}" for field, message in problems))
    from transformers import TrainingArguments

    try:
        return TrainingArguments(**training_arguments_kwargs(config, facts))
    except ValueError as error:
        if not config.optimization.extra:
            raise
        raise WorkbenchError(f"optimization.extra: TrainingArguments refuses these settings: {first_line(error)}") from None


def build_lora_config(config: RunConfig, extra_peft_kwargs: Mapping[str, Any] | None = None):
    """The `peft.LoraConfig`, or None for full fine-tuning."""
    kwargs = lora_config_kwargs(config, extra_peft_kwargs)
    if kwargs is None:
        return None
    from peft import LoraConfig

    return LoraConfig(**kwargs)


def build_from_pretrained_arguments(config: RunConfig, facts: RunFacts) -> dict[str, Any]:
    """`from_pretrained` keyword arguments with torch dtypes and a real `BitsAndBytesConfig`."""
    kwargs = from_pretrained_kwargs(config, facts)
    kwargs["dtype"] = torch_dtype(_short_dtype(kwargs["dtype"]))
    if "quantization_config" in kwargs:
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(**kwargs["quantization_config"])
    return kwargs


def _short_dtype(torch_name: str) -> str:
    return next(short for short, name in DTYPE_NAMES.items() if name == torch_name)


def arguments_record(
    training_arguments, lora_config, from_pretrained: Mapping[str, Any], workbench_trainer: Mapping[str, Any]
) -> dict[str, Any]:
    """What `training_args.json` holds: the Trainer's arguments (`TrainingArguments.to_dict()`),
    the LoraConfig, the from_pretrained arguments with the quantization config, and the workbench
    trainer's own options, all as JSON values."""
    loading = dict(from_pretrained)
    quantization = loading.pop("quantization_config", None)
    return json_safe({
        "training_arguments": training_arguments.to_dict(),
        "lora_config": lora_config.to_dict() if lora_config is not None else None,
        "quantization_config": quantization.to_dict() if hasattr(quantization, "to_dict") else quantization,
        "from_pretrained": loading,
        "workbench_trainer": dict(workbench_trainer),
    })


def json_safe(value: Any) -> Any:
    """The value as JSON data: enums by value, sets as sorted lists, dtypes and other objects as text."""
    if isinstance(value, Mapping):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    if isinstance(value, (set, frozenset)):
        return sorted(json_safe(item) for item in value)
    if isinstance(value, enum.Enum):
        return json_safe(value.value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    text = str(value)
    return text.removeprefix("torch.")


# -- pass-through checks ------------------------------------------------------------------------


def pass_through_problems(
    config: RunConfig, *, construct: bool = True, devices: "DeviceReport | None" = None
) -> list[tuple[str, str]]:
    """(dotted field, message) for each `optimization.extra` entry TrainingArguments cannot take:
    a key it does not have (with a did-you-mean), one the workbench sets from its own config
    (naming that field), or a value of the wrong type. With `construct`, a TrainingArguments is
    then built from the whole config, so settings it refuses together (tf32 without an Ampere
    GPU, say) are found before a run starts. Imports transformers only when there is an extra."""
    extra = config.optimization.extra
    if not extra:
        return []
    import difflib

    fields = training_argument_fields()
    problems = []
    for key, value in extra.items():
        where = f"optimization.extra.{key}"
        if key in CONFIG_FIELDS:
            problems.append((where, f"the workbench sets TrainingArguments.{key} from {CONFIG_FIELDS[key]}; set it there"))
        elif key in TRAINER_NEEDS:
            problems.append((where, f"cannot be changed: {TRAINER_NEEDS[key]}"))
        elif key not in fields:
            close = difflib.get_close_matches(key, list(fields), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            problems.append((where, f"not a TrainingArguments field (transformers {_transformers_version()}){hint}"))
        elif not _accepts(value, fields[key]):
            problems.append((where, f"TrainingArguments expects {_type_name(fields[key])}, got {value!r}"))
    if problems or not construct:
        return problems
    from transformers import TrainingArguments

    # Probed as one process: with several, TrainingArguments sets up DDP, which needs the process
    # group only the launched ranks have ("Default process group has not been initialized").
    facts = dataclasses.replace(display_facts(config, devices), world_size=1)
    try:
        TrainingArguments(**training_arguments_kwargs(config, facts))
    except (ValueError, TypeError) as error:
        problems.append(("optimization.extra", f"TrainingArguments refuses these settings: {first_line(error)}"))
    return problems


def training_argument_fields() -> dict[str, Any]:
    """TrainingArguments' settable dataclass fields -> their annotations."""
    from transformers import TrainingArguments

    try:
        hints = typing.get_type_hints(TrainingArguments)
    except Exception:  # an annotation that does not resolve here: fall back to the raw ones
        hints = {}
    return {field.name: hints.get(field.name, field.type) for field in dataclasses.fields(TrainingArguments) if field.init}


def _transformers_version() -> str:
    import transformers

    return transformers.__version__


def _accepts(value: Any, annotation: Any) -> bool:
    """Whether a YAML value fits a dataclass annotation; an annotation this cannot read passes (the
    TrainingArguments built from it has the last word)."""
    if annotation is Any or isinstance(annotation, str):
        return True
    if annotation is None or annotation is type(None):
        return value is None
    origin = typing.get_origin(annotation)
    arguments = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_accepts(value, argument) for argument in arguments)
    if origin is typing.Literal:
        return value in arguments
    if origin in (list, tuple):
        return isinstance(value, list) and (not arguments or all(_accepts(item, arguments[0]) for item in value))
    if origin is dict:
        return isinstance(value, dict)
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return value in {member.value for member in annotation}
    if isinstance(annotation, type):
        return isinstance(value, annotation)
    return True


def _type_name(annotation: Any) -> str:
    if isinstance(annotation, type) and not typing.get_args(annotation):
        return annotation.__name__
    import re

    return re.sub(r"\b(?:[A-Za-z_]\w*\.)+(\w+)", r"\1", str(annotation)).replace("NoneType", "None")
