"""What the ranks of one training agree on, whoever started them: the workbench itself (`workbench
train` with devices.num_processes > 1), bare `torchrun`, or `accelerate launch`.

One training is one run directory. Global rank 0 decides it (checks the config, creates the
directory or takes the one it was given) and the other ranks learn its path from rank 0 over the
process group, which is initialized here, early, the way TrainingArguments would initialize it;
the Trainer's accelerate state then adopts the same group. So rank 1's RNG state lands in the same
checkpoint as rank 0's, and a launch on several machines needs no shared name scheme.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from workbench.errors import WorkbenchError

if TYPE_CHECKING:
    from workbench.config.schema import RunConfig

CHECKED_BY_LAUNCHER = "WORKBENCH_CONFIG_CHECKED"
"""Set by `workbench train` for the ranks it starts: the config was checked once, in the parent."""

DEFAULT_DDP_TIMEOUT_S = 1800
"""TrainingArguments.ddp_timeout's default; optimization.extra.ddp_timeout changes it."""

RANK_ENVIRONMENT = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")


def distributed_rank() -> tuple[int, int]:
    """(rank, world size) from the launcher's environment; (0, 1) in a plain process."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def under_launcher() -> bool:
    """This process is one rank started by torchrun, accelerate launch or the workbench."""
    return "LOCAL_RANK" in os.environ


def check_launcher_environment(config: "RunConfig", report: Callable[[str], None]) -> None:
    """Refuse a launch that would silently train something other than the config, before any work.

    - `accelerate launch --cpu --num_processes N` (or a config with use_cpu / MULTI_CPU) runs the
      command once: accelerate's CPU launcher starts several processes only through mpirun. It sets
      MASTER_ADDR for the ranks that never come; that, with no rank variables, gives it away.
    - An accelerate config that turns on FSDP or DeepSpeed through the environment would shard the
      model while the run config (and so the run directory) says it does not.
    - accelerate's mixed_precision would otherwise decide the autocast of an fp32 run; the run
      config's model.precision is the one source, so the variable is set to "no" (TrainingArguments'
      bf16/fp16, set from model.precision, take precedence over it).
    """
    environment = os.environ
    launched_by_accelerate = "ACCELERATE_MIXED_PRECISION" in environment
    has_ranks = any(name in environment for name in RANK_ENVIRONMENT)
    if launched_by_accelerate and "ACCELERATE_USE_CPU" in environment and "MASTER_ADDR" in environment and not has_ranks:
        raise WorkbenchError(
            "accelerate launch was asked for several processes but started one: with --cpu (or use_cpu: true, "
            "distributed_type: MULTI_CPU) accelerate starts further CPU processes only through mpirun "
            "(--mpirun_hostfile). Launch with --multi_gpu --num_processes N instead (it runs on the CPU with gloo "
            "where there is no GPU), or set devices.num_processes: N and run `workbench train CONFIG`"
        )
    if environment.get("ACCELERATE_USE_FSDP", "false").lower() == "true" and not (config.devices.fsdp or config.devices.fsdp_config):
        raise WorkbenchError(
            "the accelerate launch turns on FSDP (its config's distributed_type: FSDP) but devices.fsdp is empty; "
            "set devices.fsdp and devices.fsdp_config in the run config, so the run directory records them, and "
            "launch with distributed_type: MULTI_GPU"
        )
    if environment.get("ACCELERATE_USE_DEEPSPEED", "false").lower() == "true" and not config.devices.deepspeed:
        raise WorkbenchError(
            "the accelerate launch turns on DeepSpeed (its config's distributed_type: DEEPSPEED) but "
            "devices.deepspeed is empty; set devices.deepspeed (zero2, zero3 or a JSON file) in the run config, "
            "so the run directory records it, and launch with distributed_type: MULTI_GPU"
        )
    precision = environment.get("ACCELERATE_MIXED_PRECISION")
    if precision not in (None, "no"):
        if distributed_rank()[0] == 0:
            report(f"accelerate's mixed_precision {precision} is not used: model.precision "
                   f"({config.model.precision}) decides the run's precision")
        environment["ACCELERATE_MIXED_PRECISION"] = "no"


def _ddp_timeout(config: "RunConfig") -> timedelta:
    extra = getattr(config.optimization, "extra", None) or {}
    return timedelta(seconds=int(extra.get("ddp_timeout", DEFAULT_DDP_TIMEOUT_S)))


def init_process_group(config: "RunConfig") -> None:
    """Join the ranks' process group now, with the backend and timeout TrainingArguments would use
    (gloo on the CPU, the accelerator's default on GPUs; DeepSpeed's own init when it is on)."""
    import torch
    from accelerate import PartialState

    on_gpu = torch.cuda.is_available() and not config.devices.use_cpu
    if not on_gpu:
        PartialState(cpu=True, backend="gloo")
        return
    if config.devices.deepspeed:
        # as TrainingArguments does: accelerate reads this variable to start DeepSpeed's communication
        os.environ["ACCELERATE_USE_DEEPSPEED"] = "true"
        try:
            PartialState(timeout=_ddp_timeout(config))
        finally:
            del os.environ["ACCELERATE_USE_DEEPSPEED"]
        return
    PartialState(timeout=_ddp_timeout(config))


def leave_process_group() -> None:
    """Close this rank's process group before the interpreter exits, as torch asks. Left open, a
    rank that finished first could abort at exit ("terminate called without an active exception",
    SIGABRT) while gloo's threads were still up: seen in a stopped two-rank CPU run, which the
    launcher then reports as a crash of the whole run."""
    import sys

    if "torch.distributed" not in sys.modules:
        return
    import torch.distributed

    if torch.distributed.is_available() and torch.distributed.is_initialized():
        try:
            torch.distributed.destroy_process_group()
        except Exception:  # a peer already gone: the group is being torn down either way
            pass


def agree_on_run_dir(config: "RunConfig", decide: Callable[[], Path]) -> Path:
    """The run directory all ranks use: `decide()` runs on global rank 0 only, and its answer (or
    its error) reaches every rank. The other ranks exit quietly with code 2 when rank 0 refuses, so
    the refusal is printed once."""
    rank, world = distributed_rank()
    if world <= 1:
        return decide()
    import torch.distributed

    from accelerate import PartialState

    init_process_group(config)
    message: list = [None]
    failure: BaseException | None = None
    if rank == 0:
        try:
            message[0] = {"run_dir": str(decide())}
        except BaseException as error:  # every rank must hear about it, or they wait for ever
            failure = error
            message[0] = {"error": str(error) or type(error).__name__}
    torch.distributed.broadcast_object_list(message, src=0, device=PartialState().device)
    if failure is not None:
        raise failure
    if "error" in message[0]:
        raise SystemExit(2)
    return Path(message[0]["run_dir"])
