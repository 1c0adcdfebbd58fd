"""`workbench config import` / `export`: LLaMA-Factory and axolotl training YAMLs (the keys of their
own LoRA SFT examples) become workbench configs with every key accounted for, the tools' implicit
defaults carried over, and a short run that trains with the same numbers."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import yaml

from workbench.config.checks import check_config
from workbench.config.dialects import export_config, import_config
from workbench.errors import WorkbenchError

WORDS = "amber birch cobalt dune ember fjord grove harbor".split()

# The keys of LLaMA-Factory's examples/train_lora/llama3_lora_sft.yaml (sizes shrunk for the tiny model).
LLAMAFACTORY_LORA_SFT = """\
### model
model_name_or_path: meta-llama/Meta-Llama-3-8B-Instruct
trust_remote_code: true

### method
stage: sft
do_train: true
finetuning_type: lora
lora_rank: 8
lora_target: all

### dataset
dataset: identity,alpaca_en_demo
template: llama3
cutoff_len: 256
max_samples: 1000
overwrite_cache: true
preprocessing_num_workers: 16

### output
output_dir: saves/llama3-8b/lora/sft
logging_steps: 10
save_steps: 500
plot_loss: true
overwrite_output_dir: true

### train
per_device_train_batch_size: 1
gradient_accumulation_steps: 8
learning_rate: 1.0e-4
num_train_epochs: 3.0
lr_scheduler_type: cosine
warmup_ratio: 0.1
bf16: true
ddp_timeout: 180000000
"""

# The keys of axolotl's examples/llama-3/lora-1b.yml (a local data file, sizes shrunk).
AXOLOTL_LORA = """\
base_model: NousResearch/Llama-3.2-1B

load_in_8bit: false
load_in_4bit: false
strict: false

datasets:
  - path: {data}
    type: alpaca
dataset_prepared_path: last_run_prepared
val_set_size: 0.1
output_dir: ./outputs/lora-out

adapter: lora
lora_model_dir:

sequence_len: 256
sample_packing: true
eval_sample_packing: true
pad_to_sequence_len: true

lora_r: 16
lora_alpha: 32
lora_dropout: 0.05
lora_fan_in_fan_out:
lora_target_modules:
  - gate_proj
  - down_proj
  - up_proj
  - q_proj
  - v_proj
  - k_proj
  - o_proj

wandb_project:
wandb_entity:
wandb_watch:
wandb_name:
wandb_log_model:

gradient_accumulation_steps: 2
micro_batch_size: 2
num_epochs: 1
optimizer: adamw_8bit
lr_scheduler: cosine
learning_rate: 0.0002

train_on_inputs: false
group_by_length: false
bf16: auto
fp16:
tf32: false

gradient_checkpointing: true
early_stopping_patience:
resume_from_checkpoint:
local_rank:
logging_steps: 1
xformers_attention:
flash_attention: true

loss_watchdog_threshold: 5.0
loss_watchdog_patience: 3

warmup_steps: 10
evals_per_epoch: 4
saves_per_epoch: 1
debug:
deepspeed:
weight_decay: 0.0
fsdp:
fsdp_config:
special_tokens:
  pad_token: "<|end_of_text|>"
"""


def _alpaca(path: Path, count: int, tag: str) -> Path:
    rng = random.Random(tag)
    rows = [{"instruction": f"{tag} question {i}", "input": "", "output": " ".join(rng.choices(WORDS, k=6))} for i in range(count)]
    path.write_text(json.dumps(rows), encoding="utf-8")
    return path


def _llamafactory_project(tmp_path: Path) -> Path:
    """A LLaMA-Factory layout: the config, and data/dataset_info.json naming two local files."""
    data = tmp_path / "data"
    data.mkdir()
    _alpaca(data / "identity.json", 8, "who")
    _alpaca(data / "alpaca_en_demo.json", 8, "what")
    info = {"identity": {"file_name": "identity.json"}, "alpaca_en_demo": {"file_name": "alpaca_en_demo.json"}}
    (data / "dataset_info.json").write_text(json.dumps(info), encoding="utf-8")
    config = tmp_path / "llama3_lora_sft.yaml"
    config.write_text(LLAMAFACTORY_LORA_SFT, encoding="utf-8")
    return config


def _lines_by_key(result) -> dict[str, str]:
    return {line.key: line.text(result.translation.tool) for line in result.translation.lines if not line.default}


def _train_and_read_arguments(config, tmp_path: Path, tiny_model_dir: Path) -> dict:
    """Point the model at the tiny one (fp32, so any CPU runs it), check, train; training_args.json."""
    from workbench.training.run import run_training

    config.model.name_or_path = str(tiny_model_dir)
    config.model.precision = "fp32"
    problems = [problem for problem in check_config(config) if problem.is_error]
    assert problems == []
    run_dir = tmp_path / "run"
    assert run_training(config, run_dir, report=lambda line: None) == 0
    return json.loads((run_dir / "training_args.json").read_text())


def test_a_llamafactory_lora_sft_config_imports_every_key_and_trains_the_same(tmp_path, tiny_model_dir, monkeypatch):
    monkeypatch.chdir(tmp_path)  # LLaMA-Factory's dataset_dir counts from where it runs
    source = _llamafactory_project(tmp_path)
    result = import_config(source)

    assert result.dialect == "llamafactory"
    keys = [key for key in yaml.safe_load(LLAMAFACTORY_LORA_SFT)]
    lines = _lines_by_key(result)
    assert list(lines) == keys  # one line per key, in the file's order
    assert lines["lora_target"] == "lora_target: mapped to method.target_modules = all-linear"
    assert lines["dataset"].startswith('dataset: mapped to data.sources = [{"path": "data/dataset_info.json#identity"}')
    assert lines["max_samples"].startswith("max_samples: dropped: ")
    assert lines["ddp_timeout"].startswith("ddp_timeout: mapped to optimization.extra.ddp_timeout = 180000000")
    config = result.config
    assert (config.method.r, config.method.lora_alpha, config.method.lora_dropout) == (8, 16, 0.0)  # LF: alpha = 2 × rank
    assert config.data.packing is False and config.data.validation_split == 0.0  # LF defaults, not ours
    assert config.data.chat_template == "llama3" and config.model.precision == "mixed-bf16"
    assert config.optimization.gradient_checkpointing is True
    assert config.name == "sft"

    arguments = _train_and_read_arguments(config, tmp_path, tiny_model_dir)
    trainer, lora = arguments["training_arguments"], arguments["lora_config"]
    assert trainer["learning_rate"] == 1e-4 and trainer["num_train_epochs"] == 3.0
    assert trainer["lr_scheduler_type"] == "cosine" and trainer["warmup_steps"] == 0.1
    assert trainer["per_device_train_batch_size"] == 1 and trainer["gradient_accumulation_steps"] == 8
    assert trainer["ddp_timeout"] == 180000000
    assert (lora["r"], lora["lora_alpha"], lora["lora_dropout"]) == (8, 16, 0.0)
    assert {name.rsplit(".", 1)[-1] for name in lora["target_modules"]} == {
        "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj",
    }
    assert yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["data"]["max_seq_length"] == 256


def test_an_axolotl_lora_config_imports_every_key_and_trains_the_same(tmp_path, tiny_model_dir):
    data = _alpaca(tmp_path / "alpaca.json", 20, "axolotl")
    source = tmp_path / "lora-1b.yml"
    source.write_text(AXOLOTL_LORA.format(data=data), encoding="utf-8")
    result = import_config(source)

    assert result.dialect == "axolotl"
    lines = _lines_by_key(result)
    assert list(lines) == list(yaml.safe_load(source.read_text()))
    assert lines["wandb_project"] == "wandb_project: dropped: empty in the file: nothing to set"
    assert lines["optimizer"] == "optimizer: mapped to optimization.optim = adamw_8bit"
    # 18 training rows / (2 × 2) = 5 steps per epoch (an upper bound with packing), 4 evaluations per epoch
    assert lines["evals_per_epoch"].startswith("evals_per_epoch: mapped to evaluation.eval_steps = 1 ")
    assert lines["saves_per_epoch"].startswith("saves_per_epoch: mapped to evaluation.save_steps = 5 ")
    config = result.config
    assert config.data.train_file == str(data) and config.data.format == "alpaca"
    assert config.method.target_modules == ["gate_proj", "down_proj", "up_proj", "q_proj", "v_proj", "k_proj", "o_proj"]
    assert config.model.attn_implementation == "flash_attention_2" and config.model.precision == "auto"
    assert config.optimization.extra == {"tf32": False}

    config.model.attn_implementation = "sdpa"  # flash-attn and 8-bit Adam need CUDA
    config.optimization.optim = "adamw_torch"
    arguments = _train_and_read_arguments(config, tmp_path, tiny_model_dir)
    trainer, lora = arguments["training_arguments"], arguments["lora_config"]
    assert trainer["learning_rate"] == 2e-4 and trainer["num_train_epochs"] == 1.0
    assert trainer["lr_scheduler_type"] == "cosine" and trainer["warmup_steps"] == 10
    assert (lora["r"], lora["lora_alpha"], lora["lora_dropout"]) == (16, 32, 0.05)
    assert sorted(lora["target_modules"]) == sorted(config.method.target_modules)
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert saved["data"]["max_seq_length"] == 256 and saved["data"]["packing"] is True


def test_the_tools_defaults_come_along_where_a_file_is_silent(tmp_path):
    quiet = tmp_path / "quiet.yaml"
    quiet.write_text("model_name_or_path: m\nstage: sft\nfinetuning_type: lora\nlora_rank: 4\ndataset: x\n")
    config = import_config(quiet).config
    assert (config.method.r, config.method.lora_alpha) == (4, 8)
    assert config.optimization.learning_rate == 5e-5 and config.optimization.lr_scheduler_type == "linear"
    assert config.data.max_seq_length == 2048 and config.model.precision == "fp32"

    bare = tmp_path / "bare.yml"
    bare.write_text("base_model: m\nlearning_rate: 0.0001\nmicro_batch_size: 2\ngradient_accumulation_steps: 1\n"
                    "datasets:\n  - path: x.json\n    type: alpaca\n")
    result = import_config(bare)
    config = result.config
    assert config.method.type == "full"  # no adapter: axolotl trains every weight
    assert config.data.max_seq_length == 512 and config.optimization.num_train_epochs == 1.0
    assert config.optimization.warmup_ratio == 0.03 and config.data.packing is False
    defaults = [line for line in result.report() if "(not in the file: axolotl default)" in line]
    assert any(line.startswith("adapter (not in the file") for line in defaults)


def test_a_llamafactory_mixture_keeps_its_weights(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    source = _llamafactory_project(tmp_path)
    source.write_text(LLAMAFACTORY_LORA_SFT + "mix_strategy: interleave_over\ninterleave_probs: 0.25,0.75\n")
    config = import_config(source).config
    assert [(s.path, s.weight) for s in config.data.sources] == [
        ("data/dataset_info.json#identity", 0.25), ("data/dataset_info.json#alpaca_en_demo", 0.75),
    ]
    assert config.data.mix_strategy == "interleave_over"


def test_axolotl_chat_datasets_map_their_fields(tmp_path):
    source = tmp_path / "chat.yml"
    source.write_text(
        "base_model: m\nadapter: lora\nlora_r: 8\nlora_alpha: 16\nmicro_batch_size: 1\ngradient_accumulation_steps: 1\n"
        "learning_rate: 0.0001\ndatasets:\n"
        "  - path: chats.jsonl\n    type: chat_template\n    field_messages: dialog\n"
        "    message_property_mappings: {role: speaker, content: text}\n    roles_to_train: [assistant]\n"
        "  - path: glaive.json\n    type: chat_template\n    field_messages: conversations\n"
        "    message_property_mappings: {role: from, content: value}\n"
    )
    result = import_config(source)
    chats, glaive = result.config.data.sources
    assert chats.format == "messages" and chats.columns.messages == "dialog"
    assert (chats.columns.role_tag, chats.columns.content_tag) == ("speaker", "text")
    assert glaive.format == "sharegpt" and glaive.columns is None
    assert any(line.startswith("datasets[0].roles_to_train: dropped: ") for line in result.report())


def test_optimizer_names_and_unknown_keys(tmp_path):
    source = tmp_path / "lf.yaml"
    source.write_text(
        "model_name_or_path: m\nstage: sft\ndataset: x\noptim: adamw_bnb_8bit\nadam_beta2: 0.95\npush_to_hub: true\n"
        "lora_dropout: 1.5\nno_such_setting: 3\n"
    )
    result = import_config(source)
    lines = _lines_by_key(result)
    assert lines["optim"] == "optim: mapped to optimization.optim = adamw_8bit"
    assert lines["adam_beta2"].startswith("adam_beta2: mapped to optimization.extra.adam_beta2 = 0.95")
    assert lines["push_to_hub"].startswith("push_to_hub: dropped: nothing is uploaded")
    assert lines["lora_dropout"].startswith("lora_dropout: dropped: method.lora_dropout: ")  # the field refuses 1.5
    assert lines["no_such_setting"].startswith("no_such_setting: dropped: not a LLaMA-Factory setting")
    assert result.config.optimization.extra == {"adam_beta2": 0.95}
    assert result.config.method.lora_dropout != 1.5  # the refused value is not used

    fused = tmp_path / "fused.yml"
    fused.write_text("base_model: m\nmicro_batch_size: 1\ngradient_accumulation_steps: 1\nlearning_rate: 0.001\n"
                     "optimizer: adamw_torch_fused\ndatasets:\n  - path: x.json\n")
    assert import_config(fused).config.optimization.optim == "adamw_torch"


def test_files_that_are_not_sft_or_not_either_tool_are_refused(tmp_path):
    dpo = tmp_path / "dpo.yaml"
    dpo.write_text("model_name_or_path: m\nstage: dpo\ndataset: x\n")
    with pytest.raises(WorkbenchError, match="stage: dpo is not supervised fine-tuning"):
        import_config(dpo)
    neither = tmp_path / "neither.yaml"
    neither.write_text("learning_rate: 0.1\n")
    with pytest.raises(WorkbenchError, match="--from llamafactory"):
        import_config(neither)
    assert import_config(neither, "axolotl").config.optimization.learning_rate == 0.1


@pytest.mark.parametrize("tool", ["llamafactory", "axolotl"])
def test_an_exported_config_imports_back_to_the_same_training(tmp_path, monkeypatch, tool):
    from workbench.config.schema import RunConfig

    monkeypatch.chdir(tmp_path)
    data = _alpaca(tmp_path / "train.json", 8, "export")
    config = RunConfig.model_validate({
        "name": "roundtrip",
        "data": {"train_file": str(data), "format": "alpaca", "max_seq_length": 384, "packing": False, "validation_split": 0.2},
        "method": {"r": 12, "lora_alpha": 24, "lora_dropout": 0.1, "target_modules": ["q_proj", "v_proj"]},
        "optimization": {"learning_rate": 3e-4, "num_train_epochs": 2, "lr_scheduler_type": "linear",
                         "per_device_train_batch_size": 2, "gradient_accumulation_steps": 4, "extra": {"adam_beta2": 0.95}},
        "evaluation": {"load_best_model_at_end": False},
        "model": {"precision": "mixed-bf16"},
    })
    out = tmp_path / "out"
    translation = export_config(config, tool, out)
    out.mkdir()
    exported = out / "exported.yaml"
    exported.write_text(yaml.safe_dump(translation.values), encoding="utf-8")
    for name, entries in translation.files.items():
        (out / name).write_text(json.dumps(entries), encoding="utf-8")

    back = import_config(exported).config
    assert back.method.r == 12 and back.method.lora_alpha == 24 and back.method.lora_dropout == 0.1
    assert back.method.target_modules == ["q_proj", "v_proj"]
    assert back.optimization.learning_rate == 3e-4 and back.optimization.num_train_epochs == 2
    assert back.optimization.lr_scheduler_type == "linear" and back.optimization.extra == {"adam_beta2": 0.95}
    assert (back.optimization.per_device_train_batch_size, back.optimization.gradient_accumulation_steps) == (2, 4)
    assert back.data.max_seq_length == 384 and back.data.validation_split == 0.2 and back.data.packing is False
    assert back.model.precision == "mixed-bf16"
    from workbench.data.data_refs import resolve_data_ref

    assert resolve_data_ref(back.data.train_file).path.resolve() == data.resolve()


def test_the_import_command_writes_the_config_and_reports_each_key(tmp_path, monkeypatch, capsys):
    from workbench_cli.main import main
    from workbench.config.io import load_config

    monkeypatch.chdir(tmp_path)
    source = _llamafactory_project(tmp_path)
    assert main(["config", "import", str(source), "-o", "imported.yaml"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == "model_name_or_path: mapped to model.name_or_path = meta-llama/Meta-Llama-3-8B-Instruct"
    assert printed[-1].startswith("wrote imported.yaml from LLaMA-Factory config")
    assert load_config(tmp_path / "imported.yaml").optimization.learning_rate == 1e-4
    assert main(["config", "import", str(source), "-o", "imported.yaml"]) == 2  # no silent overwrite
    assert "already exists" in capsys.readouterr().err

    assert main(["config", "export", "imported.yaml", "--to", "axolotl", "-o", "back.yml"]) == 0
    assert yaml.safe_load((tmp_path / "back.yml").read_text())["lora_r"] == 8
