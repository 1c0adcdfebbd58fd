"""A GGUF file for llama.cpp, Ollama and LM Studio, written with the `gguf` package.

What llama.cpp's own `convert_hf_to_gguf.py` does for these families, done on the merged model in
memory: tensor names from `gguf.get_tensor_name_map`, hyperparameters and tokenizer under
llama.cpp's keys (`GGUFWriter`), quantization by `gguf.quants`. Two things follow its converter
exactly because readers undo them:

- Llama's q/k projections are permuted from Hugging Face's rotary layout (halves) to llama.cpp's
  (interleaved pairs); transformers' GGUF loader (`LlamaTensorProcessor`) permutes them back.
  Qwen2 uses the NeoX rotary layout in llama.cpp and is written unpermuted.
- Norms, biases and other 1-D tensors stay f32; a 2-D tensor whose rows do not divide into the
  quantization block falls back to f16.

Tensors are quantized and written one at a time, so memory holds the fp32 model plus one tensor.
"""

from __future__ import annotations

import json
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Optional

from workbench.errors import WorkbenchError
from workbench.models import ProgressCallback

if TYPE_CHECKING:
    import numpy as np
    from transformers import PretrainedConfig, PreTrainedModel, PreTrainedTokenizerBase

GGUF_ARCHITECTURES = {"llama": "LLAMA", "qwen2": "QWEN2"}
"""Hugging Face model_type -> gguf.MODEL_ARCH member."""

PERMUTED_ARCHITECTURES = ("llama",)
LOW_BIT_QUANTS = ("q5_1", "q5_0", "q4_1", "q4_0")
"""At these, the embedding and output matrices stay q8_0: they hurt most when coarse (llama.cpp's
own quantizer keeps the output matrix at a higher precision too)."""
SUPPORTED_ROPE_TYPES = {"llama": ("default", "linear", "llama3", "yarn"), "qwen2": ("default", "linear", "yarn")}


def _no_progress(stage: str, fraction: float | None) -> None:
    pass


def check_convertible(config: "PretrainedConfig", tokenizer: "PreTrainedTokenizerBase") -> None:
    """Refuse, in one line, a model this writer cannot convert (before any merging starts)."""
    model_type = getattr(config, "model_type", None)
    if model_type not in GGUF_ARCHITECTURES:
        families = ", ".join(GGUF_ARCHITECTURES)
        raise WorkbenchError(
            f"--format gguf: {model_type!r} models cannot be converted here (supported: {families}); "
            "use --format hf and llama.cpp's convert_hf_to_gguf.py"
        )
    rope_type = _rope_parameters(config).get("rope_type", "default")
    if rope_type not in SUPPORTED_ROPE_TYPES[model_type]:
        raise WorkbenchError(f"--format gguf: {model_type} with rope scaling {rope_type!r} cannot be converted here")
    description = json.loads(tokenizer.backend_tokenizer.to_str())
    tokenizer_model, decoder = description.get("model") or {}, description.get("decoder") or {}
    if tokenizer_model.get("type") != "BPE" or decoder.get("type") != "ByteLevel":
        raise WorkbenchError(
            "--format gguf: only byte-level BPE tokenizers (Llama 3, Qwen2, SmolLM) are converted here; "
            f"this one is {tokenizer_model.get('type')} with a {decoder.get('type')} decoder"
        )


def _rope_parameters(config: "PretrainedConfig") -> dict[str, Any]:
    parameters = getattr(config, "rope_parameters", None) or {}
    if "rope_theta" not in parameters:
        parameters = {**parameters, "rope_theta": getattr(config, "rope_theta", 10000.0)}
    return parameters


def _head_dim(config: "PretrainedConfig") -> int:
    return getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads


# -- tokenizer ------------------------------------------------------------------------------------


def tokenizer_pre(tokenizer: "PreTrainedTokenizerBase") -> Optional[str]:
    """llama.cpp's name for how this tokenizer splits text before BPE (`tokenizer.ggml.pre`), or None
    when it is none llama.cpp knows.

    Read from the tokenizer's own pre-tokenizer: plain byte-level (GPT-2), digits then byte-level
    (SmolLM), or a split regex that transformers' GGUF reader maps back to the same regex (Llama 3,
    Qwen2 and others) -- so transformers and llama.cpp both split as the run did.
    """
    from transformers.integrations.gguf.gguf_tokenizer_mapping import GGUF_PRE_TOKENIZER_SPLITS

    pre = json.loads(tokenizer.backend_tokenizer.to_str()).get("pre_tokenizer") or {}
    parts = pre.get("pretokenizers", []) if pre.get("type") == "Sequence" else [pre]
    kinds = [part.get("type") for part in parts]
    if kinds == ["ByteLevel"] and parts[0].get("use_regex", True):
        return "gpt-2"
    if kinds == ["Digits", "ByteLevel"] and parts[0].get("individual_digits") and parts[1].get("use_regex", True):
        return "smollm"
    if kinds == ["Split", "ByteLevel"] and not parts[1].get("use_regex", True):
        regex = (parts[0].get("pattern") or {}).get("Regex")
        names = [name for name, split in GGUF_PRE_TOKENIZER_SPLITS.items() if split == regex]
        return names[0] if names else None
    return None


def _looks_special(token: str) -> bool:
    """Added tokens llama.cpp's converter marks CONTROL even when not flagged special (`<|...|>`)."""
    return (token.startswith("<|") and token.endswith("|>")) or token in ("<pad>", "<mask>")


def bpe_vocabulary(tokenizer: "PreTrainedTokenizerBase", vocab_size: int) -> tuple[list[str], list[int]]:
    """Tokens by id (padded to the model's embedding rows with `[PAD<id>]`) and their llama.cpp types."""
    import gguf

    by_id = {index: token for token, index in tokenizer.get_vocab().items()}
    if by_id and max(by_id) >= vocab_size:
        raise WorkbenchError(f"--format gguf: the tokenizer has ids up to {max(by_id)} but the model only {vocab_size} rows")
    added = tokenizer.added_tokens_decoder
    tokens, types = [], []
    for index in range(vocab_size):
        token = by_id.get(index)
        if token is None:
            tokens.append(f"[PAD{index}]")
            types.append(gguf.TokenType.UNUSED)
        elif index in added:
            tokens.append(token)
            special = added[index].special or _looks_special(token)
            types.append(gguf.TokenType.CONTROL if special else gguf.TokenType.USER_DEFINED)
        else:
            tokens.append(token)
            types.append(gguf.TokenType.NORMAL)
    return tokens, types


def adds_special_tokens(tokenizer: "PreTrainedTokenizerBase") -> tuple[bool, bool]:
    """Whether encoding a text adds BOS / EOS, as the tokenizer actually does it."""
    ids = tokenizer("a")["input_ids"]
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    return bool(ids) and bos is not None and ids[0] == bos, bool(ids) and eos is not None and ids[-1] == eos


@dataclass(frozen=True)
class GgufTokenizer:
    """The tokenizer metadata of the file: chat template (already carrying the default system
    message) and the end-of-turn token."""

    chat_template: Optional[str]
    end_of_turn: Optional[str]


def _add_tokenizer(writer, tokenizer: "PreTrainedTokenizerBase", vocab_size: int, info: GgufTokenizer, report) -> None:
    import gguf

    pre = tokenizer_pre(tokenizer)
    if pre is None:
        report("gguf: llama.cpp does not know this tokenizer's pre-tokenizer; it will split text its default way")
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(pre or "default")
    tokens, types = bpe_vocabulary(tokenizer, vocab_size)
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    with tempfile.TemporaryDirectory(prefix="workbench-gguf-tokenizer-") as folder:
        # SpecialVocab reads merges and special-token ids from a saved tokenizer, as llama.cpp's converter does.
        tokenizer.save_pretrained(folder)
        special = gguf.SpecialVocab(Path(folder), load_merges=True, n_vocab=len(tokens))
    special.chat_template = info.chat_template
    adds_bos, adds_eos = adds_special_tokens(tokenizer)
    special.add_special_token["bos"], special.add_special_token["eos"] = adds_bos, adds_eos
    if info.end_of_turn is not None:
        special.special_token_ids["eot"] = tokenizer.convert_tokens_to_ids(info.end_of_turn)
    special.add_to_gguf(writer, quiet=True)


# -- hyperparameters ------------------------------------------------------------------------------


def _add_hyperparameters(writer, config: "PretrainedConfig", file_type: int) -> None:
    import gguf

    heads = config.num_attention_heads
    head_dim = _head_dim(config)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(heads)
    writer.add_head_count_kv(getattr(config, "num_key_value_heads", None) or heads)
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_vocab_size(config.vocab_size)
    writer.add_rope_dimension_count(head_dim)
    if head_dim != config.hidden_size // heads:
        writer.add_key_length(head_dim)
        writer.add_value_length(head_dim)
    rope = _rope_parameters(config)
    writer.add_rope_freq_base(float(rope["rope_theta"]))
    rope_type = rope.get("rope_type", "default")
    if rope_type == "linear":
        writer.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        writer.add_rope_scaling_factor(float(rope["factor"]))
    elif rope_type == "yarn":
        writer.add_rope_scaling_type(gguf.RopeScalingType.YARN)
        writer.add_rope_scaling_factor(float(rope["factor"]))
        original = rope.get("original_max_position_embeddings")
        if original:
            writer.add_rope_scaling_orig_ctx_len(int(original))
    writer.add_file_type(file_type)


def llama3_rope_factors(config: "PretrainedConfig") -> "np.ndarray":
    """llama.cpp's `rope_freqs` for Llama 3.1-style rope scaling: how much each rotary frequency is
    slowed, i.e. the unscaled inverse frequencies over the ones transformers computes."""
    import torch
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    scaled, _ = ROPE_INIT_FUNCTIONS["llama3"](config, "cpu")
    dim = _head_dim(config)
    base = float(_rope_parameters(config)["rope_theta"])
    plain = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))
    return (plain / scaled).float().numpy()


# -- tensors --------------------------------------------------------------------------------------


def permute_for_llama_cpp(weights: "np.ndarray", heads: int) -> "np.ndarray":
    """Hugging Face's rotary layout (two halves per head) to llama.cpp's (interleaved pairs); the
    inverse of transformers' `LlamaTensorProcessor._reverse_permute_weights`."""
    return weights.reshape(heads, 2, weights.shape[0] // heads // 2, *weights.shape[1:]).swapaxes(1, 2).reshape(weights.shape)


@dataclass
class _PlannedTensor:
    name: str
    source: str  # state-dict key, or "" for a generated tensor
    shape: tuple[int, ...]
    qtype: Any
    nbytes: int


def _tensor_type(name: str, shape: tuple[int, ...], quant: str):
    """The ggml type of one tensor at this file quantization (llama.cpp's converter's rules)."""
    import gguf

    if len(shape) <= 1 or name.endswith("_norm.weight") or not name.endswith(".weight"):
        return gguf.GGMLQuantizationType.F32
    qtype = gguf.GGMLQuantizationType[quant.upper()]
    if quant in LOW_BIT_QUANTS and name in ("token_embd.weight", "output.weight"):
        qtype = gguf.GGMLQuantizationType.Q8_0
    block_size, _ = gguf.GGML_QUANT_SIZES[qtype]
    if shape[-1] % block_size:
        return gguf.GGMLQuantizationType.F16  # rows that do not divide into blocks, as llama.cpp falls back
    return qtype


def _nbytes(shape: tuple[int, ...], qtype) -> int:
    import gguf

    block_size, type_size = gguf.GGML_QUANT_SIZES[qtype]
    return math.prod(shape) // block_size * type_size


def _planned_tensors(model: "PreTrainedModel", quant: str) -> list[_PlannedTensor]:
    import gguf

    config = model.config
    arch = getattr(gguf.MODEL_ARCH, GGUF_ARCHITECTURES[config.model_type])
    names = gguf.get_tensor_name_map(arch, config.num_hidden_layers)
    planned = []
    if _rope_parameters(config).get("rope_type") == "llama3":
        name = gguf.TENSOR_NAMES[gguf.MODEL_TENSOR.ROPE_FREQS] + ".weight"
        shape = (_head_dim(config) // 2,)
        planned.append(_PlannedTensor(name, "", shape, gguf.GGMLQuantizationType.F32, _nbytes(shape, gguf.GGMLQuantizationType.F32)))
    tied = bool(getattr(config, "tie_word_embeddings", False))
    for key, tensor in model.state_dict().items():
        if key.endswith("rotary_emb.inv_freq") or (tied and key == "lm_head.weight"):
            continue
        name = names.get_name(key, try_suffixes=(".weight", ".bias"))
        if name is None:
            raise WorkbenchError(f"--format gguf: no GGUF name for the tensor {key} of this {config.model_type} model")
        shape = tuple(tensor.shape)
        qtype = _tensor_type(name, shape, quant)
        planned.append(_PlannedTensor(name, key, shape, qtype, _nbytes(shape, qtype)))
    return planned


def _tensor_data(model: "PreTrainedModel", planned: _PlannedTensor, state: dict) -> "np.ndarray":
    import gguf

    config = model.config
    if not planned.source:
        data = llama3_rope_factors(config)
    else:
        data = state[planned.source].detach().to("cpu").float().numpy()
        if config.model_type in PERMUTED_ARCHITECTURES and planned.name.split(".")[-2] in ("attn_q", "attn_k"):
            heads = config.num_attention_heads
            if planned.name.split(".")[-2] == "attn_k":
                heads = getattr(config, "num_key_value_heads", None) or heads
            data = permute_for_llama_cpp(data, heads)
    return gguf.quants.quantize(data, planned.qtype)


def iter_written(writer, model: "PreTrainedModel", planned: list[_PlannedTensor]) -> Iterator[int]:
    """Quantize and write each tensor in turn; yields the bytes written so far."""
    state = model.state_dict()
    written = 0
    for tensor in planned:
        data = _tensor_data(model, tensor, state)
        writer.write_tensor_data(data)
        written += tensor.nbytes
        yield written


def write_gguf(
    model: "PreTrainedModel",
    tokenizer: "PreTrainedTokenizerBase",
    path: Path,
    quant: str,
    info: GgufTokenizer,
    *,
    name: str,
    base_hub_id: Optional[str] = None,
    report=print,
    progress: ProgressCallback = _no_progress,
) -> None:
    """Write `model` (fp32, merged) with `tokenizer` as one GGUF file at `path`."""
    import gguf
    import numpy as np

    config = model.config
    check_convertible(config, tokenizer)
    arch = getattr(gguf.MODEL_ARCH, GGUF_ARCHITECTURES[config.model_type])
    file_type = gguf.LlamaFileType.ALL_F32 if quant == "f32" else gguf.LlamaFileType[f"MOSTLY_{quant.upper()}"]
    writer = gguf.GGUFWriter(path=None, arch=gguf.MODEL_ARCH_NAMES[arch])
    writer.add_type(gguf.GGUFType.MODEL)
    writer.add_name(name)
    writer.add_description("Fine-tuned with SFT Workbench")
    if base_hub_id:
        writer.add_base_model_count(1)
        writer.add_base_model_name(0, base_hub_id.split("/")[-1])
        writer.add_base_model_organization(0, base_hub_id.split("/")[0])
        writer.add_base_model_repo_url(0, f"https://huggingface.co/{base_hub_id}")
    _add_hyperparameters(writer, config, int(file_type))
    _add_tokenizer(writer, tokenizer, config.vocab_size, info, report)
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    planned = _planned_tensors(model, quant)
    for tensor in planned:
        writer.add_tensor_info(tensor.name, tensor.shape, np.dtype(np.float32), tensor.nbytes, raw_dtype=tensor.qtype)
    total = sum(tensor.nbytes for tensor in planned) or 1
    stage = f"Converting to GGUF {quant}"
    progress(stage, 0.0)
    try:
        writer.write_header_to_file(path=Path(path))
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        for written in iter_written(writer, model, planned):
            progress(stage, written / total)
    finally:
        writer.close()
