"""The sha256 of every local data file a run trains on, stored when it starts and compared on resume.

A resumed run continues the same order of samples only if the data is the same; a file edited in
between (rows cleaned, appended, reordered) silently trains the remaining steps on other rows. The
run directory keeps `data_sha256.json` from its first start; a resume that finds a file changed
or gone says so in one line per file (a warning: continuing can still be what the user wants).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from workbench.data.recipe import file_sha256
from workbench.runs.rundir import write_json_atomic
from workbench.training.ranks import CHECKED_BY_LAUNCHER, distributed_rank

if TYPE_CHECKING:
    from workbench.config.schema import RunConfig

DATA_FINGERPRINT_FILE = "data_sha256.json"


def _local_data_files(config: "RunConfig") -> dict[str, Path]:
    """Field -> local file of every data path in the config (directories and cached ids left out)."""
    data = config.data
    named: dict[str, str | None] = {"data.train_file": data.train_file, "data.validation_file": data.validation_file}
    for index, source in enumerate(data.sources):
        named[f"data.sources[{index}].path"] = source.path
        named[f"data.sources[{index}].validation_file"] = source.validation_file
    files = {}
    for field, value in named.items():
        if not value:
            continue
        path = Path(str(value).split("#", 1)[0]).expanduser()
        if path.is_file():
            files[field] = path
    return files


def data_fingerprints(config: "RunConfig") -> dict[str, dict[str, str]]:
    """Field -> {path, sha256} for each local data file."""
    return {field: {"path": str(path), "sha256": file_sha256(path)} for field, path in _local_data_files(config).items()}


def check_data_unchanged(run_dir: Path, config: "RunConfig", resume: bool, report: Callable[[str], None]) -> None:
    """Store the data's sha256 on a run's first start; on a resume, report each file that changed."""
    path = Path(run_dir) / DATA_FINGERPRINT_FILE
    try:
        stored = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
    except (OSError, ValueError):
        stored = None
    try:
        current = data_fingerprints(config)
    except OSError:
        return  # unreadable data fails the run where it is read, with its own message
    if not resume or not isinstance(stored, dict):
        if not isinstance(stored, dict):
            write_json_atomic(path, current)
        return
    for field, before in stored.items():
        if not isinstance(before, dict):
            continue
        now = current.get(field)
        if now is None:
            report(f"warning: {field}: {before.get('path')} is gone or moved since the run started; "
                   "the resumed steps train on what the config names now")
        elif now.get("sha256") != before.get("sha256"):
            report(f"warning: {field}: {now['path']} changed since the run started (sha256 {str(before.get('sha256'))[:12]}… → "
                   f"{now['sha256'][:12]}…); the resumed steps train on the new rows, in another order")


def should_check_here() -> bool:
    """Only one process per run compares: rank 0 of ranks the workbench did not start itself."""
    return distributed_rank()[0] == 0 and CHECKED_BY_LAUNCHER not in os.environ
