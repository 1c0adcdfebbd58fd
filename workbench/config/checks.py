"""Checks of a schema-valid run config against this machine, the model and the data.

The schema (workbench.config.schema) rejects values that are wrong anywhere (lr <= 0, batch 0,
unknown keys). These checks catch what is wrong *here*: a sequence length above the model's limit,
QLoRA without CUDA, bf16 on hardware without it, files that do not exist, a batch larger than the
data. Errors block a launch; warnings explain a choice that works but is probably not what you want.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import workbench.devices
from workbench.config.distributed import (
    AccelerateConfigError,
    DEEPSPEED_PRESETS,
    SHARDING_TYPES,
    fsdp_enabled,
    num_machines,
    read_accelerate_config,
)
from workbench.config.hf_arguments import expects_eval_data, pass_through_problems, report_to
from workbench.config.io import resolve_config_path
from workbench.config.model_checks import model_folder_problems
from workbench.config.optimizers import BITSANDBYTES_OPTIMIZERS
from workbench.config.schema import MethodSection, RunConfig
from workbench.data.chat_templates import (
    BUILTIN_TEMPLATE_NAMES,
    TEMPLATE_FIELD,
    model_dir_lacks_chat_template,
    resolve_chat_template,
)
from workbench.data.data_refs import absolute_data_path, resolve_data_ref
from workbench.data.loading import count_data_rows
from workbench.data.mixture import mix_counts, source_specs
from workbench.errors import WorkbenchError
from workbench.models import DEFAULT_MODEL_ALIASES, is_default_model_cached, resolve_model

if TYPE_CHECKING:
    from workbench.devices import DeviceReport, GpuInfo

Severity = Literal["error", "warning"]

# Keys under which model configs state their context length, most common first.
CONTEXT_LENGTH_KEYS = ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length", "n_ctx")
LORA_ONLY_FIELDS = ("r", "lora_alpha", "lora_dropout", "target_modules", "use_rslora", "use_dora")
QLORA_ONLY_FIELDS = ("bnb_4bit_quant_type", "bnb_4bit_use_double_quant")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a config: which field, what is wrong and what to do."""

    field: str
    message: str
    severity: Severity = "error"

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def line(self, source: str | None = None) -> str:
        """One line for a terminal, e.g. 'run.yaml: data.train_file: no such file ...'."""
        prefix = f"{source}: " if source else ""
        label = "" if self.is_error else "warning: "
        return f"{prefix}{self.field}: {label}{self.message}"


def _package_installed(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def _selected_gpus(config: RunConfig, devices: DeviceReport) -> list[GpuInfo]:
    if config.devices.use_cpu:
        return []
    if config.devices.gpus == "all":
        return list(devices.gpus)
    return [gpu for gpu in devices.gpus if gpu.index in config.devices.gpus]


def _model_dir(name: str, base_dir: Path | None) -> Path | None:
    """The local directory of the model, or None when finding it would be slow (the default model
    not converted yet: converting takes ~25 s). Raises WorkbenchError when it cannot be found."""
    if name in DEFAULT_MODEL_ALIASES:
        return resolve_model(name).path if is_default_model_cached() else None
    local = resolve_config_path(name, base_dir)
    return resolve_model(local if local.is_dir() else name).path


@functools.lru_cache(maxsize=16)
def _context_length_from(config_json: Path, mtime_ns: int) -> int | None:
    try:
        data = json.loads(config_json.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    for section in (data, data.get("text_config") or {}):
        for key in CONTEXT_LENGTH_KEYS:
            value = section.get(key)
            if isinstance(value, int) and value > 0:
                return value
    return None


def model_context_length(model_dir: Path) -> int | None:
    """The longest sequence the model was built for, from its config.json (no torch, no weights)."""
    config_json = Path(model_dir) / "config.json"
    try:
        mtime = config_json.stat().st_mtime_ns
    except OSError:
        return None
    return _context_length_from(config_json, mtime)


@functools.lru_cache(maxsize=16)
def _count_rows_cached(text: str, split: str | None, subset: str | None, stamp: tuple) -> int:
    return count_data_rows(resolve_data_ref(text, split=split, subset=subset))


def count_rows(path: str | os.PathLike, split: str | None = None, subset: str | None = None) -> int:
    """Rows in training data (a file, a save_to_disk directory, a cached dataset id or a
    dataset_info.json entry), cached by modification time so re-checking after each edit is free.

    Raises:
        WorkbenchError: the data cannot be read (the message names the file and line).
    """
    text = os.fspath(path)
    ref = resolve_data_ref(text, split=split, subset=subset)
    stamp: tuple = ()
    if ref.path is not None:
        stat = ref.path.stat()
        stamp = (str(ref.path.resolve()), stat.st_mtime_ns, stat.st_size)
    return _count_rows_cached(str(ref.path) if ref.path is not None and "#" not in text else text, split, subset, stamp)


def _check_model(config: RunConfig, base_dir: Path | None) -> list[Problem]:
    try:
        model_dir = _model_dir(config.model.name_or_path, base_dir)
    except WorkbenchError as error:
        name = config.model.name_or_path
        hint = f"; `workbench models {name} --allow-download` fetches it" if "/" in name and not Path(name).is_absolute() else ""
        return [Problem("model.name_or_path", f"{error}{hint}")]
    problems = _check_chat_template(config, model_dir, base_dir)
    if model_dir is None:
        return problems

    problems += model_folder_problems(config, model_dir)
    limit = model_context_length(model_dir)
    if limit is not None and config.data.max_seq_length > limit:
        problems.append(
            Problem(
                "data.max_seq_length",
                f"{config.data.max_seq_length} is above the model's limit of {limit} tokens "
                f"(max_position_embeddings); set it to {limit} or less",
            )
        )
    return problems


def _template_syntax_problem(text: str) -> str | None:
    """The Jinja syntax error of a chat template (as transformers compiles it), or None."""
    import jinja2

    try:
        jinja2.Environment(extensions=["jinja2.ext.loopcontrols"]).parse(text)
    except jinja2.TemplateSyntaxError as error:
        return f"not a valid Jinja template (line {error.lineno}: {error.message})"
    return None


def _check_chat_template(config: RunConfig, model_dir: Path | None, base_dir: Path | None) -> list[Problem]:
    """The template must resolve, and "auto" needs a tokenizer that has one (base models have none)."""
    try:
        choice = resolve_chat_template(config.data.chat_template, base_dir)
    except WorkbenchError as error:
        return [Problem(TEMPLATE_FIELD, str(error).removeprefix(f"{TEMPLATE_FIELD}: "))]
    if choice.text is not None:
        syntax = _template_syntax_problem(choice.text)
        if syntax:  # the trainer would stop at its first row
            return [Problem(TEMPLATE_FIELD, f"{choice.name}: {syntax}")]
    if choice.is_auto and model_dir is not None and model_dir_lacks_chat_template(model_dir):
        return [
            Problem(
                TEMPLATE_FIELD,
                f"auto uses the tokenizer's own chat template, and {config.model.name_or_path} has none (a base "
                f"model); choose one of {', '.join(BUILTIN_TEMPLATE_NAMES)} (chatml for a chat model, alpaca for "
                "plain prompt/response) or a path to a .jinja file",
            )
        ]
    return []


def _check_hardware(config: RunConfig, devices: DeviceReport) -> list[Problem]:
    problems = []
    gpus = _selected_gpus(config, devices)
    on_gpu = bool(gpus)
    precision = config.model.precision

    if config.method.type == "qlora":
        if not on_gpu:
            where = "devices.use_cpu is on" if devices.has_cuda else "this machine has no CUDA GPU"
            problems.append(
                Problem("method.type", f"QLoRA needs a CUDA GPU for its 4-bit kernels, and {where}; use lora here")
            )
        elif not _package_installed("bitsandbytes"):
            problems.append(
                Problem(
                    "method.type",
                    "QLoRA needs the bitsandbytes package, which is not installed; "
                    "run `pip install 'sft-workbench[gpu]'` or use lora",
                )
            )
    if config.optimization.optim in BITSANDBYTES_OPTIMIZERS:
        if not on_gpu:
            problems.append(
                Problem(
                    "optimization.optim",
                    f"{config.optimization.optim} runs on CUDA GPUs only (bitsandbytes); use adamw_torch here",
                )
            )
        elif not _package_installed("bitsandbytes"):
            problems.append(
                Problem(
                    "optimization.optim",
                    f"{config.optimization.optim} needs the bitsandbytes package, which is not installed; "
                    "run `pip install 'sft-workbench[gpu]'` or use adamw_torch",
                )
            )

    if precision in ("bf16", "mixed-bf16"):
        if on_gpu:
            old = [gpu for gpu in gpus if not gpu.supports_bf16]
            if old:
                names = ", ".join(f"GPU {gpu.index} ({gpu.name})" for gpu in old)
                problems.append(
                    Problem(
                        "model.precision",
                        f"{names} has no bf16 support (it needs compute capability 8.0+, e.g. A100, RTX 30xx); "
                        "use mixed-fp16 or auto",
                    )
                )
        elif not devices.cpu.supports_native_bf16:
            problems.append(
                Problem(
                    "model.precision",
                    "this CPU has no native bf16 (no avx512_bf16/amx), so bf16 is emulated and trains hundreds "
                    "of times slower than fp32; use fp32 or auto",
                )
            )
    if precision in ("fp16", "mixed-fp16") and not on_gpu:
        problems.append(Problem("model.precision", "fp16 training needs a CUDA GPU; on the CPU use fp32 or auto"))
    elif precision == "fp16":
        problems.append(
            Problem(
                "model.precision",
                "pure fp16 keeps no fp32 master weights and often diverges; mixed-fp16 is the safe choice",
                "warning",
            )
        )

    if config.model.attn_implementation == "flash_attention_2":
        if not on_gpu:
            problems.append(
                Problem("model.attn_implementation", "flash_attention_2 runs on CUDA GPUs only; use sdpa here")
            )
        elif not _package_installed("flash_attn"):
            problems.append(
                Problem(
                    "model.attn_implementation",
                    "flash_attention_2 needs the flash-attn package, which is not installed; use sdpa",
                )
            )
    if config.optimization.use_liger_kernel:
        if not on_gpu:
            problems.append(
                Problem("optimization.use_liger_kernel", "Liger's kernels are Triton kernels for CUDA GPUs; turn it off here")
            )
        elif not _package_installed("liger_kernel"):
            problems.append(
                Problem(
                    "optimization.use_liger_kernel",
                    "needs the liger-kernel package, which is not installed: pip install 'sft-workbench[liger]'",
                )
            )
    if config.optimization.torch_compile and not on_gpu and _cpp_compiler() is None:
        problems.append(
            Problem(
                "optimization.torch_compile",
                "compiling for the CPU needs a C++ compiler (g++ or clang++, or $CXX) and none is on PATH; "
                "install one or turn torch_compile off",
            )
        )
    return problems


def _cpp_compiler() -> str | None:
    """The C++ compiler torch.compile's CPU backend would call, or None."""
    import shutil

    names = [os.environ["CXX"]] if os.environ.get("CXX") else ["g++", "clang++", "c++"]
    return next((found for found in map(shutil.which, names) if found), None)


def _check_devices(config: RunConfig, devices: DeviceReport) -> list[Problem]:
    problems = []
    chosen = config.devices.gpus
    if isinstance(chosen, list):
        if len(set(chosen)) != len(chosen):
            problems.append(Problem("devices.gpus", f"lists a GPU twice ({chosen}); name each GPU once"))
        if not devices.gpus:
            problems.append(
                Problem("devices.gpus", f"names GPUs {chosen} but this machine has no CUDA GPU; use 'all' (the CPU here)")
            )
        else:
            existing = {gpu.index for gpu in devices.gpus}
            missing = [index for index in chosen if index not in existing]
            if missing:
                available = ", ".join(str(index) for index in sorted(existing))
                problems.append(
                    Problem(
                        "devices.gpus",
                        f"GPU {', '.join(map(str, missing))} does not exist; this machine has GPU {available}",
                    )
                )

    gpus = _selected_gpus(config, devices)
    machines = num_machines(config)
    processes = config.devices.num_processes // machines  # the processes on this machine
    where = f" on each of {machines} machines" if machines > 1 else ""
    if processes > 1 and not gpus:
        problems.append(
            Problem(
                "devices.num_processes",
                f"{processes} processes on the CPU (gloo backend) only exercise the multi-GPU code path for "
                "testing; they are slower than one process, so use 1 for real training",
                "warning",
            )
        )
    elif processes > len(gpus) > 0:
        problems.append(
            Problem(
                "devices.num_processes",
                f"{processes} processes{where} but {len(gpus)} GPU(s) selected; run one process per GPU "
                f"(set it to {len(gpus) * machines})",
            )
        )
    elif processes == 1 and len(gpus) > 1:
        problems.append(
            Problem(
                "devices.num_processes",
                f"one process trains on one of the {len(gpus)} selected GPUs; set it to {len(gpus)} "
                "for data-parallel training",
                "warning",
            )
        )
    return problems


def _check_launch(config: RunConfig, base_dir: Path | None) -> list[Problem]:
    """What stops the ranks from starting as the config asks: sharding with one process, DeepSpeed
    missing or misnamed, an accelerate config file that would start other ranks than these."""
    problems = []
    devices = config.devices
    processes = devices.num_processes
    if devices.deepspeed and fsdp_enabled(config):
        problems.append(Problem("devices.fsdp", "DeepSpeed and FSDP cannot be combined; clear one of them"))
    if devices.deepspeed:
        if devices.deepspeed not in DEEPSPEED_PRESETS:
            problems += _check_file("devices.deepspeed", devices.deepspeed, base_dir, required=False)[0]
        if not _package_installed("deepspeed"):
            problems.append(
                Problem("devices.deepspeed", "the deepspeed package is not installed; `pip install deepspeed` (with your "
                        "CUDA build of torch) or clear this field")
            )
        if processes == 1:
            problems.append(
                Problem("devices.deepspeed", "DeepSpeed ZeRO shares the model's state out over several processes; with "
                        "devices.num_processes: 1 there is nothing to share it with. Set num_processes to the number of "
                        "GPUs, or clear deepspeed (gradient_checkpointing or qlora save memory on one GPU)")
            )
    if fsdp_enabled(config) and processes == 1:
        problems.append(
            Problem("devices.fsdp", "FSDP shards the model over several processes; with devices.num_processes: 1 there is "
                    "nothing to shard over. Set num_processes to the number of GPUs, or clear fsdp and fsdp_config")
        )
    if not devices.accelerate_config:
        return problems
    field = "devices.accelerate_config"
    try:
        launch = read_accelerate_config(devices.accelerate_config, base_dir)
    except AccelerateConfigError as error:
        return problems + [Problem(field, str(error))]
    if launch.distributed_type in SHARDING_TYPES:
        choice = {"DEEPSPEED": "devices.deepspeed", "FSDP": "devices.fsdp and devices.fsdp_config"}.get(launch.distributed_type, "")
        instead = f"set {choice} in the run config and " if choice else ""
        problems.append(
            Problem(field, f"distributed_type {launch.distributed_type}: the run config decides the sharding, so the run "
                    f"directory records it; {instead}use distributed_type: MULTI_GPU in {devices.accelerate_config}")
        )
    if launch.starts_one_process and launch.num_processes > launch.num_machines:
        why = "use_cpu: true" if launch.use_cpu else f"distributed_type {launch.distributed_type}"
        problems.append(
            Problem(field, f"with {why}, accelerate launch starts one process per machine (more CPU processes only through "
                    "mpirun), not the num_processes it names; use distributed_type: MULTI_GPU and use_cpu: false (it runs "
                    "on the CPU with gloo where there is no GPU)")
        )
    if launch.num_processes != processes:
        problems.append(
            Problem("devices.num_processes", f"{processes}, but {devices.accelerate_config} starts {launch.num_processes} "
                    f"processes (num_processes, over all machines); make them agree")
        )
    if launch.num_machines > 1:
        if not launch.main_process_ip:
            problems.append(
                Problem(field, f"{launch.num_machines} machines need main_process_ip (the address of the machine with "
                        "machine_rank 0) and main_process_port")
            )
        if not 0 <= launch.machine_rank < launch.num_machines:
            problems.append(
                Problem(field, f"machine_rank {launch.machine_rank} is not one of 0..{launch.num_machines - 1}")
            )
        if launch.num_processes % launch.num_machines:
            problems.append(
                Problem(field, f"num_processes {launch.num_processes} does not split evenly over "
                        f"{launch.num_machines} machines (the same number of GPUs runs on each)")
            )
    if launch.gpu_ids not in (None, "all") and devices.gpus != "all":
        problems.append(
            Problem("devices.gpus", f"GPUs are chosen twice (here and gpu_ids: {launch.gpu_ids} in "
                    f"{devices.accelerate_config}); keep one of them")
        )
    return problems


def _check_method(config: RunConfig) -> list[Problem]:
    problems = []
    defaults = MethodSection()
    method = config.method
    if method.type == "full":
        for name in LORA_ONLY_FIELDS:
            if getattr(method, name) != getattr(defaults, name):
                problems.append(
                    Problem(f"method.{name}", "applies only to LoRA/QLoRA; full fine-tuning ignores it", "warning")
                )
    if method.type != "qlora":
        for name in QLORA_ONLY_FIELDS:
            if getattr(method, name) != getattr(defaults, name):
                problems.append(
                    Problem(f"method.{name}", f"applies only to QLoRA; {method.type} ignores it", "warning")
                )
    return problems


def _check_training_choices(config: RunConfig) -> list[Problem]:
    problems = []
    optimization = config.optimization
    lr = optimization.learning_rate
    if config.method.type == "full" and lr > 1e-4:
        problems.append(
            Problem(
                "optimization.learning_rate",
                f"{lr:g} is high for full fine-tuning (usual 1e-5–5e-5) and risks erasing what the model knew",
                "warning",
            )
        )
    elif config.method.type != "full" and lr > 5e-4:
        problems.append(
            Problem(
                "optimization.learning_rate",
                f"{lr:g} is high for LoRA (usual 1e-4–2e-4); the loss may spike or diverge",
                "warning",
            )
        )
    elif config.method.type != "full" and lr < 1e-5:
        problems.append(
            Problem(
                "optimization.learning_rate",
                f"{lr:g} is very low for LoRA (usual 1e-4–2e-4); the adapter will barely change",
                "warning",
            )
        )
    if optimization.max_steps == -1 and optimization.num_train_epochs > 5:
        problems.append(
            Problem(
                "optimization.num_train_epochs",
                f"{optimization.num_train_epochs:g} passes over the same data tends to memorise it (usual 1–3)",
                "warning",
            )
        )
    evaluation = config.evaluation
    if evaluation.load_best_model_at_end and evaluation.save_steps % evaluation.eval_steps:
        problems.append(
            Problem(
                "evaluation.save_steps",
                f"keeping the best checkpoint needs save_steps to be a multiple of eval_steps "
                f"({evaluation.save_steps} is not a multiple of {evaluation.eval_steps})",
            )
        )
    if not expects_eval_data(config):
        if evaluation.early_stopping_patience is not None:
            problems.append(
                Problem(
                    "evaluation.early_stopping_patience",
                    "early stopping watches the eval loss, but there is no eval data; set data.validation_split "
                    "above 0 or data.validation_file",
                )
            )
        if evaluation.load_best_model_at_end:
            problems.append(
                Problem(
                    "evaluation.load_best_model_at_end",
                    "there is no eval data to pick the best checkpoint by; the last one is kept",
                    "warning",
                )
            )
    return problems


def _check_tracking(config: RunConfig) -> list[Problem]:
    problems = []
    for tracker in report_to(config):
        if not _package_installed(tracker):  # each tracker's package has the tracker's name
            hint = "`pip install 'sft-workbench[tracking]'`" if tracker == "tensorboard" else f"`pip install {tracker}`"
            problems.append(
                Problem("evaluation.report_to", f"{tracker} is not installed; run {hint} or remove it from report_to")
            )
    return problems


def _check_pass_through(config: RunConfig, devices: DeviceReport) -> list[Problem]:
    return [Problem(field, message) for field, message in pass_through_problems(config, devices=devices)]


def _check_file(field: str, value: str | None, base_dir: Path | None, required: bool) -> tuple[list[Problem], Path | None]:
    if not value:
        if required:
            return [
                Problem(field, "no training data; set a .json, .jsonl, .csv or .parquet file of conversations")
            ], None
        return [], None
    path = resolve_config_path(value, base_dir)
    where = "" if Path(value).expanduser().is_absolute() else f" (relative paths start from {base_dir or Path.cwd()})"
    if not path.exists():
        return [Problem(field, f"no such file: {value}{where}")], None
    if path.is_dir():
        return [Problem(field, f"{value} is a directory; name a file")], None
    return [], path


def _check_data_path(field: str, value: str, base_dir: Path | None, spec=None) -> tuple[list[Problem], int | None]:
    """Problems with one data path, and its row count when it can be read (`spec` a mixture.SourceSpec)."""
    where = "" if Path(value).expanduser().is_absolute() else f" (relative paths start from {base_dir or Path.cwd()})"
    text = absolute_data_path(value, base_dir)
    try:
        resolve_data_ref(text)
        rows = count_rows(text, spec.split if spec else None, spec.subset if spec else None)
    except WorkbenchError as error:
        message = str(error)
        if message.endswith(": no such file"):
            message = f"no such file: {value}{where}"
        return [Problem(field, message)], None
    return [], rows


def _training_rows(config: RunConfig, base_dir: Path | None) -> tuple[list[Problem], int | None, bool]:
    """Problems with the training data, the rows one epoch trains on, and whether any are held out."""
    data = config.data
    specs = source_specs(data)
    if not specs:
        return [Problem("data.train_file", "no training data; set a data file of conversations (or several in data.sources)")], None, False
    problems: list[Problem] = []
    available: list[int] = []
    has_eval = bool(data.validation_file)
    if data.validation_file:
        problems += _check_data_path("data.validation_file", data.validation_file, base_dir)[0]
    for spec in specs:
        path_field = spec.field if spec.field == "data.train_file" else f"{spec.field}.path"
        found, rows = _check_data_path(path_field, spec.path, base_dir, spec)
        problems += found
        if spec.validation_file and spec.field != "data.train_file":
            problems += _check_data_path(f"{spec.field}.validation_file", spec.validation_file, base_dir)[0]
        if rows is not None:
            held_out = 0 if spec.validation_file else math.ceil(rows * spec.validation_split)
            has_eval = has_eval or held_out > 0 or bool(spec.validation_file)
            available.append(rows - held_out)
    if problems:
        return problems, None, has_eval
    weights = [spec.weight for spec in specs]
    if all(weight is not None for weight in weights) and all(available):
        return [], sum(mix_counts(available, weights, data.mix_strategy)), has_eval
    return [], sum(available), has_eval


def _same_file(left: str | None, right: str | None, base_dir: Path | None) -> bool:
    if not left or not right:
        return False
    try:
        return resolve_config_path(left, base_dir).resolve() == resolve_config_path(right, base_dir).resolve()
    except OSError:
        return False


def _validation_is_training_data(config: RunConfig, base_dir: Path | None) -> list[Problem]:
    """A validation file that is the training file measures memorization, not learning."""
    pairs = [("data.validation_file", config.data.validation_file, config.data.train_file)]
    pairs += [(f"data.sources[{index}].validation_file", source.validation_file, source.path)
              for index, source in enumerate(config.data.sources)]
    return [
        Problem(field, f"{validation} is also the training file, so the eval loss measures memorization and "
                       "picks the most overfit checkpoint as best; hold rows out (data.validation_split) instead",
                "warning")
        for field, validation, train in pairs
        if _same_file(validation, train, base_dir)
    ]


def _check_data(config: RunConfig, base_dir: Path | None) -> list[Problem]:
    problems, train_rows, has_eval_data = _training_rows(config, base_dir)
    problems += _validation_is_training_data(config, base_dir)
    if train_rows is None:
        return problems
    effective = config.effective_batch_size
    if effective > train_rows:
        problems.append(
            Problem(
                "optimization.per_device_train_batch_size",
                f"the effective batch (batch × accumulation × processes = {effective}) is larger than the "
                f"{train_rows} training rows; lower the batch size or gradient_accumulation_steps",
            )
        )
        return problems
    # An upper bound: packing puts several rows into one sequence, so real runs take fewer steps.
    steps_per_epoch = math.ceil(train_rows / effective)
    optimization = config.optimization
    total_steps = optimization.max_steps if optimization.max_steps > 0 else math.ceil(steps_per_epoch * optimization.num_train_epochs)
    if has_eval_data and config.evaluation.eval_steps > total_steps:
        problems.append(
            Problem(
                "evaluation.eval_steps",
                f"the run has at most {total_steps} optimizer steps, so it never evaluates before the end; "
                f"set eval_steps to {max(1, total_steps // 4)} or so",
                "warning",
            )
        )
    return problems


def check_config(
    config: RunConfig, *, devices: DeviceReport | None = None, base_dir: str | os.PathLike | None = None
) -> list[Problem]:
    """Everything that stops this config from training well here, errors first.

    Args:
        config: a schema-valid config.
        devices: the hardware to check against (detected when None).
        base_dir: where relative paths in the config start (the current directory when None).
    """
    if devices is None:
        devices = workbench.devices.detect_devices()
    base = Path(base_dir) if base_dir is not None else None
    problems = (
        _check_model(config, base)
        + _check_data(config, base)
        + _check_method(config)
        + _check_hardware(config, devices)
        + _check_devices(config, devices)
        + _check_launch(config, base)
        + _check_training_choices(config)
        + _check_tracking(config)
        + _check_pass_through(config, devices)
    )
    return [problem for problem in problems if problem.is_error] + [p for p in problems if not p.is_error]
