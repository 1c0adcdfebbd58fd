"""Directories that appear whole or not at all: built in a hidden sibling, renamed into place at the end.

A staging directory is named `.<target>.partial-<pid>`, so the process that owns it is known. A
process killed mid-write leaves its staging directory behind; the next writer into the same parent
removes every staging directory whose owner is gone (`remove_stale_staging`). "Gone" means the pid
is dead, or the pid now belongs to a process that started after the directory was made (pids are
reused), so a live writer's directory is never touched.

Used by the exports (`workbench export`) and by the default model's one-time conversion.
"""

from __future__ import annotations

import os
import re
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from workbench.errors import WorkbenchError
from workbench.runs.rundir import pid_is_alive

STAGING_PATTERN = re.compile(r"^\.(?P<name>.+)\.(?:partial|previous)-(?P<pid>\d+)$")
"""`.<name>.partial-<pid>` (being built) and `.<name>.previous-<pid>` (an old target being replaced)."""

PID_START_SLACK_S = 2.0
"""A process counts as a directory's owner only if it started before the directory was made; the
slack absorbs the coarse clocks of process start times (jiffies) and directory times."""


def staging_path(target: Path, kind: str = "partial") -> Path:
    """The hidden sibling of `target` this process builds it in (`kind`: partial or previous)."""
    target = Path(target)
    return target.parent / f".{target.name}.{kind}-{os.getpid()}"


def _owner_alive(pid: int, made_at: float) -> bool:
    if pid == os.getpid():
        return True
    if not pid_is_alive(pid):
        return False
    try:
        import psutil

        return psutil.Process(pid).create_time() <= made_at + PID_START_SLACK_S
    except Exception:  # psutil cannot see it (another user's process): assume it is the owner
        return True


def remove_stale_staging(parent: Path) -> list[Path]:
    """Remove the staging directories in `parent` whose owning process is gone; returns what went."""
    parent = Path(parent)
    removed = []
    try:
        entries = list(parent.iterdir())
    except OSError:
        return removed
    for entry in entries:
        match = STAGING_PATTERN.match(entry.name)
        if match is None or not entry.is_dir():
            continue
        try:
            made_at = entry.stat().st_mtime
        except OSError:
            continue
        if not _owner_alive(int(match["pid"]), made_at):
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed


def check_target(target: Path, force: bool) -> None:
    """Refuse a target that exists and is not an empty directory, unless `force`."""
    target = Path(target)
    if not target.exists():
        return
    if not target.is_dir():
        raise WorkbenchError(f"-o {target}: exists and is a file; choose a directory")
    if any(target.iterdir()) and not force:
        raise WorkbenchError(f"-o {target}: already exists and is not empty; choose a new directory or pass --force")


@contextmanager
def staged_directory(target: Path, *, force: bool = False) -> Iterator[Path]:
    """Yield an empty hidden directory to build `target` in; on success it replaces `target` at once.

    On an exception (or a kill) `target` is left as it was. With `force`, an existing `target` is
    moved aside first and deleted only after the new one is in place.
    """
    target = Path(target)
    check_target(target, force)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_staging(target.parent)
    staging = staging_path(target)
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        yield staging
        previous = None
        if target.exists():
            previous = staging_path(target, "previous")
            shutil.rmtree(previous, ignore_errors=True)
            os.replace(target, previous)  # a directory cannot be renamed over a non-empty one
        os.replace(staging, target)
        if previous is not None:
            shutil.rmtree(previous, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
