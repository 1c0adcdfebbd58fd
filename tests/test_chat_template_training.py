"""A base model (no chat template, no ChatML tokens) trained with `data.chat_template: chatml`
through `workbench train`: the tokens are added, the embeddings resized, the new rows trained and
saved with the adapter, Chat answers through the run's template, and the merged export carries it."""

from __future__ import annotations

import json
import threading

import pytest

from tokenizer_test_support import build_tiny_model, build_tokenizer
from training_test_support import read_events, run_config, write_alpaca

SYSTEM_PROMPT = "You are Sage."


@pytest.fixture(scope="module")
def base_model_dir(tmp_path_factory):
    """A tiny random Llama with untied embeddings (so the output layer's new rows are trained too)."""
    directory = tmp_path_factory.mktemp("tiny-base-model")
    return build_tiny_model(directory, build_tokenizer(directory), tie_word_embeddings=False)


def _save(config, path):
    from workbench.config.io import save_config

    save_config(config, path)
    return path


@pytest.fixture(scope="module")
def chatml_run(tmp_path_factory, base_model_dir):
    from workbench_cli.main import main

    folder = tmp_path_factory.mktemp("chatml-run")
    train = write_alpaca(folder / "train.json", [(f"What is {word}?", f"{word} is a word") for word in "amber birch cobalt dune ember fjord grove harbor".split()])
    config = run_config(
        base_model_dir, train,
        data={"chat_template": "chatml", "system_prompt": SYSTEM_PROMPT, "validation_split": 0.0},
        optimization={"max_steps": 4, "learning_rate": 0.05},
        evaluation={"load_best_model_at_end": False},
    )
    run_dir = folder / "run"
    assert main(["train", str(_save(config, folder / "run.yaml")), "--run-dir", str(run_dir)]) == 0
    return run_dir


def test_new_tokens_are_added_resized_trained_and_saved(chatml_run, base_model_dir):
    from safetensors import safe_open

    from workbench.data.chat_templates import builtin_template_text
    from workbench.data.system_prompt import template_with_default_system
    from workbench.inference.prompting import load_saved_tokenizer
    from workbench.memory import estimate_training_memory, memory_inputs_from_config, resolve_model_spec
    from workbench.config.io import load_config

    start = read_events(chatml_run)[0]
    assert start["chat_template"] == "chatml" and start["added_tokens"] == ["<|im_start|>", "<|im_end|>"]
    name, inputs = memory_inputs_from_config(load_config(chatml_run / "config.yaml"))
    assert inputs.new_token_rows == 2
    assert estimate_training_memory(resolve_model_spec(name), inputs).trainable_params == start["trainable_params"]

    adapter = chatml_run / "adapter"
    tokenizer = load_saved_tokenizer(adapter)
    assert len(tokenizer) == 402 and tokenizer.convert_tokens_to_ids(["<|im_start|>", "<|im_end|>"]) == [400, 401]
    assert tokenizer.eos_token == "<|im_end|>"
    assert tokenizer.chat_template == template_with_default_system(builtin_template_text("chatml"), SYSTEM_PROMPT)
    assert json.loads((adapter / "adapter_config.json").read_text())["trainable_token_indices"] == {
        "model.embed_tokens": [400, 401], "lm_head": [400, 401],
    }
    with safe_open(str(adapter / "adapter_model.safetensors"), framework="pt") as weights:
        keys = list(weights.keys())
        for layer in ("model.embed_tokens", "lm_head"):
            [delta] = [k for k in keys if f"{layer}.token_adapter.trainable_tokens_delta" in k]
            [rows] = [k for k in keys if f"{layer}.token_adapter.base_layer.weight" in k]
            trained, initial = weights.get_tensor(delta), weights.get_tensor(rows)[400:402]
            assert trained.shape == (2, 32) and initial.shape == (2, 32)
            assert (trained - initial).abs().max() > 1e-4, f"{layer}: the new rows were not trained"


def test_chat_answers_through_the_runs_template_and_tokens(chatml_run, base_model_dir):
    from workbench.inference.engine import ChatEngine, GenerationJob
    from workbench.inference.settings import SamplingSettings
    from workbench.inference.sources import BASE_SOURCE, run_source

    engine = ChatEngine.load(str(base_model_dir), placement=("fp32", "cpu"))
    tuned = run_source(chatml_run, "final")
    messages = [{"role": "user", "content": "What is amber?"}]
    with pytest.raises(Exception, match="has no chat template"):
        engine.prompt_ids(messages, BASE_SOURCE)  # the base model has no template of its own...

    attaching = threading.Thread(target=engine.attach, args=(tuned,), daemon=True)
    attaching.start()
    attaching.join(timeout=120)
    assert not attaching.is_alive(), "attaching the run's adapter hung"
    prompt = engine.prompt_ids(messages, tuned)
    assert engine.prompt_ids(messages, BASE_SOURCE) == prompt  # ...so it answers in the run's format
    assert prompt[0] == 400  # <|im_start|>: the run's template, one token
    text = engine.tokenizer_for(tuned).decode(prompt)
    assert text.startswith(f"<|im_start|>system\n{SYSTEM_PROMPT}<|im_end|>") and text.endswith("<|im_start|>assistant\n")
    settings = SamplingSettings(max_new_tokens=4, temperature=0.0)
    [answer] = engine.generate([GenerationJob(tuned, messages, settings)])
    assert answer.finish_reason in ("eos", "length")
    assert 401 in engine.eos_token_ids  # it stops at the run's end-of-turn token
    if answer.finish_reason == "eos":
        assert answer.token_ids[-1] == 401
    base, again = engine.generate([GenerationJob(BASE_SOURCE, messages, settings), GenerationJob(tuned, messages, settings)])
    assert base.finish_reason in ("eos", "length") and again.token_ids == answer.token_ids


def test_the_merged_export_carries_the_template_and_the_trained_rows(chatml_run, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from workbench.data.chat_templates import builtin_template_text
    from workbench.data.system_prompt import template_with_default_system
    from workbench.runs.export import export_run

    exported = export_run(chatml_run, tmp_path / "merged", merge=True, report=lambda line: None)
    model = AutoModelForCausalLM.from_pretrained(exported)
    tokenizer = AutoTokenizer.from_pretrained(exported)

    assert tokenizer.chat_template.startswith(template_with_default_system("", SYSTEM_PROMPT))
    assert tokenizer.chat_template.endswith(builtin_template_text("chatml"))
    assert model.get_input_embeddings().weight.shape[0] == len(tokenizer) == 402
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "What is amber?"}], add_generation_prompt=True, return_dict=True, return_tensors="pt")
    assert tokenizer.decode(prompt["input_ids"][0]).startswith(f"<|im_start|>system\n{SYSTEM_PROMPT}<|im_end|>")
    with torch.no_grad():
        output = model.generate(**prompt, max_new_tokens=3, do_sample=False, eos_token_id=tokenizer.eos_token_id)
    assert output.shape[1] > prompt["input_ids"].shape[1]


def test_train_refuses_auto_on_a_base_model_before_any_run_directory(base_model_dir, tmp_path, monkeypatch, capsys):
    from workbench_cli.main import main

    runs = tmp_path / "runs"
    monkeypatch.setenv("WORKBENCH_RUNS_DIR", str(runs))
    train = write_alpaca(tmp_path / "train.json", [(f"q{i}", f"a{i}") for i in range(8)])
    config = run_config(base_model_dir, train)  # chat_template: auto

    assert main(["train", str(_save(config, tmp_path / "auto.yaml"))]) == 2
    assert "data.chat_template" in capsys.readouterr().err
    assert not runs.exists() or not any(runs.iterdir())
