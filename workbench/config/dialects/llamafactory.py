"""LLaMA-Factory's training YAML (`llamafactory-cli train FILE`) <-> the workbench config.

Datasets are names in a dataset_info.json under `dataset_dir` (default `data`); they map to
`data.train_file` / `data.sources` entries `DIR/dataset_info.json#NAME`, which the workbench's
loader reads as LLaMA-Factory does (file_name, formatting, columns, tags). LLaMA-Factory's own
defaults come along where a file leaves them out (lora_rank 8, lora_alpha 2 × rank, no LoRA
dropout, cutoff_len 2048, TrainingArguments' linear schedule and 5e-5, gradient checkpointing on).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.config.dialects import (
    Dialect,
    Translation,
    as_bool,
    as_float,
    as_int,
    dropped,
    format_value,
    to,
)
from workbench.config.dialects import common
from workbench.data.data_refs import resolve_data_ref
from workbench.errors import WorkbenchError

if TYPE_CHECKING:
    from workbench.config.schema import RunConfig

TOOL = "LLaMA-Factory"

TEMPLATES = {
    "llama3": "llama3",
    "qwen": "qwen2.5",
    "qwen2_5": "qwen2.5",
    "mistral": "mistral",
    "gemma": "gemma",
    "phi": "phi3",
    "alpaca": "alpaca",
    "chatml": "chatml",
}
"""LLaMA-Factory template names -> the workbench's built-in chat templates with the same layout."""

DEFAULTS = {
    "lora_rank": 8,
    "lora_dropout": 0.0,
    "cutoff_len": 2048,
    "val_size": 0.0,
    "learning_rate": 5e-5,
    "per_device_train_batch_size": 8,
    "lr_scheduler_type": "linear",
}
"""LLaMA-Factory's defaults (and TrainingArguments' under it) that differ from the workbench's."""


def _check_stage(translation: Translation, key: str, value: Any) -> None:
    if value != "sft":
        raise WorkbenchError(
            f"{translation.source}: stage: {value} is not supervised fine-tuning; the workbench imports stage: sft only"
        )
    translation.drop(key, "nothing to set: the workbench does supervised fine-tuning (sft)")


def _info_path(translation: Translation) -> str:
    """dataset_dir/dataset_info.json as the config will name it (relative to where the tool runs)."""
    directory = str(translation.get("dataset_dir", "data"))
    written = str(Path(directory) / "dataset_info.json")
    found = common.find_file(written, translation)
    if found is not None and not (Path.cwd() / written).exists():
        return str(found)  # found beside the source file, not where the tool would run
    return written


def _dataset_names(value: Any) -> list[str]:
    parts = value.split(",") if isinstance(value, str) else list(value)
    return [str(part).strip() for part in parts if str(part).strip()]


def _sources(translation: Translation) -> tuple[dict[str, Any], str]:
    """The data fields `dataset` (with dataset_dir, mix_strategy, interleave_probs) sets, and a note."""
    info = _info_path(translation)
    refs = [f"{info}#{name}" for name in _dataset_names(translation.get("dataset", []))]
    problems = []
    if not Path(info).expanduser().is_file():
        problems.append(f"{info} is not here (dataset_dir counts from where LLaMA-Factory runs)")
    else:
        for ref in refs:
            try:
                resolve_data_ref(ref)
            except WorkbenchError as error:
                problems.append(str(error))
    note = "; ".join(problems) + "; point the data at local files before training" if problems else ""
    if len(refs) == 1:
        return {"data.train_file": refs[0]}, note
    sources: list[dict[str, Any]] = [{"path": ref} for ref in refs]
    if str(translation.get("mix_strategy", "concat")).startswith("interleave"):
        probabilities = translation.get("interleave_probs")
        if probabilities is not None:
            weights = [float(p) for p in (probabilities.split(",") if isinstance(probabilities, str) else probabilities)]
        else:
            weights = [1.0] * len(refs)
        if len(weights) == len(sources):
            for source, weight in zip(sources, weights):
                source["weight"] = weight
    return {"data.sources": sources}, note


def _map_dataset(translation: Translation, key: str, value: Any) -> None:
    fields, note = _sources(translation)
    translation.map(key, fields, note)


def _map_dataset_dir(translation: Translation, key: str, value: Any) -> None:
    if not translation.has("dataset"):
        translation.drop(key, "no dataset names an entry in it")
        return
    fields, _ = _sources(translation)
    translation.map(key, fields, "the folder of dataset_info.json")


def _map_mix_strategy(translation: Translation, key: str, value: Any) -> None:
    if value == "concat":
        translation.drop(key, "nothing to set: a mixture without weights uses every row of every source once")
    elif value in ("interleave_under", "interleave_over"):
        translation.map(key, {"data.mix_strategy": value})
    else:
        translation.drop(key, f"mix_strategy {value} has no workbench equivalent (interleave_under, interleave_over)")


def _map_interleave_probs(translation: Translation, key: str, value: Any) -> None:
    if not str(translation.get("mix_strategy", "concat")).startswith("interleave"):
        translation.drop(key, "LLaMA-Factory uses it only with mix_strategy interleave_under/over")
        return
    fields, _ = _sources(translation)
    translation.map(key, fields, "the sources' weights")


def _map_eval_dataset(translation: Translation, key: str, value: Any) -> None:
    names = _dataset_names(value)
    if len(names) != 1:
        translation.drop(key, "the workbench takes one validation file; merge them or name one")
        return
    translation.map(key, {"data.validation_file": f"{_info_path(translation)}#{names[0]}"})


def _map_val_size(translation: Translation, key: str, value: Any) -> None:
    size = float(value)
    if size < 1:
        translation.map(key, {"data.validation_split": size})
    else:
        translation.drop(key, f"{format_value(value)} rows held out: the workbench holds out a fraction "
                         "(data.validation_split); set it to rows / total rows")


def _map_template(translation: Translation, key: str, value: Any) -> None:
    ours = TEMPLATES.get(str(value))
    if ours is None:
        translation.drop(key, f"no built-in template like LLaMA-Factory's {value}; data.chat_template stays auto "
                         "(the model's own chat template)")
    else:
        translation.map(key, {"data.chat_template": ours})


def _method(translation: Translation) -> tuple[str | None, str]:
    """(method.type, note) from finetuning_type and quantization_bit."""
    kind = translation.get("finetuning_type", "lora")
    if kind == "full":
        return "full", ""
    if kind != "lora":
        return None, f"{kind} fine-tuning is not supported; the workbench trains lora, qlora or full"
    bits = translation.get("quantization_bit")
    method = str(translation.get("quantization_method", "bitsandbytes"))
    if bits is not None and int(bits) == 4 and method in ("bitsandbytes", "bnb"):
        return "qlora", "4-bit bitsandbytes base weights"
    return "lora", ""


def _map_finetuning_type(translation: Translation, key: str, value: Any) -> None:
    method, note = _method(translation)
    if method is None:
        translation.drop(key, f"{note}; method.type stays lora")
    else:
        translation.map(key, {"method.type": method}, note)


def _map_quantization_bit(translation: Translation, key: str, value: Any) -> None:
    method = str(translation.get("quantization_method", "bitsandbytes"))
    if as_int(value) != 4 or method not in ("bitsandbytes", "bnb"):
        translation.drop(key, f"{value}-bit {method} quantization is not supported; the workbench quantizes to 4 bits with bitsandbytes (qlora)")
    elif _method(translation)[0] != "qlora":
        translation.drop(key, "quantized training here is QLoRA, which needs finetuning_type: lora")
    else:
        translation.map(key, {"method.type": "qlora"})


def _map_quantization_method(translation: Translation, key: str, value: Any) -> None:
    if value in ("bitsandbytes", "bnb"):
        translation.drop(key, "nothing to set: QLoRA quantizes with bitsandbytes")
    else:
        translation.drop(key, f"{value} quantization is not supported (bitsandbytes 4-bit only)")


def _map_lora_target(translation: Translation, key: str, value: Any) -> None:
    names = [part.strip() for part in (value.split(",") if isinstance(value, str) else value) if str(part).strip()]
    translation.map(key, {"method.target_modules": "all-linear" if names == ["all"] else names})


def _map_precision(translation: Translation, key: str, value: Any) -> None:
    as_bool(value)
    chosen, note = common.precision(
        translation.get("bf16") is True, translation.get("fp16") is True, pure_bf16=translation.get("pure_bf16") is True
    )
    translation.map(key, {"model.precision": chosen}, note)


def _map_flash_attn(translation: Translation, key: str, value: Any) -> None:
    choice = {"sdpa": "sdpa", "fa2": "flash_attention_2", "disabled": "eager"}.get(str(value))
    if value == "auto":
        translation.drop(key, "nothing to set: the workbench uses sdpa unless model.attn_implementation says otherwise")
    elif choice is None:
        translation.drop(key, f"flash_attn: {value} is not one of auto, sdpa, fa2, disabled")
    else:
        translation.map(key, {"model.attn_implementation": choice})


def _map_disable_gradient_checkpointing(translation: Translation, key: str, value: Any) -> None:
    translation.map(key, {"optimization.gradient_checkpointing": not as_bool(value)})


def _map_train_on_prompt(translation: Translation, key: str, value: Any) -> None:
    translation.map(key, {"data.assistant_only_loss": not as_bool(value)})


def _map_packing(translation: Translation, key: str, value: Any) -> None:
    translation.map(key, {"data.packing": as_bool(value)},
                    "packed samples never attend to each other" if as_bool(value) else "")


def _map_neat_packing(translation: Translation, key: str, value: Any) -> None:
    if as_bool(value):
        translation.map(key, {"data.packing": True}, "the workbench's packing never lets samples attend to each other")
    else:
        translation.drop(key, "nothing to set: packing follows `packing`")


def _map_mask_history(translation: Translation, key: str, value: Any) -> None:
    if as_bool(value):
        translation.drop(key, "not supported: the workbench learns from every assistant turn")
    else:
        translation.drop(key, "nothing to set: the workbench learns from every assistant turn")


def _map_run_name(translation: Translation, key: str, value: Any) -> None:
    translation.map(key, {"name": str(value)})


RULES = {
    "stage": _check_stage,
    "do_train": dropped("nothing to set: `workbench train` trains"),
    "do_eval": dropped("the workbench evaluates during training when there is validation data"),
    "do_predict": dropped("no prediction pass; compare base and fine-tuned answers with `workbench compare`"),
    # model
    "model_name_or_path": to("model.name_or_path"),
    "trust_remote_code": to("model.trust_remote_code", as_bool),
    "adapter_name_or_path": dropped("continuing an existing adapter is not supported; the workbench trains a new one"),
    "flash_attn": _map_flash_attn,
    "quantization_bit": _map_quantization_bit,
    "quantization_method": _map_quantization_method,
    "quantization_type": to("method.bnb_4bit_quant_type"),
    "double_quantization": to("method.bnb_4bit_use_double_quant", as_bool),
    "cache_dir": dropped("models load from a local directory or the Hugging Face cache"),
    # method
    "finetuning_type": _map_finetuning_type,
    "lora_rank": to("method.r", as_int),
    "lora_alpha": to("method.lora_alpha", as_float),
    "lora_dropout": to("method.lora_dropout", as_float),
    "lora_target": _map_lora_target,
    "use_rslora": to("method.use_rslora", as_bool),
    "use_dora": to("method.use_dora", as_bool),
    "pure_bf16": _map_precision,
    # dataset
    "dataset": _map_dataset,
    "dataset_dir": _map_dataset_dir,
    "eval_dataset": _map_eval_dataset,
    "mix_strategy": _map_mix_strategy,
    "interleave_probs": _map_interleave_probs,
    "template": _map_template,
    "default_system": to("data.system_prompt", str),
    "cutoff_len": to("data.max_seq_length", as_int),
    "val_size": _map_val_size,
    "packing": _map_packing,
    "neat_packing": _map_neat_packing,
    "train_on_prompt": _map_train_on_prompt,
    "mask_history": _map_mask_history,
    "max_samples": dropped("the workbench trains on every row; cut the data file first (workbench data clean can sample)"),
    "overwrite_cache": dropped("nothing to set: the workbench keeps no preprocessing cache"),
    "preprocessing_num_workers": dropped("nothing to set: tokenizing runs in the trainer process"),
    "tokenized_path": dropped("no saved tokenized data: the trainer tokenizes the data itself"),
    "streaming": dropped("not supported: the workbench reads the whole data set"),
    # output
    "output_dir": common.map_output_dir,
    "run_name": _map_run_name,
    "overwrite_output_dir": dropped("nothing to set: every run gets a new run directory"),
    "plot_loss": dropped("nothing to set: the Train pane plots the loss live"),
    "resume_from_checkpoint": dropped("continue a workbench run with `workbench train --resume RUN_DIR`"),
    # train
    "per_device_train_batch_size": to("optimization.per_device_train_batch_size", as_int),
    "per_device_eval_batch_size": to("evaluation.per_device_eval_batch_size", as_int),
    "gradient_accumulation_steps": to("optimization.gradient_accumulation_steps", as_int),
    "learning_rate": to("optimization.learning_rate", as_float),
    "num_train_epochs": to("optimization.num_train_epochs", as_float),
    "max_steps": to("optimization.max_steps", as_int),
    "lr_scheduler_type": common.map_scheduler,
    "warmup_ratio": to("optimization.warmup_ratio", as_float),
    "warmup_steps": to("optimization.warmup_steps", as_int),
    "weight_decay": to("optimization.weight_decay", as_float),
    "max_grad_norm": to("optimization.max_grad_norm", as_float),
    "optim": common.map_optimizer,
    "seed": to("optimization.seed", as_int),
    "neftune_noise_alpha": to("optimization.neftune_noise_alpha", as_float),
    "gradient_checkpointing": to("optimization.gradient_checkpointing", as_bool),
    "disable_gradient_checkpointing": _map_disable_gradient_checkpointing,
    "bf16": _map_precision,
    "fp16": _map_precision,
    "logging_steps": to("evaluation.logging_steps", as_int),
    "save_steps": to("evaluation.save_steps", as_int),
    "eval_steps": to("evaluation.eval_steps", as_int),
    "save_total_limit": to("evaluation.save_total_limit", as_int),
    "load_best_model_at_end": to("evaluation.load_best_model_at_end", as_bool),
    "report_to": common.map_report_to,
    "deepspeed": common.map_deepspeed,
}


def finish(translation: Translation) -> None:
    """LLaMA-Factory's defaults for what the file leaves out, where they differ from the workbench's."""
    method, _ = _method(translation)
    if method in ("lora", "qlora"):
        rank = int(translation.get("lora_rank", DEFAULTS["lora_rank"]))
        if not translation.has("lora_rank"):
            translation.default("lora_rank", {"method.r": rank})
        if not translation.has("lora_alpha"):
            translation.default("lora_alpha", {"method.lora_alpha": float(2 * rank)}, "2 × lora_rank")
        if not translation.has("lora_dropout"):
            translation.default("lora_dropout", {"method.lora_dropout": DEFAULTS["lora_dropout"]})
    if not translation.has("cutoff_len"):
        translation.default("cutoff_len", {"data.max_seq_length": DEFAULTS["cutoff_len"]})
    if not translation.has("packing") and not translation.has("neat_packing"):
        translation.default("packing", {"data.packing": False}, "off for sft")
    if not translation.has("val_size") and not translation.has("eval_dataset"):
        translation.default("val_size", {"data.validation_split": DEFAULTS["val_size"]}, "no validation split")
    if not translation.has("learning_rate"):
        translation.default("learning_rate", {"optimization.learning_rate": DEFAULTS["learning_rate"]}, "TrainingArguments'")
    if not translation.has("per_device_train_batch_size"):
        translation.default("per_device_train_batch_size",
                            {"optimization.per_device_train_batch_size": DEFAULTS["per_device_train_batch_size"]},
                            "TrainingArguments'")
    if not translation.has("lr_scheduler_type"):
        translation.default("lr_scheduler_type", {"optimization.lr_scheduler_type": DEFAULTS["lr_scheduler_type"]},
                            "TrainingArguments'")
    if not translation.has("warmup_ratio") and not translation.has("warmup_steps"):
        translation.default("warmup_ratio", {"optimization.warmup_ratio": 0.0}, "no warm-up")
    if not translation.has("disable_gradient_checkpointing") and not translation.has("gradient_checkpointing"):
        translation.default("disable_gradient_checkpointing", {"optimization.gradient_checkpointing": True},
                            "LLaMA-Factory checkpoints activations unless told not to")
    if not any(translation.has(key) for key in ("bf16", "fp16", "pure_bf16")):
        translation.default("bf16", {"model.precision": "fp32"}, "neither bf16 nor fp16 is on")
    if not translation.has("load_best_model_at_end"):
        translation.default("load_best_model_at_end", {"evaluation.load_best_model_at_end": False},
                            "the final weights are the last ones")


# -- export --------------------------------------------------------------------------------------


def _info_entry(path: str, data_format: str, columns: Any) -> tuple[dict[str, Any] | None, str]:
    """A dataset_info.json entry for one data path (file_name absolute), or None and why not."""
    target, chosen, mapping = common.resolved_data(path, data_format, columns)
    entry: dict[str, Any] = {}
    is_file = Path(target).exists()
    entry["file_name" if is_file else "hf_hub_url"] = str(Path(target).resolve()) if is_file else target
    tag_keys = ("role_tag", "content_tag", "user_tag", "assistant_tag", "observation_tag", "function_tag", "system_tag")
    column_part = {key: value for key, value in mapping.items() if key not in tag_keys}
    tag_part = {key: value for key, value in mapping.items() if key in tag_keys}
    if chosen == "messages":
        entry["formatting"] = "sharegpt"
        column_part.setdefault("messages", "messages")
        tag_part = {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant",
                    "system_tag": "system", **tag_part}
    elif chosen == "sharegpt":
        entry["formatting"] = "sharegpt"
    elif chosen == "prompt-completion":
        column_part = {"prompt": "prompt", "response": "completion", **column_part}
    elif chosen in ("text", "llamafactory-v1"):
        return None, f"{chosen} rows have no LLaMA-Factory sft layout"
    if column_part:
        entry["columns"] = column_part
    if tag_part:
        entry["tags"] = tag_part
    note = "" if chosen != "auto" else "format auto: LLaMA-Factory reads alpaca unless formatting says sharegpt"
    return entry, note


def _export_data(out: Translation, config: "RunConfig", destination: Path) -> None:
    d = config.data
    info: dict[str, Any] = {}

    def add(field: str, path: str, data_format: str, columns: Any, name: str) -> str | None:
        entry, note = _info_entry(path, data_format, columns)
        if entry is None:
            out.drop(field, note)
            return None
        info[name] = entry
        return note

    names = []
    if d.sources:
        for index, source in enumerate(d.sources):
            note = add(f"data.sources[{index}]", source.path, source.format, source.columns, source.display_name)
            if note is not None:
                names.append(source.display_name)
        if names:
            fields: dict[str, Any] = {"dataset": ",".join(names), "dataset_dir": str(destination)}
            if all(source.weight is not None for source in d.sources):
                fields["mix_strategy"] = d.mix_strategy
                fields["interleave_probs"] = ",".join(str(source.weight) for source in d.sources)
            out.map("data.sources", fields, "entries written to dataset_info.json")
    elif d.train_file:
        name = Path(d.train_file.split("#")[-1]).stem or "train"
        note = add("data.train_file", d.train_file, d.format, d.columns, name)
        if note is not None:
            out.map("data.train_file", {"dataset": name, "dataset_dir": str(destination)},
                    "entry written to dataset_info.json" + (f"; {note}" if note else ""))
    if d.validation_file:
        note = add("data.validation_file", d.validation_file, d.format, d.columns, "validation")
        if note is not None:
            out.map("data.validation_file", {"eval_dataset": "validation"}, "entry written to dataset_info.json")
    elif d.validation_split > 0:
        out.map("data.validation_split", {"val_size": d.validation_split, "eval_strategy": "steps"})
    else:
        out.map("data.validation_split", {"val_size": 0.0}, "no validation data")
    if info:
        out.files["dataset_info.json"] = info


def export(config: "RunConfig", destination: Path) -> Translation:
    """The config as a LLaMA-Factory training YAML (`translation.values`), one line per workbench field;
    its data entries go to `destination`/dataset_info.json (`translation.files`)."""
    out = Translation(TOOL, {})
    m, d, me, o = config.model, config.data, config.method, config.optimization
    out.values.update(stage="sft", do_train=True)
    out.map("model.name_or_path", {"model_name_or_path": m.name_or_path})
    out.map("model.trust_remote_code", {"trust_remote_code": m.trust_remote_code})
    attention = {"sdpa": "sdpa", "eager": "disabled", "flash_attention_2": "fa2"}[m.attn_implementation]
    out.map("model.attn_implementation", {"flash_attn": attention})
    common.export_precision(out, m.precision, has_auto=False)
    if me.type == "full":
        out.map("method.type", {"finetuning_type": "full"})
    else:
        fields: dict[str, Any] = {"finetuning_type": "lora"}
        if me.type == "qlora":
            fields.update(quantization_bit=4, quantization_method="bitsandbytes",
                          quantization_type=me.bnb_4bit_quant_type, double_quantization=me.bnb_4bit_use_double_quant)
        out.map("method.type", fields)
        out.map("method.r", {"lora_rank": me.r})
        out.map("method.lora_alpha", {"lora_alpha": common.whole(me.lora_alpha)})
        out.map("method.lora_dropout", {"lora_dropout": me.lora_dropout})
        targets = me.target_modules
        out.map("method.target_modules", {"lora_target": "all" if targets == "all-linear" else ",".join(targets)})
        out.map("method.use_rslora", {"use_rslora": me.use_rslora})
        out.map("method.use_dora", {"use_dora": me.use_dora})
    _export_data(out, config, destination)
    reverse = {ours: theirs for theirs, ours in TEMPLATES.items() if theirs != "qwen2_5"}
    if d.chat_template == "auto":
        out.drop("data.chat_template", "auto: LLaMA-Factory needs a template name; set `template` to the model's")
    elif d.chat_template in reverse:
        out.map("data.chat_template", {"template": reverse[d.chat_template]})
    else:
        out.drop("data.chat_template", f"{d.chat_template} has no LLaMA-Factory template name; set `template` yourself")
    out.map("data.max_seq_length", {"cutoff_len": d.max_seq_length})
    out.map("data.packing", {"packing": d.packing, "neat_packing": d.packing},
            "neat packing keeps samples from attending to each other, as the workbench's packing does" if d.packing else "")
    out.map("data.assistant_only_loss", {"train_on_prompt": not d.assistant_only_loss})
    if d.system_prompt is not None:
        out.map("data.system_prompt", {"default_system": d.system_prompt})
    common.export_trainer_arguments(out, config, names={
        "per_device_train_batch_size": "per_device_train_batch_size",
        "gradient_accumulation_steps": "gradient_accumulation_steps",
        "num_train_epochs": "num_train_epochs",
        "lr_scheduler_type": "lr_scheduler_type",
        "optim": "optim",
    })
    out.map("optimization.gradient_checkpointing", {"disable_gradient_checkpointing": not o.gradient_checkpointing})
    out.map("name", {"output_dir": f"saves/{config.name}"})
    out.map("evaluation.per_device_eval_batch_size", {"per_device_eval_batch_size": config.evaluation.per_device_eval_batch_size})
    common.export_evaluation(out, config, early_stopping_key=None)
    trackers = config.evaluation.report_to
    out.map("evaluation.report_to", {"report_to": trackers if isinstance(trackers, str) else list(trackers)})
    common.export_devices(out, config, fsdp_in_config=False)
    return out


DIALECT = Dialect(
    name="llamafactory",
    title=TOOL,
    rules=RULES,
    finish=finish,
    markers=("model_name_or_path", "stage", "finetuning_type", "template", "cutoff_len", "dataset",
             "lora_rank", "lora_target", "val_size", "dataset_dir"),
    export=export,
)
