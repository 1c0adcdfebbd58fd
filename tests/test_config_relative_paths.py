"""Paths in a saved run config are relative to the YAML file that holds them: written so by
save_config, read so by load_config, so `workbench config check` works from the YAML's folder."""

import json
import subprocess
import sys
from pathlib import Path

import yaml

from workbench.config.io import load_config, save_config
from workbench.config.schema import RunConfig

ROWS = [{"instruction": f"question {i}", "output": f"answer {i}"} for i in range(12)]


def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "data").mkdir(parents=True)
    (root / "data" / "train.json").write_text(json.dumps(ROWS))
    (root / "data" / "dataset_info.json").write_text(json.dumps({"mine": {"file_name": "train.json"}}))
    (root / "configs").mkdir()
    return root


def config_with(**data) -> RunConfig:
    config = RunConfig()
    for name, value in data.items():
        setattr(config.data, name, value)
    return config


def test_a_saved_config_keeps_its_paths_relative_to_its_own_folder(tmp_path, monkeypatch):
    root = project(tmp_path)
    monkeypatch.chdir(root)
    config = config_with(train_file="data/train.json", chat_template="chatml")
    config.evaluation.eval_file = "data/dataset_info.json#mine"
    save_config(config, root / "configs" / "run.yaml")
    written = yaml.safe_load((root / "configs" / "run.yaml").read_text())
    assert written["data"]["train_file"] == "../data/train.json"
    assert written["data"]["chat_template"] == "chatml"  # a built-in name, not a path
    assert written["evaluation"]["eval_file"] == "../data/dataset_info.json#mine"
    assert load_config("configs/run.yaml") == config  # from the project folder: as it was

    monkeypatch.chdir(root / "configs")
    seen_from_configs = load_config("run.yaml")
    assert seen_from_configs.data.train_file == "../data/train.json"
    assert Path(seen_from_configs.data.train_file).is_file()


def test_absolute_paths_ids_and_names_stay_as_they_are(tmp_path, monkeypatch):
    root = project(tmp_path)
    monkeypatch.chdir(root)
    absolute = str(root / "data" / "train.json")
    config = config_with(train_file=absolute)
    config.data.sources = []
    config.devices.deepspeed = "zero2"
    config.model.name_or_path = "HuggingFaceTB/SmolLM2-135M-Instruct"  # a Hub id, no such folder
    save_config(config, root / "configs" / "a.yaml")
    written = yaml.safe_load((root / "configs" / "a.yaml").read_text())
    assert written["data"]["train_file"] == absolute
    assert written["devices"]["deepspeed"] == "zero2"
    assert written["model"]["name_or_path"] == "HuggingFaceTB/SmolLM2-135M-Instruct"

    mixture = RunConfig.model_validate(
        {"data": {"sources": [{"path": "data/train.json", "weight": 0.5}, {"path": "tatsu-lab/alpaca", "weight": 0.5}]}}
    )
    save_config(mixture, root / "configs" / "mix.yaml")
    sources = yaml.safe_load((root / "configs" / "mix.yaml").read_text())["data"]["sources"]
    assert [source["path"] for source in sources] == ["../data/train.json", "tatsu-lab/alpaca"]
    assert load_config(root / "configs" / "mix.yaml") == mixture


def test_a_config_written_from_the_start_folder_still_loads(tmp_path, monkeypatch):
    """Before paths followed their file, the app wrote them from where it started; such a path names
    nothing from the YAML's folder, so it is kept."""
    root = project(tmp_path)
    monkeypatch.chdir(root)
    (root / "configs" / "old.yaml").write_text("data:\n  train_file: data/train.json\n")
    assert load_config("configs/old.yaml").data.train_file == "data/train.json"


def test_override_paths_are_read_from_the_current_folder(tmp_path, monkeypatch):
    root = project(tmp_path)
    monkeypatch.chdir(root)
    save_config(config_with(train_file="data/train.json"), root / "configs" / "run.yaml")
    loaded = load_config("configs/run.yaml", ["data.validation_file=data/train.json"])
    assert loaded.data.validation_file == "data/train.json"
    assert loaded.data.train_file == "data/train.json"


def test_config_check_works_from_the_yamls_folder(tmp_path, monkeypatch, tiny_model_dir):
    root = project(tmp_path)
    monkeypatch.chdir(root)
    config = config_with(train_file="data/train.json", max_seq_length=256)
    config.model.name_or_path = str(tiny_model_dir)
    save_config(config, root / "configs" / "run.yaml")
    done = subprocess.run(
        [sys.executable, "-m", "workbench", "config", "check", "run.yaml"],
        cwd=root / "configs", capture_output=True, text=True,
    )
    assert "train_file" not in done.stdout + done.stderr, done.stdout + done.stderr
    assert done.returncode == 0, done.stdout + done.stderr
