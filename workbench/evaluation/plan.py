"""Building an evaluation plan: which models (base, tuned, checkpoints), which rows, which options.

The CLI, the TUI's Eval view and the demo all build their plans here, so they evaluate the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Sequence

from workbench.errors import WorkbenchError
from workbench.evaluation.knowledge import read_choice_items
from workbench.evaluation.metrics import compile_pattern
from workbench.evaluation.report import eval_dir
from workbench.evaluation.rows import load_eval_file, run_eval_rows
from workbench.evaluation.runner import BATCH_PROMPTS, EvalModel, EvalPlan, default_max_new_tokens
from workbench.inference.prompting import read_run_config
from workbench.inference.settings import SamplingSettings
from workbench.inference.sources import (
    BASE_SOURCE,
    adapter_base_model,
    resolve_run_dir,
    run_source,
    source_from_directory,
)
from workbench.runs.rundir import CONFIG_FILE, complete_checkpoints, read_status

if TYPE_CHECKING:
    from workbench.config.schema import RunConfig
    from workbench.evaluation.rows import EvalSet
    from workbench.inference.sources import ModelSource

CHECKPOINT_SELECTIONS = ("all", "best", "last")


@dataclass(frozen=True)
class EvalTarget:
    """What `workbench eval` was pointed at.

    Attributes:
        base_model: the base model to load (name or path).
        tuned: the adapter or model to compare with the base (None: the base alone).
        run_dir: the training run, when the target is one (results go to <run>/eval/).
        config: the run's config (its data, seed, system prompt and tokenization), when there is one.
    """

    base_model: str
    tuned: Optional["ModelSource"]
    run_dir: Optional[Path]
    config: Optional["RunConfig"]


def resolve_target(target: str, runs_root: Path, base_model: Optional[str] = None) -> EvalTarget:
    """A run (name under the runs directory, or a path), an adapter directory, or a model."""
    path = Path(target).expanduser()
    if (path / CONFIG_FILE).is_file() or (Path(runs_root) / target / CONFIG_FILE).is_file():
        run_dir = resolve_run_dir(target, runs_root)
        config = read_run_config(run_dir)
        if config is None:
            raise WorkbenchError(f"{run_dir / CONFIG_FILE}: cannot be read as a run config")
        return EvalTarget(base_model or config.model.name_or_path, run_source(run_dir), run_dir, config)
    if path.is_dir() and (path / "adapter_config.json").is_file():
        source = source_from_directory(path)
        config = read_run_config(source.run_dir) if source.run_dir else None
        base = base_model or (config.model.name_or_path if config else None) or adapter_base_model(source)
        if not base:
            raise WorkbenchError(f"{path}: adapter_config.json names no base model; pass --model")
        return EvalTarget(base, source, source.run_dir, config)
    return EvalTarget(base_model or target, None, None, None)


def _step_of(source: "ModelSource", final_step: Optional[int]) -> Optional[int]:
    if source.checkpoint == "final":
        return final_step
    for part in (source.path.name if source.path else "", source.path.parent.name if source.path else ""):
        suffix = part.rsplit("-", 1)[-1]
        if part.startswith("checkpoint-") and suffix.isdigit():
            return int(suffix)
    if source.checkpoint and source.checkpoint.startswith("step "):
        return int(source.checkpoint.split()[1])
    return None


def _key_for(source: "ModelSource", step: Optional[int]) -> str:
    if source.checkpoint == "final":
        return "final"
    if step is not None:
        return f"step-{step}"
    return source.checkpoint or "tuned"


def models_for(target: EvalTarget, checkpoints: Optional[str] = None) -> list[EvalModel]:
    """Base first, then the tuned model, then the chosen checkpoints (oldest first), each once."""
    models = [EvalModel("base", BASE_SOURCE, "base model", 0)]
    if target.tuned is None:
        if checkpoints:
            raise WorkbenchError("--checkpoints: only for a run (the target is a plain model)")
        models[0] = EvalModel("base", BASE_SOURCE, target.base_model, None)
        return models
    status = read_status(target.run_dir) if target.run_dir else None
    final_step = status.step if status else None
    tuned_step = _step_of(target.tuned, final_step)
    models.append(EvalModel(_key_for(target.tuned, tuned_step), target.tuned, target.tuned.label, tuned_step))
    if checkpoints:
        if checkpoints not in CHECKPOINT_SELECTIONS:
            raise WorkbenchError(f"--checkpoints {checkpoints!r}: expected {', '.join(CHECKPOINT_SELECTIONS)}")
        if target.run_dir is None:
            raise WorkbenchError("--checkpoints: only for a run (the target is an adapter directory)")
        if checkpoints == "all":
            chosen = [run_source(target.run_dir, str(int(p.name.rsplit("-", 1)[-1]))) for p in complete_checkpoints(target.run_dir)]
        else:
            chosen = [run_source(target.run_dir, checkpoints)]
        seen = {target.tuned.path}
        for source in chosen:
            if source.path in seen:
                continue
            seen.add(source.path)
            step = _step_of(source, final_step)
            models.append(EvalModel(f"step-{step}" if step is not None else source.checkpoint, source, source.label, step))
        models[2:] = sorted(models[2:], key=lambda m: (m.step is None, m.step or 0))
    return models


def build_plan(
    target: EvalTarget,
    tokenizer,
    *,
    data: Optional[str] = None,
    data_format: str = "auto",
    checkpoints: Optional[str] = None,
    metrics: Sequence[str],
    max_new_tokens: Optional[int] = None,
    system_prompt: Optional[str] = None,
    system_prompt_given: bool = False,
    regex: Optional[str] = None,
    knowledge_file: Optional[str | Path] = None,
    limit: Optional[int] = None,
    batch_prompts: int = BATCH_PROMPTS,
) -> EvalPlan:
    """Everything an evaluation needs except the loaded model.

    Args:
        target: from `resolve_target`.
        tokenizer: the base model's tokenizer (for the default answer length).
        data: a data or questions file; None takes the run's evaluation.eval_file questions and its
            validation rows (a run is then required).
        knowledge_file: the multiple-choice set (None: skip the forgetting check).
        system_prompt / system_prompt_given: a given system prompt replaces the run's.
        limit: evaluate only the first N rows.
    """
    config = target.config
    rows: EvalSet
    if data:
        rows = load_eval_file(data, data_format)
    elif target.run_dir is not None and config is not None:
        rows = run_eval_rows(target.run_dir, config)
    else:
        raise WorkbenchError("--data: required when the target is not a training run (a data or questions file)")
    selected = rows.rows[:limit] if limit else rows.rows
    if regex:
        compile_pattern(regex)
    if not system_prompt_given:
        system_prompt = config.data.system_prompt if config is not None else None
    length = max_new_tokens or default_max_new_tokens(tokenizer, selected)
    return EvalPlan(
        models=models_for(target, checkpoints),
        rows=selected,
        description=rows.description + (f", first {len(selected)}" if limit and limit < len(rows.rows) else ""),
        metrics=tuple(metrics),
        settings=SamplingSettings(temperature=0.0, max_new_tokens=length),
        system_prompt=system_prompt,
        regex=regex,
        knowledge=read_choice_items(knowledge_file) if knowledge_file else [],
        knowledge_file=str(knowledge_file) if knowledge_file else None,
        max_seq_length=config.data.max_seq_length if config is not None else 2048,
        assistant_only=config.data.assistant_only_loss if config is not None else True,
        batch_prompts=batch_prompts,
    )


def default_out_dir(target: EvalTarget, runs_root: Path) -> Path:
    """<run>/eval/, or <runs dir>/evals/<model name>/ for a plain model or a stray adapter."""
    if target.run_dir is not None:
        return eval_dir(target.run_dir)
    name = Path(target.tuned.path).name if target.tuned is not None and target.tuned.path else Path(target.base_model).name
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in name) or "model"
    return Path(runs_root) / "evals" / safe
