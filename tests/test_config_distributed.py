"""Launching at scale from the run config: the accelerate launch line (shown = run), DeepSpeed
presets shipped as files, FSDP's fsdp_config reaching TrainingArguments, and the configs that
cannot run as asked refused at `config check` with the reason."""

from __future__ import annotations

import json
import shlex

import pytest
import yaml

from workbench.config.checks import check_config
from workbench.config.distributed import (
    DEEPSPEED_PRESETS,
    launch_argv,
    launch_command,
    read_accelerate_config,
    trainer_arguments,
    zero_stage,
)
from workbench.config.io import config_from_dict
from workbench.devices import CpuInfo, DeviceReport, GpuInfo
from workbench.errors import WorkbenchError

CPU = CpuInfo("Test CPU", 2, 24 * 2**30, 20 * 2**30, frozenset())
CPU_ONLY = DeviceReport(cpu=CPU)
FOUR_AMPERE = DeviceReport(
    cpu=CPU, gpus=tuple(GpuInfo(index, "NVIDIA A100", 80 * 2**30, 79 * 2**30, (8, 0)) for index in range(4))
)


@pytest.fixture
def base(tmp_path):
    rows = [{"instruction": f"question {i}", "input": "", "output": f"answer {i}"} for i in range(40)]
    (tmp_path / "train.json").write_text(json.dumps(rows), encoding="utf-8")
    from conftest import write_weightless_model

    model = write_weightless_model(tmp_path / "model")
    return {
        "model": {"name_or_path": str(model), "precision": "fp32"},
        "data": {"train_file": str(tmp_path / "train.json"), "max_seq_length": 256},
        "optimization": {"per_device_train_batch_size": 1},
        "evaluation": {"eval_steps": 2, "save_steps": 2},
    }


def make(base, **devices):
    return config_from_dict({**base, "devices": devices})


def errors(problems, field=None):
    return [p for p in problems if p.is_error and (field is None or p.field == field)]


def write_accelerate_config(tmp_path, **values):
    path = tmp_path / "accelerate.yaml"
    path.write_text(yaml.safe_dump({"compute_environment": "LOCAL_MACHINE", **values}), encoding="utf-8")
    return path


# -- the launch line ---------------------------------------------------------------------------


def test_one_process_is_plain_workbench_train(base):
    assert launch_command(make(base), "my run.yaml") == "workbench train 'my run.yaml'"


def test_several_processes_show_the_accelerate_launch_the_trainer_runs(base):
    config = make(base, num_processes=4, gpus=[0, 1, 2, 3])
    shown = launch_command(config, "run.yaml")
    assert shown.startswith("CUDA_VISIBLE_DEVICES=0,1,2,3 accelerate launch --multi_gpu --num_processes 4 ")
    # what `workbench train` runs is the same argv after the interpreter
    run = launch_argv(config, "run.yaml", python="/venv/bin/python")
    assert run[:3] == ["/venv/bin/python", "-m", "accelerate.commands.launch"]
    assert shlex.split(shown.split(" ", 1)[1])[2:] == run[3:]
    assert run[-4:] == ["-m", "workbench", "train", "run.yaml"]
    # the ranks the workbench starts for a run directory it already made join that directory
    assert launch_argv(config, "run.yaml", "/runs/r1")[-2:] == ["--run-dir", "/runs/r1"]
    assert launch_argv(config, "run.yaml", "/runs/r1", resume=True)[-2:] == ["--resume", "/runs/r1"]


def test_an_accelerate_config_file_carries_the_machines(base, tmp_path):
    file = write_accelerate_config(
        tmp_path, distributed_type="MULTI_GPU", num_processes=8, num_machines=2, machine_rank=0,
        main_process_ip="10.0.0.1", main_process_port=29500,
    )
    config = make(base, num_processes=8, accelerate_config=str(file))
    shown = launch_command(config, "run.yaml")
    assert f"accelerate launch --config_file {file} " in shown
    assert "--num_processes" not in shown  # the file says how many, on how many machines
    assert "on each of the 2 machines" in shown
    launch = read_accelerate_config(str(file))
    assert (launch.num_machines, launch.main_process_ip, launch.main_process_port) == (2, "10.0.0.1", 29500)
    assert errors(check_config(config, devices=FOUR_AMPERE, base_dir=tmp_path)) == []


def test_a_run_on_several_machines_is_not_started_in_the_background(base, tmp_path):
    from workbench.runs.launch import start_run

    file = write_accelerate_config(
        tmp_path, distributed_type="MULTI_GPU", num_processes=8, num_machines=2, main_process_ip="10.0.0.1"
    )
    with pytest.raises(WorkbenchError, match="spans 2 machines"):
        start_run(make(base, num_processes=8, accelerate_config=str(file)), runs_root=tmp_path / "runs")
    assert not (tmp_path / "runs").exists()


# -- DeepSpeed and FSDP reach the Trainer ------------------------------------------------------


def test_deepspeed_presets_are_shipped_zero_configs(base):
    assert zero_stage("zero2") == 2 and zero_stage("zero3") == 3
    for path in DEEPSPEED_PRESETS.values():
        settings = json.loads(path.read_text(encoding="utf-8"))
        # sizes come from the run config through the Trainer, never from the file
        assert settings["train_micro_batch_size_per_gpu"] == "auto"
        assert settings["gradient_accumulation_steps"] == "auto"
    assert trainer_arguments(make(base, deepspeed="zero3", num_processes=2)) == {"deepspeed": str(DEEPSPEED_PRESETS["zero3"])}


def test_a_deepspeed_preset_name_survives_into_the_run_directory(base, tmp_path, monkeypatch):
    from workbench.runs.launch import config_for_run

    monkeypatch.chdir(tmp_path)
    assert config_for_run(make(base, deepspeed="zero2", num_processes=2)).devices.deepspeed == "zero2"
    (tmp_path / "ds.json").write_text("{}")
    assert config_for_run(make(base, deepspeed="ds.json", num_processes=2)).devices.deepspeed == str(tmp_path / "ds.json")


def test_fsdp_config_reaches_the_training_arguments(base, tmp_path):
    from workbench.config.hf_arguments import build_training_arguments, run_facts, training_arguments_kwargs

    config = make(base, num_processes=2, fsdp="full_shard", fsdp_config={"transformer_layer_cls_to_wrap": ["LlamaDecoderLayer"]})
    facts = run_facts(config, tmp_path / "run", on_gpu=False, world_size=1, has_eval=True, devices=CPU_ONLY)
    shown = training_arguments_kwargs(config, facts)
    assert shown["fsdp"] == "full_shard"
    assert shown["fsdp_config"] == {"transformer_layer_cls_to_wrap": ["LlamaDecoderLayer"]}
    built = build_training_arguments(config, facts)
    assert built.fsdp_plugin_args["transformer_cls_names_to_wrap"] == "LlamaDecoderLayer"
    assert built.fsdp_plugin_args["reshard_after_forward"] is True  # full_shard
    assert "deepspeed" not in shown and "fsdp" not in training_arguments_kwargs(make(base), facts)


def test_pass_through_keys_check_out_for_several_processes(base):
    from workbench.config.hf_arguments import pass_through_problems

    # probing TrainingArguments as two ranks would need their process group; one process is probed
    config = make(base, num_processes=2)
    config.optimization.extra = {"adam_beta2": 0.95}
    assert pass_through_problems(config, devices=CPU_ONLY) == []


# -- refused at config check -------------------------------------------------------------------


def test_fsdp_or_deepspeed_with_one_process_is_refused(base, monkeypatch):
    monkeypatch.setattr("workbench.config.checks._package_installed", lambda name: True)
    fsdp = check_config(make(base, fsdp="full_shard"), devices=FOUR_AMPERE)
    assert [p.field for p in errors(fsdp)] == ["devices.fsdp"] and "num_processes: 1" in errors(fsdp)[0].message
    deepspeed = check_config(make(base, deepspeed="zero2"), devices=FOUR_AMPERE)
    assert [p.field for p in errors(deepspeed)] == ["devices.deepspeed"]
    assert errors(check_config(make(base, deepspeed="zero2", num_processes=4), devices=FOUR_AMPERE)) == []


def test_deepspeed_that_is_not_installed_is_refused(base, monkeypatch):
    monkeypatch.setattr("workbench.config.checks._package_installed", lambda name: name != "deepspeed")
    problems = errors(check_config(make(base, deepspeed="zero3", num_processes=4), devices=FOUR_AMPERE))
    assert [p.field for p in problems] == ["devices.deepspeed"] and "not installed" in problems[0].message


def test_a_deepspeed_name_that_is_neither_preset_nor_file_is_refused(base, tmp_path, monkeypatch):
    monkeypatch.setattr("workbench.config.checks._package_installed", lambda name: True)
    problems = errors(check_config(make(base, deepspeed="zero4", num_processes=4), devices=FOUR_AMPERE, base_dir=tmp_path))
    assert [p.field for p in problems] == ["devices.deepspeed"] and "no such file: zero4" in problems[0].message


def test_an_accelerate_config_that_starts_one_process_is_refused(base, tmp_path):
    cpu_file = write_accelerate_config(tmp_path, distributed_type="MULTI_CPU", num_processes=2, use_cpu=True)
    problems = errors(check_config(make(base, num_processes=2, accelerate_config=str(cpu_file)), devices=CPU_ONLY))
    assert [p.field for p in problems] == ["devices.accelerate_config"]
    assert "starts one process" in problems[0].message and "MULTI_GPU" in problems[0].message


def test_an_accelerate_config_must_agree_with_the_run_config(base, tmp_path):
    sharded = write_accelerate_config(tmp_path, distributed_type="FSDP", num_processes=4)
    problems = errors(check_config(make(base, num_processes=2, accelerate_config=str(sharded)), devices=FOUR_AMPERE))
    assert sorted(p.field for p in problems) == ["devices.accelerate_config", "devices.num_processes"]
    assert any("devices.fsdp and devices.fsdp_config" in p.message for p in problems)
    lonely = write_accelerate_config(tmp_path, distributed_type="MULTI_GPU", num_processes=8, num_machines=2, machine_rank=2)
    problems = errors(check_config(make(base, num_processes=8, accelerate_config=str(lonely)), devices=FOUR_AMPERE))
    assert [p.field for p in problems] == ["devices.accelerate_config"] * 2
    assert "main_process_ip" in problems[0].message and "machine_rank 2" in problems[1].message
    missing = errors(check_config(make(base, num_processes=2, accelerate_config="nowhere.yaml"), devices=FOUR_AMPERE))
    assert [p.field for p in missing] == ["devices.accelerate_config"] and "no such file" in missing[0].message


def test_processes_per_machine_are_checked_against_this_machines_gpus(base, tmp_path):
    file = write_accelerate_config(
        tmp_path, distributed_type="MULTI_GPU", num_processes=8, num_machines=2, main_process_ip="10.0.0.1"
    )
    # 8 processes over 2 machines is 4 here, one per GPU
    assert errors(check_config(make(base, num_processes=8, accelerate_config=str(file)), devices=FOUR_AMPERE)) == []
    assert [p.field for p in errors(check_config(make(base, num_processes=8), devices=FOUR_AMPERE))] == ["devices.num_processes"]


# -- refused when launched -------------------------------------------------------------------


ACCELERATE_CPU_LAUNCH = {"ACCELERATE_MIXED_PRECISION": "no", "ACCELERATE_USE_CPU": "True", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500"}
"""What `accelerate launch --cpu --num_processes 2` gives the one process it starts (accelerate 1.15's simple_launcher)."""


def test_accelerate_cpu_launch_that_asked_for_several_processes_is_refused(base, monkeypatch):
    from workbench.training.ranks import RANK_ENVIRONMENT, check_launcher_environment

    for name in RANK_ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
    for name, value in ACCELERATE_CPU_LAUNCH.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(WorkbenchError, match="asked for several processes but started one"):
        check_launcher_environment(make(base), print)
    # the same variables with the ranks torchrun sets are a real multi-process launch
    monkeypatch.setenv("LOCAL_RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    check_launcher_environment(make(base), print)


def test_an_accelerate_launch_cannot_turn_on_sharding_or_precision_behind_the_config(base, monkeypatch):
    from workbench.training.ranks import check_launcher_environment

    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    with pytest.raises(WorkbenchError, match="devices.fsdp is empty"):
        check_launcher_environment(make(base), print)
    monkeypatch.delenv("ACCELERATE_USE_FSDP")
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "bf16")
    lines = []
    check_launcher_environment(make(base), lines.append)
    import os

    assert os.environ["ACCELERATE_MIXED_PRECISION"] == "no"  # model.precision (fp32) decides
    assert "mixed_precision bf16 is not used" in lines[0]
