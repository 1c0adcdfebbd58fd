"""`workbench config new / check / show`: exit codes and one line per problem naming the field."""

import pytest

from workbench_cli.main import main
from workbench.config.io import load_config
from workbench.config.presets import get_preset


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_new_from_a_preset_writes_a_config_that_loads(in_tmp, capsys):
    assert main(["config", "new", "--preset", "full-finetune", "-o", "run.yaml"]) == 0
    assert load_config(in_tmp / "run.yaml") == get_preset("full-finetune").config()
    assert "workbench config check run.yaml" in capsys.readouterr().out


def test_new_refuses_to_overwrite_without_force(in_tmp, capsys):
    (in_tmp / "run.yaml").write_text("name: mine\n")
    assert main(["config", "new", "-o", "run.yaml"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert (in_tmp / "run.yaml").read_text() == "name: mine\n"
    assert main(["config", "new", "-o", "run.yaml", "--force", "--train-file", "d.jsonl"]) == 0
    assert load_config(in_tmp / "run.yaml").data.train_file == "d.jsonl"


def test_check_a_valid_config_exits_0(in_tmp, capsys):
    (in_tmp / "data.jsonl").write_text("".join(f'{{"prompt": "q{i}", "completion": "a{i}"}}\n' for i in range(40)))
    main(["config", "new", "--preset", "quick-demo-cpu", "--train-file", "data.jsonl", "-o", "run.yaml"])
    capsys.readouterr()
    assert main(["config", "check", "run.yaml"]) == 0
    assert "run.yaml: ok" in capsys.readouterr().out


def test_check_schema_errors_exit_2_with_one_line_each(in_tmp, capsys):
    (in_tmp / "bad.yaml").write_text("optimization:\n  learning_rate: 0\n  per_device_train_batch_size: 0\n  epochs: 3\n")
    assert main(["config", "check", "bad.yaml"]) == 2
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("bad.yaml: optimization.learning_rate: ")
    assert lines[1].startswith("bad.yaml: optimization.per_device_train_batch_size: ")
    assert lines[2] == "bad.yaml: optimization.epochs: unknown key"


def test_check_environment_errors_exit_2_and_warnings_alone_exit_0(in_tmp, capsys):
    (in_tmp / "missing.yaml").write_text("data:\n  train_file: nowhere.json\n")
    assert main(["config", "check", "missing.yaml"]) == 2
    assert "missing.yaml: data.train_file: no such file: nowhere.json" in capsys.readouterr().out
    (in_tmp / "data.jsonl").write_text("".join(f'{{"prompt": "q{i}", "completion": "a{i}"}}\n' for i in range(40)))
    (in_tmp / "warn.yaml").write_text(
        "model: {precision: fp32}\ndata: {train_file: data.jsonl}\nmethod: {type: full}\n"
        "optimization: {learning_rate: 0.0002}\n"
    )
    assert main(["config", "check", "warn.yaml"]) == 0
    out = capsys.readouterr().out
    assert "warn.yaml: optimization.learning_rate: warning: " in out and "ok (1 warning(s))" in out


def test_show_prints_each_view(in_tmp, capsys):
    main(["config", "new", "--preset", "lora-1gpu", "-o", "run.yaml"])
    capsys.readouterr()
    assert main(["config", "show", "run.yaml", "--as", "lora"]) == 0
    assert "LoraConfig(" in capsys.readouterr().out
    assert main(["config", "show", "run.yaml", "--as", "command"]) == 0
    assert capsys.readouterr().out.strip() == "workbench train run.yaml"


def test_the_help_names_every_preset():
    from workbench_cli.commands.config import PRESET_HELP
    from workbench.config.presets import PRESETS

    assert PRESET_HELP.split(", ") == list(PRESETS)


def test_check_and_show_take_overrides_and_name_a_bad_one(in_tmp, capsys):
    (in_tmp / "data.jsonl").write_text("".join(f'{{"prompt": "q{i}", "completion": "a{i}"}}\n' for i in range(40)))
    main(["config", "new", "--preset", "quick-demo-cpu", "--train-file", "data.jsonl", "-o", "run.yaml"])
    capsys.readouterr()
    assert main(["config", "show", "run.yaml", "--as", "training-args", "optimization.learning_rate=1e-5",
                 "optimization.extra={adam_beta2: 0.95}"]) == 0
    shown = capsys.readouterr().out
    assert "learning_rate=1e-05," in shown and "adam_beta2=0.95," in shown
    assert main(["config", "check", "run.yaml", "method.r=8"]) == 0
    assert "train it with: workbench train run.yaml method.r=8" in capsys.readouterr().out
    assert main(["config", "check", "run.yaml", "optimization.learning_rate=fast"]) == 2
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and lines[0].startswith("override optimization.learning_rate=fast: optimization.learning_rate: ")
    assert load_config(in_tmp / "run.yaml").optimization.learning_rate == get_preset("quick-demo-cpu").config().optimization.learning_rate
