"""The run config shown in Hugging Face's terms, for the Launch tab and `workbench config show --as`:
the `TrainingArguments`, `LoraConfig` and `from_pretrained` calls the trainer makes (built by
`workbench.config.hf_arguments`, the same builder the trainer calls), the command that runs it,
and the YAML. Plain strings; nothing heavy is imported.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.config.distributed import launch_command
from workbench.config.hf_arguments import (
    display_facts,
    from_pretrained_kwargs,
    lora_config_kwargs,
    tracking_environment,
    training_arguments_kwargs,
    workbench_trainer_kwargs,
)
from workbench.config.io import config_to_yaml
from workbench.config.schema import RunConfig
from workbench.models import DEFAULT_MODEL_ALIASES, default_model_cache, is_default_model_cached

if TYPE_CHECKING:
    from workbench.devices import DeviceReport


def resolve_precision(config: RunConfig, devices: DeviceReport | None = None) -> tuple[str, str | None]:
    """(dtype the weights load in, autocast dtype or None), as the trainer resolves it on `devices`."""
    precision = display_facts(config, devices).precision
    return precision.weights, precision.autocast


def format_call(callable_name: str, kwargs: dict[str, Any] | None) -> str:
    """`Name(\\n    key=value,\\n)` as Python source, for display."""
    if kwargs is None:
        return f"# {callable_name}: not used (full fine-tuning trains every weight)"
    lines = [f"{callable_name}("]
    for key, value in kwargs.items():
        if key == "quantization_config" and isinstance(value, dict):
            inner = ", ".join(f"{k}={v!r}" for k, v in value.items())
            lines.append(f"    {key}=BitsAndBytesConfig({inner}),")
        else:
            lines.append(f"    {key}={value!r},")
    lines.append(")")
    return "\n".join(lines)


def _model_location(name: str) -> str:
    """The default model's converted directory when it exists (converting takes ~25 s, so never here)."""
    if name in DEFAULT_MODEL_ALIASES and is_default_model_cached():
        return str(default_model_cache())
    return name


def _training_view(config: RunConfig, devices: DeviceReport | None) -> str:
    facts = display_facts(config, devices)
    lines = [format_call("TrainingArguments", training_arguments_kwargs(config, facts)), ""]
    lines.append("# Done by the workbench's trainer instead of Trainer's own options:")
    lines += [f"#   {key}={value!r}" for key, value in workbench_trainer_kwargs(config, facts).items()]
    environment = tracking_environment(config, facts)
    if environment:
        lines.append("# Tracker logs under the run directory (environment of the trainer process):")
        lines += [f"#   {name}={value}" for name, value in environment.items()]
    return "\n".join(lines)


def render(config: RunConfig, view: str, *, config_path: str | Path | None = None, devices: DeviceReport | None = None) -> str:
    """One of the views `workbench config show --as` and the pane offer: yaml, training-args, lora,
    model or command."""
    if view == "yaml":
        return config_to_yaml(config).rstrip("\n")
    if view == "training-args":
        return _training_view(config, devices)
    if view == "lora":
        return format_call("LoraConfig", lora_config_kwargs(config))
    if view == "model":
        arguments = {"pretrained_model_name_or_path": _model_location(config.model.name_or_path)}
        return format_call("AutoModelForCausalLM.from_pretrained", {**arguments, **from_pretrained_kwargs(config, devices=devices)})
    if view == "command":
        return launch_command(config, config_path)
    raise ValueError(f"unknown view {view!r}")
