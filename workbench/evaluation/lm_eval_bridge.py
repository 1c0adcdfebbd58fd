"""Optional: EleutherAI's lm-evaluation-harness on the base and the tuned model, side by side.

Only where the user has installed `lm-eval` and its task data is already in the local Hugging Face
cache: the harness runs with HF_DATASETS_OFFLINE / HF_HUB_OFFLINE set, so nothing is fetched.
Each model is loaded by the harness itself (`HFLM` with `peft=` for an adapter), one after the other.
"""

from __future__ import annotations

import importlib.util
import os
from typing import TYPE_CHECKING, Any, Optional, Sequence

from workbench.errors import WorkbenchError
from workbench.known_errors import first_line

if TYPE_CHECKING:
    from workbench.evaluation.runner import EvalModel

NOT_INSTALLED = (
    "--lm-eval: lm-eval is not installed; install it into this environment (pip install lm-eval==0.4.13) "
    "and cache its task data to use it; skipped"
)


def lm_eval_available() -> bool:
    return importlib.util.find_spec("lm_eval") is not None


def parse_tasks(text: str) -> list[str]:
    tasks = [part.strip() for part in text.split(",") if part.strip()]
    if not tasks:
        raise WorkbenchError("--lm-eval: name one or more tasks, comma-separated (e.g. arc_easy,hellaswag)")
    return tasks


def run_lm_eval(
    tasks: Sequence[str],
    models: Sequence["EvalModel"],
    base_model_path: str,
    dtype: str,
    device: str = "cpu",
    limit: Optional[int] = None,
) -> dict[str, dict[str, dict[str, float]]]:
    """model key -> task -> metric -> value, from `lm_eval.simple_evaluate` on every model."""
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import lm_eval
    from lm_eval.models.huggingface import HFLM

    torch_dtype = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}.get(dtype, "auto")
    results: dict[str, dict[str, dict[str, float]]] = {}
    for model in models:
        options: dict[str, Any] = {"pretrained": base_model_path, "dtype": torch_dtype, "device": device}
        if model.source.kind == "adapter":
            options["peft"] = str(model.source.path)
        elif model.source.kind == "model":
            options["pretrained"] = str(model.source.path)
        try:
            output = lm_eval.simple_evaluate(model=HFLM(**options), tasks=list(tasks), limit=limit)
        except Exception as error:  # missing task data offline, unknown task names
            reason = first_line(error)
            raise WorkbenchError(f"--lm-eval: {model.label}: {reason[:300]} (is the task data in the local cache?)") from None
        results[model.key] = {
            task: {name.split(",")[0]: float(value) for name, value in metrics.items() if isinstance(value, (int, float))}
            for task, metrics in (output or {}).get("results", {}).items()
        }
    return results


def lm_eval_lines(results: dict[str, dict[str, dict[str, float]]], labels: dict[str, str]) -> list[str]:
    """The side-by-side table: one line per task and metric (stderr columns left out)."""
    keys = list(results)
    lines = ["lm-eval".ljust(30) + "".join(labels.get(k, k)[:18].ljust(20) for k in keys)]
    tasks = sorted({task for per_model in results.values() for task in per_model})
    for task in tasks:
        metrics = sorted({m for k in keys for m in results[k].get(task, {}) if not m.endswith("_stderr")})
        for metric in metrics:
            cells = [results[k].get(task, {}).get(metric) for k in keys]
            lines.append(f"{task} {metric}"[:29].ljust(30) + "".join((f"{c:.3f}" if c is not None else "–").ljust(20) for c in cells))
    return lines
