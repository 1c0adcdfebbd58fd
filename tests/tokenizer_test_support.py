"""Tiny byte-level BPE tokenizers and random models for chat-template tests.

`build_tokenizer` trains a ~400-token byte-level BPE on a few sentences (instant), so tests get
a base-model tokenizer without a chat template and without ChatML's tokens, or, with Qwen's
special tokens added, a Qwen2-style tokenizer; `build_tiny_model` saves a random model beside it.
"""

from __future__ import annotations

from pathlib import Path

CORPUS_WORDS = (
    "amber birch cobalt dune ember fjord grove harbor indigo juniper kestrel lagoon the a of to and is you what "
    "who are weather in Oslo city temperature degrees get_weather name arguments type function object string "
    "properties required description hello there goodbye question answer system user assistant tool call response"
).split()
QWEN_SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
QWEN_ADDED_TOKENS = ("<tool_call>", "</tool_call>")


def build_tokenizer(directory: Path, *, special_tokens=("<|endoftext|>",), added_tokens=(), chat_template=None,
                    eos_token="<|endoftext|>", vocab_size: int = 400):
    """A byte-level BPE tokenizer saved to `directory` (loads with AutoTokenizer); returns it."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    words = list(CORPUS_WORDS)
    corpus = [" ".join(words[i:] + words[:i]) for i in range(len(words))] + ['{"name": "x", "arguments": {}}'] * 3
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=list(special_tokens), initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    backend.train_from_iterator(corpus, trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, eos_token=eos_token)
    if added_tokens:
        tokenizer.add_tokens(list(added_tokens))
    if chat_template is not None:
        tokenizer.chat_template = chat_template
    directory.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(directory)
    return tokenizer


def build_tiny_model(directory: Path, tokenizer, *, architecture: str = "llama", tie_word_embeddings: bool = False, seed: int = 0) -> Path:
    """A random 2-layer model (hidden 32) for `tokenizer`'s vocabulary, saved as safetensors beside it."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(seed)
    config_class, model_class = {"llama": (LlamaConfig, LlamaForCausalLM), "qwen2": (Qwen2Config, Qwen2ForCausalLM)}[architecture]
    config = config_class(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=512, tie_word_embeddings=tie_word_embeddings,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    model_class(config).save_pretrained(directory, safe_serialization=True)
    tokenizer.save_pretrained(directory)
    return directory
