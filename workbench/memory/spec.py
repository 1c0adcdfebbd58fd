"""What the memory estimator needs to know about a model: its shapes and exact parameter count.

A spec comes from the built-in catalog (pure arithmetic on published config values, no torch)
or from a local model directory (the model is built on the meta device, which allocates
nothing, and its parameters are counted exactly).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

from workbench.errors import WorkbenchError
from workbench.known_errors import model_file_error
from workbench.models import DEFAULT_MODEL_ALIASES, resolve_model

# Architectures whose decoder layers carry four RMSNorms (around attention and MLP) instead of two.
_FOUR_NORM_TYPES = frozenset({"gemma2", "gemma3", "gemma3_text"})
# Architectures with an RMSNorm on queries and keys (one head_dim-sized weight each).
_QK_NORM_TYPES = frozenset({"qwen3", "qwen3_moe", "gemma3", "gemma3_text", "olmo2"})
_QKV_BIAS_TYPES = frozenset({"qwen2"})
_FUSED_PROJECTION_TYPES = frozenset({"phi3"})


@dataclass(frozen=True)
class LinearShape:
    """One kind of linear layer inside the decoder layers (a LoRA target), e.g. every `q_proj`."""

    name: str
    in_features: int
    out_features: int
    count: int
    bias: bool = False

    @property
    def weight_params(self) -> int:
        return self.in_features * self.out_features * self.count


@dataclass(frozen=True)
class ModelSpec:
    """Shapes and exact parameter count of a decoder-only language model.

    Attributes:
        name: display name.
        model_type: the Hugging Face `model_type` (llama, qwen2, gemma2, phi3, ...).
        total_params: every parameter, tied weights counted once (vision towers included).
        linears: the linear layers of the decoder (the LoRA targets; lm_head excluded).
        norms_per_layer: RMSNorms per decoder layer (2, or 4 for Gemma-2/3).
        qk_norm: whether queries and keys pass through an RMSNorm (Qwen3, Gemma-3).
        logit_softcapping / attention_softcapping: Gemma-2's tanh caps (extra logits copies; no sdpa).
        extra_frozen_params: parameters outside the text decoder (a vision tower), loaded but not trained.
        context_length: the config's `max_position_embeddings` (positions the model was trained on,
            built-in RoPE scaling included), or None when the config does not say.
        source: "catalog", or the local directory the spec was counted from.
    """

    name: str
    model_type: str
    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    intermediate_size: int
    vocab_size: int
    tie_embeddings: bool
    total_params: int
    linears: tuple[LinearShape, ...]
    norms_per_layer: int = 2
    qk_norm: bool = False
    logit_softcapping: bool = False
    attention_softcapping: bool = False
    extra_frozen_params: int = 0
    context_length: int | None = None
    source: str = "catalog"

    @property
    def embedding_params(self) -> int:
        return self.vocab_size * self.hidden_size

    @property
    def lm_head_params(self) -> int:
        """Parameters of the output layer that are not shared with the input embedding."""
        return 0 if self.tie_embeddings else self.vocab_size * self.hidden_size

    @property
    def linear_weight_params(self) -> int:
        """Weights of all decoder linears: what QLoRA quantizes to 4 bits."""
        return sum(shape.weight_params for shape in self.linears)

    @property
    def query_width(self) -> int:
        return self.num_heads * self.head_dim

    @property
    def kv_width(self) -> int:
        return self.num_kv_heads * self.head_dim

    def linear_names(self) -> list[str]:
        return [shape.name for shape in self.linears]


def _decoder_linears(model_type: str, h: int, q: int, kv: int, inter: int, layers: int) -> tuple[LinearShape, ...]:
    if model_type in _FUSED_PROJECTION_TYPES:
        return (
            LinearShape("qkv_proj", h, q + 2 * kv, layers),
            LinearShape("o_proj", q, h, layers),
            LinearShape("gate_up_proj", h, 2 * inter, layers),
            LinearShape("down_proj", inter, h, layers),
        )
    bias = model_type in _QKV_BIAS_TYPES
    return (
        LinearShape("q_proj", h, q, layers, bias),
        LinearShape("k_proj", h, kv, layers, bias),
        LinearShape("v_proj", h, kv, layers, bias),
        LinearShape("o_proj", q, h, layers),
        LinearShape("gate_proj", h, inter, layers),
        LinearShape("up_proj", h, inter, layers),
        LinearShape("down_proj", inter, h, layers),
    )


@dataclass(frozen=True)
class _Shapes:
    model_type: str
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    vocab: int
    tied: bool
    context: int | None


def _shapes_from_dict(config: dict) -> _Shapes:
    text = config.get("text_config") or config
    model_type = str(config.get("model_type") or text.get("model_type") or "unknown")
    try:
        hidden = int(text["hidden_size"])
        heads = int(text["num_attention_heads"])
        return _Shapes(
            model_type=model_type,
            hidden=hidden,
            layers=int(text["num_hidden_layers"]),
            heads=heads,
            kv_heads=int(text.get("num_key_value_heads") or heads),
            head_dim=int(text.get("head_dim") or hidden // heads),
            intermediate=int(text["intermediate_size"]),
            vocab=int(text["vocab_size"]),
            tied=bool(config.get("tie_word_embeddings", text.get("tie_word_embeddings", True))),
            context=int(text["max_position_embeddings"]) if text.get("max_position_embeddings") else None,
        )
    except KeyError as missing:
        raise WorkbenchError(f"config: missing {missing.args[0]!r}; cannot size this model") from None


def _flags(model_type: str, config: dict) -> dict:
    text = config.get("text_config") or config
    is_gemma2 = model_type == "gemma2"
    return {
        "norms_per_layer": 4 if model_type in _FOUR_NORM_TYPES else 2,
        "qk_norm": model_type in _QK_NORM_TYPES,
        "logit_softcapping": bool(text.get("final_logit_softcapping", 30.0 if is_gemma2 else None)),
        "attention_softcapping": bool(text.get("attn_logit_softcapping", 50.0 if is_gemma2 else None)),
    }


def spec_from_config_dict(name: str, config: dict, source: str = "catalog") -> ModelSpec:
    """A spec computed by formula from config values (Llama, Mistral, Qwen2/3, Gemma-2/3 and Phi-3 layouts)."""
    s = _shapes_from_dict(config)
    flags = _flags(s.model_type, config)
    linears = _decoder_linears(
        s.model_type, s.hidden, s.heads * s.head_dim, s.kv_heads * s.head_dim, s.intermediate, s.layers
    )
    per_layer = sum(shape.in_features * shape.out_features + (shape.out_features if shape.bias else 0)
                    for shape in linears)
    per_layer += flags["norms_per_layer"] * s.hidden + (2 * s.head_dim if flags["qk_norm"] else 0)
    embeddings = s.vocab * s.hidden * (1 if s.tied else 2)
    extra = int(config.get("vision_params", 0))
    total = embeddings + s.layers * per_layer + s.hidden + extra
    return _spec(name, s, config, tied=s.tied, total=total, linears=linears, extra=extra, source=source)


def _spec(name: str, s: _Shapes, config: dict, *, tied: bool, total: int, linears: tuple, extra: int, source: str) -> ModelSpec:
    """The ModelSpec of config shapes `s` with the parameter counts found (by formula or by counting)."""
    return ModelSpec(
        name=name,
        model_type=s.model_type,
        hidden_size=s.hidden,
        num_layers=s.layers,
        num_heads=s.heads,
        num_kv_heads=s.kv_heads,
        head_dim=s.head_dim,
        intermediate_size=s.intermediate,
        vocab_size=s.vocab,
        tie_embeddings=tied,
        total_params=total,
        linears=tuple(linears),
        extra_frozen_params=extra,
        context_length=s.context,
        source=source,
        **_flags(s.model_type, config),
    )


@functools.lru_cache(maxsize=64)
def catalog_spec(name: str) -> ModelSpec:
    """The spec of a catalog model (case-insensitive name, e.g. 'qwen2.5-7b')."""
    from workbench.memory.catalog import catalog_config  # cycle: memory.catalog -> memory -> memory.spec

    canonical, config = catalog_config(name)
    return spec_from_config_dict(canonical, config)


@functools.lru_cache(maxsize=16)
def _counted_spec(directory: str, config_mtime_ns: int, trust_remote_code: bool) -> ModelSpec:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    try:
        config = AutoConfig.from_pretrained(directory, trust_remote_code=trust_remote_code)
    except Exception as error:  # a damaged config.json, or remote code: one line

        raise model_file_error(directory, "config.json", error) from None
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config, trust_remote_code=trust_remote_code)
    total = sum(p.numel() for p in model.parameters())
    output_layer = model.get_output_embeddings()
    groups: dict[tuple[str, int, int, bool], int] = {}
    for module_name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear) and module is not output_layer:
            key = (module_name.rsplit(".", 1)[-1], module.in_features, module.out_features, module.bias is not None)
            groups[key] = groups.get(key, 0) + 1
    linears = tuple(LinearShape(name, fan_in, fan_out, count, bias) for (name, fan_in, fan_out, bias), count
                    in groups.items())
    config_dict = json.loads((Path(directory) / "config.json").read_text(encoding="utf-8"))
    shapes = _shapes_from_dict(config_dict)
    input_layer = model.get_input_embeddings()
    tied = output_layer is not None and output_layer.weight is input_layer.weight
    # Parameters outside the text decoder and its head (a vision tower) load but are never adapted.
    text_params = sum(p.numel() for p in model.get_decoder().parameters())
    if output_layer is not None and not tied:
        text_params += output_layer.weight.numel()
    return _spec(Path(directory).name, shapes, config_dict, tied=tied, total=total, linears=linears,
                 extra=total - text_params, source=str(directory))


def spec_from_model_dir(directory: str | Path, *, trust_remote_code: bool = False) -> ModelSpec:
    """Count a local model exactly by building it on the meta device (no memory, ~1 s; cached per config file)."""
    path = Path(directory).expanduser().resolve()
    config_file = path / "config.json"
    if not config_file.is_file():
        raise WorkbenchError(f"model {str(directory)!r}: no config.json in this directory")
    return _counted_spec(str(path), config_file.stat().st_mtime_ns, trust_remote_code)


def resolve_model_spec(name_or_path: str | Path | None, *, trust_remote_code: bool = False) -> ModelSpec:
    """A spec for what the user named: 'default', a local model directory, a catalog name or a cached Hub id.

    'default' is the catalog's SmolLM2-135M entry: the default model has exactly that config (the
    catalog test pins its 134,515,008 parameters), and this way estimating never imports torch.
    """
    from workbench.memory.catalog import find_catalog_name  # cycle: memory.catalog -> memory -> memory.spec

    text = "default" if name_or_path is None else str(name_or_path)
    if text in DEFAULT_MODEL_ALIASES:
        return catalog_spec("SmolLM2-135M")
    path = Path(text).expanduser()
    if path.is_dir():
        return spec_from_model_dir(path, trust_remote_code=trust_remote_code)
    if text.startswith(("/", ".", "~")) or text.count("/") > 1:
        raise WorkbenchError(f"model {text!r}: no such directory (give a model directory, a catalog name or 'default')")
    if find_catalog_name(text) is not None:
        return catalog_spec(text)
    if text.count("/") == 1:
        try:
            return spec_from_model_dir(resolve_model(text).path, trust_remote_code=trust_remote_code)
        except WorkbenchError:
            pass
    return catalog_spec(text)  # raises with the list of known names and close matches


def needs_counting(name_or_path: str | Path | None) -> bool:
    """Whether resolving this name builds a model on the meta device (seconds: imports torch)."""
    from workbench.memory.catalog import find_catalog_name  # cycle: memory.catalog -> memory -> memory.spec

    text = "default" if name_or_path is None else str(name_or_path)
    if text in DEFAULT_MODEL_ALIASES:
        return False
    return Path(text).expanduser().is_dir() or find_catalog_name(text) is None
