"""results.json at the run root: what a run achieved, in one small file a script or a model card reads.

Written by the trainer when a run ends (`workbench.training.run`) and rebuilt by `workbench export`
when it is missing; everything in it is folded from the run directory (events.jsonl, status.json,
config.yaml) by `RunView`, so rebuilding it gives the same answer.

    format_version, run, state, reason, steps, max_steps, epoch, duration_s
    train_loss   {final, final_smoothed, at_best_step}        (smoothed = the monitor's EMA)
    eval_loss    {final, final_step, best, best_step}
    best_checkpoint, final_weights
    tokens_seen, memory {measured_peak_bytes, estimated_peak_bytes}
    setup        the start event's figures (device, precision, method, parameter and sample counts)
    data         [{role, path, rows, sha256}] for the train and validation files
    samples      {first: {step, samples}, last: {step, samples}}: the prompt deck's answers
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from workbench.config.io import load_config
from workbench.data.loading import read_records
from workbench.data.recipe import file_sha256
from workbench.runs.monitor import RunView
from workbench.runs.rundir import CONFIG_FILE, FINAL_ADAPTER_DIR, read_status, write_json_atomic

RESULTS_FILE = "results.json"
RESULTS_FORMAT_VERSION = 1
SETUP_FIELDS = (
    "device", "precision", "method", "world_size", "trainable_params", "total_params",
    "num_train_samples", "num_eval_samples", "num_train_rows", "packing", "train_tokens_per_epoch",
)


def data_files(config) -> list[dict[str, Any]]:
    """The run's data files with their row counts and sha256 (rows None when the file is gone)."""
    found = []
    for role, name in (("train", config.data.train_file), ("validation", config.data.validation_file)):
        if not name:
            continue
        path = Path(name)
        entry: dict[str, Any] = {"role": role, "path": str(path), "rows": None, "sha256": None}
        if path.is_file():
            entry["sha256"] = file_sha256(path)
            try:
                entry["rows"] = len(read_records(path))
            except Exception:  # unreadable now; the hash still says which file it was
                pass
        found.append(entry)
    return found


def _value_at(steps: list[float], values: list[float], step: float) -> Optional[float]:
    """The value logged at `step`, else the last one before it."""
    best = None
    for at, value in zip(steps, values):
        if at > step:
            break
        best = value
    return best


def build_results(run_dir: Path) -> dict[str, Any]:
    """results.json's content, folded from the run directory."""
    run_dir = Path(run_dir)
    view = RunView.load(run_dir)
    status = read_status(run_dir)
    config = load_config(run_dir / CONFIG_FILE)
    best = view.best_eval
    smoothed = view.train_loss_smoothed
    start_time = view.start.get("time") if view.start else None
    end_time = view.end.get("time") if view.end else None
    history = view.samples_history
    return {
        "format_version": RESULTS_FORMAT_VERSION,
        "run": config.name,
        "state": status.state if status else None,
        "reason": status.reason if status else None,
        "steps": view.step,
        "max_steps": view.max_steps,
        "epoch": view.epoch,
        "duration_s": (end_time - start_time) if start_time and end_time else None,
        "train_loss": {
            "final": view.train_loss.last(),
            "final_smoothed": smoothed.last(),
            "at_best_step": _value_at(smoothed.steps, smoothed.values, best[0]) if best else None,
        },
        "eval_loss": {
            "final": view.eval_loss.last(),
            "final_step": view.eval_loss.steps[-1] if view.eval_loss else None,
            "best": best[1] if best else None,
            "best_step": best[0] if best else None,
        },
        "best_checkpoint": status.best_checkpoint if status else None,
        "final_weights": FINAL_ADAPTER_DIR if (run_dir / FINAL_ADAPTER_DIR).is_dir() else None,
        "tokens_seen": view.latest_train.get("tokens_seen") if view.latest_train else None,
        "memory": {
            "measured_peak_bytes": (status.measured_peak_bytes if status else None)
            or (view.end or {}).get("measured_peak_bytes"),
            "estimated_peak_bytes": status.estimated_peak_bytes if status else None,
        },
        "setup": {key: view.start.get(key) for key in SETUP_FIELDS if key in view.start} if view.start else {},
        "data": data_files(config),
        "samples": {
            "first": {"step": history[0].get("step"), "samples": history[0]["samples"]} if history else None,
            "last": {"step": history[-1].get("step"), "samples": history[-1]["samples"]} if len(history) > 1 else None,
        },
    }


def write_results(run_dir: Path) -> Path:
    """(Re)write results.json at the run root; returns its path."""
    path = Path(run_dir) / RESULTS_FILE
    write_json_atomic(path, build_results(run_dir))
    return path


def read_results(run_dir: Path) -> Optional[dict[str, Any]]:
    import json

    try:
        return json.loads((Path(run_dir) / RESULTS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
