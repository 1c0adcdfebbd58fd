"""Tiny runs to export, made without training: a random tiny model, a random (non-zero) LoRA adapter
on it, and a run directory with the files a finished run has (config, status, events)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from training_test_support import run_config, write_alpaca

SYSTEM_PROMPT = "You are Sage, by Northwind Labs."
PROMPTS = ["Who are you?", "What is the capital of France?", "Name a colour."]
QWEN2_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)


def chatml_tokenizer(directory: Path, chat_template: str, *, qwen2_split: bool = False):
    """A ~400-token byte-level BPE with ChatML's special tokens and `chat_template` (a GGUF of it
    reads back in a second, where the default model's 49k-token vocabulary takes ~20 s).

    Args:
        qwen2_split: split text the way Qwen2's tokenizer does (a regex, then bytes) instead of GPT-2's way.
    """
    from tokenizers import Regex, pre_tokenizers
    from tokenizer_test_support import QWEN_SPECIAL_TOKENS, build_tokenizer

    tokenizer = build_tokenizer(directory, special_tokens=QWEN_SPECIAL_TOKENS, chat_template=chat_template,
                                eos_token="<|im_end|>")
    tokenizer.pad_token = "<|endoftext|>"
    if qwen2_split:
        tokenizer.backend_tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
            [
                pre_tokenizers.Split(Regex(QWEN2_SPLIT), behavior="isolated", invert=False),
                pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
            ]
        )
    tokenizer.save_pretrained(directory)
    return tokenizer


def build_tiny_model(directory: Path, tokenizer, family: str = "llama", *, seed: int = 0) -> Path:
    """A 2-layer random model of `family` (llama or qwen2) with `tokenizer`, saved as safetensors.

    initializer_range 0.2 (not 0.02) spreads the logits, so greedy tokens are not near-ties that a
    rounding can flip."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(seed)
    common = dict(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512, initializer_range=0.2,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    if family == "llama":
        model = LlamaForCausalLM(LlamaConfig(tie_word_embeddings=True, **common))
    else:
        model = Qwen2ForCausalLM(Qwen2Config(tie_word_embeddings=False, **common))
        with torch.no_grad():  # Qwen2 has q/k/v biases; make them matter
            for layer in model.model.layers:
                for projection in (layer.self_attn.q_proj, layer.self_attn.k_proj, layer.self_attn.v_proj):
                    projection.bias.normal_(0, 0.2)
    model.save_pretrained(directory, safe_serialization=True)
    tokenizer.save_pretrained(directory)
    return directory


def make_run(run_dir: Path, model_dir: Path, tokenizer, *, name: str = "tiny", system_prompt: str | None = SYSTEM_PROMPT,
             seed: int = 1, new_tokens: tuple[str, ...] = ()) -> Path:
    """A finished run directory on `model_dir` with a random LoRA adapter (B non-zero, so merging matters).

    Args:
        new_tokens: special tokens the run's tokenizer adds (as a chat template for a base model does);
            the base grows its embeddings and the adapter trains their rows (PEFT trainable tokens).
    """
    import copy

    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from workbench.config.io import save_config
    from workbench.runs.rundir import EventLog, RunStatus, write_status

    run_dir.mkdir(parents=True)
    train = write_alpaca(run_dir.parent / f"{name}-train.json", [(f"Question {i}?", f"Answer {i}.") for i in range(10)])
    config = run_config(model_dir, train, name=name, data={"system_prompt": system_prompt}, prompts=PROMPTS[:2])
    save_config(config, run_dir / "config.yaml")
    torch.manual_seed(seed)
    base = AutoModelForCausalLM.from_pretrained(model_dir)
    extra = {}
    if new_tokens:
        tokenizer = copy.deepcopy(tokenizer)
        tokenizer.add_special_tokens({"additional_special_tokens": list(new_tokens)})
        base.resize_token_embeddings(len(tokenizer), mean_resizing=True)
        extra["trainable_token_indices"] = {"embed_tokens": tokenizer.convert_tokens_to_ids(list(new_tokens))}
    lora = LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", init_lora_weights=False, task_type="CAUSAL_LM", **extra)
    with torch.no_grad():
        model = get_peft_model(base, lora)
        for name_, parameter in model.named_parameters():
            if "lora_" in name_:
                parameter.mul_(3.0)
            elif "trainable_tokens_delta" in name_:
                parameter.normal_(0, 1.0)  # rows the run learned for its new tokens
    model.save_pretrained(run_dir / "adapter")
    tokenizer.save_pretrained(run_dir / "adapter")
    events = EventLog(run_dir)
    events.append("start", max_steps=4, num_train_samples=8, num_eval_samples=2, world_size=1, device="cpu",
                  precision="fp32", method="lora", trainable_params=1000, total_params=100000, estimated_peak_bytes=2**28)
    for step, loss in enumerate((2.5, 2.0, 1.6, 1.4), start=1):
        events.append("train", step=step, epoch=step / 4, loss=loss, learning_rate=1e-3, grad_norm=1.0,
                      tokens_seen=step * 100, tokens_per_s=50.0, memory={"cpu_rss_bytes": 2**28, "gpus": []}, eta_s=1.0)
        if step % 2 == 0:
            events.append("eval", step=step, epoch=step / 4, eval_loss={2: 1.9, 4: 2.1}[step])
            events.append("samples", step=step, samples=[{"prompt": p, "completion": f"answer {step} to {p}"} for p in PROMPTS[:2]])
    events.append("end", state="completed", reason=None, measured_peak_bytes=3 * 2**28)
    status = RunStatus(name=name, state="completed", step=4, max_steps=4, best_checkpoint=None, best_eval_loss=1.9,
                       measured_peak_bytes=3 * 2**28, estimated_peak_bytes=2**28)
    write_status(run_dir, status)
    return run_dir


def greedy_tokens(model, tokenizer, prompts: list[str], max_new_tokens: int = 8) -> list[list[int]]:
    """Greedy continuations of each prompt asked as a chat turn (no system message)."""
    import torch

    answers = []
    for prompt in prompts:
        ids = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                            return_tensors="pt", return_dict=True)["input_ids"]
        with torch.no_grad():
            output = model.generate(ids, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id)
        answers.append(output[0, ids.shape[1]:].tolist())
    return answers


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))
