"""Tiny data and configs for the training tests (used with the `tiny_model_dir` fixture)."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

WORDS = "amber birch cobalt dune ember fjord grove harbor indigo juniper kestrel lagoon".split()


def write_alpaca(path: Path, rows: list[tuple[str, str]]) -> Path:
    path.write_text(json.dumps([{"instruction": q, "input": "", "output": a} for q, a in rows]), encoding="utf-8")
    return path


def varied_rows(count: int, seed: int = 0) -> list[tuple[str, str]]:
    """Questions and answers of varied length (2 to 14 words), so packing has something to pack."""
    rng = random.Random(seed)
    rows = []
    for index in range(count):
        answer = " ".join(rng.choices(WORDS, k=rng.randint(2, 14)))
        rows.append((f"Item {index}: repeat {answer.split()[0]}", answer))
    return rows


def run_config(model_dir: Path, train_file: Path, **sections: Any):
    """A RunConfig for the tiny model: fp32, short sequences, tiny LoRA; `sections` override per section."""
    from workbench.config.schema import RunConfig

    data: dict[str, Any] = {
        "name": "tiny",
        "model": {"name_or_path": str(model_dir), "precision": "fp32"},
        "data": {"train_file": str(train_file), "max_seq_length": 64, "validation_split": 0.2, "system_prompt": ""},
        "method": {"type": "lora", "r": 4, "lora_alpha": 8},
        "optimization": {"learning_rate": 0.01, "max_steps": 6, "per_device_train_batch_size": 2, "warmup_ratio": 0.0},
        "evaluation": {"eval_steps": 2, "save_steps": 2, "per_device_eval_batch_size": 4, "sample_max_new_tokens": 4},
    }
    for section, values in sections.items():
        if isinstance(values, dict):
            data.setdefault(section, {}).update(values)
        else:
            data[section] = values
    return RunConfig.model_validate(data)


def read_events(run_dir: Path) -> list[dict[str, Any]]:
    from workbench.runs.rundir import read_events as read

    return read(run_dir)
