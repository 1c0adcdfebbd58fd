"""Export a run's weights: the adapter alone (PEFT layout), or a merged model that plain
`AutoModelForCausalLM.from_pretrained(DIR)` loads (safetensors + tokenizer + chat template)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Callable, Optional

from workbench.errors import WorkbenchError
from workbench.training.rundir import (
    CHECKPOINT_COMPLETE_MARKER,
    CHECKPOINTS_DIR,
    CONFIG_FILE,
    FINAL_ADAPTER_DIR,
    complete_checkpoints,
    read_status,
)

ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja", "tokenizer.model")

Report = Callable[[str], None]


def choose_weights(run_dir: Path, checkpoint: Optional[str] = None) -> Path:
    """The folder to export.

    Args:
        checkpoint: None for the final adapter/ (else the best, else the last complete checkpoint);
            "best", "last", or a step number.
    """
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
    return (folder / "adapter_config.json").is_file()


def _base_model_path(run_dir: Path) -> Path:
    from workbench.config.io import load_config
    from workbench.models import resolve_model

    config = load_config(run_dir / CONFIG_FILE)
    return resolve_model(config.model.name_or_path).path


def _stored_dtype(model_dir: Path):
    """The dtype the base model's config says its weights are stored in (fp32 when it does not say)."""
    import torch

    try:
        config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return torch.float32
    name = config.get("dtype") or config.get("torch_dtype") or "float32"
    return getattr(torch, str(name), torch.float32)


def export_run(
    run_dir: Path | str,
    output_dir: Path | str,
    *,
    checkpoint: Optional[str] = None,
    merge: bool = False,
    report: Report = print,
) -> Path:
    """Write the run's adapter (or, with `merge`, base + adapter merged) into `output_dir`.

    The export is assembled in a temporary sibling folder and renamed at the end, so `output_dir`
    never holds half an export. An existing non-empty `output_dir` is refused.
    """
    run_dir, output_dir = Path(run_dir), Path(output_dir)
    source = choose_weights(run_dir, checkpoint)
    if output_dir.exists() and (not output_dir.is_dir() or any(output_dir.iterdir())):
        raise WorkbenchError(f"-o {output_dir}: already exists and is not empty; choose a new directory")
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = output_dir.parent / f".{output_dir.name}.partial-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        if is_adapter(source) and merge:
            _write_merged(run_dir, source, staging, report)
        elif is_adapter(source):
            for name in ADAPTER_FILES + TOKENIZER_FILES:
                if (source / name).is_file():
                    shutil.copy2(source / name, staging / name)
            report(f"adapter from {source.relative_to(run_dir)} (load it on the base model with peft)")
        else:
            # full fine-tuning: the checkpoint already is a complete model
            _write_full_model(source, staging)
            report(f"full model from {source.relative_to(run_dir)}")
        if output_dir.exists():
            output_dir.rmdir()
        os.replace(staging, output_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return output_dir


def _write_merged(run_dir: Path, adapter_dir: Path, target: Path, report: Report) -> None:
    import torch
    from peft import PeftModel

    from workbench.models import load_model, load_tokenizer
    from workbench.training.model_setup import quiet_transformers

    quiet_transformers()
    base_path = _base_model_path(run_dir)
    report(f"merging {adapter_dir.relative_to(run_dir)} into {base_path.name}")
    # Merge in fp32 for exactness, then store in the base model's own dtype.
    base = load_model(base_path, dtype="fp32", device="cpu")
    merged = PeftModel.from_pretrained(base, adapter_dir).merge_and_unload()
    merged = merged.to(_stored_dtype(base_path))
    with torch.no_grad():
        merged.save_pretrained(target, safe_serialization=True)
    if (adapter_dir / "tokenizer_config.json").is_file():
        # the tokenizer the run trained with (chat template included), saved beside its adapter
        for name in TOKENIZER_FILES:
            if (adapter_dir / name).is_file():
                shutil.copy2(adapter_dir / name, target / name)
    else:
        load_tokenizer(base_path).save_pretrained(target)


def _write_full_model(source: Path, target: Path) -> None:
    from workbench.training.callbacks import is_resume_only_file

    for path in source.iterdir():
        if path.is_file() and not is_resume_only_file(path.name):
            shutil.copy2(path, target / path.name)
