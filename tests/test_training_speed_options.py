"""The training speed switches: torch_compile (regional compilation) and Liger kernels reach the
Trainer from the config, and config check refuses them where they cannot run."""

from __future__ import annotations

import pytest

from training_test_support import run_config, varied_rows, write_alpaca
from workbench.devices import CpuInfo, DeviceReport, GpuInfo

CPU = CpuInfo("Test CPU", 2, 24 * 2**30, 20 * 2**30, frozenset())
CPU_ONLY = DeviceReport(cpu=CPU)
ONE_AMPERE = DeviceReport(cpu=CPU, gpus=(GpuInfo(0, "NVIDIA A100", 80 * 2**30, 79 * 2**30, (8, 0)),))


@pytest.fixture
def config(tmp_path, tiny_model_dir):
    return run_config(tiny_model_dir, write_alpaca(tmp_path / "rows.json", varied_rows(8)))


def test_the_switches_reach_the_training_arguments_and_extra_cannot_set_them(config, tmp_path):
    from workbench.config.hf_arguments import build_training_arguments, pass_through_problems, run_facts

    facts = run_facts(config, tmp_path, on_gpu=False, world_size=1, has_eval=False, devices=CPU_ONLY)
    arguments = build_training_arguments(config, facts)
    assert (arguments.torch_compile, arguments.use_liger_kernel) == (False, False)
    config.optimization.torch_compile = True
    assert build_training_arguments(config, facts).torch_compile is True
    config.optimization.extra = {"torch_compile": True, "use_liger_kernel": True}
    problems = dict(pass_through_problems(config, construct=False))
    assert "optimization.torch_compile" in problems["optimization.extra.torch_compile"]
    assert "optimization.use_liger_kernel" in problems["optimization.extra.use_liger_kernel"]


def test_the_trainer_compiles_the_repeated_layers_only(config, tmp_path):
    """torch_compile goes through accelerate's regional compilation: the decoder layers are compiled
    (once, then reused for every layer), not the whole model."""
    from transformers import TrainingArguments

    from workbench.models import load_model
    from workbench.training.trainer import workbench_trainer_class

    model = load_model(config.model.name_or_path)
    arguments = TrainingArguments(
        output_dir=str(tmp_path), use_cpu=True, report_to="none", disable_tqdm=True, torch_compile=True
    )
    trainer = workbench_trainer_class()(model=model, args=arguments, train_dataset=[[]])
    assert trainer.accelerator.state.dynamo_plugin.use_regional_compilation is True
    plain = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none", disable_tqdm=True)
    trainer = workbench_trainer_class()(model=model, args=plain, train_dataset=[[]])
    assert not trainer.accelerator.state.dynamo_plugin.use_regional_compilation


def test_config_check_refuses_liger_on_the_cpu_and_without_the_package(config, monkeypatch):
    import importlib.util

    from workbench.config.checks import check_config

    config.optimization.use_liger_kernel = True
    on_cpu = [p for p in check_config(config, devices=CPU_ONLY) if p.field == "optimization.use_liger_kernel"]
    assert on_cpu and on_cpu[0].is_error and "CUDA" in on_cpu[0].message
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "liger_kernel" else real_find_spec(name, *a)
    )
    on_gpu = [p for p in check_config(config, devices=ONE_AMPERE) if p.field == "optimization.use_liger_kernel"]
    assert on_gpu and "sft-workbench[liger]" in on_gpu[0].message


def test_config_check_refuses_cpu_compilation_without_a_cpp_compiler(config, monkeypatch, tmp_path):
    from workbench.config.checks import _cpp_compiler, check_config

    config.optimization.torch_compile = True
    if _cpp_compiler() is not None:  # this machine has one
        assert not [p for p in check_config(config, devices=CPU_ONLY) if p.field == "optimization.torch_compile"]
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.delenv("CXX", raising=False)
    problems = [p for p in check_config(config, devices=CPU_ONLY) if p.field == "optimization.torch_compile"]
    assert problems and problems[0].is_error and "C++ compiler" in problems[0].message
