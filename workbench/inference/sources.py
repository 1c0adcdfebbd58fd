"""What a side answers with: the base model, a run's adapter (final, best or a checkpoint), any
PEFT adapter directory, or a separate full model (a merged export, or a full fine-tune's output).

Nothing here loads weights; `ChatEngine.attach` does.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Optional

from workbench.errors import WorkbenchError
from workbench.runs.rundir import (
    CHECKPOINTS_DIR,
    CONFIG_FILE,
    FINAL_ADAPTER_DIR,
    STATUS_FILE,
    complete_checkpoints,
    list_run_dirs,
    read_status,
)

ADAPTER_CONFIG_FILE = "adapter_config.json"
MODEL_CONFIG_FILE = "config.json"
CHECKPOINT_CHOICES = ("final", "best", "last")


@dataclass(frozen=True)
class ModelSource:
    """One side's model.

    Attributes:
        kind: "base" (the loaded base model), "adapter" (a PEFT adapter attached to the base) or
            "model" (a separate full model, e.g. a merged export; loaded as a second model).
        path: the adapter or model directory (None for the base).
        label: a short human name ("my-run · best (step 40)").
        run_dir: the training run the directory belongs to, when it belongs to one.
        checkpoint: "final", "best", "last" or "step N" within the run.
    """

    kind: str
    path: Optional[Path]
    label: str
    run_dir: Optional[Path] = None
    checkpoint: Optional[str] = None

    @property
    def is_base(self) -> bool:
        return self.kind == "base"

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "path": str(self.path) if self.path else None,
            "label": self.label,
            "run_dir": str(self.run_dir) if self.run_dir else None,
            "checkpoint": self.checkpoint,
        }


BASE_SOURCE = ModelSource("base", None, "base model")


def _weights_kind(directory: Path) -> Optional[str]:
    if (directory / ADAPTER_CONFIG_FILE).is_file():
        return "adapter"
    if (directory / MODEL_CONFIG_FILE).is_file() and any(directory.glob("*.safetensors")):
        return "model"
    return None


def adapter_trains_base_biases(directory: Path) -> bool:
    """Whether a PEFT adapter carries the base layers' own biases (LoRA with bias="all" or
    "lora_only"), read from its weights file's tensor names without loading it."""
    weights = Path(directory) / "adapter_model.safetensors"
    try:
        return _names_base_biases(str(weights), weights.stat().st_mtime_ns)
    except OSError:  # no weights file: attaching it reports that
        return False


@lru_cache(maxsize=64)
def _names_base_biases(weights: str, _modified_ns: int) -> bool:
    """Read once per version of the file (every batch asks)."""
    from safetensors import safe_open

    try:
        with safe_open(weights, framework="pt") as handle:
            return any(key.endswith(".bias") and "lora_" not in key for key in handle.keys())
    except Exception:  # a damaged file: attaching it reports the error
        return False


def find_run_dir(path: Path) -> Optional[Path]:
    """The run directory that holds `path` (itself, `adapter/` or `checkpoints/checkpoint-N/`), if any."""
    path = Path(path).resolve()
    for candidate in (path, path.parent, path.parent.parent):
        if (candidate / CONFIG_FILE).is_file() and (candidate / STATUS_FILE).is_file():
            return candidate
    return None


def _step_of(checkpoint_dir: Path) -> Optional[int]:
    suffix = checkpoint_dir.name.rsplit("-", 1)[-1]
    return int(suffix) if suffix.isdigit() else None


def _weights_dir(directory: Path) -> Optional[Path]:
    """The directory holding the weights: `directory` itself, or an `adapter/` inside a checkpoint."""
    for candidate in (directory, directory / FINAL_ADAPTER_DIR):
        if _weights_kind(candidate):
            return candidate
    return None


def source_from_directory(path: str | Path, label: Optional[str] = None) -> ModelSource:
    """A PEFT adapter directory or a full model directory (a merged export) given by path."""
    directory = Path(path).expanduser()
    if not directory.is_dir():
        raise WorkbenchError(f"adapter {str(path)!r}: no such directory")
    weights = _weights_dir(directory)
    if weights is None:
        raise WorkbenchError(
            f"adapter {str(path)!r}: neither a PEFT adapter (no {ADAPTER_CONFIG_FILE}) nor a model directory "
            f"({MODEL_CONFIG_FILE} with .safetensors weights)"
        )
    run_dir = find_run_dir(weights)
    checkpoint = None
    if run_dir is not None:
        step = _step_of(weights) if weights.parent.name == CHECKPOINTS_DIR else None
        if step is None and weights.parent.parent.name == CHECKPOINTS_DIR:
            step = _step_of(weights.parent)
        checkpoint = f"step {step}" if step is not None else "final"
    if label is None:
        label = f"{run_dir.name} · {checkpoint}" if run_dir is not None else weights.name
    return ModelSource(_weights_kind(weights), weights.resolve(), label, run_dir, checkpoint)


def resolve_run_dir(run: str | Path, runs_root: Path) -> Path:
    """A run given by name (under `runs_root`) or by path."""
    direct = Path(run).expanduser()
    for candidate in (direct, Path(runs_root) / str(run)):
        if candidate.is_dir() and (candidate / CONFIG_FILE).is_file():
            return candidate.resolve()
    known = [p.name for p in list_run_dirs(runs_root)]
    hint = f" (runs there: {', '.join(known[:8])})" if known else " (no runs there yet; train one first)"
    raise WorkbenchError(f"run {str(run)!r}: not found as a directory or under {runs_root}{hint}")


def _best_checkpoint_dir(run_dir: Path) -> Optional[Path]:
    status = read_status(run_dir)
    if status is None or not status.best_checkpoint:
        return None
    value = Path(status.best_checkpoint)
    for candidate in (value, run_dir / value, run_dir / CHECKPOINTS_DIR / value.name):
        if candidate.is_dir():
            return candidate
    return None


def run_source(run_dir: Path, checkpoint: Optional[str] = None) -> ModelSource:
    """A run's adapter: "final" (adapter/), "best" (status.json best_checkpoint), "last" (newest
    complete checkpoint) or a step number. None picks final, else best, else last."""
    run_dir = Path(run_dir).resolve()
    name = run_dir.name
    choice = (checkpoint or "").strip().lower()
    if not choice:
        for fallback in CHECKPOINT_CHOICES:
            try:
                return run_source(run_dir, fallback)
            except WorkbenchError:
                continue
        raise WorkbenchError(f"run {name!r}: has no adapter yet (no adapter/ and no complete checkpoint)")
    if choice == "final":
        weights = _weights_dir(run_dir / FINAL_ADAPTER_DIR) if (run_dir / FINAL_ADAPTER_DIR).is_dir() else None
        if weights is None:
            raise WorkbenchError(f"run {name!r}: --checkpoint final: the run has no final adapter yet (adapter/)")
        return ModelSource(_weights_kind(weights), weights.resolve(), f"{name} · final", run_dir, "final")
    checkpoints = complete_checkpoints(run_dir)
    if choice == "best":
        found = _best_checkpoint_dir(run_dir)
        if found is None:
            raise WorkbenchError(f"run {name!r}: --checkpoint best: status.json names no best checkpoint yet")
    elif choice == "last":
        if not checkpoints:
            raise WorkbenchError(f"run {name!r}: --checkpoint last: no complete checkpoint yet")
        found = checkpoints[-1]
    elif choice.isdigit():
        found = run_dir / CHECKPOINTS_DIR / f"checkpoint-{int(choice)}"
        if found not in checkpoints:
            steps = ", ".join(str(_step_of(p)) for p in checkpoints) or "none"
            raise WorkbenchError(f"run {name!r}: --checkpoint {choice}: no complete checkpoint at that step (have: {steps})")
    else:
        raise WorkbenchError(f"--checkpoint {checkpoint!r}: expected best, last, final or a step number")
    weights = _weights_dir(found)
    if weights is None:
        raise WorkbenchError(f"run {name!r}: {found}: holds no adapter_config.json or model weights")
    step = _step_of(found)
    label = f"{name} · {choice} (step {step})" if choice in ("best", "last") else f"{name} · step {step}"
    return ModelSource(_weights_kind(weights), weights.resolve(), label, run_dir, choice if choice in ("best", "last") else f"step {step}")


def run_choices(run_dir: Path) -> list[ModelSource]:
    """Everything a run offers to chat with: final, best, then each complete checkpoint, newest first."""
    run_dir = Path(run_dir).resolve()
    choices = []
    for named in ("final", "best"):
        try:
            choices.append(run_source(run_dir, named))
        except WorkbenchError:
            pass
    for checkpoint in reversed(complete_checkpoints(run_dir)):
        weights = _weights_dir(checkpoint)
        step = _step_of(checkpoint)
        if weights is not None and step is not None:
            choices.append(
                ModelSource(_weights_kind(weights), weights.resolve(), f"{run_dir.name} · step {step}", run_dir, f"step {step}")
            )
    return choices


def all_run_choices(runs_root: Path) -> list[ModelSource]:
    """Choices of every run under `runs_root`, newest run first."""
    return [choice for run_dir in list_run_dirs(runs_root) for choice in run_choices(run_dir)]


def votes_dir(source: ModelSource) -> Optional[Path]:
    """Where a side's blind votes are logged: its run directory, else the adapter directory itself."""
    if source.run_dir is not None:
        return source.run_dir
    return source.path


def adapter_base_model(source: ModelSource) -> Optional[str]:
    """The base model an adapter says it was trained on (adapter_config.json), if it says."""
    if source.kind != "adapter" or source.path is None:
        return None
    try:
        data = json.loads((source.path / ADAPTER_CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data.get("base_model_name_or_path") or None
