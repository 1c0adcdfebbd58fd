"""`workbench export` from the command line: formats, the --merge alias, progress lines, one-line errors;
and the chat-template translation behind the Modelfile."""

from __future__ import annotations

import pytest

from export_test_support import build_tiny_model, chatml_tokenizer, make_run, read_json
from workbench_cli.main import main

LLAMA3_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}{{ '<|start_header_id|>' + m['role'] + '<|end_header_id|>\n\n' + m['content'] + '<|eot_id|>' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)


@pytest.fixture
def run_dir(tmp_path, default_tokenizer):
    tokenizer = chatml_tokenizer(tmp_path / "tokenizer", default_tokenizer.chat_template)
    return make_run(tmp_path / "run", build_tiny_model(tmp_path / "model", tokenizer), tokenizer)


def test_export_gguf_prints_progress_lines_the_path_and_the_ollama_line(run_dir, capsys):
    assert main(["export", str(run_dir), "--format", "gguf", "--quant", "f16"]) == 0
    out = capsys.readouterr().out
    target = run_dir / "exports" / "gguf-f16"
    assert "Merging adapter into model…" in out and "Converting to GGUF f16…" in out
    assert f"wrote {target} (" in out and f"ollama create tiny -f {target / 'Modelfile'}" in out
    assert (target / "tiny-f16.gguf").is_file()


def test_merge_is_kept_as_the_hf_format_for_older_scripts(run_dir, tmp_path, capsys):
    assert main(["export", str(run_dir), "--merge", "-o", str(tmp_path / "merged")]) == 0
    assert read_json(tmp_path / "merged" / "config.json")["model_type"] == "llama"
    assert main(["export", str(run_dir), "--merge", "-o", str(tmp_path / "merged")]) == 2
    assert capsys.readouterr().err.strip().endswith("already exists and is not empty; choose a new directory or pass --force")


def test_push_to_hub_offline_fails_in_one_line_after_the_export(run_dir, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(["export", str(run_dir), "--format", "adapter", "--push-to-hub", "me/tiny-sage"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: --push-to-hub me/tiny-sage: offline (HF_HUB_OFFLINE=1)") and "\n" not in error
    assert (run_dir / "exports" / "adapter" / "adapter_model.safetensors").is_file()  # the local export is kept


def test_a_run_without_weights_is_refused(tmp_path, capsys):
    (tmp_path / "empty-run").mkdir()
    assert main(["export", str(tmp_path / "empty-run"), "--format", "hf"]) == 2
    assert "not a run directory" in capsys.readouterr().err


def test_a_llama3_style_template_becomes_an_ollama_template_and_stops(tmp_path):
    from workbench.export.chat_turns import end_of_turn_token, stop_sequences, turn_format
    from workbench.export.ollama import go_template

    tokenizer = chatml_tokenizer(tmp_path / "tokenizer", LLAMA3_TEMPLATE)
    tokenizer.add_special_tokens({"bos_token": "<|begin_of_text|>",
                                  "additional_special_tokens": ["<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]})
    turns = turn_format(tokenizer)
    assert turns.head == tokenizer.bos_token and turns.default_system is None
    assert turns.user == ("<|start_header_id|>user<|end_header_id|>\n\n", "<|eot_id|>")
    conversation = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
                    {"role": "assistant", "content": "Hello."}, {"role": "user", "content": "Who are you?"}]
    assert turns.render(conversation) == tokenizer.apply_chat_template(conversation, tokenize=False, add_generation_prompt=True)
    assert end_of_turn_token(turns, tokenizer) == "<|eot_id|>"
    assert stop_sequences(turns, tokenizer)[:2] == ["<|eot_id|>", "<|start_header_id|>"]
    template = go_template(turns, drop_head=True)  # llama.cpp adds the BOS itself
    assert template.startswith('{{ range .Messages }}{{ if eq .Role "system" }}<|start_header_id|>system<|end_header_id|>\n\n{{ .Content }}<|eot_id|>')
    assert template.endswith("{{ end }}{{ end }}<|start_header_id|>assistant<|end_header_id|>\n\n")
    tokenizer.chat_template = "{% for m in messages %}{{ m['content'] | upper }}{% endfor %}"  # not prefix+content+suffix
    assert turn_format(tokenizer) is None
