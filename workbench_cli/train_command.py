"""What `workbench train` does before (or instead of) training: resolve the config and the run
directory, then train in this process (`workbench.training.run.run_training`), start the ranks, or
start a detached child the way the Train pane does (`workbench.runs.launch`).

Kept apart from `commands/train.py` so that `workbench train --help` does not load the trainer's
modules: this one is imported only when `train` runs."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Sequence

from workbench.config.distributed import num_machines
from workbench.config.io import load_config, save_config
from workbench.cpu_budget import prepare_process
from workbench.devices import visible_gpu_environment
from workbench.errors import WorkbenchError
from workbench.io_checks import check_output_dir
from workbench.allocator import reexec_with_allocator
from workbench.runs.launch import config_for_run, create_run_dir, ensure_resumable, resume_run, start_run
from workbench.runs.run_lock import claim_run_dir
from workbench.runs.rundir import CONFIG_FILE, read_status
from workbench.training.ranks import (
    CHECKED_BY_LAUNCHER,
    agree_on_run_dir,
    check_launcher_environment,
    distributed_rank,
    under_launcher,
)
from workbench.training.run import Report, launch_distributed, preflight, report_line, run_training

if TYPE_CHECKING:
    from workbench.config.schema import RunConfig


def train_command(
    config_path: Optional[Path], run_dir: Optional[Path], resume_dir: Optional[Path], runs_root: Optional[Path],
    detach: bool, report: Report = report_line, overrides: Sequence[str] = (),
) -> int:
    """The `workbench train` command: resolve what to run and where, then run it (or launch it detached).

    `overrides` (`section.field=value`) apply over the config file; the run directory keeps the
    resolved config.

    In a rank started by a launcher (the workbench's own, bare torchrun, accelerate launch), global
    rank 0 decides the run directory and the other ranks join it (`ranks.agree_on_run_dir`).
    """
    launched = under_launcher()
    if resume_dir is not None:
        if overrides:
            raise WorkbenchError(
                f"train --resume: a resumed run keeps its own config; drop the overrides ({' '.join(overrides)})"
            )
        run_dir = Path(resume_dir)
        if not launched:  # in a rank, the process that started the ranks has checked already
            ensure_resumable(run_dir, read_status(run_dir))
        if detach:
            resume_run(run_dir)
            report(str(run_dir))
            return 0
        config = load_config(run_dir / CONFIG_FILE)
        _prepare_process(config, report)
        if launched:
            chosen = run_dir
            run_dir = agree_on_run_dir(config, lambda: chosen)
        return run_training(config, run_dir, config_path=run_dir / CONFIG_FILE, resume=True, report=report)

    if config_path is None:
        raise WorkbenchError("train: give a CONFIG.yaml to start a run, or --resume RUN_DIR to continue one")
    config = config_for_run(load_config(config_path, overrides))
    if detach:
        preflight(config, str(config_path), report)
        started = start_run(config, runs_root)
        report(str(started))
        return 0
    _prepare_process(config, report)
    if launched:
        _adopt_world_size(config, report)
        checked = CHECKED_BY_LAUNCHER in os.environ

        def rank_zero_run_dir() -> Path:
            if not checked:
                preflight(config, str(config_path), report)
            return _open_run_dir(config, config_path, run_dir, runs_root, report, announce=not checked)

        run_dir = agree_on_run_dir(config, rank_zero_run_dir)
        return run_training(config, run_dir, config_path=run_dir / CONFIG_FILE, report=report)
    if num_machines(config) > 1:
        # every machine runs this; their ranks meet, and global rank 0 creates the run directory
        preflight(config, str(config_path), report)
        return launch_distributed(config, Path(config_path), None, resume=False, report=report)
    check_source = None
    if run_dir is None:
        # checked before a run directory exists, so a config that cannot train leaves nothing behind
        preflight(config, str(config_path), report)
    else:
        check_source = str(config_path)
    run_dir = _open_run_dir(config, config_path, run_dir, runs_root, report)
    return run_training(config, run_dir, config_path=run_dir / CONFIG_FILE, check_source=check_source, report=report)


def _open_run_dir(
    config: "RunConfig", config_path: Path, run_dir: Optional[Path], runs_root: Optional[Path], report: Report,
    announce: bool = True,
) -> Path:
    """A new run directory (or the empty one --run-dir names) holding the run's config.yaml."""
    if run_dir is None:
        run_dir = create_run_dir(runs_root, config.name)
        claim_run_dir(run_dir)
    else:
        run_dir = check_output_dir(run_dir, option=f"--run-dir {run_dir}")
        run_dir.mkdir(parents=True, exist_ok=True)
        claim_run_dir(run_dir)  # a second trainer on this directory stops here, before writing anything
        existing = read_status(run_dir, as_written=True)
        if existing is not None and existing.state != "starting":
            raise WorkbenchError(
                f"--run-dir {run_dir}: already holds a {existing.state} run; use --resume {run_dir} or another directory"
            )
    run_config_path = run_dir / CONFIG_FILE
    same_file = run_config_path.exists() and run_config_path.resolve() == Path(config_path).resolve()
    if not same_file or load_config(run_config_path) != config:  # overrides make it differ from the file
        save_config(config, run_config_path)
    if announce:
        report(f"run directory: {run_dir}")
    return run_dir


def _prepare_process(config: "RunConfig", report: Report) -> None:
    """Before torch starts: refuse a launch that would train something else than the config, then
    set the GPU choice and the CPU thread policy."""
    check_launcher_environment(config, report)
    _apply_gpu_choice(config)
    prepare_process()  # the CLI's main did it already; this covers callers that skip the CLI
    if not under_launcher():  # a launcher's ranks inherit the allocator from the process that started them
        reexec_with_allocator(sys.argv[1:])  # `workbench train` from a shell: once, before torch loads


def _adopt_world_size(config: "RunConfig", report: Report) -> None:
    """A launcher that started more or fewer ranks than devices.num_processes says wins: the run
    directory's config records the processes that really trained (and a resume starts as many)."""
    rank, world = distributed_rank()
    if config.devices.num_processes != world:
        if rank == 0:
            report(f"devices.num_processes: {world} (the launcher started {world} processes; the config said "
                   f"{config.devices.num_processes})")
        config.devices.num_processes = world


def _apply_gpu_choice(config: "RunConfig") -> None:
    """Narrow CUDA_VISIBLE_DEVICES to the config's GPUs before torch starts (once, in the top process)."""
    if under_launcher():
        return  # torchrun's parent already did it; the children inherit the narrowed list
    value = visible_gpu_environment(config.devices.gpus, config.devices.use_cpu)
    if value is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = value
