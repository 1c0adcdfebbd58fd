"""axolotl's training YAML (`axolotl train FILE`) <-> the workbench config.

`datasets: [{path, type, ...}]` map to `data.train_file` / `data.sources` (type alpaca, chat_template
with its field and role mappings, the old sharegpt, completion); evals_per_epoch / saves_per_epoch
become steps from the data's size where the data is a local file. axolotl's own defaults come
along where a file leaves them out (sequence_len 512, no packing, one epoch, micro batch 1, no LoRA
dropout, 3% warm-up, full fine-tuning when no adapter is named).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.config.checks import count_rows
from workbench.config.dialects import Dialect, Translation, as_bool, as_float, as_int, dropped, format_value, to
from workbench.config.dialects import common
from workbench.data.data_refs import resolve_data_ref
from workbench.errors import WorkbenchError

if TYPE_CHECKING:
    from workbench.config.schema import RunConfig

TOOL = "axolotl"

TEMPLATES = {
    "chatml": "chatml",
    "llama3": "llama3",
    "qwen_25": "qwen2.5",
    "gemma": "gemma",
    "phi_3": "phi3",
    "alpaca": "alpaca",
    "tokenizer_default": "auto",
}
"""axolotl chat_template names -> the workbench's chat templates with the same layout."""

DEFAULTS = {
    "sequence_len": 512,
    "num_epochs": 1.0,
    "micro_batch_size": 1,
    "lora_dropout": 0.0,
    "warmup_ratio": 0.03,
}

DATASET_KEYS_USED = ("path", "type", "split", "name", "data_files", "ds_type", "field_messages",
                     "message_property_mappings", "message_field_role", "message_field_content", "field")


def _refuse_rl(translation: Translation, key: str, value: Any) -> None:
    raise WorkbenchError(f"{translation.source}: {key}: {value} is not supervised fine-tuning; the workbench imports SFT configs only")


def _dataset_source(entry: Any, where: str) -> tuple[dict[str, Any] | None, str, list[tuple[str, str]]]:
    """(a data.sources entry, a note, [(nested key, why dropped)]) for one axolotl dataset."""
    if not isinstance(entry, dict) or not entry.get("path"):
        return None, f"{where}: expected a mapping with a path", []
    source: dict[str, Any] = {}
    files = entry.get("data_files")
    if isinstance(files, list):
        files = files[0] if len(files) == 1 else None
        if files is None:
            return None, f"{where}.data_files: several files in one dataset; list each as its own dataset", []
    source["path"] = str(files or entry["path"])
    kind = entry.get("type")
    columns: dict[str, str] = {}
    if kind in (None, "alpaca"):
        source["format"] = "alpaca"
    elif kind == "chat_template":
        mappings = entry.get("message_property_mappings") or {}
        role = mappings.get("role", entry.get("message_field_role", "role"))
        content = mappings.get("content", entry.get("message_field_content", "content"))
        messages = entry.get("field_messages", "messages")
        if (role, content) == ("from", "value"):
            source["format"] = "sharegpt"
            if messages != "conversations":
                columns["messages"] = messages
        else:
            source["format"] = "messages"
            if messages != "messages":
                columns["messages"] = messages
            if role != "role":
                columns["role_tag"] = role
            if content != "content":
                columns["content_tag"] = content
    elif isinstance(kind, str) and kind.startswith("sharegpt"):
        source["format"] = "sharegpt"
    elif kind == "completion":
        source["format"] = "text"
        if entry.get("field", "text") != "text":
            columns["text"] = entry["field"]
    else:
        return None, f"{where}.type: {format_value(kind)} has no workbench format (alpaca, chat_template, sharegpt, completion)", []
    if columns:
        source["columns"] = columns
    if entry.get("split") not in (None, "train"):
        source["split"] = entry["split"]
    if entry.get("name"):
        source["subset"] = entry["name"]
    ignored = [
        (f"{where}.{key}", _nested_reason(key))
        for key, value in entry.items() if key not in DATASET_KEYS_USED and value is not None
    ]
    return source, "", ignored


def _nested_reason(key: str) -> str:
    reasons = {
        "roles_to_train": "the workbench learns from the assistant's turns (data.assistant_only_loss)",
        "train_on_eos": "the workbench learns each assistant turn's end token",
        "chat_template": "one chat template per run: data.chat_template",
        "roles": "speaker names map through data.columns user_tag / assistant_tag",
        "shards": "the workbench reads the whole data set",
        "drop_system_message": "not supported: system messages stay",
    }
    return reasons.get(key, "no workbench equivalent")


def _datasets(translation: Translation, key: str, value: Any) -> tuple[list[dict[str, Any]], str, list[tuple[str, str]]]:
    if not isinstance(value, list):
        return [], f"expected a list of datasets, got {format_value(value)}", []
    sources, notes, ignored = [], [], []
    for index, entry in enumerate(value):
        source, note, dropped_keys = _dataset_source(entry, f"{key}[{index}]")
        if source is None:
            notes.append(note)
        else:
            sources.append(source)
        ignored += dropped_keys
    return sources, "; ".join(notes), ignored


def _map_datasets(translation: Translation, key: str, value: Any) -> None:
    sources, note, ignored = _datasets(translation, key, value)
    if not sources:
        translation.drop(key, note or "no dataset the workbench can read")
    elif len(sources) == 1 and set(sources[0]) <= {"path", "format", "columns"}:
        fields: dict[str, Any] = {"data.train_file": sources[0]["path"], "data.format": sources[0]["format"]}
        if "columns" in sources[0]:
            fields["data.columns"] = sources[0]["columns"]
        translation.map(key, fields, note)
    else:
        translation.map(key, {"data.sources": sources}, note or "every row of every dataset once, as axolotl concatenates them")
    for nested, why in ignored:
        translation.drop(nested, why)


def _map_test_datasets(translation: Translation, key: str, value: Any) -> None:
    sources, note, ignored = _datasets(translation, key, value)
    if len(sources) != 1:
        translation.drop(key, note or "the workbench takes one validation file")
        return
    translation.map(key, {"data.validation_file": sources[0]["path"]}, "read with the training data's format")
    for nested, why in ignored:
        translation.drop(nested, why)


def _map_val_set_size(translation: Translation, key: str, value: Any) -> None:
    size = as_float(value)
    if size < 1:
        translation.map(key, {"data.validation_split": size})
    else:
        translation.drop(key, f"{format_value(value)} rows held out: set data.validation_split to rows / total rows")


def _method(translation: Translation) -> str:
    adapter = translation.get("adapter")
    if adapter is None:
        return "full"
    if adapter == "qlora" or (adapter == "lora" and translation.get("load_in_4bit") is True):
        return "qlora"
    return str(adapter)


def _map_adapter(translation: Translation, key: str, value: Any) -> None:
    method = _method(translation)
    if method in ("lora", "qlora"):
        translation.map(key, {"method.type": method})
    else:
        translation.drop(key, f"adapter {value} is not supported (lora, qlora); method.type stays lora")


def _map_load_in_4bit(translation: Translation, key: str, value: Any) -> None:
    if not as_bool(value):
        translation.drop(key, "nothing to set: the base weights are not quantized")
    elif _method(translation) == "qlora":
        translation.map(key, {"method.type": "qlora"}, "4-bit bitsandbytes base weights")
    else:
        translation.drop(key, "4-bit training here is QLoRA, which needs adapter: lora or qlora")


def _map_load_in_8bit(translation: Translation, key: str, value: Any) -> None:
    if as_bool(value):
        translation.drop(key, "8-bit base weights are not supported; lora trains over the model's own dtype")
    else:
        translation.drop(key, "nothing to set: the base weights are not quantized")


def _map_targets(translation: Translation, key: str, value: Any) -> None:
    if translation.get("lora_target_linear") is True:
        translation.drop(key, "covered: lora_target_linear adapts every linear layer")
        return
    names = [value] if isinstance(value, str) else list(value)
    translation.map(key, {"method.target_modules": names})


def _map_target_linear(translation: Translation, key: str, value: Any) -> None:
    if as_bool(value):
        translation.map(key, {"method.target_modules": "all-linear"})
    else:
        translation.drop(key, "nothing to set: lora_target_modules names the layers")


def _map_precision(translation: Translation, key: str, value: Any) -> None:
    bf16 = translation.get("bf16", "auto")
    chosen, note = common.precision(
        bf16 if bf16 == "auto" else bf16 is True, translation.get("fp16") is True,
        pure_bf16=translation.get("bfloat16") is True, pure_fp16=translation.get("float16") is True,
    )
    if bf16 == "auto" and translation.get("fp16") is True:
        chosen, note = "mixed-fp16", "fp16 autocast over fp32 weights"
    translation.map(key, {"model.precision": chosen}, note)


def _map_gradient_checkpointing(translation: Translation, key: str, value: Any) -> None:
    if value in ("offload", "offload_disk"):
        translation.map(key, {"optimization.gradient_checkpointing": True}, f"recomputed in place (no {value})")
    else:
        translation.map(key, {"optimization.gradient_checkpointing": as_bool(value)})


def _map_train_on_inputs(translation: Translation, key: str, value: Any) -> None:
    translation.map(key, {"data.assistant_only_loss": not as_bool(value)})


def _map_attention(choice: str) -> Any:
    def rule(translation: Translation, key: str, value: Any) -> None:
        if as_bool(value):
            translation.map(key, {"model.attn_implementation": choice},
                            "CUDA GPUs with flash-attn only" if choice == "flash_attention_2" else "")
        else:
            translation.drop(key, "nothing to set: off")

    return rule


def _map_chat_template(translation: Translation, key: str, value: Any) -> None:
    if value == "jinja":
        translation.drop(key, "the template text is in chat_template_jinja")
        return
    ours = TEMPLATES.get(str(value))
    if ours is None:
        translation.drop(key, f"no built-in template like axolotl's {value}; data.chat_template stays auto "
                         "(the model's own chat template)")
    else:
        translation.map(key, {"data.chat_template": ours})


def _map_chat_template_jinja(translation: Translation, key: str, value: Any) -> None:
    found = common.find_file(str(value), translation) if "\n" not in str(value) and len(str(value)) < 500 else None
    if found is not None:
        translation.map(key, {"data.chat_template": str(value)}, "a .jinja file")
    else:
        translation.drop(key, "inline template text: save it as a .jinja file and set data.chat_template to its path")


def _map_wandb_project(translation: Translation, key: str, value: Any) -> None:
    common.add_tracker(translation, key, "wandb", f"set WANDB_PROJECT={value} in the trainer's environment for the project")


def _map_use_tensorboard(translation: Translation, key: str, value: Any) -> None:
    if as_bool(value):
        common.add_tracker(translation, key, "tensorboard", "event files under the run directory's logs/")
    else:
        translation.drop(key, "nothing to set: off")


def _map_mlflow(translation: Translation, key: str, value: Any) -> None:
    variable = {"mlflow_tracking_uri": "MLFLOW_TRACKING_URI", "mlflow_experiment_name": "MLFLOW_EXPERIMENT_NAME"}[key]
    common.add_tracker(translation, key, "mlflow", f"set {variable}={value} in the trainer's environment")


def _map_fsdp(translation: Translation, key: str, value: Any) -> None:
    options = " ".join(value) if isinstance(value, list) else str(value)
    translation.map(key, {"devices.fsdp": options}, "devices.num_processes: set it to your GPU count")


def _map_fsdp_config(translation: Translation, key: str, value: Any) -> None:
    if not isinstance(value, dict):
        translation.drop(key, f"expected a mapping, got {format_value(value)}")
        return
    translation.map(key, {"devices.fsdp_config": dict(value)}, "TrainingArguments reads the fsdp_-prefixed keys as they are")


def _map_per_epoch(target: str) -> Any:
    """evals_per_epoch / saves_per_epoch -> steps, from the number of training rows where it is known."""

    def rule(translation: Translation, key: str, value: Any) -> None:
        per_epoch = as_int(value)
        steps, how = _steps_per_epoch(translation)
        if steps is None:
            translation.drop(key, f"needs the number of training rows to turn into steps ({how}); set {target} yourself")
            return
        translation.map(key, {target: max(1, steps // per_epoch)}, f"{per_epoch} per epoch of about {steps} steps: {how}")

    return rule


def _steps_per_epoch(translation: Translation) -> tuple[int | None, str]:
    """Optimizer steps in one epoch (an upper bound: packing makes fewer), or None and why not."""
    sources, _, _ = _datasets(translation, "datasets", translation.get("datasets", []))
    rows = 0
    for source in sources:
        try:
            ref = resolve_data_ref(source["path"])
        except WorkbenchError as error:
            return None, str(error)
        if ref.path is None or not ref.path.is_file():
            return None, f"{source['path']} is not a local file here"
        try:
            rows += count_rows(ref.path)
        except WorkbenchError as error:
            return None, str(error)
    if not sources:
        return None, "no datasets"
    held_out = math.ceil(rows * float(translation.get("val_set_size", 0.0))) if float(translation.get("val_set_size", 0.0)) < 1 else 0
    batch = int(translation.get("micro_batch_size", DEFAULTS["micro_batch_size"])) * int(translation.get("gradient_accumulation_steps", 1))
    return max(1, math.ceil((rows - held_out) / batch)), f"{rows - held_out} training rows / batch {batch}, fewer steps with packing"


def _map_steps(target: str) -> Any:
    def rule(translation: Translation, key: str, value: Any) -> None:
        number = as_float(value)
        if number < 1:
            translation.drop(key, f"{format_value(value)} is a fraction of the run; set {target} in steps")
        else:
            translation.map(key, {target: int(number)})

    return rule


def _map_batch_size(translation: Translation, key: str, value: Any) -> None:
    if translation.has("micro_batch_size") and translation.has("gradient_accumulation_steps"):
        translation.drop(key, "covered: micro_batch_size × gradient_accumulation_steps")
        return
    micro = as_int(translation.get("micro_batch_size", DEFAULTS["micro_batch_size"]))
    translation.map(key, {"optimization.gradient_accumulation_steps": max(1, as_int(value) // micro)},
                    f"{value} / micro_batch_size {micro} (one process)")


NOT_NEEDED = "nothing to set"

RULES = {
    "rl": _refuse_rl,
    "reward_model": _refuse_rl,
    "process_reward_model": _refuse_rl,
    "base_model": to("model.name_or_path"),
    "base_model_config": dropped("the model's own config.json is used"),
    "model_type": dropped(f"{NOT_NEEDED}: the workbench loads AutoModelForCausalLM"),
    "tokenizer_type": dropped(f"{NOT_NEEDED}: the workbench loads AutoTokenizer"),
    "tokenizer_config": dropped("the tokenizer loads from the model's directory"),
    "trust_remote_code": to("model.trust_remote_code", as_bool),
    "strict": dropped(f"{NOT_NEEDED}: the workbench validates every key"),
    "load_in_8bit": _map_load_in_8bit,
    "load_in_4bit": _map_load_in_4bit,
    "adapter": _map_adapter,
    "lora_model_dir": dropped("continuing an existing adapter is not supported; the workbench trains a new one"),
    "lora_r": to("method.r", as_int),
    "lora_alpha": to("method.lora_alpha", as_float),
    "lora_dropout": to("method.lora_dropout", as_float),
    "lora_target_modules": _map_targets,
    "lora_target_linear": _map_target_linear,
    "lora_fan_in_fan_out": dropped("peft sets it for the layers that need it"),
    "lora_modules_to_save": dropped("not supported: only the LoRA matrices train (needed after adding tokens)"),
    "peft_use_dora": to("method.use_dora", as_bool),
    "peft_use_rslora": to("method.use_rslora", as_bool),
    "datasets": _map_datasets,
    "test_datasets": _map_test_datasets,
    "dataset_prepared_path": dropped(f"{NOT_NEEDED}: the trainer tokenizes the data itself, no prepared copy"),
    "shuffle_merged_datasets": dropped(f"{NOT_NEEDED}: the trainer shuffles every epoch (optimization.seed)"),
    "dataset_processes": dropped(f"{NOT_NEEDED}: tokenizing runs in the trainer process"),
    "val_set_size": _map_val_set_size,
    "output_dir": common.map_output_dir,
    "sequence_len": to("data.max_seq_length", as_int),
    "sample_packing": to("data.packing", as_bool),
    "eval_sample_packing": dropped(f"{NOT_NEEDED}: eval rows are packed like the training rows"),
    "pad_to_sequence_len": dropped(f"{NOT_NEEDED}: batches pad to their longest row; packing fills the rows"),
    "train_on_inputs": _map_train_on_inputs,
    "group_by_length": common.map_group_by_length,
    "micro_batch_size": to("optimization.per_device_train_batch_size", as_int),
    "eval_batch_size": to("evaluation.per_device_eval_batch_size", as_int),
    "batch_size": _map_batch_size,
    "gradient_accumulation_steps": to("optimization.gradient_accumulation_steps", as_int),
    "num_epochs": to("optimization.num_train_epochs", as_float),
    "max_steps": to("optimization.max_steps", as_int),
    "optimizer": common.map_optimizer,
    "lr_scheduler": common.map_scheduler,
    "learning_rate": to("optimization.learning_rate", as_float),
    "weight_decay": to("optimization.weight_decay", as_float),
    "max_grad_norm": to("optimization.max_grad_norm", as_float),
    "warmup_steps": to("optimization.warmup_steps", as_int),
    "warmup_ratio": to("optimization.warmup_ratio", as_float),
    "seed": to("optimization.seed", as_int),
    "neftune_noise_alpha": to("optimization.neftune_noise_alpha", as_float),
    "bf16": _map_precision,
    "fp16": _map_precision,
    "bfloat16": _map_precision,
    "float16": _map_precision,
    "gradient_checkpointing": _map_gradient_checkpointing,
    "early_stopping_patience": to("evaluation.early_stopping_patience", as_int),
    "resume_from_checkpoint": dropped("continue a workbench run with `workbench train --resume RUN_DIR`"),
    "auto_resume_from_checkpoints": dropped("resume a workbench run with `workbench train --resume RUN_DIR`"),
    "local_rank": dropped(f"{NOT_NEEDED}: the launcher sets each rank's"),
    "logging_steps": to("evaluation.logging_steps", as_int),
    "eval_steps": _map_steps("evaluation.eval_steps"),
    "save_steps": _map_steps("evaluation.save_steps"),
    "evals_per_epoch": _map_per_epoch("evaluation.eval_steps"),
    "saves_per_epoch": _map_per_epoch("evaluation.save_steps"),
    "save_total_limit": to("evaluation.save_total_limit", as_int),
    "load_best_model_at_end": to("evaluation.load_best_model_at_end", as_bool),
    "eval_max_new_tokens": to("evaluation.sample_max_new_tokens", as_int),
    "eval_table_size": dropped("the prompt deck (`prompts`) shows generations at each evaluation"),
    "xformers_attention": _map_attention("sdpa"),
    "sdp_attention": _map_attention("sdpa"),
    "flash_attention": _map_attention("flash_attention_2"),
    "eager_attention": _map_attention("eager"),
    "loss_watchdog_threshold": dropped("no loss threshold: the workbench stops a run whose loss turns NaN/inf"),
    "loss_watchdog_patience": dropped("no loss threshold: the workbench stops a run whose loss turns NaN/inf"),
    "debug": dropped(f"{NOT_NEEDED}: `workbench data show` prints the templated, tokenized samples"),
    "deepspeed": common.map_deepspeed,
    "fsdp": _map_fsdp,
    "fsdp_config": _map_fsdp_config,
    "special_tokens": dropped("the workbench keeps the tokenizer's own special tokens (pad falls back to eos)"),
    "tokens": dropped("adding tokens is not supported"),
    "chat_template": _map_chat_template,
    "chat_template_jinja": _map_chat_template_jinja,
    "default_system_message": to("data.system_prompt", str),
    "wandb_project": _map_wandb_project,
    "wandb_entity": dropped("set WANDB_ENTITY in the trainer's environment"),
    "wandb_watch": dropped("set WANDB_WATCH in the trainer's environment"),
    "wandb_name": dropped("W&B names the run after its run directory"),
    "wandb_log_model": dropped("set WANDB_LOG_MODEL in the trainer's environment"),
    "wandb_mode": dropped("set WANDB_MODE (offline, say) in the trainer's environment"),
    "use_tensorboard": _map_use_tensorboard,
    "mlflow_tracking_uri": _map_mlflow,
    "mlflow_experiment_name": _map_mlflow,
    "hub_model_id": dropped("nothing is uploaded; `workbench export` writes the adapter or merged model"),
    "push_dataset_to_hub": dropped("nothing is uploaded"),
    "plugins": dropped("axolotl plugins have no workbench equivalent"),
}


def finish(translation: Translation) -> None:
    """axolotl's defaults for what the file leaves out, where they differ from the workbench's."""
    method = _method(translation)
    if not translation.has("adapter"):
        translation.default("adapter", {"method.type": "full"}, "no adapter: every weight trains")
    elif method in ("lora", "qlora") and not translation.has("lora_dropout"):
        translation.default("lora_dropout", {"method.lora_dropout": DEFAULTS["lora_dropout"]})
    if not translation.has("sequence_len"):
        translation.default("sequence_len", {"data.max_seq_length": DEFAULTS["sequence_len"]})
    if not translation.has("sample_packing"):
        translation.default("sample_packing", {"data.packing": False})
    if not translation.has("val_set_size") and not translation.has("test_datasets"):
        translation.default("val_set_size", {"data.validation_split": 0.0}, "no validation split")
    if not translation.has("num_epochs") and not translation.has("max_steps"):
        translation.default("num_epochs", {"optimization.num_train_epochs": DEFAULTS["num_epochs"]})
    if not translation.has("micro_batch_size"):
        translation.default("micro_batch_size", {"optimization.per_device_train_batch_size": DEFAULTS["micro_batch_size"]})
    if not translation.has("warmup_steps") and not translation.has("warmup_ratio"):
        translation.default("warmup_ratio", {"optimization.warmup_ratio": DEFAULTS["warmup_ratio"]},
                            "3% of the steps (axolotl also caps it at 100 steps)")
    if not translation.has("load_best_model_at_end"):
        translation.default("load_best_model_at_end", {"evaluation.load_best_model_at_end": False},
                            "the final weights are the last ones")


# -- export --------------------------------------------------------------------------------------


def _dataset(path: str, data_format: str, columns: Any) -> tuple[dict[str, Any] | None, str]:
    """An axolotl dataset entry for one data path (dataset_info entries resolved to their file)."""
    target, chosen, mapping = common.resolved_data(path, data_format, columns)
    entry: dict[str, Any] = {"path": target}
    if target.endswith((".json", ".jsonl")):
        entry["ds_type"] = "json"
    if chosen in ("alpaca", "auto"):
        entry["type"] = "alpaca"
        note = "format auto: written as alpaca; change type if the rows are chats" if chosen == "auto" else ""
        return entry, note
    if chosen in ("sharegpt", "messages"):
        sharegpt = chosen == "sharegpt"
        entry.update(type="chat_template", field_messages=mapping.get("messages", "conversations" if sharegpt else "messages"),
                     message_property_mappings={"role": mapping.get("role_tag", "from" if sharegpt else "role"),
                                                "content": mapping.get("content_tag", "value" if sharegpt else "content")})
        if sharegpt:
            entry["roles"] = {"user": [mapping.get("user_tag", "human")], "assistant": [mapping.get("assistant_tag", "gpt")]}
        return entry, ""
    if chosen == "text":
        entry.update(type="completion", field=mapping.get("text", "text"))
        return entry, ""
    return None, f"{chosen} rows have no axolotl dataset type the workbench knows"


def export(config: "RunConfig", destination: Path) -> Translation:
    """The config as an axolotl training YAML (`translation.values`), one line per workbench field."""
    out = Translation(TOOL, {})
    m, d, me, o, e = config.model, config.data, config.method, config.optimization, config.evaluation
    out.map("model.name_or_path", {"base_model": m.name_or_path})
    out.map("model.trust_remote_code", {"trust_remote_code": m.trust_remote_code})
    attention = {"sdpa": {"sdp_attention": True}, "eager": {"eager_attention": True},
                 "flash_attention_2": {"flash_attention": True}}[m.attn_implementation]
    out.map("model.attn_implementation", attention)
    common.export_precision(out, m.precision, has_auto=True)
    if me.type == "full":
        out.drop("method.type", "full: axolotl trains every weight when no adapter is named")
    else:
        out.map("method.type", {"adapter": me.type, "load_in_4bit": me.type == "qlora"})
        out.map("method.r", {"lora_r": me.r})
        out.map("method.lora_alpha", {"lora_alpha": common.whole(me.lora_alpha)})
        out.map("method.lora_dropout", {"lora_dropout": me.lora_dropout})
        if me.target_modules == "all-linear":
            out.map("method.target_modules", {"lora_target_linear": True})
        else:
            out.map("method.target_modules", {"lora_target_modules": list(me.target_modules)})
        out.map("method.use_rslora", {"peft_use_rslora": me.use_rslora})
        out.map("method.use_dora", {"peft_use_dora": me.use_dora})
    sources = [(s.path, s.format, s.columns) for s in d.sources] or ([(d.train_file, d.format, d.columns)] if d.train_file else [])
    datasets, notes = [], []
    for path, data_format, columns in sources:
        entry, note = _dataset(path, data_format, columns)
        if entry is None:
            out.drop("data.sources" if d.sources else "data.train_file", note)
        else:
            datasets.append(entry)
            notes.append(note)
    if datasets:
        weights = "; weights are not kept: axolotl concatenates the datasets" if any(s.weight for s in d.sources) else ""
        out.map("data.sources" if d.sources else "data.train_file", {"datasets": datasets}, "; ".join(n for n in notes if n) + weights)
    if d.validation_file:
        entry, note = _dataset(d.validation_file, d.format, d.columns)
        if entry is not None:
            out.map("data.validation_file", {"test_datasets": [{**entry, "split": "train"}]}, note)
    else:
        out.map("data.validation_split", {"val_set_size": d.validation_split})
    reverse = {ours: theirs for theirs, ours in TEMPLATES.items()}
    if d.chat_template in reverse:
        out.map("data.chat_template", {"chat_template": reverse[d.chat_template]})
    else:
        out.map("data.chat_template", {"chat_template": "jinja", "chat_template_jinja": d.chat_template}, "a .jinja file")
    out.map("data.max_seq_length", {"sequence_len": d.max_seq_length})
    out.map("data.packing", {"sample_packing": d.packing, "eval_sample_packing": d.packing})
    out.map("data.assistant_only_loss", {"train_on_inputs": not d.assistant_only_loss})
    if d.system_prompt is not None:
        out.map("data.system_prompt", {"default_system_message": d.system_prompt})
    common.export_trainer_arguments(out, config, names={
        "per_device_train_batch_size": "micro_batch_size",
        "gradient_accumulation_steps": "gradient_accumulation_steps",
        "num_train_epochs": "num_epochs",
        "lr_scheduler_type": "lr_scheduler",
        "optim": "optimizer",
    }, pass_extra_note="a TrainingArguments field; axolotl takes the ones it has a setting for")
    out.map("optimization.gradient_checkpointing", {"gradient_checkpointing": o.gradient_checkpointing})
    out.map("name", {"output_dir": f"./outputs/{config.name}"})
    out.map("evaluation.per_device_eval_batch_size", {"eval_batch_size": e.per_device_eval_batch_size})
    trackers = [] if e.report_to == "none" else ([e.report_to] if isinstance(e.report_to, str) else list(e.report_to))
    if trackers:
        fields: dict[str, Any] = {}
        if "wandb" in trackers:
            fields["wandb_project"] = config.name
        if "tensorboard" in trackers:
            fields["use_tensorboard"] = True
        if "mlflow" in trackers:
            fields["mlflow_experiment_name"] = config.name
        out.map("evaluation.report_to", fields, "axolotl turns a tracker on by its settings")
    common.export_evaluation(out, config, early_stopping_key="early_stopping_patience")
    common.export_devices(out, config, fsdp_in_config=True)
    return out


DIALECT = Dialect(
    name="axolotl",
    title=TOOL,
    rules=RULES,
    finish=finish,
    markers=("base_model", "datasets", "micro_batch_size", "sequence_len", "adapter", "lora_r", "num_epochs",
             "val_set_size", "sample_packing", "lora_target_modules", "lora_target_linear"),
    export=export,
)
