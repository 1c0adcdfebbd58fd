"""The config in Hugging Face's terms: the kwargs build real TrainingArguments / LoraConfig /
BitsAndBytesConfig objects, and the launch command runs the file."""

import pytest

from workbench.config.presets import PRESETS, get_preset
from workbench.config.hf_arguments import (
    display_facts,
    from_pretrained_kwargs,
    lora_config_kwargs,
    training_arguments_kwargs,
)
from workbench.config.translate import launch_command, render, resolve_precision
from workbench.devices import CpuInfo, DeviceReport, GpuInfo

CPU_ONLY = DeviceReport(cpu=CpuInfo("Test CPU", 2, 24 * 2**30, 20 * 2**30, frozenset()))
ONE_AMPERE = DeviceReport(cpu=CPU_ONLY.cpu, gpus=(GpuInfo(0, "NVIDIA A100", 80 * 2**30, 79 * 2**30, (8, 0)),))


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_builds_real_hugging_face_objects(name, tmp_path):
    from peft import LoraConfig
    from transformers import BitsAndBytesConfig, TrainingArguments

    config = get_preset(name).config()
    arguments = TrainingArguments(**training_arguments_kwargs(config, display_facts(config, CPU_ONLY, run_dir=tmp_path)))
    assert arguments.learning_rate == config.optimization.learning_rate
    assert arguments.gradient_accumulation_steps == config.optimization.gradient_accumulation_steps
    assert arguments.eval_steps == config.evaluation.eval_steps
    lora = lora_config_kwargs(config)
    if config.method.type == "full":
        assert lora is None
    else:
        built = LoraConfig(**lora)
        assert built.r == config.method.r and built.lora_alpha == config.method.lora_alpha
    quantization = from_pretrained_kwargs(config, devices=CPU_ONLY).get("quantization_config")
    assert (quantization is not None) == (config.method.type == "qlora")
    if quantization:
        assert BitsAndBytesConfig(**quantization).bnb_4bit_quant_type == "nf4"


def test_precision_follows_the_hardware():
    demo = get_preset("lora-1gpu").config()
    # LoRA under mixed bf16: the frozen base is stored in bf16, the adapters train over it.
    assert resolve_precision(demo, ONE_AMPERE) == ("bf16", "bf16")
    assert resolve_precision(demo, CPU_ONLY) == ("fp32", None)
    assert training_arguments_kwargs(demo, devices=ONE_AMPERE)["bf16"] is True
    assert training_arguments_kwargs(demo, devices=CPU_ONLY)["use_cpu"] is True
    full = get_preset("full-finetune").config()
    assert resolve_precision(full, ONE_AMPERE) == ("fp32", "bf16")  # fp32 master weights
    pure = demo.model_copy(update={"model": demo.model.model_copy(update={"precision": "bf16"})})
    assert from_pretrained_kwargs(pure, devices=ONE_AMPERE)["dtype"] == "bfloat16"


def test_warmup_ratio_becomes_a_fractional_warmup_steps():
    config = get_preset("quick-demo-cpu").config()
    assert training_arguments_kwargs(config, devices=CPU_ONLY)["warmup_steps"] == config.optimization.warmup_ratio


def test_the_launch_command_trains_the_file():
    config = get_preset("lora-1gpu").config()
    assert launch_command(config, "my run.yaml") == "workbench train 'my run.yaml'"
    assert launch_command(config) == "workbench train CONFIG.yaml"


def test_render_shows_each_view():
    config = get_preset("full-finetune").config()
    assert render(config, "training-args", devices=CPU_ONLY).startswith("TrainingArguments(\n    output_dir=")
    assert "not used" in render(config, "lora")
    assert "method:\n  type: full" in render(config, "yaml")
