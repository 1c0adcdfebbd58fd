"""Run-config validation: schema errors name the field, and environment checks name the field and
say what to do, separating errors (block a launch) from warnings."""

import json

import pytest

from workbench.config.checks import Problem, check_config, count_rows
from workbench.config.io import ConfigError, config_from_dict, load_config
from workbench.config.schema import RunConfig
from workbench.devices import CpuInfo, DeviceReport, GpuInfo

CPU = CpuInfo("Test CPU", 2, 24 * 2**30, 20 * 2**30, frozenset())
CPU_ONLY = DeviceReport(cpu=CPU)
ONE_AMPERE = DeviceReport(cpu=CPU, gpus=(GpuInfo(0, "NVIDIA A100", 80 * 2**30, 79 * 2**30, (8, 0)),))
TWO_VOLTA = DeviceReport(
    cpu=CPU,
    gpus=(
        GpuInfo(0, "Tesla V100", 32 * 2**30, 31 * 2**30, (7, 0)),
        GpuInfo(1, "Tesla V100", 32 * 2**30, 31 * 2**30, (7, 0)),
    ),
)


@pytest.fixture
def data_file(tmp_path):
    rows = [{"instruction": f"question {i}", "input": "", "output": f"answer {i}"} for i in range(20)]
    path = tmp_path / "train.json"
    path.write_text(json.dumps(rows), encoding="utf-8")
    return path


@pytest.fixture
def small_model(tmp_path):
    """A model directory as the checks see it: config.json and a safetensors header (no weights are loaded)."""
    from conftest import write_weightless_model

    return write_weightless_model(tmp_path / "model")


def make_config(data_file, small_model, **sections) -> RunConfig:
    base = {
        "model": {"name_or_path": str(small_model), "precision": "fp32"},
        "data": {"train_file": str(data_file), "max_seq_length": 256},
        "optimization": {"per_device_train_batch_size": 2},
        "evaluation": {"eval_steps": 2, "save_steps": 2},
    }
    for section, values in sections.items():
        base.setdefault(section, {}).update(values)
    return config_from_dict(base)


def fields(problems: list[Problem], severity: str | None = None) -> list[str]:
    return [p.field for p in problems if severity is None or p.severity == severity]


def test_a_good_config_has_no_problems(data_file, small_model):
    assert check_config(make_config(data_file, small_model), devices=CPU_ONLY) == []


@pytest.mark.parametrize(
    "section,values,field",
    [
        ("optimization", {"learning_rate": 0}, "optimization.learning_rate"),
        ("optimization", {"learning_rate": -1e-4}, "optimization.learning_rate"),
        ("optimization", {"per_device_train_batch_size": 0}, "optimization.per_device_train_batch_size"),
        ("optimization", {"gradient_accumulation_steps": 0}, "optimization.gradient_accumulation_steps"),
        ("data", {"max_seq_length": 0}, "data.max_seq_length"),
        ("method", {"type": "lora4"}, "method.type"),
        ("optimization", {"max_steps": 0}, "optimization.max_steps"),
    ],
)
def test_impossible_values_are_schema_errors_naming_the_field(section, values, field):
    with pytest.raises(ConfigError) as caught:
        config_from_dict({section: values}, "run.yaml")
    assert len(caught.value.problems) == 1
    assert caught.value.problems[0].startswith(f"run.yaml: {field}: ")


def test_an_unknown_key_suggests_the_right_one(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("optimization:\n  learning_rat: 1e-4\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.problems == [f"{path}: optimization.learning_rat: unknown key; did you mean 'learning_rate'?"]


@pytest.mark.parametrize(
    "data, hint",
    [
        ({"learning_rate": 1e-4}, "learning_rate belongs under optimization (optimization.learning_rate)"),
        ({"model": {"max_seq_length": 512}}, "max_seq_length belongs under data (data.max_seq_length)"),
        ({"lora_dropout": 0.1}, "lora_dropout belongs under method (method.lora_dropout)"),
        ({"evaluation": {"lerning_rate": 1}}, "did you mean 'optimization.learning_rate'?"),
        ({"optimization": {"adam_beta2": 0.95}}, "it is a TrainingArguments field: set it under optimization.extra"),
        ({"bf16": True}, "TrainingArguments.bf16 comes from model.precision"),
    ],
)
def test_an_unknown_key_is_looked_up_in_every_section(data, hint):
    with pytest.raises(ConfigError) as caught:
        config_from_dict(data, "run.yaml")
    assert len(caught.value.problems) == 1
    assert f": unknown key; {hint}" in caught.value.problems[0]


def test_exponent_floats_without_a_dot_read_as_numbers(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("optimization:\n  learning_rate: 2e-4\n  extra: {adam_epsilon: 1e-8}\n")
    config = load_config(path)
    assert config.optimization.learning_rate == 2e-4 and config.optimization.extra == {"adam_epsilon": 1e-8}


def test_max_seq_length_above_the_model_limit_is_an_error(data_file, small_model):
    problems = check_config(make_config(data_file, small_model, data={"max_seq_length": 1024}), devices=CPU_ONLY)
    assert fields(problems, "error") == ["data.max_seq_length"]
    assert "512" in problems[0].message


def test_a_model_that_cannot_be_found_is_an_error(data_file, tmp_path):
    problems = check_config(make_config(data_file, tmp_path / "nowhere"), devices=CPU_ONLY)
    assert fields(problems, "error") == ["model.name_or_path"]


def test_qlora_without_cuda_is_an_error(data_file, small_model):
    problems = check_config(make_config(data_file, small_model, method={"type": "qlora"}), devices=CPU_ONLY)
    assert "method.type" in fields(problems, "error")
    assert "CUDA" in next(p.message for p in problems if p.field == "method.type")


def test_qlora_with_cuda_but_without_bitsandbytes_is_an_error(data_file, small_model, monkeypatch):
    monkeypatch.setattr("workbench.config.checks._package_installed", lambda name: name != "bitsandbytes")
    problems = check_config(make_config(data_file, small_model, method={"type": "qlora"}, model={"precision": "auto"}), devices=ONE_AMPERE)
    assert fields(problems, "error") == ["method.type"]
    assert "bitsandbytes" in problems[0].message


def test_paged_optimizer_on_cpu_is_an_error(data_file, small_model):
    problems = check_config(make_config(data_file, small_model, optimization={"optim": "paged_adamw_8bit"}), devices=CPU_ONLY)
    assert fields(problems, "error") == ["optimization.optim"]


@pytest.mark.parametrize("precision", ["bf16", "mixed-bf16"])
def test_bf16_on_a_cpu_without_native_bf16_is_an_error(data_file, small_model, precision):
    problems = check_config(make_config(data_file, small_model, model={"precision": precision}), devices=CPU_ONLY)
    assert fields(problems, "error") == ["model.precision"]


def test_bf16_on_a_gpu_before_ampere_is_an_error(data_file, small_model):
    config = make_config(data_file, small_model, model={"precision": "mixed-bf16"}, devices={"num_processes": 2})
    problems = check_config(config, devices=TWO_VOLTA)
    assert fields(problems, "error") == ["model.precision"]
    assert "V100" in problems[0].message


def test_bf16_on_ampere_is_fine(data_file, small_model):
    config = make_config(data_file, small_model, model={"precision": "mixed-bf16"})
    assert check_config(config, devices=ONE_AMPERE) == []


def test_fp16_on_cpu_is_an_error(data_file, small_model):
    problems = check_config(make_config(data_file, small_model, model={"precision": "mixed-fp16"}), devices=CPU_ONLY)
    assert fields(problems, "error") == ["model.precision"]


def test_neftune_with_packing_is_allowed(data_file, small_model):
    """The trainer scales NEFTune's noise per packed sample (test_training_packing proves the
    scale), so packing no longer rules NEFTune out. (This test used to pin the refusal.)"""
    packed = make_config(data_file, small_model, optimization={"neftune_noise_alpha": 5.0})
    assert packed.data.packing
    assert "optimization.neftune_noise_alpha" not in fields(check_config(packed, devices=CPU_ONLY))


def test_pass_through_training_arguments_are_checked_against_transformers(data_file, small_model):
    good = {"adam_beta2": 0.95, "tf32": False, "dataloader_drop_last": False, "dataloader_num_workers": 2,
            "lr_scheduler_kwargs": {"min_lr": 1e-6}}
    problems = check_config(make_config(data_file, small_model, optimization={"extra": good}), devices=CPU_ONLY)
    assert not [field for field in fields(problems) if field.startswith("optimization.extra")]

    bad = {"adam_beta": 0.9, "learning_rate": 1e-5, "adam_beta2": "high", "output_dir": "/tmp/elsewhere"}
    problems = check_config(make_config(data_file, small_model, optimization={"extra": bad}), devices=CPU_ONLY)
    by_field = {p.field: p.message for p in problems if p.field.startswith("optimization.extra")}
    assert "did you mean 'adam_beta2'" in by_field["optimization.extra.adam_beta"]
    assert "set it there" in by_field["optimization.extra.learning_rate"]
    assert "optimization.learning_rate" in by_field["optimization.extra.learning_rate"]
    assert by_field["optimization.extra.adam_beta2"] == "TrainingArguments expects float, got 'high'"
    assert "--run-dir" in by_field["optimization.extra.output_dir"]
    assert all(p.is_error for p in problems if p.field.startswith("optimization.extra"))


def test_pass_through_settings_that_training_arguments_refuses_together_are_an_error(data_file, small_model):
    config = make_config(data_file, small_model, optimization={"extra": {"dataloader_prefetch_factor": 2}})
    problems = [p for p in check_config(config, devices=CPU_ONLY) if p.field == "optimization.extra"]
    assert len(problems) == 1 and "dataloader_num_workers" in problems[0].message


def test_a_tracker_that_is_not_installed_is_an_error(data_file, small_model, monkeypatch):
    import workbench.config.checks as checks

    monkeypatch.setattr(checks, "_package_installed", lambda name: name != "wandb")
    config = make_config(data_file, small_model, evaluation={"report_to": ["tensorboard", "wandb"]})
    problems = [p for p in check_config(config, devices=CPU_ONLY) if p.field == "evaluation.report_to"]
    assert len(problems) == 1 and problems[0].is_error and "wandb is not installed" in problems[0].message


def test_effective_batch_larger_than_the_training_rows_is_an_error(data_file, small_model):
    # 20 rows, 10% held out for eval: 18 training rows; 4 x 5 = 20 > 18.
    config = make_config(data_file, small_model, optimization={"per_device_train_batch_size": 4, "gradient_accumulation_steps": 5})
    problems = check_config(config, devices=CPU_ONLY)
    assert fields(problems, "error") == ["optimization.per_device_train_batch_size"]
    assert "18 training rows" in problems[0].message


def test_rows_are_counted_in_each_format(tmp_path):
    (tmp_path / "a.jsonl").write_text('{"prompt": "a", "completion": "b"}\n\n{"prompt": "c", "completion": "d"}\n')
    (tmp_path / "b.csv").write_text("prompt,completion\na,b\nc,d\ne,f\n")
    assert count_rows(tmp_path / "a.jsonl") == 2
    assert count_rows(tmp_path / "b.csv") == 3


def test_unreadable_training_data_is_reported_on_the_field(tmp_path, small_model):
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"prompt": "a", "completion": "b"}\n{"prompt": \n')
    problems = check_config(make_config(broken, small_model), devices=CPU_ONLY)
    assert fields(problems, "error") == ["data.train_file"]
    assert "broken.jsonl:2" in problems[0].message


@pytest.mark.parametrize(
    "section,values,field",
    [
        ("data", {"train_file": "missing.json"}, "data.train_file"),
        ("data", {"validation_file": "missing-val.json"}, "data.validation_file"),
        ("devices", {"deepspeed": "ds_config.json", "num_processes": 2}, "devices.deepspeed"),  # ZeRO needs ranks
    ],
)
def test_files_that_do_not_exist_are_errors(data_file, small_model, tmp_path, monkeypatch, section, values, field):
    monkeypatch.setattr("workbench.config.checks._package_installed", lambda name: True)
    problems = check_config(make_config(data_file, small_model, **{section: values}), devices=CPU_ONLY, base_dir=tmp_path)
    assert fields(problems, "error") == [field]
    assert "no such file" in problems[0].message and str(tmp_path) in problems[0].message


def test_relative_paths_start_from_base_dir(data_file, small_model):
    config = make_config(data_file, small_model, data={"train_file": data_file.name})
    assert check_config(config, devices=CPU_ONLY, base_dir=data_file.parent) == []


def test_no_training_file_is_an_error(small_model):
    config = config_from_dict({"model": {"name_or_path": str(small_model), "precision": "fp32"}, "data": {"max_seq_length": 256}})
    assert fields(check_config(config, devices=CPU_ONLY), "error") == ["data.train_file"]


def test_lora_options_under_full_fine_tuning_are_warnings(data_file, small_model):
    config = make_config(
        data_file, small_model, method={"type": "full", "r": 64, "use_dora": True}, optimization={"learning_rate": 2e-5}
    )
    problems = check_config(config, devices=CPU_ONLY)
    assert fields(problems) == ["method.r", "method.use_dora"]
    assert all(p.severity == "warning" for p in problems)


def test_qlora_options_under_lora_are_warnings(data_file, small_model):
    problems = check_config(make_config(data_file, small_model, method={"bnb_4bit_quant_type": "fp4"}), devices=CPU_ONLY)
    assert [(p.field, p.severity) for p in problems] == [("method.bnb_4bit_quant_type", "warning")]


def test_gpus_that_do_not_exist_are_errors(data_file, small_model):
    on_cpu = check_config(make_config(data_file, small_model, devices={"gpus": [0]}), devices=CPU_ONLY)
    assert fields(on_cpu, "error") == ["devices.gpus"]
    missing = check_config(make_config(data_file, small_model, devices={"gpus": [0, 3]}), devices=ONE_AMPERE)
    assert fields(missing, "error") == ["devices.gpus"]
    assert "GPU 3 does not exist" in missing[0].message


def test_several_processes_on_cpu_are_a_warning_and_more_than_gpus_an_error(data_file, small_model):
    on_cpu = check_config(make_config(data_file, small_model, devices={"num_processes": 2}), devices=CPU_ONLY)
    assert [(p.field, p.severity) for p in on_cpu] == [("devices.num_processes", "warning")]
    assert "gloo" in on_cpu[0].message
    too_many = check_config(make_config(data_file, small_model, devices={"num_processes": 2}), devices=ONE_AMPERE)
    assert [(p.field, p.severity) for p in too_many] == [("devices.num_processes", "error")]


def test_learning_rate_far_outside_the_usual_range_is_a_warning(data_file, small_model):
    full = check_config(make_config(data_file, small_model, method={"type": "full"}), devices=CPU_ONLY)
    assert [(p.field, p.severity) for p in full] == [("optimization.learning_rate", "warning")]
    assert "1e-5" in full[0].message


def test_early_stopping_without_eval_data_is_an_error(data_file, small_model):
    config = make_config(data_file, small_model, data={"validation_split": 0.0}, evaluation={"early_stopping_patience": 2})
    problems = check_config(config, devices=CPU_ONLY)
    assert fields(problems, "error") == ["evaluation.early_stopping_patience"]
    assert fields(problems, "warning") == ["evaluation.load_best_model_at_end"]


def test_eval_steps_beyond_the_run_is_a_warning(data_file, small_model):
    problems = check_config(make_config(data_file, small_model, evaluation={"eval_steps": 500, "save_steps": 500}), devices=CPU_ONLY)
    assert [(p.field, p.severity) for p in problems] == [("evaluation.eval_steps", "warning")]


def test_errors_come_before_warnings_and_print_as_one_line(data_file, small_model):
    config = make_config(data_file, small_model, method={"type": "full"}, model={"precision": "mixed-fp16"})
    problems = check_config(config, devices=CPU_ONLY)
    assert [p.severity for p in problems] == ["error", "warning"]
    assert problems[0].line("run.yaml").startswith("run.yaml: model.precision: fp16")
    assert problems[1].line("run.yaml").startswith("run.yaml: optimization.learning_rate: warning: ")
