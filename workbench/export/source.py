"""What a run exports: which weights, on which base model (by Hub id where known), with which
tokenizer and chat template."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from workbench.config.io import load_config
from workbench.data.system_prompt import template_with_default_system
from workbench.errors import WorkbenchError
from workbench.models import CACHE_MARKER, ResolvedModel, load_tokenizer, resolve_model
from workbench.runs.rundir import (
    CHECKPOINT_COMPLETE_MARKER,
    CHECKPOINTS_DIR,
    CONFIG_FILE,
    FINAL_ADAPTER_DIR,
    complete_checkpoints,
    read_status,
)

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from workbench.config.schema import RunConfig

ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")
HUB_CACHE_PREFIX = "models--"


def choose_weights(run_dir: Path, checkpoint: Optional[str] = None) -> Path:
    """The folder to export; a WorkbenchError when it holds no weights to export (an export of
    nothing would otherwise "succeed").

    Args:
        checkpoint: None for the final adapter/ (else the best, else the last complete checkpoint);
            "best", "last", or a step number.
    """
    folder = _choose_folder(run_dir, checkpoint)
    wanted = ["adapter_model.safetensors"] if is_adapter(folder) else []
    if wanted and not (folder / wanted[0]).is_file() or not wanted and not any(folder.glob("*.safetensors")):
        what = wanted[0] if wanted else "*.safetensors weights"
        raise WorkbenchError(f"{folder}: has no {what} to export (deleted or never written); choose another --checkpoint")
    return folder


def _choose_folder(run_dir: Path, checkpoint: Optional[str]) -> Path:
    run_dir = Path(run_dir)
    if not (run_dir / CONFIG_FILE).is_file():
        raise WorkbenchError(f"{run_dir}: not a run directory (no {CONFIG_FILE})")
    complete = complete_checkpoints(run_dir)
    status = read_status(run_dir)
    if checkpoint is None:
        if (run_dir / FINAL_ADAPTER_DIR).is_dir():
            return run_dir / FINAL_ADAPTER_DIR
        checkpoint = "best" if status and status.best_checkpoint else "last"
    if checkpoint == "best":
        best = status.best_checkpoint if status else None
        if not best or not (run_dir / best / CHECKPOINT_COMPLETE_MARKER).is_file():
            raise WorkbenchError(f"{run_dir}: --checkpoint best: the run has no evaluated best checkpoint; use last or a step")
        return run_dir / best
    if checkpoint == "last":
        if not complete:
            raise WorkbenchError(f"{run_dir}: no complete checkpoint to export yet")
        return complete[-1]
    if not str(checkpoint).isdigit():
        raise WorkbenchError(f"--checkpoint: expected best, last or a step number, got {checkpoint!r}")
    path = run_dir / CHECKPOINTS_DIR / f"checkpoint-{int(checkpoint)}"
    if path not in complete:
        steps = ", ".join(p.name.rsplit("-", 1)[-1] for p in complete) or "none"
        raise WorkbenchError(f"{run_dir}: --checkpoint {checkpoint}: no complete checkpoint at that step (have: {steps})")
    return path


def is_adapter(folder: Path) -> bool:
    return (Path(folder) / "adapter_config.json").is_file()


def hub_id_of(name_or_path: str, model_dir: Path, source: str) -> Optional[str]:
    """The Hugging Face Hub id of a resolved base model, where it can be known.

    A Hub id the user named; the converted default model's cache marker (it records the id it came
    from); or a directory inside a Hugging Face cache (`models--org--name/snapshots/<hash>`).
    """
    if source == "hub":
        return name_or_path
    try:
        recorded = json.loads((model_dir / CACHE_MARKER).read_text(encoding="utf-8")).get("hub_id")
        if recorded:
            return str(recorded)
    except (OSError, ValueError, AttributeError):
        pass
    parts = Path(model_dir).resolve().parts
    for index, part in enumerate(parts[:-2]):
        if part.startswith(HUB_CACHE_PREFIX) and parts[index + 1] == "snapshots":
            owner_and_name = part[len(HUB_CACHE_PREFIX):].split("--", 1)
            if len(owner_and_name) == 2 and all(owner_and_name):
                return "/".join(owner_and_name)
    return None


@dataclass(frozen=True)
class ExportSource:
    """A run's weights folder and everything known about what they sit on."""

    run_dir: Path
    config: "RunConfig"
    weights: Path
    base_path: Path
    base_hub_id: Optional[str]
    base_display_name: str

    @property
    def is_adapter(self) -> bool:
        return is_adapter(self.weights)

    @property
    def weights_label(self) -> str:
        """The weights folder relative to the run, e.g. "adapter" or "checkpoints/checkpoint-20"."""
        try:
            return str(self.weights.relative_to(self.run_dir))
        except ValueError:
            return str(self.weights)

    @property
    def system_prompt(self) -> Optional[str]:
        return self.config.data.system_prompt

    @property
    def tokenizer_dir(self) -> Path:
        """Where the tokenizer the run trained with lives: beside the exported weights (the trainer
        saves it with every checkpoint and the final adapter), else beside adapter/, else the base."""
        for folder in (self.weights, self.run_dir / FINAL_ADAPTER_DIR):
            if (folder / "tokenizer_config.json").is_file():
                return folder
        return self.base_path

    @property
    def base_reference(self) -> str:
        """How another machine names the base: the Hub id, else the local path."""
        return self.base_hub_id or str(self.base_path)


def export_source(run_dir: Path | str, checkpoint: Optional[str] = None) -> ExportSource:
    """Resolve what `run_dir` exports (raises WorkbenchError for a run without weights)."""
    run_dir = Path(run_dir)
    weights = choose_weights(run_dir, checkpoint)
    config = load_config(run_dir / CONFIG_FILE)
    resolved = resolve_model(config.model.name_or_path)
    hub_id = hub_id_of(str(config.model.name_or_path), resolved.path, resolved.source)
    return ExportSource(run_dir, config, weights, resolved.path, hub_id, resolved.display_name)


def load_export_tokenizer(source: ExportSource) -> "PreTrainedTokenizerBase":
    """The tokenizer the run trained with, its chat template rewritten so that a conversation with no
    system message gets the run's system prompt (the template is left as is when there is none)."""
    folder = source.tokenizer_dir  # an adapter folder has no config.json, so it is named, not resolved
    tokenizer = load_tokenizer(ResolvedModel(folder, folder.name, "local"), trust_remote_code=source.config.model.trust_remote_code)
    if tokenizer.chat_template and isinstance(tokenizer.chat_template, str):
        tokenizer.chat_template = template_with_default_system(tokenizer.chat_template, source.system_prompt)
    return tokenizer
