"""Conversions both dialects need: Hugging Face optimizer and scheduler names, trackers, DeepSpeed
files, precision flags and output directories, each read against the workbench's own tables."""

from __future__ import annotations

import json
import typing
from pathlib import Path
from typing import Any, Optional

from workbench.config.dialects import Translation
from workbench.config.distributed import DEEPSPEED_PRESETS, deepspeed_config_file
from workbench.config.optimizers import OPTIMIZERS
from workbench.config.schema import SchedulerType, Tracker
from workbench.data.data_refs import resolve_data_ref
from workbench.errors import WorkbenchError

OPTIMIZER_ALIASES = {
    "adamw_8bit": ("adamw_8bit", ""),
}
"""HF optimizer names the table in workbench.config.optimizers does not list, read as ours."""


def optimizer(name: str) -> tuple[Optional[str], str]:
    """(the config's optimization.optim, a note) for a TrainingArguments / bitsandbytes optimizer name."""
    for ours, entry in OPTIMIZERS.items():
        if name in (entry.training_arguments, ours):
            return ours, ""
    if name in OPTIMIZER_ALIASES:
        return OPTIMIZER_ALIASES[name]
    return None, f"optimizer {name} is not one the workbench offers ({', '.join(OPTIMIZERS)})"


def map_optimizer(translation: Translation, key: str, value: Any) -> None:
    ours, note = optimizer(str(value))
    if ours is None:
        translation.drop(key, f"{note}; the workbench's adamw_torch is used")
    else:
        translation.map(key, {"optimization.optim": ours}, note)


def scheduler_names() -> tuple[str, ...]:
    return typing.get_args(SchedulerType)


def map_scheduler(translation: Translation, key: str, value: Any) -> None:
    name = str(value).lower()
    if name in scheduler_names():
        translation.map(key, {"optimization.lr_scheduler_type": name})
    else:
        translation.drop(key, f"scheduler {value} is not one of {', '.join(scheduler_names())}")


def tracker_names() -> tuple[str, ...]:
    return typing.get_args(Tracker)


def trackers(value: Any) -> tuple[list[str], list[str]]:
    """(trackers the workbench reports to, names it has no tracker for) from a report_to value."""
    names = [value] if isinstance(value, str) else list(value or [])
    names = [str(name).strip() for name in names for name in str(name).split(",") if str(name).strip()]
    if names in (["none"], []):
        return [], []
    if "all" in names:
        return list(tracker_names()), [name for name in names if name != "all"]
    known = [name for name in names if name in tracker_names()]
    return known, [name for name in names if name not in tracker_names()]


def report_to_value(names: list[str]) -> Any:
    if not names:
        return "none"
    return names[0] if len(names) == 1 else names


def map_report_to(translation: Translation, key: str, value: Any) -> None:
    known, unknown = trackers(value)
    note = f"no tracker for {', '.join(unknown)}" if unknown else ""
    if not known and unknown:
        translation.drop(key, f"{note}; the workbench reports to {', '.join(tracker_names())} or none")
        return
    translation.map(key, {"evaluation.report_to": report_to_value(known)}, note)


def add_tracker(translation: Translation, key: str, tracker: str, why: str) -> None:
    """`key` (a tracker's project setting, say) turns the tracker on beside any already chosen."""
    current = translation.values.get("evaluation.report_to", "none")
    names = [] if current == "none" else ([current] if isinstance(current, str) else list(current))
    if tracker not in names:
        names.append(tracker)
    translation.map(key, {"evaluation.report_to": report_to_value(names)}, why)


def find_file(value: str, translation: Translation) -> Optional[Path]:
    """A path from the source file: relative to the current directory (where the tool runs), else
    to the source file's folder."""
    path = Path(value).expanduser()
    if path.is_absolute():
        return path if path.exists() else None
    for base in (Path.cwd(), translation.source.parent if translation.source else None):
        if base is not None and (base / path).exists():
            return base / path
    return None


def map_deepspeed(translation: Translation, key: str, value: Any) -> None:
    """A DeepSpeed JSON: the shipped zero2 / zero3 when it is plain ZeRO-2/3 (no offload), else the file."""
    if isinstance(value, dict):
        translation.drop(key, "an inline DeepSpeed config; save it as a JSON file and set devices.deepspeed to its path")
        return
    text = str(value)
    found = find_file(text, translation)
    stage, offload = None, False
    if found is not None:
        try:
            zero = json.loads(found.read_text(encoding="utf-8")).get("zero_optimization", {})
            stage = int(zero.get("stage", 0))
            offload = bool(zero.get("offload_optimizer") or zero.get("offload_param"))
        except (OSError, ValueError, TypeError, AttributeError):
            stage = None
    name = Path(text).name.lower()
    if stage is None and found is None:
        stage = 3 if "z3" in name or "zero3" in name else 2 if "z2" in name or "zero2" in name else None
        offload = "offload" in name
    preset = f"zero{stage}" if stage in (2, 3) and not offload else None
    note = "devices.num_processes: set it to your GPU count (DeepSpeed needs several processes)"
    if preset in DEEPSPEED_PRESETS:
        seen = "read from the file" if found is not None else "by its name; the file is not here"
        translation.map(key, {"devices.deepspeed": preset}, f"plain ZeRO-{stage} ({seen}), shipped with the workbench; {note}")
    elif found is not None:
        translation.map(key, {"devices.deepspeed": str(found if Path(text).is_absolute() else text)}, note)
    else:
        translation.map(key, {"devices.deepspeed": text}, f"no such file here; point it at your DeepSpeed JSON. {note}")


def precision(bf16: Any, fp16: Any, pure_bf16: bool = False, pure_fp16: bool = False) -> tuple[str, str]:
    """(model.precision, note) from bf16 / fp16 flags; "auto" stays auto."""
    if pure_bf16:
        return "bf16", "pure bf16, no fp32 master weights"
    if pure_fp16:
        return "fp16", "pure fp16, no fp32 master weights"
    if bf16 == "auto":
        return "auto", "bf16 where the hardware has it natively, as the source tool's auto"
    if bf16 is True:
        return "mixed-bf16", "bf16 autocast over fp32 weights, as TrainingArguments' bf16"
    if fp16 is True:
        return "mixed-fp16", "fp16 autocast over fp32 weights, as TrainingArguments' fp16"
    return "fp32", "neither bf16 nor fp16 is on"


def run_name(output_dir: Any) -> str:
    """The run name from an output directory: its last part (saves/llama3-8b/lora/sft -> sft)."""
    name = Path(str(output_dir).rstrip("/\\")).name
    return name if name not in ("", ".", "..") else "run"


def map_output_dir(translation: Translation, key: str, value: Any) -> None:
    translation.map(
        key, {"name": run_name(value)},
        "runs are written to runs/<time>-<name>/; `workbench train --run-dir DIR` picks another directory",
    )


def map_group_by_length(translation: Translation, key: str, value: Any) -> None:
    """transformers 5 replaced group_by_length with train_sampling_strategy."""
    if value is True:
        translation.map(key, {"optimization.extra.train_sampling_strategy": "group_by_length"},
                        "TrainingArguments' train_sampling_strategy")
    else:
        translation.drop(key, "nothing to set: off")


# -- export: the same tables the other way --------------------------------------------------------


def whole(number: float) -> float | int:
    """An integral float as an int (both tools declare lora_alpha an int)."""
    return int(number) if float(number).is_integer() else number


def export_precision(out: Translation, choice: str, *, has_auto: bool) -> None:
    """model.precision as bf16 / fp16 flags (pure bf16 as pure_bf16 or bfloat16)."""
    pure_bf16_key = "bfloat16" if has_auto else "pure_bf16"
    table: dict[str, tuple[dict[str, Any], str]] = {
        "fp32": ({"bf16": False, "fp16": False}, ""),
        "mixed-bf16": ({"bf16": True}, ""),
        "mixed-fp16": ({"fp16": True}, ""),
        "bf16": ({pure_bf16_key: True}, "pure bf16"),
        "auto": ({"bf16": "auto"}, "") if has_auto else ({"bf16": True}, "auto: bf16 where native; pick fp16 on GPUs older than Ampere"),
    }
    if choice == "fp16":
        if has_auto:
            out.map("model.precision", {"float16": True}, "pure fp16")
        else:
            out.drop("model.precision", "pure fp16 has no LLaMA-Factory flag; fp16: true trains mixed fp16")
        return
    fields, why = table[choice]
    out.map("model.precision", fields, why)


def resolved_data(path: str, config_format: str, columns: Any) -> tuple[str, str, dict[str, str]]:
    """(file or dataset id, format, column mapping) a data path names, dataset_info entries resolved."""
    mapping = columns.model_dump(exclude_none=True) if columns is not None else {}
    try:
        ref = resolve_data_ref(path, format=config_format)
    except WorkbenchError:
        return path, config_format, mapping
    target = str(ref.path) if ref.path is not None else str(ref.dataset_id)
    if ref.columns is not None and not mapping:
        mapping = {**ref.columns.columns, **ref.columns.tags}
    return target, ref.format, mapping


def export_trainer_arguments(out: Translation, config: Any, names: dict[str, str], *, pass_extra_note: str = "") -> None:
    """The optimization section as TrainingArguments-style keys; `names` renames the ones the tool calls otherwise."""
    o = config.optimization
    out.map("optimization.learning_rate", {"learning_rate": o.learning_rate})
    if o.max_steps > 0:
        out.map("optimization.max_steps", {"max_steps": o.max_steps})
    out.map("optimization.num_train_epochs", {names["num_train_epochs"]: o.num_train_epochs})
    out.map("optimization.per_device_train_batch_size", {names["per_device_train_batch_size"]: o.per_device_train_batch_size})
    out.map("optimization.gradient_accumulation_steps", {names["gradient_accumulation_steps"]: o.gradient_accumulation_steps})
    if o.warmup_steps > 0:
        out.map("optimization.warmup_steps", {"warmup_steps": o.warmup_steps})
    else:
        out.map("optimization.warmup_ratio", {"warmup_ratio": o.warmup_ratio})
    out.map("optimization.lr_scheduler_type", {names["lr_scheduler_type"]: o.lr_scheduler_type})
    out.map("optimization.weight_decay", {"weight_decay": o.weight_decay})
    out.map("optimization.max_grad_norm", {"max_grad_norm": o.max_grad_norm})
    out.map("optimization.optim", {names["optim"]: OPTIMIZERS[o.optim].training_arguments})
    if o.neftune_noise_alpha is not None:
        out.map("optimization.neftune_noise_alpha", {"neftune_noise_alpha": o.neftune_noise_alpha})
    out.map("optimization.seed", {"seed": o.seed})
    for key, value in o.extra.items():
        out.map(f"optimization.extra.{key}", {key: value}, pass_extra_note)


def export_evaluation(out: Translation, config: Any, *, early_stopping_key: Optional[str]) -> None:
    e = config.evaluation
    out.map("evaluation.logging_steps", {"logging_steps": e.logging_steps})
    out.map("evaluation.save_steps", {"save_steps": e.save_steps})
    out.map("evaluation.eval_steps", {"eval_steps": e.eval_steps})
    out.map("evaluation.save_total_limit", {"save_total_limit": e.save_total_limit}, "the workbench also keeps the best")
    out.map("evaluation.load_best_model_at_end", {"load_best_model_at_end": e.load_best_model_at_end})
    if e.early_stopping_patience is not None:
        if early_stopping_key:
            out.map("evaluation.early_stopping_patience", {early_stopping_key: e.early_stopping_patience})
        else:
            out.drop("evaluation.early_stopping_patience", f"{out.tool} has no early stopping setting")
    out.drop("evaluation.sample_max_new_tokens", f"{out.tool} has no prompt deck")
    if config.prompts:
        out.drop("prompts", f"{out.tool} has no prompt deck generated at each evaluation")


def export_devices(out: Translation, config: Any, *, fsdp_in_config: bool) -> None:
    d = config.devices
    if d.gpus != "all":
        out.drop("devices.gpus", f"set CUDA_VISIBLE_DEVICES={','.join(map(str, d.gpus))} when launching")
    if d.num_processes > 1:
        out.drop("devices.num_processes", f"launch {d.num_processes} processes with torchrun or accelerate launch")
    if d.use_cpu:
        out.map("devices.use_cpu", {"use_cpu": True})
    if d.accelerate_config:
        out.drop("devices.accelerate_config", f"pass --config_file {d.accelerate_config} to accelerate launch")
    if d.deepspeed:
        out.map("devices.deepspeed", {"deepspeed": str(deepspeed_config_file(d.deepspeed))})
    if d.fsdp or d.fsdp_config:
        if fsdp_in_config:
            out.map("devices.fsdp", {"fsdp": (d.fsdp or "full_shard").split(), "fsdp_config": dict(d.fsdp_config)})
        else:
            out.drop("devices.fsdp", f"{out.tool} runs FSDP from an accelerate config (accelerate launch --config_file)")
