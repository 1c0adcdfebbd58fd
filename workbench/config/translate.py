"""The run config in Hugging Face's terms: `TrainingArguments`, PEFT `LoraConfig`, the model's
`from_pretrained` arguments (with `BitsAndBytesConfig` for QLoRA), and the command that runs it.

These are plain dicts and strings (nothing heavy is imported), so the Hyperparameters pane and
`workbench config show` can display them; a test builds the real objects from them.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.config.schema import RunConfig
from workbench.paths import runs_dir

if TYPE_CHECKING:
    from workbench.devices import DeviceReport

def resolve_precision(config: RunConfig, devices: DeviceReport | None = None) -> tuple[str, str | None]:
    """(dtype the weights load in, autocast dtype or None), exactly as the trainer resolves it
    (`workbench.training.model_setup.training_precision`)."""
    from workbench.training.model_setup import training_precision

    report = _devices(devices)
    precision = training_precision(config.model.precision, report, _uses_gpu(config, report), config.method.type)
    return precision.weights, precision.autocast


def _devices(devices: DeviceReport | None) -> DeviceReport:
    if devices is not None:
        return devices
    from workbench.devices import detect_devices

    return detect_devices()


def _uses_gpu(config: RunConfig, devices: DeviceReport | None) -> bool:
    return not config.devices.use_cpu and _devices(devices).has_cuda


def training_arguments_kwargs(
    config: RunConfig, *, output_dir: str | None = None, devices: DeviceReport | None = None
) -> dict[str, Any]:
    """Keyword arguments for `transformers.TrainingArguments` equivalent to this config.

    transformers 5 dropped `warmup_ratio`: a `warmup_steps` below 1 is read as a fraction of the run.
    The trainer keeps checkpoints and the best one itself; here they appear as the equivalent
    `save_total_limit` / `load_best_model_at_end`.
    """
    from workbench.training.model_setup import OPTIMIZER_NAMES

    optimization, evaluation = config.optimization, config.evaluation
    _, autocast = resolve_precision(config, devices)
    on_gpu = _uses_gpu(config, devices)
    has_eval = bool(config.data.validation_file) or config.data.validation_split > 0
    kwargs: dict[str, Any] = {
        "output_dir": output_dir or str(runs_dir() / f"<YYYYmmdd-HHMMSS>-{config.name}" / "checkpoints"),
        "learning_rate": optimization.learning_rate,
        "num_train_epochs": optimization.num_train_epochs,
        "max_steps": optimization.max_steps,
        "per_device_train_batch_size": optimization.per_device_train_batch_size,
        "per_device_eval_batch_size": evaluation.per_device_eval_batch_size,
        "gradient_accumulation_steps": optimization.gradient_accumulation_steps,
        "warmup_steps": optimization.warmup_steps if optimization.warmup_steps > 0 else optimization.warmup_ratio,
        "lr_scheduler_type": optimization.lr_scheduler_type,
        "weight_decay": optimization.weight_decay,
        "max_grad_norm": optimization.max_grad_norm,
        "optim": OPTIMIZER_NAMES[optimization.optim],
        "neftune_noise_alpha": optimization.neftune_noise_alpha,
        # transformers 5.23 renamed gradient_checkpointing (the old name still works, with a warning).
        "activation_checkpointing": optimization.gradient_checkpointing,
        "seed": optimization.seed,
        "bf16": autocast == "bf16",
        "fp16": autocast == "fp16",
        "use_cpu": not on_gpu,
        "eval_strategy": "steps" if has_eval else "no",
        "eval_steps": evaluation.eval_steps,
        "save_strategy": "steps",
        "save_steps": evaluation.save_steps,
        "save_total_limit": evaluation.save_total_limit,
        "logging_steps": evaluation.logging_steps,
        "load_best_model_at_end": evaluation.load_best_model_at_end and has_eval,
        "metric_for_best_model": "eval_loss",
        "greater_is_better": False,
        "report_to": "none",
    }
    if config.devices.num_processes > 1 and not on_gpu:
        kwargs["ddp_backend"] = "gloo"
    if config.devices.deepspeed:
        kwargs["deepspeed"] = config.devices.deepspeed
    if config.devices.fsdp:
        kwargs["fsdp"] = config.devices.fsdp
    return kwargs


def lora_config_kwargs(config: RunConfig) -> dict[str, Any] | None:
    """Keyword arguments for `peft.LoraConfig`, or None for full fine-tuning."""
    method = config.method
    if method.type == "full":
        return None
    return {
        "task_type": "CAUSAL_LM",
        "r": method.r,
        "lora_alpha": method.lora_alpha,
        "lora_dropout": method.lora_dropout,
        "target_modules": method.target_modules,
        "use_rslora": method.use_rslora,
        "use_dora": method.use_dora,
        "bias": "none",
    }


def model_kwargs(config: RunConfig, devices: DeviceReport | None = None) -> dict[str, Any]:
    """Keyword arguments for `AutoModelForCausalLM.from_pretrained`; QLoRA's `quantization_config`
    is given as `BitsAndBytesConfig` keyword arguments."""
    weights, autocast = resolve_precision(config, devices)
    kwargs: dict[str, Any] = {
        "dtype": {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}[weights],
        "attn_implementation": config.model.attn_implementation,
        "trust_remote_code": config.model.trust_remote_code,
        "use_safetensors": True,
    }
    if config.method.type == "qlora":
        compute = {"bf16": "bfloat16", "fp16": "float16"}.get(autocast or weights, "bfloat16")
        kwargs["dtype"] = compute
        kwargs["quantization_config"] = {
            "load_in_4bit": True,
            "bnb_4bit_quant_type": config.method.bnb_4bit_quant_type,
            "bnb_4bit_use_double_quant": config.method.bnb_4bit_use_double_quant,
            "bnb_4bit_compute_dtype": compute,
        }
    return kwargs


def launch_command(config: RunConfig, config_path: str | Path | None = None) -> str:
    """The shell command that trains this config headless (what "Start training" runs). It reads
    devices.gpus and starts one process per device itself, so no launcher or environment is needed."""
    path = shlex.quote(str(config_path)) if config_path else "CONFIG.yaml"
    return f"workbench train {path}"


def format_call(callable_name: str, kwargs: dict[str, Any] | None) -> str:
    """`Name(\\n    key=value,\\n)` as Python source, for display."""
    if kwargs is None:
        return f"# {callable_name}: not used (full fine-tuning trains every weight)"
    lines = [f"{callable_name}("]
    for key, value in kwargs.items():
        if isinstance(value, dict):
            inner = ", ".join(f"{k}={v!r}" for k, v in value.items())
            lines.append(f"    {key}=BitsAndBytesConfig({inner}),")
        else:
            lines.append(f"    {key}={value!r},")
    lines.append(")")
    return "\n".join(lines)


def _model_location(name: str) -> str:
    """The default model's converted directory when it exists (converting takes ~25 s, so never here)."""
    from workbench.models import DEFAULT_MODEL_ALIASES, default_model_cache, is_default_model_cached

    if name in DEFAULT_MODEL_ALIASES and is_default_model_cached():
        return str(default_model_cache())
    return name


def render(config: RunConfig, view: str, *, config_path: str | Path | None = None, devices: DeviceReport | None = None) -> str:
    """One of the views `workbench config show --as` and the pane offer: yaml, training-args, lora,
    model or command."""
    if view == "yaml":
        from workbench.config.io import config_to_yaml

        return config_to_yaml(config).rstrip("\n")
    if view == "training-args":
        return format_call("TrainingArguments", training_arguments_kwargs(config, devices=devices))
    if view == "lora":
        return format_call("LoraConfig", lora_config_kwargs(config))
    if view == "model":
        arguments = {"pretrained_model_name_or_path": _model_location(config.model.name_or_path)}
        return format_call("AutoModelForCausalLM.from_pretrained", {**arguments, **model_kwargs(config, devices)})
    if view == "command":
        return launch_command(config, config_path)
    raise ValueError(f"unknown view {view!r}")


VIEWS = ("yaml", "training-args", "lora", "model", "command")
