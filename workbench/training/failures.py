"""How a run that cannot go on ends: a reason a person can act on, and exit codes that tell the states apart.

- A full disk (ENOSPC, however torch or safetensors wrapped it) ends the run as "failed: no space
  left on <mount> ..."; the checkpoint cut short and the trainer's temporary files are removed
  first, which frees the space the final status and end event need, and a resume continues from
  the last complete checkpoint once space is freed.
- A model that needs its own code without trust_remote_code, or whose weights are cut short,
  fails with one line instead of the library's traceback.

Exit codes of `workbench train`: 0 completed, 1 failed (diverged, out of memory, no space, …),
2 bad input (the one-line error), 3 stopped on request (SIGTERM / Ctrl-C, resumable), 130 a
second Ctrl-C.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import Callable, Iterator, Optional

from workbench.io_checks import is_no_space
from workbench.known_errors import remote_code_line, truncated_weights_line
from workbench.runs.run_lock import claim_run_dir, release_run_dir, remove_leftover_temp_files
from workbench.training.callbacks import remove_incomplete_checkpoints
from workbench.training.ranks import distributed_rank
from workbench.units import format_bytes

EXIT_COMPLETED = 0
EXIT_FAILED = 1
EXIT_STOPPED = 3
"""A stopped run is not a success (a script must not take its adapter as finished) nor a failure."""


def exit_code_for(state: str) -> int:
    """The process exit code for a run's final state."""
    return {"completed": EXIT_COMPLETED, "stopped": EXIT_STOPPED}.get(state, EXIT_FAILED)


def mount_point(path: Path) -> Path:
    """The top folder of the file system `path` lives on (what `df` would name)."""
    path = Path(path).resolve()
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        device = path.stat().st_dev
        while path != path.parent and path.parent.stat().st_dev == device:
            path = path.parent
    except OSError:
        pass
    return path


def free_bytes(path: Path) -> Optional[int]:
    try:
        info = os.statvfs(path)
    except OSError:
        return None
    return info.f_bavail * info.f_frsize


def free_space_after_failure(run_dir: Path) -> None:
    """Remove what the failed write left half done (checkpoints without COMPLETE, temporary files)."""
    with contextlib.suppress(OSError):
        remove_incomplete_checkpoints(run_dir)
        remove_leftover_temp_files(run_dir)


def no_space_reason(run_dir: Path, step: int) -> str:
    """The one-line reason of a run stopped by a full disk (its space is freed first)."""
    free_space_after_failure(run_dir)
    mount = mount_point(run_dir)
    free = free_bytes(run_dir)
    left = f" ({format_bytes(free)} free after removing the cut-short checkpoint)" if free is not None else ""
    return (
        f"no space left on {mount}{left} at step {step}; free some space, then resume with "
        f"`workbench train --resume {run_dir}` (it continues from the last complete checkpoint)"
    )


def describe_failure(error: BaseException, run_dir: Path, step: int) -> Optional[str]:
    """A one-line reason for a failure the user can act on, or None for an unexpected error."""
    if is_no_space(error):
        return no_space_reason(run_dir, step)
    return remote_code_line(error) or truncated_weights_line(error)


@contextlib.contextmanager
def recorded_despite_full_disk(run_dir: Path, reason: Optional[str], report: Callable[[str], None]) -> Iterator[None]:
    """Write the run's final status inside this block; when even that finds no space, say so on
    stderr instead of a traceback (the status then still reads as a dead run, never as running)."""
    try:
        yield
    except Exception as error:
        if not is_no_space(error):
            raise
        free_space_after_failure(run_dir)
        print(f"error: could not record the end of the run in {run_dir}: no space left on {mount_point(run_dir)}"
              + (f" ({reason})" if reason else ""), file=sys.stderr)


@contextlib.contextmanager
def trainer_lock(run_dir: Path) -> Iterator[None]:
    """The run directory's lock for a trainer (rank 0 of several) until it returns (also when
    `workbench train` took it earlier, before writing config.yaml), and its leftovers cleared."""
    if distributed_rank()[0] != 0:
        yield
        return
    claim_run_dir(run_dir, "a trainer")
    try:
        remove_leftover_temp_files(run_dir)
        yield
    finally:
        release_run_dir(run_dir)
