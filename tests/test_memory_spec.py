"""Specs from local model directories (meta-device count), from the run config, and measured peaks."""

from __future__ import annotations

import json

import pytest

from workbench.config import RunConfig
from workbench.devices import CpuInfo, DeviceReport, GpuInfo
from workbench.errors import WorkbenchError
from workbench.memory import (
    RunMemory,
    memory_inputs_from_config,
    read_measured_peak,
    read_run_memory,
    resolve_model_spec,
    spec_from_model_dir,
)

GIB = 2**30
CPU_ONLY = DeviceReport(cpu=CpuInfo("test cpu", 2, 24 * GIB, 20 * GIB))
ONE_GPU = DeviceReport(cpu=CPU_ONLY.cpu, gpus=(GpuInfo(0, "Test GPU", 24 * GIB, 23 * GIB, (8, 9)),))


def test_meta_device_count_equals_the_real_model(tiny_model_dir):
    from workbench.models import load_model

    spec = spec_from_model_dir(tiny_model_dir)
    model = load_model(tiny_model_dir)
    assert spec.total_params == sum(p.numel() for p in model.parameters())
    real_linears = {}
    for name, module in model.named_modules():
        if type(module).__name__ == "Linear" and module is not model.get_output_embeddings():
            key = (name.rsplit(".", 1)[-1], module.in_features, module.out_features)
            real_linears[key] = real_linears.get(key, 0) + 1
    assert {(s.name, s.in_features, s.out_features): s.count for s in spec.linears} == real_linears
    assert spec.tie_embeddings is True
    assert spec.extra_frozen_params == 0
    assert (spec.hidden_size, spec.num_layers, spec.num_kv_heads) == (32, 2, 2)


def test_local_directory_resolves_before_the_catalog(tiny_model_dir):
    assert resolve_model_spec(str(tiny_model_dir)).source == str(tiny_model_dir.resolve())
    assert resolve_model_spec("qwen3-8b").source == "catalog"


def test_directory_without_config_is_a_user_error(tmp_path):
    with pytest.raises(WorkbenchError, match="config.json"):
        spec_from_model_dir(tmp_path)
    with pytest.raises(WorkbenchError, match="no such directory"):
        resolve_model_spec(str(tmp_path / "missing"))


def test_default_config_maps_to_cpu_lora_inputs():
    source, inputs = memory_inputs_from_config(RunConfig(), CPU_ONLY)
    config = RunConfig()
    assert source == "default"
    assert inputs.device == "cpu" and inputs.gpus == 1
    assert inputs.method == config.method.type
    assert inputs.lora_r == config.method.r
    assert inputs.lora_dropout == config.method.lora_dropout
    assert inputs.batch_size == config.optimization.per_device_train_batch_size
    assert inputs.seq_len == config.data.max_seq_length
    assert inputs.lora_targets == ("all-linear",)


def test_config_fields_reach_the_inputs(tmp_path):
    deepspeed = tmp_path / "ds.json"
    deepspeed.write_text(json.dumps({"zero_optimization": {"stage": 3}}))
    config = RunConfig.model_validate({
        "model": {"name_or_path": "qwen2.5-7b", "precision": "auto", "attn_implementation": "flash_attention_2"},
        "method": {"type": "qlora", "r": 8, "target_modules": ["q_proj", "v_proj"], "use_dora": True,
                   "bnb_4bit_use_double_quant": False},
        "optimization": {"optim": "paged_adamw_8bit", "gradient_checkpointing": True,
                         "per_device_train_batch_size": 2},
        "data": {"max_seq_length": 2048},
        "devices": {"num_processes": 2, "deepspeed": str(deepspeed)},
    })
    source, inputs = memory_inputs_from_config(config, ONE_GPU)
    assert source == "qwen2.5-7b"
    assert (inputs.device, inputs.precision, inputs.attention) == ("cuda", "mixed-bf16", "flash")
    assert (inputs.method, inputs.lora_r, inputs.lora_targets) == ("qlora", 8, ("q_proj", "v_proj"))
    assert inputs.dora and not inputs.double_quant and inputs.gradient_checkpointing
    assert (inputs.optimizer, inputs.batch_size, inputs.seq_len) == ("paged_adamw_8bit", 2, 2048)
    assert (inputs.gpus, inputs.sharding) == (2, "zero3")
    assert inputs.attention_mask is False  # flash attention takes no mask


def test_use_cpu_overrides_a_present_gpu():
    config = RunConfig.model_validate({"devices": {"use_cpu": True}})
    assert memory_inputs_from_config(config, ONE_GPU)[1].device == "cpu"


def test_measured_peak_is_read_when_the_run_recorded_it(tmp_path):
    assert read_measured_peak(tmp_path) is None
    (tmp_path / "status.json").write_text(json.dumps({"state": "running"}))
    assert read_measured_peak(tmp_path) is None
    (tmp_path / "status.json").write_text(json.dumps({"state": "done", "measured_peak_bytes": 123456789}))
    assert read_measured_peak(tmp_path) == 123456789
    assert read_run_memory(tmp_path).estimated_bytes is None
    (tmp_path / "status.json").write_text(json.dumps({"measured_peak_bytes": 5, "estimated_peak_bytes": 7}))
    assert read_run_memory(tmp_path) == RunMemory(tmp_path.name, 5, 7)
    (tmp_path / "status.json").write_text("{not json")
    assert read_measured_peak(tmp_path) is None
