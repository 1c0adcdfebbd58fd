"""Start, stop and resume training runs as detached child processes.

The trainer runs in its own session (`start_new_session=True`), so closing the terminal or quitting
the TUI never signals it; it writes only to its run directory, which any later process can read.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from workbench.config.distributed import DEEPSPEED_PRESETS, launch_command, num_machines
from workbench.config.io import resolve_config_path, save_config
from workbench.data.chat_templates import is_template_name
from workbench.data.data_refs import absolute_data_path
from workbench.errors import WorkbenchError
from workbench.io_checks import check_output_dir, runs_root_option
from workbench.allocator import allocator_environment
from workbench.paths import runs_dir
from workbench.runs.run_lock import ensure_run_dir_free
from workbench.runs.rundir import (
    ACTIVE_STATES,
    CONFIG_FILE,
    LOG_FILE,
    RunStatus,
    pid_is_alive,
    read_status,
    write_status,
)

if TYPE_CHECKING:
    from workbench.config.schema import RunConfig


def _slug(name: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.")
    return slug[:60] or "run"


def create_run_dir(runs_root: Path | str | None, name: str) -> Path:
    """A new, empty `<runs_root>/<YYYYmmdd-HHMMSS>-<name>/` (suffixed -2, -3... when the second is taken)."""
    root = check_output_dir(runs_dir(runs_root), option=runs_root_option(runs_root))
    root.mkdir(parents=True, exist_ok=True)
    base = f"{time.strftime('%Y%m%d-%H%M%S')}-{_slug(name)}"
    for attempt in range(1, 1000):
        candidate = root / (base if attempt == 1 else f"{base}-{attempt}")
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            continue
    raise WorkbenchError(f"{root}: cannot create a new run directory named {base}")


def config_for_run(config: "RunConfig", base_dir: Path | str | None = None) -> "RunConfig":
    """A copy of the config with relative paths made absolute (from `base_dir`, else the current
    directory), so the copy saved inside the run directory works from anywhere."""
    def absolute(value: Optional[str]) -> Optional[str]:
        return str(resolve_config_path(value, base_dir).resolve()) if value else value

    data = config.model_copy(deep=True)
    data.data.train_file = absolute_data_path(data.data.train_file, base_dir)
    data.data.validation_file = absolute_data_path(data.data.validation_file, base_dir)
    for source in data.data.sources:  # a cached dataset id stays an id
        source.path = absolute_data_path(source.path, base_dir)
        source.validation_file = absolute_data_path(source.validation_file, base_dir)
    if data.devices.deepspeed not in DEEPSPEED_PRESETS:  # zero2 / zero3 name the shipped files
        data.devices.deepspeed = absolute(data.devices.deepspeed)
    data.devices.accelerate_config = absolute(data.devices.accelerate_config)
    if not is_template_name(data.data.chat_template):  # a .jinja file's path
        data.data.chat_template = absolute(data.data.chat_template)
    model_dir = resolve_config_path(data.model.name_or_path, base_dir)
    if not Path(data.model.name_or_path).is_absolute() and model_dir.is_dir():
        data.model.name_or_path = str(model_dir.resolve())
    return data


def prepare_run_dir(config: "RunConfig", runs_root: Path | str | None = None, name: Optional[str] = None) -> Path:
    """Create the run directory with its config.yaml and a "starting" status."""
    resolved = config_for_run(config)
    if name:
        resolved.name = name
    run_dir = create_run_dir(runs_root, resolved.name)
    save_config(resolved, run_dir / CONFIG_FILE)
    return run_dir


def _spawn_detached(arguments: list[str], run_dir: Path) -> subprocess.Popen:
    """`python -m workbench <arguments>` in a new session, output appended to trainer.log, under the
    allocator that keeps the trainer's RSS at its estimate (workbench/allocator.py)."""
    environment = {**os.environ, "PYTHONUNBUFFERED": "1", **allocator_environment()}
    with open(run_dir / LOG_FILE, "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "workbench", *arguments],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=environment,
            cwd=os.getcwd(),
        )
    # Reap the child when it ends so it never lingers as a zombie while this process lives on;
    # a daemon thread dies with this process and leaves the child running.
    threading.Thread(target=process.wait, name=f"reap-trainer-{process.pid}", daemon=True).start()
    return process


def _mark_starting(run_dir: Path, name: str, pid: int, previous: Optional[RunStatus] = None) -> None:
    status = previous or RunStatus(name=name)
    status.state, status.reason, status.pid = "starting", None, pid
    write_status(run_dir, status)


def start_run(config: "RunConfig", runs_root: Path | str | None = None, name: Optional[str] = None) -> Path:
    """Launch `workbench train` for `config` in the background and return its new run directory at once.

    The child writes status.json, events.jsonl and checkpoints there; with devices.num_processes > 1
    it starts one process per device itself (accelerate launch).
    """
    machines = num_machines(config)
    if machines > 1:
        raise WorkbenchError(
            f"devices.accelerate_config: this run spans {machines} machines, so it starts on each of them; run "
            f"`workbench train CONFIG` (that is, {launch_command(config).splitlines()[0]}) on every machine"
        )
    run_dir = prepare_run_dir(config, runs_root, name)
    process = _spawn_detached(["train", str(run_dir / CONFIG_FILE), "--run-dir", str(run_dir)], run_dir)
    _mark_starting(run_dir, name or config.name, process.pid)
    return run_dir


def resume_run(run_dir: Path | str) -> Path:
    """Continue a stopped, failed or dead run from its last complete checkpoint, in the background."""
    run_dir = Path(run_dir)
    status = read_status(run_dir)
    ensure_resumable(run_dir, status)
    ensure_run_dir_free(run_dir, "a resume")
    process = _spawn_detached(["train", "--resume", str(run_dir)], run_dir)
    _mark_starting(run_dir, status.name if status else run_dir.name, process.pid, status)
    return run_dir


def ensure_resumable(run_dir: Path, status: Optional[RunStatus]) -> None:
    """Refuse to resume a run that is live or already completed."""
    if not (run_dir / CONFIG_FILE).is_file():
        raise WorkbenchError(f"{run_dir}: not a run directory (no {CONFIG_FILE})")
    # resume_run marks the run "starting" with the child's pid before the child checks again.
    launched_for_us = status is not None and status.state == "starting" and status.pid == os.getpid()
    if status is not None and status.state in ACTIVE_STATES and not launched_for_us:
        raise WorkbenchError(f"{run_dir}: the run is still {status.state} (pid {status.pid}); stop it before resuming")
    if status is not None and status.state == "completed":
        raise WorkbenchError(
            f"{run_dir}: the run already completed ({status.reason or 'all steps done'}); start a new run to train more"
        )


def stop_run(run_dir: Path | str, *, force: bool = False) -> bool:
    """Ask a running trainer to stop: SIGTERM makes it save a checkpoint and mark the run "stopped".

    Args:
        force: SIGKILL the trainer's whole process group instead (no checkpoint; the run reads as dead).

    Returns:
        True when a signal was sent, False when no live trainer was found.
    """
    status = read_status(Path(run_dir))
    if status is None or status.state not in ACTIVE_STATES or not pid_is_alive(status.pid):
        return False
    try:
        if force:
            os.killpg(os.getpgid(status.pid), signal.SIGKILL)
        else:
            os.kill(status.pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    return True


def wait_for_end(run_dir: Path | str, timeout_s: float, poll_s: float = 0.2) -> Optional[RunStatus]:
    """Poll status.json until the run leaves its active states or `timeout_s` passes; the last status read."""
    deadline = time.monotonic() + timeout_s
    status = read_status(Path(run_dir))
    while time.monotonic() < deadline:
        status = read_status(Path(run_dir))
        if status is not None and status.state not in ACTIVE_STATES:
            return status
        time.sleep(poll_s)
    return status
