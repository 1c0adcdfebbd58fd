"""The model as training sees it: precision, placement, quantization and the PEFT wrapper."""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from workbench.errors import WorkbenchError

if TYPE_CHECKING:
    from transformers import PreTrainedModel

    from workbench.config.schema import RunConfig
    from workbench.devices import DeviceReport
    from workbench.models import ResolvedModel

# Workbench optimizer names -> TrainingArguments.optim
OPTIMIZER_NAMES = {
    "adamw_torch": "adamw_torch",
    "adamw_8bit": "adamw_bnb_8bit",
    "paged_adamw_8bit": "paged_adamw_8bit",
    "paged_adamw_32bit": "paged_adamw_32bit",
    "sgd": "sgd",
}


@dataclass(frozen=True)
class TrainingPrecision:
    """How numbers are stored and computed during training.

    Attributes:
        weights: dtype the (frozen, for LoRA) weights are loaded in: "fp32", "bf16" or "fp16".
        autocast: "bf16"/"fp16" when matmuls run in half precision over fp32 master weights, else None.
        label: what the user reads, e.g. "mixed-bf16" or "fp32".
    """

    weights: str
    autocast: str | None
    label: str


def training_precision(requested: str, report: "DeviceReport", on_gpu: bool, method: str) -> TrainingPrecision:
    """Resolve the config's precision for this hardware.

    "auto" follows `devices.choose_precision`: fp32 on a CPU without native bf16, mixed bf16 where
    bf16 is native, mixed fp16 on GPUs older than Ampere. With LoRA under mixed precision the frozen
    base weights are stored in the half type (they get no updates, so no fp32 master copy is needed)
    while the adapters stay fp32.
    """
    from workbench.devices import choose_precision

    if requested == "auto":
        chosen = choose_precision("auto", report, use_gpu=on_gpu)
        requested = "fp32" if chosen == "fp32" else f"mixed-{chosen}"
    if requested.startswith("mixed-"):
        half = requested.removeprefix("mixed-")
        frozen_base = method in ("lora", "qlora")
        return TrainingPrecision(half if frozen_base else "fp32", half, requested)
    return TrainingPrecision(requested, None, requested)


def quiet_transformers() -> None:
    """Keep a headless command's output to its own progress lines: no per-file progress bars, no
    announcements of transformers v6 renames."""
    import warnings

    import transformers

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    warnings.filterwarnings("ignore", category=FutureWarning, module="transformers")


def torch_dtype(name: str):
    import torch

    return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[name]


def visible_gpu_environment(gpus: "str | list[int]", use_cpu: bool) -> str | None:
    """The CUDA_VISIBLE_DEVICES value for the config's GPU choice (None: leave it as it is).

    Indices in the config count the GPUs this process can see (as `detect_devices` numbers them), so
    an existing CUDA_VISIBLE_DEVICES is narrowed rather than replaced.
    """
    if use_cpu:
        return ""
    if gpus == "all":
        return None
    current = os.environ.get("CUDA_VISIBLE_DEVICES")
    if current is None:
        return ",".join(str(index) for index in gpus)
    visible = [part.strip() for part in current.split(",") if part.strip()]
    return ",".join(visible[index] for index in gpus if index < len(visible))


def check_method_supported(config: "RunConfig", on_gpu: bool) -> None:
    """Fail early, in one line, where the method cannot run on this machine."""
    if config.method.type == "qlora":
        if not on_gpu:
            raise WorkbenchError(
                "method.type: qlora needs a CUDA GPU (bitsandbytes 4-bit kernels) and this run is on the CPU; "
                "use method.type: lora"
            )
        if importlib.util.find_spec("bitsandbytes") is None:
            raise WorkbenchError(
                "method.type: qlora needs the bitsandbytes package; run `pip install 'sft-workbench[gpu]'` or use lora"
            )
    if config.optimization.optim != "adamw_torch" and config.optimization.optim != "sgd":
        if not on_gpu or importlib.util.find_spec("bitsandbytes") is None:
            raise WorkbenchError(
                f"optimization.optim: {config.optimization.optim} needs a CUDA GPU and bitsandbytes; use adamw_torch"
            )


def build_training_model(
    config: "RunConfig",
    resolved: "ResolvedModel",
    precision: TrainingPrecision,
    *,
    on_gpu: bool,
    local_rank: int = 0,
) -> "PreTrainedModel":
    """Load the base model and make it trainable per `config.method` (LoRA / QLoRA / full)."""
    import torch
    from transformers import AutoModelForCausalLM

    from workbench.models import load_model

    method = config.method
    common = {
        "trust_remote_code": config.model.trust_remote_code,
        "attn_implementation": config.model.attn_implementation,
    }
    if method.type == "qlora":
        from transformers import BitsAndBytesConfig

        compute = torch_dtype(precision.autocast or precision.weights)
        if compute == torch.float32:
            compute = torch.bfloat16
        quantization = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type=method.bnb_4bit_quant_type,
            bnb_4bit_use_double_quant=method.bnb_4bit_use_double_quant,
            bnb_4bit_compute_dtype=compute,
            bnb_4bit_quant_storage=compute,
        )
        model = AutoModelForCausalLM.from_pretrained(
            resolved.path,
            quantization_config=quantization,
            dtype=compute,
            device_map={"": local_rank},
            use_safetensors=True,
            **common,
        )
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(
            model,
            use_gradient_checkpointing=config.optimization.gradient_checkpointing,
            gradient_checkpointing_kwargs={"use_reentrant": False},
        )
    else:
        model = load_model(resolved, dtype=precision.weights, device="cpu", **common)
    model.config.use_cache = False  # the KV cache is useless in training and costs memory

    if method.type == "full":
        model.train()
        return model

    from peft import LoraConfig, get_peft_model
    from transformers import set_seed

    # The adapters' A matrices start random: seed them, or two runs of one config train differently.
    set_seed(config.optimization.seed)
    lora = LoraConfig(
        task_type="CAUSAL_LM",
        r=method.r,
        lora_alpha=method.lora_alpha,
        lora_dropout=method.lora_dropout,
        target_modules=method.target_modules,
        use_rslora=method.use_rslora,
        use_dora=method.use_dora,
        bias="none",
    )
    model = get_peft_model(model, lora)
    model.train()
    return model


def parameter_counts(model) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    trainable = total = 0
    for parameter in model.parameters():
        count = parameter.numel()
        # bitsandbytes 4-bit weights pack two values per byte
        if parameter.__class__.__name__ == "Params4bit":
            count *= 2
        total += count
        if parameter.requires_grad:
            trainable += count
    return trainable, total
