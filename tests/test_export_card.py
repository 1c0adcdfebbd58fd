"""results.json and the model cards: what was trained on what, how, and how well."""

from __future__ import annotations

import hashlib
import json

import pytest

from export_test_support import PROMPTS, build_tiny_model, chatml_tokenizer, make_run, read_json
from workbench.export.options import ExportOptions

QUIET = dict(report=lambda line: None)


@pytest.fixture
def run_dir(tmp_path, default_tokenizer):
    tokenizer = chatml_tokenizer(tmp_path / "tokenizer", default_tokenizer.chat_template)
    return make_run(tmp_path / "run", build_tiny_model(tmp_path / "model", tokenizer), tokenizer)


def test_results_fold_the_run_directory(run_dir):
    from workbench.runs.results import build_results

    results = build_results(run_dir)
    train_file = run_dir.parent / "tiny-train.json"
    assert results["state"] == "completed" and results["steps"] == 4
    assert results["train_loss"]["final"] == 1.4
    assert results["eval_loss"] == {"final": 2.1, "final_step": 4, "best": 1.9, "best_step": 2}
    assert results["memory"] == {"measured_peak_bytes": 3 * 2**28, "estimated_peak_bytes": 2**28}
    assert results["data"] == [
        {"role": "train", "path": str(train_file), "rows": 10, "sha256": hashlib.sha256(train_file.read_bytes()).hexdigest()}
    ]
    assert results["samples"]["first"]["step"] == 2 and results["samples"]["last"]["step"] == 4
    assert results["setup"]["precision"] == "fp32" and results["final_weights"] == "adapter"


def test_every_export_carries_a_card_with_hyperparameters_data_losses_and_answers(run_dir):
    from huggingface_hub import ModelCard

    from workbench.runs.export import export

    assert not (run_dir / "results.json").exists()
    result = export(run_dir, ExportOptions(format="adapter"), **QUIET)
    assert read_json(run_dir / "results.json")["eval_loss"]["best"] == 1.9  # rebuilt when missing
    card = ModelCard.load(result.path / "README.md")
    text = card.text
    assert card.data.library_name == "peft" and "sft-workbench" in card.data.tags
    sha = hashlib.sha256((run_dir.parent / "tiny-train.json").read_bytes()).hexdigest()
    for expected in (
        "| method.r | 4 |", "| method.lora_alpha | 8 |", "| optimization.learning_rate | 0.01 |",
        "| batch (per device × accumulation × devices) | 2 × 1 × 1 = 2 |", "| data.max_seq_length | 64 |",
        f"`{sha}`", "| train | ", "| 10 |",
        "| end (step 4) |", "| 2.1 |", "| best checkpoint (step 2) |", "| 1.9 |",
        "Peak memory measured: 768 MiB", "AutoPeftModelForCausalLM.from_pretrained",
        f"**{PROMPTS[0]}**", f'- step 2: "answer 2 to {PROMPTS[0]}"', f'- step 4: "answer 4 to {PROMPTS[0]}"',
    ):
        assert expected in text, expected
    assert (run_dir / "README.md").is_file()  # the run's own card is refreshed too


def test_the_card_shows_an_evaluation_when_one_was_written(run_dir):
    from workbench.export.card import build_card

    (run_dir / "eval").mkdir()
    (run_dir / "eval" / "results.json").write_text(json.dumps({"metrics": {"exact_match": 0.75, "judge": "n/a"}}))
    card = build_card(run_dir, "gguf", "/somewhere", files={"gguf": "tiny-q8_0.gguf", "ollama_name": "tiny"})
    assert "## Evaluation" in card.text and "| exact_match | 0.75 |" in card.text
    assert "ollama create tiny -f /somewhere/Modelfile" in card.text and "gguf" in card.data.tags


def test_a_finished_training_run_writes_results_and_its_card(tmp_path, tiny_model_dir):
    from huggingface_hub import ModelCard

    from training_test_support import run_config, varied_rows, write_alpaca
    from workbench.training.run import run_training

    train = write_alpaca(tmp_path / "train.json", varied_rows(12))
    config = run_config(tiny_model_dir, train, optimization={"max_steps": 2}, prompts=["Item 1: repeat amber"])
    run_dir = tmp_path / "run"
    assert run_training(config, run_dir, report=lambda line: None) == 0
    results = read_json(run_dir / "results.json")
    assert results["state"] == "completed" and results["steps"] == 2
    assert results["eval_loss"]["best_step"] == 2 and results["memory"]["measured_peak_bytes"] > 0
    assert results["data"][0]["rows"] == 12
    card = ModelCard.load(run_dir / "README.md")
    assert "workbench export" in card.text and f"{results['eval_loss']['best']:.4g}" in card.text
