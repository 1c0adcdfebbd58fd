"""Training memory estimator: model specs, a per-component estimate, a verdict and plain words.

Pure arithmetic on import (no torch); only counting a local model directory imports transformers.
"""

from workbench.memory.estimator import MemoryEstimate, estimate_training_memory, lora_trainable_params
from workbench.memory.explain import plain_explanation, rule_of_thumb
from workbench.memory.from_config import memory_inputs_from_config
from workbench.memory.inputs import MemoryInputs
from workbench.memory.measured import RunMemory, read_measured_peak, read_run_memory
from workbench.memory.spec import ModelSpec, catalog_spec, resolve_model_spec, spec_from_model_dir
from workbench.memory.verdict import FitVerdict, check_fit, memory_budget

__all__ = [
    "FitVerdict",
    "MemoryEstimate",
    "MemoryInputs",
    "ModelSpec",
    "catalog_spec",
    "check_fit",
    "estimate_training_memory",
    "lora_trainable_params",
    "memory_budget",
    "memory_inputs_from_config",
    "plain_explanation",
    "RunMemory",
    "read_measured_peak",
    "read_run_memory",
    "resolve_model_spec",
    "rule_of_thumb",
    "spec_from_model_dir",
]
