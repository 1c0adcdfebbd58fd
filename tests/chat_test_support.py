"""Helpers for the chat / compare tests: tiny LoRA adapters and fake training runs on the tiny model."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Optional, Sequence


def make_tiny_adapter(
    model_dir: Path,
    out_dir: Path,
    *,
    seed: int = 1,
    r: int = 4,
    use_dora: bool = False,
    modules_to_save: Sequence[str] = (),
    bias: str = "none",
) -> Path:
    """A LoRA adapter on every linear layer with random (non-zero) B, so it really changes the answers;
    `modules_to_save` adds fully trained copies of those modules and `bias="all"` trains the base
    layers' own biases, each perturbed as well."""
    import torch
    from peft import LoraConfig, get_peft_model

    from workbench.models import load_model, load_tokenizer

    torch.manual_seed(seed)
    model = load_model(model_dir)
    config = LoraConfig(
        r=r, lora_alpha=4 * r, target_modules="all-linear", init_lora_weights=False, task_type="CAUSAL_LM",
        use_dora=use_dora, modules_to_save=list(modules_to_save) or None, bias=bias,
    )
    peft_model = get_peft_model(model, config)
    with torch.no_grad():
        for name, parameter in peft_model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0, 0.5)
            elif "modules_to_save" in name or (bias != "none" and name.endswith(".bias")):
                parameter.add_(torch.randn_like(parameter))
    peft_model.save_pretrained(out_dir)
    load_tokenizer(model_dir).save_pretrained(out_dir)
    return Path(out_dir)


def make_run_dir(
    root: Path,
    name: str,
    model_dir: Path,
    adapter_dir: Path,
    *,
    steps: Sequence[int] = (2, 4),
    best_step: Optional[int] = 4,
    final: bool = True,
    system_prompt: Optional[str] = None,
) -> Path:
    """A run directory as the trainer leaves it: config.yaml, status.json, checkpoints/, adapter/."""
    from workbench.config.io import save_config
    from workbench.config.schema import RunConfig
    from workbench.runs.rundir import RunStatus, write_status

    run_dir = Path(root) / name
    run_dir.mkdir(parents=True)
    config = RunConfig(name=name)
    config.model.name_or_path = str(model_dir)
    config.data.system_prompt = system_prompt
    save_config(config, run_dir / "config.yaml")
    for step in steps:
        checkpoint = run_dir / "checkpoints" / f"checkpoint-{step}"
        shutil.copytree(adapter_dir, checkpoint)
        (checkpoint / "COMPLETE").write_text("")
    if final:
        shutil.copytree(adapter_dir, run_dir / "adapter")
    best = f"checkpoints/checkpoint-{best_step}" if best_step is not None else None
    write_status(run_dir, RunStatus(name=name, state="completed", step=max(steps, default=0), best_checkpoint=best))
    return run_dir
