"""GGUF export of tiny Llama and Qwen2 runs: transformers reads each file back with the merged model's
weights and greedy answers, the metadata carries the tokenizer, chat template and end of turn, and
the Modelfile speaks Ollama's template language."""

from __future__ import annotations

import pytest

from export_test_support import PROMPTS, SYSTEM_PROMPT, build_tiny_model, chatml_tokenizer, greedy_tokens, make_run
from workbench.errors import WorkbenchError
from workbench.export.options import ExportOptions


@pytest.fixture(scope="module", params=["llama", "qwen2"])
def exported(request, tmp_path_factory, default_tokenizer):
    """One tiny run of each family, exported as hf (fp32), gguf f16 and gguf q8_0."""
    from workbench.runs.export import export

    family = request.param
    root = tmp_path_factory.mktemp(f"gguf-{family}")
    tokenizer = chatml_tokenizer(root / "tokenizer", default_tokenizer.chat_template, qwen2_split=family == "qwen2")
    run_dir = make_run(root / "run", build_tiny_model(root / "model", tokenizer, family), tokenizer)
    quiet = dict(report=lambda line: None)
    return {
        "family": family,
        "run": run_dir,
        "hf": export(run_dir, ExportOptions(format="hf", dtype="fp32"), **quiet).path,
        "f16": export(run_dir, ExportOptions(format="gguf", quant="f16"), **quiet),
        "q8_0": export(run_dir, ExportOptions(format="gguf", quant="q8_0"), **quiet),
    }


def load_gguf(folder):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    name = next(path.name for path in folder.glob("*.gguf"))
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    return model, AutoTokenizer.from_pretrained(folder, gguf_file=name)


def load_hf(folder):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32), AutoTokenizer.from_pretrained(folder)


def test_f16_reads_back_as_the_merged_weights_rounded_once_and_answers_the_same(exported):
    import torch

    merged, merged_tokenizer = load_hf(exported["hf"])
    model, tokenizer = load_gguf(exported["f16"].path)
    gguf_state, merged_state = model.state_dict(), merged.state_dict()
    assert set(gguf_state) == set(merged_state)
    full_precision = greedy_tokens(merged, merged_tokenizer, PROMPTS)
    with torch.no_grad():
        for key, value in merged_state.items():
            # matrices are f16 in the file, norms and biases f32; Llama's q/k permutation is undone exactly
            expected = value.half().float() if value.dim() == 2 else value
            assert torch.equal(gguf_state[key], expected), key
            value.copy_(expected)
    # the same weights answer the same: greedy tokens equal those of the merged model rounded to f16
    answers = greedy_tokens(model, tokenizer, PROMPTS)
    assert answers == greedy_tokens(merged, merged_tokenizer, PROMPTS)
    agreement = sum(a == b for ref, got in zip(full_precision, answers) for a, b in zip(ref, got)) / sum(map(len, answers))
    print(f"{exported['family']} f16 greedy token agreement with the fp32 merged model: {agreement:.0%}")


def test_q8_0_is_smaller_and_mostly_agrees(exported):
    merged, merged_tokenizer = load_hf(exported["hf"])
    model, tokenizer = load_gguf(exported["q8_0"].path)
    reference, quantized = greedy_tokens(merged, merged_tokenizer, PROMPTS), greedy_tokens(model, tokenizer, PROMPTS)
    agreement = sum(a == b for ref, got in zip(reference, quantized) for a, b in zip(ref, got)) / sum(map(len, reference))
    print(f"{exported['family']} q8_0 greedy token agreement with the merged model: {agreement:.0%}")
    assert reference[0][0] == quantized[0][0] and agreement >= 0.5
    assert exported["q8_0"].weights_bytes < 0.6 * exported["f16"].weights_bytes


def test_the_file_carries_tokenizer_template_and_end_of_turn(exported):
    import gguf

    reader = gguf.GGUFReader(next(exported["q8_0"].path.glob("*.gguf")))

    def field(key):
        return reader.fields[key].contents()

    _, tokenizer = load_hf(exported["hf"])
    assert field("general.architecture") == exported["family"]
    assert field("tokenizer.ggml.model") == "gpt2"
    assert field("tokenizer.ggml.pre") == {"llama": "gpt-2", "qwen2": "qwen2"}[exported["family"]]
    assert len(field("tokenizer.ggml.tokens")) == len(tokenizer) and len(field("tokenizer.ggml.merges")) > 100
    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert field("tokenizer.ggml.eos_token_id") == im_end and field("tokenizer.ggml.eot_token_id") == im_end
    assert field("tokenizer.ggml.add_bos_token") is False
    template = field("tokenizer.chat_template")
    assert template == tokenizer.chat_template and SYSTEM_PROMPT in template
    types = dict(zip(field("tokenizer.ggml.tokens"), field("tokenizer.ggml.token_type")))
    assert types["<|im_start|>"] == gguf.TokenType.CONTROL
    kinds = {tensor.name: tensor.tensor_type.name for tensor in reader.tensors}
    assert kinds["blk.0.attn_q.weight"] == "Q8_0" and kinds["blk.0.attn_norm.weight"] == "F32"
    if exported["family"] == "qwen2":
        assert kinds["blk.0.attn_q.bias"] == "F32" and "output.weight" in kinds  # untied embeddings
    else:
        assert "output.weight" not in kinds  # tied: llama.cpp reuses token_embd


def test_the_read_back_template_asks_without_a_system_message_the_way_the_run_trained(exported):
    _, tokenizer = load_gguf(exported["f16"].path)
    rendered = tokenizer.apply_chat_template([{"role": "user", "content": "Who are you?"}], tokenize=False, add_generation_prompt=True)
    assert rendered == f"<|im_start|>system\n{SYSTEM_PROMPT}<|im_end|>\n<|im_start|>user\nWho are you?<|im_end|>\n<|im_start|>assistant\n"


def test_beside_the_file_a_modelfile_and_the_ollama_create_line(exported):
    result = exported["q8_0"]
    modelfile = (result.path / "Modelfile").read_text()
    assert modelfile.splitlines()[0] == "FROM ./tiny-q8_0.gguf"
    assert f'SYSTEM """{SYSTEM_PROMPT}"""' in modelfile
    assert 'PARAMETER stop "<|im_end|>"' in modelfile and 'PARAMETER stop "<|im_start|>"' in modelfile
    assert (
        'TEMPLATE """{{ range .Messages }}{{ if eq .Role "system" }}<|im_start|>system\n{{ .Content }}<|im_end|>\n'
        '{{ else if eq .Role "user" }}<|im_start|>user\n{{ .Content }}<|im_end|>\n'
        '{{ else if eq .Role "assistant" }}<|im_start|>assistant\n{{ .Content }}<|im_end|>\n'
        '{{ end }}{{ end }}<|im_start|>assistant\n"""'
    ) in modelfile
    assert f"ollama create tiny -f {result.path / 'Modelfile'}" in result.next_steps


def test_an_architecture_it_cannot_convert_is_refused_in_one_line(tmp_path, default_tokenizer):
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from workbench.runs.export import export

    tokenizer = chatml_tokenizer(tmp_path / "tokenizer", default_tokenizer.chat_template)
    torch.manual_seed(0)
    model_dir = tmp_path / "gpt2"
    GPT2LMHeadModel(GPT2Config(vocab_size=len(tokenizer), n_embd=32, n_layer=1, n_head=2)).save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    run_dir = make_run(tmp_path / "run", model_dir, tokenizer)
    with pytest.raises(WorkbenchError) as refused:
        export(run_dir, ExportOptions(format="gguf"), report=lambda line: None)
    message = str(refused.value)
    assert "'gpt2' models cannot be converted" in message and "llama, qwen2" in message and "\n" not in message
    assert not (run_dir / "exports").exists()  # refused before anything was written


def test_every_offered_quantization_writes_a_file_transformers_reads(tmp_path, default_tokenizer):
    import gguf
    import torch

    from workbench.export.options import GGUF_QUANTS
    from workbench.runs.export import export

    tokenizer = chatml_tokenizer(tmp_path / "tokenizer", default_tokenizer.chat_template)
    run_dir = make_run(tmp_path / "run", build_tiny_model(tmp_path / "model", tokenizer), tokenizer)
    merged, _ = load_hf(export(run_dir, ExportOptions(format="hf", dtype="fp32"), report=lambda line: None).path)
    reference = merged.model.layers[0].mlp.down_proj.weight
    for quant in sorted(set(GGUF_QUANTS) - {"f16", "q8_0"}):  # those two have their own tests above
        folder = export(run_dir, ExportOptions(format="gguf", quant=quant), report=lambda line: None).path
        kinds = {t.name: t.tensor_type.name for t in gguf.GGUFReader(next(folder.glob("*.gguf"))).tensors}
        assert kinds["blk.0.ffn_down.weight"] == quant.upper()
        assert kinds["token_embd.weight"] == ("Q8_0" if quant.startswith("q") else quant.upper())
        model, _ = load_gguf(folder)
        error = (model.model.layers[0].mlp.down_proj.weight - reference).abs().max() / reference.abs().max()
        assert error < {"f32": 1e-7, "bf16": 1e-2}.get(quant, 0.15), (quant, float(error))
        assert torch.isfinite(model(torch.tensor([[1, 2, 3]])).logits).all()
