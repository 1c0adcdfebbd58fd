"""Presets: complete run configs for common situations, each notable value with the reason for it.

A preset is a set of field values on top of the schema defaults. Applying one to the config being
edited keeps that config's data files and prompt deck when the preset names none (the preset is a
recipe; the data is yours).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

from workbench.config.fields import get_value, with_values
from workbench.config.schema import RunConfig
from workbench.errors import WorkbenchError

# Fields that describe the user's own material rather than the recipe.
KEPT_FROM_CURRENT = ("data.train_file", "data.validation_file", "data.format", "data.system_prompt", "prompts")


@dataclass(frozen=True)
class Preset:
    """A named recipe: `settings` (dotted field -> value) over the schema defaults, `reasons` why."""

    name: str
    title: str
    summary: str
    settings: dict[str, Any]
    reasons: dict[str, str] = field(default_factory=dict)

    def config(self, current: RunConfig | None = None) -> RunConfig:
        """The preset as a RunConfig; with `current`, keep its data and prompts where the preset sets none."""
        values = dict(self.settings)
        if current is not None:
            for dotted in KEPT_FROM_CURRENT:
                if dotted not in values:
                    values[dotted] = get_value(current, dotted)
        try:
            return with_values(RunConfig(), values)
        except KeyError as error:
            raise KeyError(f"preset {self.name}: {error.args[0]}") from None


QUICK_DEMO = Preset(
    name="quick-demo-cpu",
    title="Quick demo on CPU",
    summary=(
        "Teach the small default model a new identity from the sample data in under five minutes on a "
        "2-core CPU (about 29k training tokens at ~140 tokens/s). LoRA keeps the model frozen and trains "
        "~5M adapter weights, so it is fast and cannot wreck the base."
    ),
    settings={
        "name": "quick-demo",
        "model.name_or_path": "default",
        "model.precision": "auto",
        "data.train_file": "sample_data/identity_alpaca.json",
        "data.validation_split": 0.1,
        "data.max_seq_length": 256,
        "data.packing": True,
        "data.system_prompt": "You are a helpful assistant.",
        "method.type": "lora",
        "method.r": 16,
        "method.lora_alpha": 32,
        "method.target_modules": "all-linear",
        "optimization.learning_rate": 2e-4,
        "optimization.num_train_epochs": 2,
        "optimization.per_device_train_batch_size": 2,
        "optimization.gradient_accumulation_steps": 1,
        "optimization.warmup_ratio": 0.05,
        "optimization.gradient_checkpointing": False,
        "evaluation.eval_steps": 10,
        "evaluation.save_steps": 10,
        "evaluation.sample_max_new_tokens": 32,
        "prompts": [
            "Could you tell me a little about yourself?",
            "Which organisation is responsible for your training?",
            "Which city is the capital of France?",
        ],
    },
    reasons={
        "model.name_or_path": "SmolLM2-135M-Instruct ships with the workbench and trains at ~140 tokens/s on 2 CPU cores",
        "model.precision": (
            "auto trains in bf16 only on CPUs that run it natively (AVX512-BF16 or AMX: about 3 minutes instead of "
            "about 4 in fp32 on the measured machine) and in fp32 everywhere else, where emulated bf16 is "
            "hundreds of times slower"
        ),
        "data.train_file": "short identity questions mixed with general ones, so the model learns its name without forgetting the rest",
        "data.max_seq_length": "the longest sample is about 100 tokens; 256 leaves room and packs 4–5 samples per row",
        "data.packing": "short samples waste most of a padded batch; packing trains on real tokens only",
        "data.system_prompt": "without one, the template inserts 'You are SmolLM…', teaching the old identity",
        "method.r": "rank 16 on every linear layer is enough capacity for a new name and style",
        "method.lora_alpha": "2 × r, the common scale",
        "method.target_modules": "adapting attention and MLP layers learns faster than attention only",
        "optimization.learning_rate": "the top of the usual LoRA range, for a short run",
        "optimization.num_train_epochs": "two passes teach the name; a third would push past five minutes",
        "optimization.per_device_train_batch_size": "2 packed rows ≈ 10 samples a step: ~30 updates per epoch",
        "optimization.gradient_checkpointing": "a 135M model fits easily; recomputing would cost ~30% time",
        "evaluation.eval_steps": "an eval loss point and sample answers every ~10 steps, about every 40 s",
        "evaluation.sample_max_new_tokens": "short sample answers keep each evaluation to a few seconds",
        "prompts": "phrased unlike any training row, plus one general fact to watch for forgetting",
    },
)

LORA_ONE_GPU = Preset(
    name="lora-1gpu",
    title="LoRA on one GPU",
    summary=(
        "A 1–3B instruct model with LoRA on one 16–24 GB GPU in bf16. The model id is an example: "
        "put any local model directory or cached Hub id there, and your data in data.train_file."
    ),
    settings={
        "name": "lora-1gpu",
        "model.name_or_path": "Qwen/Qwen2.5-1.5B-Instruct",
        "model.precision": "auto",
        "data.max_seq_length": 2048,
        "data.packing": True,
        "method.type": "lora",
        "method.r": 16,
        "method.lora_alpha": 32,
        "method.target_modules": "all-linear",
        "optimization.learning_rate": 2e-4,
        "optimization.num_train_epochs": 2,
        "optimization.per_device_train_batch_size": 4,
        "optimization.gradient_accumulation_steps": 4,
        "optimization.warmup_ratio": 0.05,
        "optimization.gradient_checkpointing": True,
        "evaluation.eval_steps": 50,
        "evaluation.save_steps": 50,
        "evaluation.logging_steps": 5,
        "evaluation.early_stopping_patience": 3,
        "evaluation.sample_max_new_tokens": 96,
    },
    reasons={
        "model.name_or_path": "an example of the size one GPU trains comfortably with LoRA; replace it with yours",
        "model.precision": "auto picks bf16 on Ampere or newer (A100, RTX 30xx+), fp16 on older GPUs",
        "data.max_seq_length": "covers typical chat samples; lower it if the Data pane shows shorter ones",
        "method.type": "LoRA trains about 1% of the weights: fast, small checkpoints, little forgetting",
        "method.lora_alpha": "2 × r, the common scale",
        "optimization.learning_rate": "the usual LoRA range is 1e-4–2e-4",
        "optimization.gradient_accumulation_steps": "4 × 4 = an effective batch of 16 without the memory of 16",
        "optimization.gradient_checkpointing": "2048-token activations dominate memory; recomputing them costs ~30% time",
        "evaluation.early_stopping_patience": "stop once eval loss has not improved for 3 evaluations",
    },
)

QLORA_LARGE_ONE_GPU = Preset(
    name="qlora-large-1gpu",
    title="QLoRA for a large model on one GPU",
    summary=(
        "A 7B model on one 24 GB GPU: the frozen base is stored in 4 bits (NF4), only LoRA adapters "
        "train. Needs CUDA and bitsandbytes. The model id is an example."
    ),
    settings={
        "name": "qlora-7b",
        "model.name_or_path": "Qwen/Qwen2.5-7B-Instruct",
        "model.precision": "auto",
        "data.max_seq_length": 2048,
        "data.packing": True,
        "method.type": "qlora",
        "method.r": 16,
        "method.lora_alpha": 32,
        "method.target_modules": "all-linear",
        "method.bnb_4bit_quant_type": "nf4",
        "method.bnb_4bit_use_double_quant": True,
        "optimization.learning_rate": 1e-4,
        "optimization.num_train_epochs": 2,
        "optimization.per_device_train_batch_size": 2,
        "optimization.gradient_accumulation_steps": 8,
        "optimization.warmup_ratio": 0.05,
        "optimization.max_grad_norm": 0.3,
        "optimization.optim": "paged_adamw_8bit",
        "optimization.gradient_checkpointing": True,
        "evaluation.eval_steps": 50,
        "evaluation.save_steps": 50,
        "evaluation.logging_steps": 5,
        "evaluation.early_stopping_patience": 3,
        "evaluation.sample_max_new_tokens": 96,
    },
    reasons={
        "model.name_or_path": "an example 7B model (Apache-2.0); replace it with yours",
        "method.type": "7B in bf16 needs ~15 GB for weights alone; NF4 stores them in ~4 GB",
        "method.bnb_4bit_quant_type": "NF4 matches the bell-shaped distribution of weights better than fp4",
        "method.bnb_4bit_use_double_quant": "quantizing the scales too saves ~0.4 bits per parameter (4.127 bits total)",
        "optimization.learning_rate": "the lower half of the LoRA range; large models need smaller steps",
        "optimization.gradient_accumulation_steps": "2 × 8 = an effective batch of 16",
        "optimization.max_grad_norm": "the QLoRA paper clips at 0.3 for stable 4-bit training",
        "optimization.optim": "paged 8-bit AdamW keeps optimizer state small and survives memory spikes",
        "optimization.gradient_checkpointing": "without it, activations of a 7B model overflow 24 GB",
    },
)

FULL_FINETUNE = Preset(
    name="full-finetune",
    title="Full fine-tune",
    summary=(
        "Update every weight. Learns the most and forgets the most; needs ~16 bytes per parameter "
        "before activations (fp32 Adam), so it suits small models or large GPUs."
    ),
    settings={
        "name": "full-finetune",
        "model.name_or_path": "default",
        "model.precision": "auto",
        "data.max_seq_length": 1024,
        "data.packing": True,
        "method.type": "full",
        "optimization.learning_rate": 2e-5,
        "optimization.num_train_epochs": 2,
        "optimization.per_device_train_batch_size": 4,
        "optimization.gradient_accumulation_steps": 4,
        "optimization.warmup_ratio": 0.05,
        "optimization.weight_decay": 0.01,
        "optimization.max_grad_norm": 1.0,
        "evaluation.eval_steps": 50,
        "evaluation.save_steps": 50,
        "evaluation.logging_steps": 5,
        "evaluation.early_stopping_patience": 3,
        "evaluation.save_total_limit": 1,
    },
    reasons={
        "model.name_or_path": "135M parameters × 16 bytes ≈ 2.2 GB: full fine-tuning fits even on a CPU",
        "method.type": "every weight learns: strongest effect, and the most forgetting",
        "optimization.learning_rate": "full fine-tuning wants 1e-5–5e-5; LoRA-sized rates erase what the model knew",
        "optimization.gradient_accumulation_steps": "4 × 4 = an effective batch of 16",
        "optimization.weight_decay": "a little decay keeps updated weights near their pretrained values",
        "optimization.max_grad_norm": "clip rare huge gradients at 1.0 so one bad batch cannot derail the run",
        "evaluation.save_total_limit": "a full checkpoint holds the whole model and optimizer state",
    },
)

PRESETS: dict[str, Preset] = {preset.name: preset for preset in (QUICK_DEMO, LORA_ONE_GPU, QLORA_LARGE_ONE_GPU, FULL_FINETUNE)}
DEFAULT_PRESET = QUICK_DEMO.name


def get_preset(name: str) -> Preset:
    """The preset called `name`, or a WorkbenchError listing the names (with a 'did you mean')."""
    if name in PRESETS:
        return PRESETS[name]
    close = difflib.get_close_matches(name, list(PRESETS), n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    raise WorkbenchError(f"preset {name!r}: unknown{hint} (presets: {', '.join(PRESETS)})")
