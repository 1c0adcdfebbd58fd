"""Recipes: the cleaning steps written next to an export, to replay on the next version of the data.

A recipe is YAML:

    workbench_recipe: 1
    source: data/raw.jsonl          # what it was made from (informational)
    source_sha256: ...
    format: alpaca                  # row format of the source ("auto" detects again)
    model: SmolLM2-135M-Instruct    # tokenizer used for token limits
    max_seq_length: 2048
    near_threshold: 0.8
    output_format: messages
    validation_output: clean.validation.jsonl
    operations:
      - {op: drop_empty}
      - {op: dedupe, mode: near}
      - {op: split_validation, fraction: 0.1, seed: 0}

Replay it with `workbench data clean NEW.jsonl -o OUT --recipe clean.recipe.yaml`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from workbench.config.yaml_limits import safe_load_bounded
from workbench.data.cleaning import OPERATIONS, CleaningSession, Operation
from workbench.data.export import atomic_write_lines, write_jsonl
from workbench.errors import WorkbenchError
from workbench.known_errors import first_line
from workbench.io_checks import MAX_CONFIG_BYTES, read_input_text

RECIPE_VERSION = 1


@dataclass
class Recipe:
    """Settings and steps of a cleaning run."""

    operations: list[Operation]
    format: str = "auto"
    model: str = "default"
    max_seq_length: int | None = None
    near_threshold: float | None = None
    output_format: str = "messages"
    source: str | None = None
    source_sha256: str | None = None


@dataclass(frozen=True)
class ExportResult:
    """The files an export wrote and how many rows each holds."""

    train_path: Path
    train_rows: int
    validation_path: Path | None
    validation_rows: int
    recipe_path: Path


def recipe_path_for(output: Path) -> Path:
    """`clean.jsonl` -> `clean.recipe.yaml`."""
    return output.with_name(f"{output.stem}.recipe.yaml")


def validation_path_for(output: Path) -> Path:
    """`clean.jsonl` -> `clean.validation.jsonl`."""
    return output.with_name(f"{output.stem}.validation{output.suffix or '.jsonl'}")


def file_sha256(path: Path) -> str:
    """The sha256 of a file's bytes, read in 1 MiB blocks (recipes, results.json, a run's data fingerprint)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def export_session(session: CleaningSession, output: str | Path, output_format: str = "messages") -> ExportResult:
    """Write the cleaned rows (and the validation split, when there is one) as JSONL, then the recipe.

    Refuses to write over the source file: the source's bytes never change.
    """
    output = Path(output).expanduser()
    validation_output = validation_path_for(output) if session.state.validation is not None else None
    recipe_output = recipe_path_for(output)
    if session.source_path is not None:
        source = session.source_path.resolve()
        for target in (output, validation_output, recipe_output):
            if target is not None and target.resolve() == source:
                raise WorkbenchError(f"{target}: is the source file; choose another output (the source is never written)")
    train, validation = session.split()
    write_jsonl(output, train, output_format)
    if validation_output is not None:
        write_jsonl(validation_output, validation, output_format)
    write_recipe(recipe_output, session, output_format, validation_output)
    return ExportResult(output, len(train), validation_output, len(validation), recipe_output)


def write_recipe(path: Path, session: CleaningSession, output_format: str, validation_output: Path | None) -> None:
    import yaml

    document = {
        "workbench_recipe": RECIPE_VERSION,
        "source": str(session.source_path) if session.source_path else None,
        # A save_to_disk directory or a cached dataset has no one file to hash.
        "source_sha256": file_sha256(session.source_path) if session.source_path and session.source_path.is_file() else None,
        "format": session.source_format,
        "model": session.model_name,
        "max_seq_length": session.max_seq_length,
        "near_threshold": session.near_threshold,
        "output_format": output_format,
        "validation_output": validation_output.name if validation_output else None,
        "operations": [operation.to_recipe() for operation in session.operations],
    }
    text = yaml.safe_dump(document, sort_keys=False, allow_unicode=True, default_flow_style=None)
    atomic_write_lines(path, text.rstrip("\n").split("\n"))


def read_recipe(path: str | Path) -> Recipe:
    """Load and check a recipe file (one-line errors naming the recipe and the step)."""
    import yaml

    path = Path(path).expanduser()
    try:
        document = safe_load_bounded(read_input_text(path, label=f"--recipe {path}", max_bytes=MAX_CONFIG_BYTES), str(path))
    except yaml.YAMLError as error:
        first = first_line(error)
        raise WorkbenchError(f"{path}: not a readable YAML recipe: {first}") from None
    if not isinstance(document, dict) or document.get("workbench_recipe") != RECIPE_VERSION:
        raise WorkbenchError(f"{path}: not a workbench recipe (missing 'workbench_recipe: {RECIPE_VERSION}')")
    steps = document.get("operations") or []
    if not isinstance(steps, list):
        raise WorkbenchError(f"{path}: operations: expected a list of steps")
    operations = []
    for position, step in enumerate(steps):
        if not isinstance(step, dict) or step.get("op") not in OPERATIONS:
            name = step.get("op") if isinstance(step, dict) else step
            raise WorkbenchError(
                f"{path}: operations[{position}]: unknown step {name!r}; expected one of {', '.join(OPERATIONS)}"
            )
        options = {key: value for key, value in step.items() if key != "op"}
        operations.append(Operation(step["op"], options))
    return Recipe(
        operations=operations,
        format=document.get("format") or "auto",
        model=document.get("model") or "default",
        max_seq_length=document.get("max_seq_length", document.get("max_seq_len")),  # recipes written before the rename
        near_threshold=document.get("near_threshold"),
        output_format=document.get("output_format") or "messages",
        source=document.get("source"),
        source_sha256=document.get("source_sha256"),
    )
