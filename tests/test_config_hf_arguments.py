"""One builder for the Hugging Face objects: what the Launch tab and `config show` display is what
the trainer passes, for every preset; overrides and pass-through keys reach the built objects; and
"auto" precision resolves the same way for training, `workbench estimate` and the Memory pane."""

from __future__ import annotations

import json

import pytest

from workbench.config.hf_arguments import (
    build_from_pretrained_arguments,
    build_lora_config,
    build_training_arguments,
    display_facts,
    from_pretrained_kwargs,
    json_safe,
    lora_config_kwargs,
    run_facts,
    training_arguments_kwargs,
)
from workbench.config.io import config_from_dict
from workbench.config.presets import PRESETS, get_preset
from workbench.devices import CpuInfo, DeviceReport

CPU_ONLY = DeviceReport(cpu=CpuInfo("Test CPU", 2, 24 * 2**30, 20 * 2**30, frozenset()))
AMX_CPU = DeviceReport(cpu=CpuInfo("Xeon with AMX", 2, 24 * 2**30, 20 * 2**30, frozenset({"avx512_bf16", "amx_bf16"})))


def _as_json(value):
    return json.loads(json.dumps(json_safe(value)))


@pytest.mark.parametrize("name", list(PRESETS))
def test_what_is_shown_is_what_the_trainer_builds_for_every_preset(name, tmp_path):
    """The display's kwargs (best knowledge before the run) build the same TrainingArguments,
    LoraConfig, quantization config and from_pretrained arguments, field by field, as the trainer's
    calls with the facts a started run finds on this CPU (one process, eval rows present)."""
    from peft import LoraConfig
    from transformers import TrainingArguments

    config = get_preset(name).config()
    run_dir = tmp_path / "20260101-000000-run"
    shown = display_facts(config, CPU_ONLY, run_dir=run_dir)
    trainer = run_facts(config, run_dir, on_gpu=False, world_size=1, has_eval=True, devices=CPU_ONLY)

    shown_arguments = TrainingArguments(**training_arguments_kwargs(config, shown)).to_dict()
    run_arguments = build_training_arguments(config, trainer).to_dict()
    assert shown_arguments.keys() == run_arguments.keys()
    differing = {key: (shown_arguments[key], run_arguments[key]) for key in shown_arguments if shown_arguments[key] != run_arguments[key]}
    assert differing == {}
    assert run_arguments["learning_rate"] == config.optimization.learning_rate
    assert run_arguments["output_dir"] == str(run_dir / "checkpoints")

    shown_lora = lora_config_kwargs(config)
    run_lora = build_lora_config(config)
    assert (shown_lora is None) == (run_lora is None) == (config.method.type == "full")
    if run_lora is not None:
        assert LoraConfig(**shown_lora).to_dict() == run_lora.to_dict()

    shown_loading = from_pretrained_kwargs(config, shown)
    run_loading = build_from_pretrained_arguments(config, trainer)
    shown_quantization = shown_loading.pop("quantization_config", None)
    run_quantization = run_loading.pop("quantization_config", None)
    assert (shown_quantization is None) == (run_quantization is None) == (config.method.type != "qlora")
    if run_quantization is not None:
        built = _as_json(run_quantization.to_dict())
        assert {key: built[key] for key in shown_quantization} == shown_quantization
    assert _as_json(shown_loading) == _as_json(run_loading)


def test_the_qlora_display_names_the_4bit_config_the_trainer_loads_with(tmp_path):
    from transformers import BitsAndBytesConfig

    config = get_preset("qlora-large-1gpu").config()
    facts = run_facts(config, tmp_path, on_gpu=True, world_size=1, has_eval=True, devices=CPU_ONLY)
    shown = from_pretrained_kwargs(config, facts)["quantization_config"]
    built = build_from_pretrained_arguments(config, facts)["quantization_config"]
    assert isinstance(built, BitsAndBytesConfig)
    assert {key: _as_json(built.to_dict()[key]) for key in shown} == shown
    assert shown["bnb_4bit_quant_storage"] == shown["bnb_4bit_compute_dtype"] == "bfloat16"


def test_overrides_and_pass_through_keys_reach_the_training_arguments(tmp_path):
    config = config_from_dict(
        {"optimization": {"extra": {"adam_beta2": 0.95, "dataloader_num_workers": 2}}},
        "run.yaml",
        ["optimization.learning_rate=1e-5", "optimization.extra.tf32=false", "evaluation.report_to=tensorboard"],
    )
    facts = run_facts(config, tmp_path, on_gpu=False, world_size=1, has_eval=False, devices=CPU_ONLY)
    arguments = build_training_arguments(config, facts)
    assert arguments.learning_rate == 1e-5
    assert (arguments.adam_beta2, arguments.dataloader_num_workers, arguments.tf32) == (0.95, 2, False)
    assert arguments.report_to == ["tensorboard"]
    assert arguments.eval_strategy.value == "no"


def test_a_pass_through_key_the_workbench_owns_stops_the_trainer_in_one_line(tmp_path):
    from workbench.errors import WorkbenchError

    config = config_from_dict({"optimization": {"extra": {"output_dir": "/elsewhere"}}})
    facts = run_facts(config, tmp_path, on_gpu=False, world_size=1, has_eval=True, devices=CPU_ONLY)
    with pytest.raises(WorkbenchError, match=r"^optimization\.extra\.output_dir: the workbench sets"):
        build_training_arguments(config, facts)


def test_auto_precision_resolves_alike_for_train_estimate_and_the_memory_pane(monkeypatch, capsys):
    """On a CPU with native bf16, `workbench estimate` used to say fp32 while training picked
    mixed-bf16. Now all three ask workbench.precision."""
    import workbench.devices
    from workbench_cli.main import main
    from workbench.memory import memory_inputs_from_config

    monkeypatch.setattr(workbench.devices, "detect_devices", lambda: AMX_CPU)
    config = config_from_dict({"model": {"precision": "auto"}})
    trained = run_facts(config, "run", on_gpu=False, world_size=1, has_eval=True).precision.label
    _, memory_inputs = memory_inputs_from_config(config, AMX_CPU)
    assert main(["estimate", "--model", "llama-3.1-8b", "--cpu", "--json"]) == 0
    estimated = json.loads(capsys.readouterr().out)["inputs"]["precision"]
    assert trained == memory_inputs.precision == estimated == "mixed-bf16"

    monkeypatch.setattr(workbench.devices, "detect_devices", lambda: CPU_ONLY)
    assert main(["estimate", "--model", "llama-3.1-8b", "--cpu", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["inputs"]["precision"] == "fp32"
    assert run_facts(config, "run", on_gpu=False, world_size=1, has_eval=True).precision.label == "fp32"


def test_one_optimizer_table_speaks_every_vocabulary():
    from transformers.training_args import OptimizerNames

    from workbench.config.fields import field_spec
    from workbench.config.optimizers import OPTIMIZERS
    from workbench.memory.inputs import OPTIMIZERS as MEMORY_OPTIMIZERS

    assert field_spec("optimization.optim").choices == tuple(OPTIMIZERS)
    assert MEMORY_OPTIMIZERS == tuple(OPTIMIZERS), "the memory estimator speaks the config's names"
    trainer_names = {member.value for member in OptimizerNames}
    assert all(optimizer.training_arguments in trainer_names for optimizer in OPTIMIZERS.values())
