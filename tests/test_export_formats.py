"""The merged (hf) and adapter exports of a tiny run: dtype, shards, chat template with the run's
system prompt, and an adapter that names its base by Hub id and loads from a Hugging Face cache."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from export_test_support import SYSTEM_PROMPT, build_tiny_model, chatml_tokenizer, make_run, read_json
from workbench.errors import WorkbenchError
from workbench.export.options import ExportOptions

QUIET = dict(report=lambda line: None)


@pytest.fixture
def tokenizer(tmp_path, default_tokenizer):
    return chatml_tokenizer(tmp_path / "tokenizer", default_tokenizer.chat_template)


def logits_of(model, tokenizer, text="Who are you?"):
    import torch

    with torch.no_grad():
        return model(torch.tensor([tokenizer(text)["input_ids"]])).logits


def test_hf_export_is_the_merged_model_in_the_chosen_dtype_with_the_run_template(tmp_path, tokenizer):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from workbench.runs.export import export

    model_dir = build_tiny_model(tmp_path / "model", tokenizer)
    run_dir = make_run(tmp_path / "run", model_dir, tokenizer)
    result = export(run_dir, ExportOptions(format="hf", dtype="bf16"), **QUIET)
    assert result.path == run_dir / "exports" / "hf-bf16"
    assert read_json(result.path / "config.json")["dtype"] == "bfloat16"
    merged = AutoModelForCausalLM.from_pretrained(result.path)
    assert merged.model.embed_tokens.weight.dtype == torch.bfloat16
    expected = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(model_dir), run_dir / "adapter").merge_and_unload()
    for key, value in expected.state_dict().items():
        assert torch.equal(merged.state_dict()[key], value.to(torch.bfloat16)), key  # merged in fp32, rounded once
    exported_tokenizer = AutoTokenizer.from_pretrained(result.path)
    prompt = exported_tokenizer.apply_chat_template([{"role": "user", "content": "Hi"}], tokenize=False)
    assert prompt.startswith(f"<|im_start|>system\n{SYSTEM_PROMPT}<|im_end|>\n<|im_start|>user\nHi")
    manifest = read_json(result.path / "workbench.json")
    assert manifest["format"] == "hf" and manifest["dtype"] == "bf16" and manifest["base_model"]["local_path"] == str(model_dir)


def test_hf_export_keeps_the_base_dtype_by_default_and_shards_a_large_model(tmp_path, tokenizer, monkeypatch):
    import torch
    from transformers import AutoModelForCausalLM

    import workbench.export.hf as hf
    from workbench.runs.export import export

    model_dir = build_tiny_model(tmp_path / "model", tokenizer)
    run_dir = make_run(tmp_path / "run", model_dir, tokenizer)
    monkeypatch.setattr(hf, "MAX_SHARD_SIZE", "40KB")
    result = export(run_dir, ExportOptions(format="hf"), **QUIET)
    assert read_json(result.path / "config.json")["dtype"] == "float32"  # the tiny base is stored in fp32
    index = read_json(result.path / "model.safetensors.index.json")
    assert len(set(index["weight_map"].values())) > 1
    assert result.weights_bytes == sum(p.stat().st_size for p in result.path.glob("*.safetensors"))
    assert AutoModelForCausalLM.from_pretrained(result.path).model.norm.weight.dtype == torch.float32


def test_the_default_model_exports_in_bf16_and_names_its_hub_id(tmp_path, tokenizer):
    """The embedded default's cache says float32 (dequantized from a GGUF) but the model is bf16 on the
    Hub; its cache marker names the Hub id. A tiny model with the same marker stands in for it."""
    from workbench.models import CACHE_MARKER, DEFAULT_MODEL_HUB_ID
    from workbench.runs.export import export

    model_dir = build_tiny_model(tmp_path / "model", tokenizer)
    (model_dir / CACHE_MARKER).write_text(json.dumps({"format_version": 1, "hub_id": DEFAULT_MODEL_HUB_ID}))
    run_dir = make_run(tmp_path / "run", model_dir, tokenizer)
    merged = export(run_dir, ExportOptions(format="hf"), **QUIET).path
    assert merged.name == "hf" and read_json(merged / "config.json")["dtype"] == "bfloat16"
    adapter = export(run_dir, ExportOptions(format="adapter"), **QUIET).path
    assert read_json(adapter / "adapter_config.json")["base_model_name_or_path"] == DEFAULT_MODEL_HUB_ID
    assert read_json(adapter / "workbench.json")["base_model"] == {"hub_id": DEFAULT_MODEL_HUB_ID, "local_path": str(model_dir)}


def test_the_adapter_loads_with_autopeft_wherever_the_base_is_in_the_hf_cache(tmp_path, tokenizer):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from workbench.runs.export import export

    hf_home = tmp_path / "hf-home"
    repo = hf_home / "hub" / "models--tinyorg--tiny-chat"
    snapshot = build_tiny_model(repo / "snapshots" / "0123abcd", tokenizer)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0123abcd")
    run_dir = make_run(tmp_path / "run", snapshot, tokenizer)
    adapter = export(run_dir, ExportOptions(format="adapter"), **QUIET).path
    config = read_json(adapter / "adapter_config.json")
    assert config["base_model_name_or_path"] == "tinyorg/tiny-chat"
    assert {"adapter_model.safetensors", "tokenizer.json", "README.md"} <= {p.name for p in adapter.iterdir()}

    script = (
        "import json, sys, torch\n"
        "from peft import AutoPeftModelForCausalLM\n"
        "from transformers import AutoTokenizer\n"
        "model = AutoPeftModelForCausalLM.from_pretrained(sys.argv[1])\n"
        "ids = torch.tensor([AutoTokenizer.from_pretrained(sys.argv[1])('Who are you?')['input_ids']])\n"
        "with torch.no_grad():\n"
        "    print(json.dumps(model(ids).logits[0, -1].tolist()))\n"
    )
    environment = {**os.environ, "HF_HOME": str(hf_home), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    environment.pop("HF_HUB_CACHE", None)
    done = subprocess.run([sys.executable, "-c", script, str(adapter)], env=environment, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    expected = logits_of(PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(snapshot), run_dir / "adapter"), tokenizer)
    assert loaded == pytest.approx(expected[0, -1].tolist(), abs=1e-5)


def test_an_adapter_that_learned_new_tokens_merges_their_rows(tmp_path, tokenizer):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from workbench.runs.export import export

    model_dir = build_tiny_model(tmp_path / "model", tokenizer)
    run_dir = make_run(tmp_path / "run", model_dir, tokenizer, new_tokens=("<|tool|>", "<|/tool|>"))
    merged_dir = export(run_dir, ExportOptions(format="hf", dtype="fp32"), **QUIET).path
    merged = AutoModelForCausalLM.from_pretrained(merged_dir)
    exported_tokenizer = AutoTokenizer.from_pretrained(merged_dir)
    assert len(exported_tokenizer) == len(tokenizer) + 2 == merged.config.vocab_size
    base = AutoModelForCausalLM.from_pretrained(model_dir)
    base.resize_token_embeddings(len(exported_tokenizer), mean_resizing=True)
    expected = PeftModel.from_pretrained(base, run_dir / "adapter").merge_and_unload()
    new_rows = exported_tokenizer.convert_tokens_to_ids(["<|tool|>", "<|/tool|>"])
    learned = merged.model.embed_tokens.weight[new_rows]
    assert torch.allclose(learned, expected.model.embed_tokens.weight[new_rows])
    from safetensors.torch import load_file

    saved = load_file(run_dir / "adapter" / "adapter_model.safetensors")
    rows = next(value for key, value in saved.items() if "trainable_tokens_delta" in key)
    assert torch.equal(learned, rows)  # the rows the run learned, not a fresh mean-initialized row
    gguf_dir = export(run_dir, ExportOptions(format="gguf", quant="f16"), **QUIET).path
    from_gguf = AutoModelForCausalLM.from_pretrained(gguf_dir, gguf_file="tiny-f16.gguf")
    assert torch.equal(from_gguf.model.embed_tokens.weight[new_rows], rows.half().float())
    gguf_tokenizer = AutoTokenizer.from_pretrained(gguf_dir, gguf_file="tiny-f16.gguf")
    assert gguf_tokenizer("a <|tool|> b")["input_ids"] == exported_tokenizer("a <|tool|> b")["input_ids"]
    for key, value in expected.state_dict().items():
        assert torch.allclose(merged.state_dict()[key], value, atol=1e-6), key


def test_a_full_fine_tune_has_no_adapter_to_export(tmp_path, tokenizer):
    import shutil

    from workbench.runs.export import export

    model_dir = build_tiny_model(tmp_path / "model", tokenizer)
    run_dir = make_run(tmp_path / "run", model_dir, tokenizer)
    shutil.rmtree(run_dir / "adapter")
    shutil.copytree(model_dir, run_dir / "adapter")  # what a full fine-tune leaves
    with pytest.raises(WorkbenchError, match="fine-tuned the whole model"):
        export(run_dir, ExportOptions(format="adapter"), **QUIET)
    merged = export(run_dir, ExportOptions(format="hf"), **QUIET).path
    assert read_json(merged / "config.json")["model_type"] == "llama"


def test_bad_choices_are_refused_by_name():
    with pytest.raises(WorkbenchError, match="--quant: expected one of"):
        ExportOptions(format="gguf", quant="q3_k").checked()
    with pytest.raises(WorkbenchError, match="--dtype: the adapter keeps"):
        ExportOptions(format="adapter", dtype="fp16").checked()
