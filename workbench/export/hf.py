"""A merged model in Hugging Face layout: safetensors in a chosen dtype, sharded when large, with the
tokenizer and the chat template the run trained with (default system message = the run's prompt)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from workbench.export.source import ExportSource
from workbench.models import CACHE_MARKER, DEFAULT_MODEL_HUB_DTYPE
from workbench.precision import DTYPE_NAMES, torch_dtype

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

MAX_SHARD_SIZE = "5GB"
"""Shards of at most 5 GB, the size the Hub's own large checkpoints use; a 135M model stays one file."""

def base_dtype(source: ExportSource) -> str:
    """The dtype the base model is stored in (bf16/fp16/fp32), as its config.json says.

    The embedded default model says float32 in its cache (it is dequantized from a GGUF), but is
    published in bf16, so it exports in bf16.
    """
    if source.is_adapter and (source.base_path / CACHE_MARKER).is_file():
        return DEFAULT_MODEL_HUB_DTYPE
    folder = source.base_path if source.is_adapter else source.weights
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "fp32"
    stored = config.get("dtype") or config.get("torch_dtype") or "float32"

    by_name = {name: short for short, name in DTYPE_NAMES.items()}
    return by_name.get(str(stored).replace("torch.", ""), "fp32")


def write_hf(
    model: "PreTrainedModel", tokenizer: "PreTrainedTokenizerBase", target: Path, dtype: str
) -> None:
    """Save `model` (fp32) cast to `dtype`, and `tokenizer`, into `target`."""
    import torch

    model = model.to(torch_dtype(dtype))
    with torch.no_grad():
        model.save_pretrained(target, safe_serialization=True, max_shard_size=MAX_SHARD_SIZE)
    tokenizer.save_pretrained(target)


def weights_size(folder: Path) -> int:
    """Bytes of the model files in `folder` (safetensors or gguf)."""
    return sum(path.stat().st_size for path in Path(folder).iterdir() if path.suffix in {".safetensors", ".gguf"})
