"""Presets: each validates, round-trips through YAML, explains its notable values, and the quick demo
fits the five-minute budget on this CPU."""

from pathlib import Path

import pytest

from workbench.config.checks import check_config
from workbench.config.fields import config_fields, get_value
from workbench.config.io import load_config, save_config
from workbench.config.presets import DEFAULT_PRESET, PRESETS, get_preset
from workbench.config.schema import RunConfig
from workbench.devices import CpuInfo, DeviceReport, GpuInfo
from workbench.errors import WorkbenchError

CPU_ONLY = DeviceReport(cpu=CpuInfo("Test CPU", 2, 24 * 2**30, 20 * 2**30, frozenset()))
ONE_AMPERE = DeviceReport(cpu=CPU_ONLY.cpu, gpus=(GpuInfo(0, "NVIDIA A100", 80 * 2**30, 79 * 2**30, (8, 0)),))
FIELD_NAMES = {spec.dotted for spec in config_fields()}
# What the peers' notes measured for LoRA training of the default model on this 2-core CPU.
MEASURED_TOKENS_PER_SECOND = 140
REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_validates_and_round_trips_through_yaml(name, tmp_path):
    config = get_preset(name).config()
    assert isinstance(config, RunConfig)
    path = save_config(config, tmp_path / f"{name}.yaml")
    assert load_config(path) == config


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_explains_its_notable_values(name):
    preset = PRESETS[name]
    assert set(preset.settings) <= FIELD_NAMES
    assert set(preset.reasons) <= set(preset.settings), "a reason for a value the preset does not set"
    for field in ("optimization.learning_rate", "method.type" if name != "quick-demo-cpu" else "method.r"):
        assert preset.reasons.get(field), f"{name}: no reason for {field}"
    config = preset.config()
    for dotted, value in preset.settings.items():
        assert get_value(config, dotted) == value


def test_learning_rates_follow_the_usual_ranges():
    for preset in PRESETS.values():
        config = preset.config()
        if config.method.type == "full":
            assert 1e-5 <= config.optimization.learning_rate <= 5e-5
        else:
            assert 1e-4 <= config.optimization.learning_rate <= 2e-4


@pytest.mark.parametrize("name", list(PRESETS))
def test_presets_have_no_environment_errors_where_they_are_meant_to_run(name, monkeypatch, tmp_path):
    """Apart from the model and data (yours), each preset is consistent on the hardware it targets."""
    monkeypatch.setattr("workbench.config.checks._package_installed", lambda package: True)
    devices = CPU_ONLY if name in ("quick-demo-cpu", "full-finetune") else ONE_AMPERE
    problems = check_config(get_preset(name).config(), devices=devices, base_dir=tmp_path)
    assert [p for p in problems if p.is_error and p.field not in ("model.name_or_path", "data.train_file")] == []


def test_the_quick_demo_checks_clean_against_the_sample_data():
    problems = check_config(get_preset("quick-demo-cpu").config(), devices=CPU_ONLY, base_dir=REPO_ROOT)
    assert problems == []


def test_the_quick_demo_trains_in_under_five_minutes_here(default_tokenizer):
    """Tokens trained = the training rows' tokens (through the same templating as the trainer, with the
    preset's system prompt) × epochs; at the measured ~140 tokens/s that must leave a minute of the
    five for evaluations and start-up."""
    from workbench.data.loading import load_conversations
    from workbench.data.templating import render_training_example

    config = get_preset("quick-demo-cpu").config()
    loaded = load_conversations(REPO_ROOT / config.data.train_file)
    lengths = [
        len(render_training_example(default_tokenizer, conversation, config.data.max_seq_length, system_prompt=config.data.system_prompt).input_ids)
        for conversation in loaded.conversations
    ]
    assert max(lengths) <= config.data.max_seq_length, "a sample would be truncated"
    trained = sum(lengths) * (1 - config.data.validation_split) * config.optimization.num_train_epochs
    assert trained / MEASURED_TOKENS_PER_SECOND < 4 * 60


def test_applying_a_preset_keeps_your_data_and_prompts():
    current = RunConfig.model_validate(
        {"data": {"train_file": "mine.jsonl", "system_prompt": "Be brief."}, "prompts": ["Who are you?"]}
    )
    applied = get_preset("lora-1gpu").config(current)
    assert applied.data.train_file == "mine.jsonl"
    assert applied.data.system_prompt == "Be brief."
    assert applied.prompts == ["Who are you?"]
    assert applied.model.name_or_path == PRESETS["lora-1gpu"].settings["model.name_or_path"]
    demo = get_preset("quick-demo-cpu").config(current)
    assert demo.data.train_file == "sample_data/identity_alpaca.json"


def test_an_unknown_preset_suggests_the_closest_name():
    with pytest.raises(WorkbenchError, match="did you mean 'full-finetune'"):
        get_preset("full-finetuning")
    assert DEFAULT_PRESET in PRESETS
