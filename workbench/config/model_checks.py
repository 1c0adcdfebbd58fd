"""What `config check` verifies in the model folder, without loading weights or running its code.

Everything comes from files: config.json (architecture, `auto_map` for remote code) and the
safetensors headers (tensor names and shapes, and how many bytes the file must hold). So a
truncated download, a folder with pickle weights only, `target_modules` the model does not have,
a LoRA rank wider than the layers, or a model whose code would have to run without
`trust_remote_code` are refused by `config check` instead of crashing the trainer.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.known_errors import first_line

if TYPE_CHECKING:
    from workbench.config.checks import Problem
    from workbench.config.schema import RunConfig

SAFETENSORS_INDEX = "model.safetensors.index.json"
MAX_HEADER_BYTES = 100 << 20
"""safetensors itself refuses headers over 100 MB."""
EMBEDDING_MARKERS = ("embed", "wte", "wpe", "lm_head", "word_embeddings", "shared")
"""Tensor names of embeddings and the output layer, which `all-linear` leaves out."""


@dataclass(frozen=True)
class WeightFile:
    """One safetensors file: its tensors (name -> shape) and whether it holds every byte its header lists."""

    path: Path
    tensors: dict[str, tuple[int, ...]]
    problem: str | None = None


def read_safetensors_header(path: Path) -> WeightFile:
    """The tensor names and shapes of a safetensors file from its header (a few kB read), and what is
    wrong with the file when its size does not match the header (truncated, not safetensors)."""
    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as handle:
            prefix = handle.read(8)
            if len(prefix) < 8:
                return WeightFile(path, {}, f"{path.name} is {size} bytes, too short for a safetensors file (truncated?)")
            (header_length,) = struct.unpack("<Q", prefix)
            if header_length > min(MAX_HEADER_BYTES, size - 8):
                return WeightFile(path, {}, f"{path.name} is not a complete safetensors file (its header claims "
                                            f"{header_length:,} bytes of {size:,}; truncated or another format?)")
            header = json.loads(handle.read(header_length))
    except OSError as error:
        return WeightFile(path, {}, f"{path.name} cannot be read ({error.strerror or error})")
    except (ValueError, UnicodeDecodeError, RecursionError):
        return WeightFile(path, {}, f"{path.name} has an unreadable safetensors header (truncated or another format?)")
    if not isinstance(header, dict):
        return WeightFile(path, {}, f"{path.name} has an unreadable safetensors header")
    tensors: dict[str, tuple[int, ...]] = {}
    data_end = 0
    for name, entry in header.items():
        if name == "__metadata__" or not isinstance(entry, dict):
            continue
        try:
            tensors[name] = tuple(int(dim) for dim in entry.get("shape", ()))
            data_end = max(data_end, int(entry["data_offsets"][1]))
        except (KeyError, TypeError, ValueError, IndexError):
            return WeightFile(path, {}, f"{path.name}: tensor {name} has no valid shape and offsets in the header")
    expected = 8 + header_length + data_end
    if size < expected:
        return WeightFile(path, tensors, f"{path.name} holds {size:,} of the {expected:,} bytes its header lists "
                                         "(truncated: download or save it again)")
    return WeightFile(path, tensors)


def weight_files(model_dir: Path) -> tuple[list[WeightFile], list[str]]:
    """The model's safetensors files (all shards an index names) and the problems found with them."""
    model_dir = Path(model_dir)
    index = model_dir / SAFETENSORS_INDEX
    names: list[str]
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text(encoding="utf-8")).get("weight_map") or {}
            names = sorted(set(map(str, weight_map.values())))
        except (OSError, ValueError, AttributeError):
            return [], [f"{SAFETENSORS_INDEX} is not readable JSON"]
        missing = [name for name in names if not (model_dir / name).is_file()]
        if missing:
            return [], [f"{SAFETENSORS_INDEX} names {len(missing)} missing shard(s), e.g. {missing[0]} (incomplete download?)"]
    else:
        names = sorted(path.name for path in model_dir.glob("*.safetensors"))
    if not names:
        pickles = sorted(path.name for path in model_dir.glob("*.bin")) + sorted(path.name for path in model_dir.glob("*.pt"))
        if pickles:
            return [], [f"only pickle weights ({pickles[0]}), which the workbench never loads (they can run code); "
                        "convert them to safetensors (save_pretrained(..., safe_serialization=True))"]
        return [], ["no weights (no *.safetensors file)"]
    files = [read_safetensors_header(model_dir / name) for name in names]
    return files, [file.problem for file in files if file.problem]


def _read_model_config(model_dir: Path) -> tuple[dict[str, Any] | None, str | None]:
    path = Path(model_dir) / "config.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None, "no config.json (not a Hugging Face model directory)"
    except (OSError, ValueError, UnicodeDecodeError, RecursionError):
        return None, "config.json is not readable JSON"
    if not isinstance(data, dict):
        return None, "config.json does not hold an object"
    return data, None


def needs_remote_code(model_config: dict[str, Any]) -> bool:
    """The model can only be built by running Python code shipped with it: its model_type is not
    one transformers knows, and its config maps the auto classes to its own code (auto_map)."""
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES

    model_type = model_config.get("model_type")
    return model_type not in CONFIG_MAPPING_NAMES and bool(model_config.get("auto_map"))


def remote_code_problem(model_dir: Path, trust_remote_code: bool) -> str | None:
    """The one line refusing a model whose code would have to run (None when it need not, or is trusted)."""
    data, _ = _read_model_config(model_dir)
    if data is None or trust_remote_code or not needs_remote_code(data):
        return None
    return (
        f"{model_dir} ships its own Python code (model_type {data.get('model_type')!r}, auto_map in config.json) and "
        "transformers cannot build it without running that code; set model.trust_remote_code: true only if you "
        "trust its author"
    )


def config_json_problem(model_dir: Path, trust_remote_code: bool) -> str | None:
    """Why transformers would refuse the model's config.json (a value of the wrong type, no
    model_type), read as the trainer reads it but without weights; None when it loads."""
    from transformers import AutoConfig

    try:
        AutoConfig.from_pretrained(model_dir, trust_remote_code=trust_remote_code)
    except Exception as error:  # the library's own validation (StrictDataclassFieldValidationError, ValueError, …)
        return "config.json cannot be loaded: " + first_line(error)
    return None


def tokenizer_problem(model_dir: Path) -> str | None:
    """Why the model's tokenizer.json cannot be read (a cut-short download), or None."""
    path = Path(model_dir) / "tokenizer.json"
    if not path.is_file():
        return None  # a slow tokenizer or none: the chat-template check speaks for those
    try:
        json.loads(path.read_bytes())
    except (ValueError, UnicodeDecodeError, RecursionError) as error:
        return f"tokenizer.json is not readable JSON ({getattr(error, 'msg', None) or error}; truncated?): download or save it again"
    except OSError as error:
        return f"tokenizer.json cannot be read ({error.strerror or error})"
    return None


def linear_layers(files: list[WeightFile]) -> dict[str, tuple[int, int]]:
    """Module name -> (out, in) of every 2D `.weight` that is not an embedding or the output layer."""
    layers = {}
    for file in files:
        for name, shape in file.tensors.items():
            if name.endswith(".weight") and len(shape) == 2 and not any(marker in name for marker in EMBEDDING_MARKERS):
                layers[name.removesuffix(".weight")] = (shape[0], shape[1])
    return layers


def _matches(module: str, target: str) -> bool:
    """PEFT's rule for a target_modules entry: the whole name, or its last dotted parts."""
    return module == target or module.endswith("." + target)


def adapter_problems(config: "RunConfig", files: list[WeightFile]) -> list[tuple[str, str, str]]:
    """(field, message, severity) for target_modules the model lacks and ranks wider than the layers."""
    method = config.method
    if method.type == "full":
        return []
    layers = linear_layers(files)
    if not layers:
        return []  # quantized or unusual checkpoints: PEFT decides
    targets = method.target_modules
    if targets == "all-linear":
        chosen = layers
    else:
        missing = [target for target in targets if not any(_matches(module, target) for module in layers)]
        suffixes = sorted({module.rsplit(".", 1)[-1] for module in layers})
        if missing and len(missing) == len(targets):
            return [("method.target_modules", f"the model has no layer named {', '.join(missing)}; its linear layers "
                                               f"are {', '.join(suffixes)} (or use all-linear)", "error")]
        if missing:
            return [("method.target_modules", f"the model has no layer named {', '.join(missing)}, so only "
                                               f"{', '.join(t for t in targets if t not in missing)} are adapted; its "
                                               f"linear layers are {', '.join(suffixes)}", "warning")]
        chosen = {module: shape for module, shape in layers.items() if any(_matches(module, t) for t in targets)}
    widths = [min(shape) for shape in chosen.values()]
    if method.r > max(widths):
        return [("method.r", f"{method.r} is wider than every adapted layer (the widest is {max(widths)}); a LoRA "
                             f"rank above a layer's width adds nothing; use at most {max(widths)} (usually 8-64)", "error")]
    if method.r > min(widths):
        return [("method.r", f"{method.r} is wider than the narrowest adapted layers ({min(widths)}); those cannot "
                             "use the extra rank", "warning")]
    return []


def model_folder_problems(config: "RunConfig", model_dir: Path) -> list["Problem"]:
    """Every problem `config check` reports about the model folder (weights, remote code, targets, rank)."""
    from workbench.config.checks import Problem  # cycle: config.checks -> config.model_checks

    field = "model.name_or_path"
    data, problem = _read_model_config(model_dir)
    if problem:
        return [Problem(field, f"{model_dir}: {problem}")]
    problems = []
    remote = remote_code_problem(model_dir, config.model.trust_remote_code)
    if remote:
        problems.append(Problem("model.trust_remote_code", remote))
    else:
        invalid = config_json_problem(model_dir, config.model.trust_remote_code)
        if invalid:
            return [Problem(field, f"{model_dir}: {invalid}")]
    tokenizer = tokenizer_problem(model_dir)
    if tokenizer:
        problems.append(Problem(field, f"{model_dir}: {tokenizer}"))
    files, weight_problems = weight_files(model_dir)
    problems += [Problem(field, f"{model_dir}: {message}") for message in weight_problems]
    if not weight_problems:
        problems += [Problem(name, message, severity) for name, message, severity in adapter_problems(config, files)]
    return problems
