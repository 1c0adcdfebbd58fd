"""One run directory, one writer: an exclusive lock held by the trainer (or an export) for its life.

The lock is `fcntl.flock` on `<run>/.workbench.lock`, taken before anything else is written into
the directory and released by the kernel when the holder exits, however it exits (a kill -9
leaves no stale lock to clean up). The file records the holder's pid and what it is doing, so a
second trainer, resume or export gets one line naming them.

A run with several ranks is one writer: the process that started the ranks (`workbench train`
with devices.num_processes > 1) holds the lock, and rank 0 finds its holder among its own
ancestors; under a bare `torchrun` or `accelerate launch`, rank 0 takes it.

Also here: `remove_leftover_temp_files`, for the temporary files a killed or full-disk trainer
left behind (only the lock holder may remove them: nobody else writes those names).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from workbench.errors import WorkbenchError
from workbench.runs.rundir import ACTIVE_STATES, read_status
from workbench.staging import remove_stale_staging

LOCK_FILE = ".workbench.lock"


@dataclass
class _Held:
    fd: int | None  # None: held by an ancestor (the launcher of this rank)
    purpose: str


_HELD: dict[str, _Held] = {}


def _key(run_dir: Path) -> str:
    return str(Path(run_dir).resolve())


def _ancestors() -> set[int]:
    """The pids of this process's parent, grandparent, … (from /proc)."""
    found: set[int] = set()
    pid = os.getppid()
    while pid > 1 and pid not in found:
        found.add(pid)
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
                pid = int(handle.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return found


def lock_holder(run_dir: Path) -> dict | None:
    """What the lock file says about its holder (pid, purpose, since), or None."""
    try:
        data = json.loads((Path(run_dir) / LOCK_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _busy_message(run_dir: Path, wanted: str) -> str:
    holder = lock_holder(run_dir) or {}
    pid = holder.get("pid", "unknown")
    purpose = holder.get("purpose", "another process")
    since = holder.get("since")
    when = f", since {time.strftime('%H:%M:%S', time.localtime(since))}" if isinstance(since, (int, float)) else ""
    advice = "wait for it to finish" if "export" in purpose else f"wait for it to end, or stop it with `workbench runs --stop {run_dir}`"
    return f"{run_dir}: {purpose} (pid {pid}{when}) is using this run directory; {advice}"


FINISHING_GRACE_S = 20.0
"""How long to wait for a holder whose run already reads as ended: after writing its final status it
still writes results.json and the model card, then exits (a resume right after a stop meets it)."""


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _lock_within_grace(fd: int, run_dir: Path) -> bool:
    """Take the lock now, or within FINISHING_GRACE_S when the holder's run has already ended."""
    if _try_lock(fd):
        return True
    deadline = time.monotonic() + FINISHING_GRACE_S
    while time.monotonic() < deadline:
        status = read_status(run_dir)
        holder = lock_holder(run_dir) or {}
        if status is None or status.state in ACTIVE_STATES or "export" in str(holder.get("purpose", "")):
            return False
        time.sleep(0.1)
        if _try_lock(fd):
            return True
    return False


def claim_run_dir(run_dir: Path, purpose: str = "a trainer") -> None:
    """Take the run directory's lock for this process (until `release_run_dir` or exit).

    A no-op when this process (or, for a rank, its launcher) already holds it.

    Raises:
        WorkbenchError: another process holds it; the message names its pid and what it does.
    """
    run_dir = Path(run_dir)
    key = _key(run_dir)
    if key in _HELD:
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(run_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    if not _lock_within_grace(fd, run_dir):
        os.close(fd)
        holder = lock_holder(run_dir) or {}
        if isinstance(holder.get("pid"), int) and holder["pid"] in _ancestors():
            _HELD[key] = _Held(None, purpose)  # the launcher that started this rank holds it
            return
        raise WorkbenchError(_busy_message(run_dir, purpose)) from None
    record = json.dumps({"pid": os.getpid(), "purpose": purpose, "since": time.time()}) + "\n"
    try:
        os.ftruncate(fd, 0)
        os.write(fd, record.encode("utf-8"))
    except OSError:
        pass  # a full disk: the lock itself holds; only the holder's description is missing
    _HELD[key] = _Held(fd, purpose)


def release_run_dir(run_dir: Path) -> None:
    """Give the lock back (nothing happens when this process does not hold it)."""
    held = _HELD.pop(_key(run_dir), None)
    if held is not None and held.fd is not None:
        with contextlib.suppress(OSError):
            fcntl.flock(held.fd, fcntl.LOCK_UN)
        os.close(held.fd)


def holds_run_dir(run_dir: Path) -> bool:
    return _key(run_dir) in _HELD


@contextlib.contextmanager
def run_dir_lock(run_dir: Path, purpose: str) -> Iterator[None]:
    """Hold the lock while the block runs (kept when this process held it already)."""
    newly = not holds_run_dir(run_dir)
    claim_run_dir(run_dir, purpose)
    try:
        yield
    finally:
        if newly:
            release_run_dir(run_dir)


def ensure_run_dir_free(run_dir: Path, wanted: str) -> None:
    """Refuse at once when another process holds the lock (taken and given back here; the process
    that will do the work takes it for itself)."""
    run_dir = Path(run_dir)
    if holds_run_dir(run_dir) or not run_dir.is_dir():
        return
    try:
        fd = os.open(run_dir / LOCK_FILE, os.O_RDONLY)
    except OSError:
        return
    try:
        if not _lock_within_grace(fd, run_dir):
            raise WorkbenchError(_busy_message(run_dir, wanted))
    finally:
        os.close(fd)


_ROOT_TEMPORARIES = re.compile(r"^\.(status\.json|config\.yaml|training_args\.json|results\.json|README\.md)\..+$")
_CHECKPOINT_TEMPORARIES = re.compile(r"^\.(COMPLETE|workbench_state\.json)\..+$")
_STAGING_FOLDERS = (".adapter.partial", ".adapter.previous")


def remove_leftover_temp_files(run_dir: Path) -> list[Path]:
    """Remove what a trainer killed mid-write (or stopped by a full disk) left: temporary status,
    config and marker files, and the final adapter's staging folders; returns what went.

    Call only while holding the lock: then no live process is writing these."""
    run_dir = Path(run_dir)
    removed: list[Path] = []
    try:
        entries = list(run_dir.iterdir())
    except OSError:
        return removed
    for entry in entries:
        if entry.is_file() and _ROOT_TEMPORARIES.match(entry.name):
            entry.unlink(missing_ok=True)
            removed.append(entry)
        elif entry.name in _STAGING_FOLDERS and entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    checkpoints = run_dir / "checkpoints"
    for folder in checkpoints.glob("checkpoint-*") if checkpoints.is_dir() else ():
        for entry in folder.iterdir() if folder.is_dir() else ():
            if _CHECKPOINT_TEMPORARIES.match(entry.name):
                entry.unlink(missing_ok=True)
                removed.append(entry)

    removed += remove_stale_staging(run_dir)
    return removed
