"""Published configs of popular open models, so memory can be estimated without downloading them.

Each entry holds the values of the model's published `config.json` that decide its memory
(for multimodal Gemma-3 the text decoder's `text_config`, plus the parameter count of the
SigLIP vision tower and projector that load with it). This is data, not fetched at run time;
`tests/test_memory_catalog.py` instantiates every architecture on the meta device and checks
the parameter count derived from these values, and pins the published totals.
"""

from __future__ import annotations

from workbench.errors import WorkbenchError

# SigLIP-so400m at 896 px (Gemma-3 vision_config: hidden 1152, intermediate 4304, 27 layers,
# patch 14): 416,866,032 parameters. The projector adds an RMSNorm (1152) and a 1152 x hidden matrix.
_SIGLIP_GEMMA3_PARAMS = 416_866_032
_SIGLIP_HIDDEN = 1152


def _gemma3_vision(text_hidden: int) -> int:
    return _SIGLIP_GEMMA3_PARAMS + _SIGLIP_HIDDEN * text_hidden + _SIGLIP_HIDDEN


def _llama(h: int, layers: int, heads: int, kv: int, inter: int, vocab: int, tied: bool, head_dim: int | None = None,
           context: int = 131072):
    config = {
        "model_type": "llama",
        "hidden_size": h,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "num_key_value_heads": kv,
        "intermediate_size": inter,
        "vocab_size": vocab,
        "tie_word_embeddings": tied,
        "max_position_embeddings": context,
    }
    if head_dim is not None:
        config["head_dim"] = head_dim
    return config


def _with(config: dict, **changes) -> dict:
    return {**config, **changes}


# Keys are the canonical display names; lookups are case-insensitive and ignore an owner prefix
# ("Qwen/") and an -Instruct / -it / -chat suffix, since instruct variants share the base config.
# `context` is the published max_position_embeddings (131072 unless given). Qwen2.5 takes its
# Instruct configs' 32768, the context it runs without YaRN scaling (some base configs say 131072).
CATALOG: dict[str, dict] = {
    # HuggingFaceTB/SmolLM2-*
    "SmolLM2-135M": _llama(576, 30, 9, 3, 1536, 49152, True, context=8192),
    "SmolLM2-360M": _llama(960, 32, 15, 5, 2560, 49152, True, context=8192),
    "SmolLM2-1.7B": _llama(2048, 24, 32, 32, 8192, 49152, True, context=8192),
    # Qwen/Qwen2.5-* (bias on q/k/v projections)
    "Qwen2.5-0.5B": _with(_llama(896, 24, 14, 2, 4864, 151936, True, context=32768), model_type="qwen2"),
    "Qwen2.5-1.5B": _with(_llama(1536, 28, 12, 2, 8960, 151936, True, context=32768), model_type="qwen2"),
    "Qwen2.5-3B": _with(_llama(2048, 36, 16, 2, 11008, 151936, True, context=32768), model_type="qwen2"),
    "Qwen2.5-7B": _with(_llama(3584, 28, 28, 4, 18944, 152064, False, context=32768), model_type="qwen2"),
    "Qwen2.5-14B": _with(_llama(5120, 48, 40, 8, 13824, 152064, False, context=32768), model_type="qwen2"),
    "Qwen2.5-32B": _with(_llama(5120, 64, 40, 8, 27648, 152064, False, context=32768), model_type="qwen2"),
    "Qwen2.5-72B": _with(_llama(8192, 80, 64, 8, 29568, 152064, False, context=32768), model_type="qwen2"),
    # Qwen/Qwen3-* (head_dim 128 regardless of hidden size; RMSNorm on q and k)
    "Qwen3-0.6B": _with(_llama(1024, 28, 16, 8, 3072, 151936, True, 128, context=40960), model_type="qwen3"),
    "Qwen3-1.7B": _with(_llama(2048, 28, 16, 8, 6144, 151936, True, 128, context=40960), model_type="qwen3"),
    "Qwen3-4B": _with(_llama(2560, 36, 32, 8, 9728, 151936, True, 128, context=40960), model_type="qwen3"),
    "Qwen3-8B": _with(_llama(4096, 36, 32, 8, 12288, 151936, False, 128, context=40960), model_type="qwen3"),
    "Qwen3-14B": _with(_llama(5120, 40, 40, 8, 17408, 151936, False, 128, context=40960), model_type="qwen3"),
    "Qwen3-32B": _with(_llama(5120, 64, 64, 8, 25600, 151936, False, 128, context=40960), model_type="qwen3"),
    # meta-llama/Llama-3.x-*
    "Llama-3.2-1B": _llama(2048, 16, 32, 8, 8192, 128256, True, 64),
    "Llama-3.2-3B": _llama(3072, 28, 24, 8, 8192, 128256, True, 128),
    "Llama-3.1-8B": _llama(4096, 32, 32, 8, 14336, 128256, False, 128),
    "Llama-3.1-70B": _llama(8192, 80, 64, 8, 28672, 128256, False, 128),
    # mistralai/Mistral-7B-v0.3
    "Mistral-7B-v0.3": _with(_llama(4096, 32, 32, 8, 14336, 32768, False, 128, context=32768), model_type="mistral"),
    # google/gemma-2-* (four norms per layer, soft-capped attention and logits)
    "Gemma-2-2B": _with(_llama(2304, 26, 8, 4, 9216, 256000, True, 256, context=8192), model_type="gemma2"),
    "Gemma-2-9B": _with(_llama(3584, 42, 16, 8, 14336, 256000, True, 256, context=8192), model_type="gemma2"),
    "Gemma-2-27B": _with(_llama(4608, 46, 32, 16, 36864, 256000, True, 128, context=8192), model_type="gemma2"),
    # google/gemma-3-* (1B is text only; 4B-27B carry a SigLIP vision tower)
    "Gemma-3-1B": _with(_llama(1152, 26, 4, 1, 6912, 262144, True, 256, context=32768), model_type="gemma3_text"),
    "Gemma-3-4B": _with(
        _llama(2560, 34, 8, 4, 10240, 262208, True, 256), model_type="gemma3", vision_params=_gemma3_vision(2560)
    ),
    "Gemma-3-12B": _with(
        _llama(3840, 48, 16, 8, 15360, 262208, True, 256), model_type="gemma3", vision_params=_gemma3_vision(3840)
    ),
    "Gemma-3-27B": _with(
        _llama(5376, 62, 32, 16, 21504, 262208, True, 128), model_type="gemma3", vision_params=_gemma3_vision(5376)
    ),
    # microsoft/Phi-3-mini-4k-instruct and Phi-4-mini-instruct (fused qkv_proj and gate_up_proj)
    "Phi-3-mini": _with(_llama(3072, 32, 32, 32, 8192, 32064, False, context=4096), model_type="phi3"),
    "Phi-4-mini": _with(_llama(3072, 32, 24, 8, 8192, 200064, True, 128), model_type="phi3"),
}

ALIASES: dict[str, str] = {
    "smollm2-135m-instruct": "SmolLM2-135M",
    "default": "SmolLM2-135M",
    "llama-3.3-70b": "Llama-3.1-70B",
    "llama-3-8b": "Llama-3.1-8B",
    "llama-3-70b": "Llama-3.1-70B",
    "meta-llama-3-8b": "Llama-3.1-8B",
    "meta-llama-3.1-8b": "Llama-3.1-8B",
    "meta-llama-3.1-70b": "Llama-3.1-70B",
    "mistral-7b": "Mistral-7B-v0.3",
    "phi-3-mini-4k": "Phi-3-mini",
    "phi-3-mini-4k-instruct": "Phi-3-mini",
    "phi-4-mini-instruct": "Phi-4-mini",
}

_VARIANT_SUFFIXES = ("-instruct", "-it", "-chat", "-base")


def _normalize(name: str) -> str:
    key = name.strip().lower()
    if "/" in key:
        key = key.rsplit("/", 1)[1]
    return key


def catalog_names() -> list[str]:
    """Canonical names of every catalog model, in catalog order."""
    return list(CATALOG)


def find_catalog_name(name: str) -> str | None:
    """The canonical catalog name for `name` (case-insensitive; owner prefix and -Instruct ignored), or None."""
    key = _normalize(name)
    by_lower = {canonical.lower(): canonical for canonical in CATALOG}
    candidates = [key]
    for suffix in _VARIANT_SUFFIXES:
        if key.endswith(suffix):
            candidates.append(key[: -len(suffix)])
    for candidate in candidates:
        if candidate in by_lower:
            return by_lower[candidate]
        if candidate in ALIASES:
            return ALIASES[candidate]
    return None


def catalog_config(name: str) -> tuple[str, dict]:
    """(canonical name, config dict) for a catalog model; WorkbenchError naming close matches otherwise."""
    canonical = find_catalog_name(name)
    if canonical is None:
        import difflib

        close = difflib.get_close_matches(_normalize(name), [c.lower() for c in CATALOG], n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise WorkbenchError(
            f"model {name!r}: not in the built-in catalog and not a local model directory; {hint}"
            f"known models: {', '.join(CATALOG)}"
        )
    return canonical, CATALOG[canonical]
