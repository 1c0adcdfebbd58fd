"""How a run spreads over processes and machines: the `accelerate launch` line that starts its
ranks, the DeepSpeed configs shipped with the workbench, and what an accelerate config file says.

`workbench train` starts devices.num_processes > 1 with exactly the argv `launch_argv` builds, and
`workbench config show --as command` prints the same argv, so what is shown is what runs.
Cheap to import (no torch, no accelerate): the Hyperparameters pane checks configs on every edit.
"""

from __future__ import annotations

import json
import os
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from workbench.config.io import resolve_config_path
from workbench.config.yaml_limits import safe_load_bounded
from workbench.devices import visible_gpu_environment
from workbench.errors import WorkbenchError
from workbench.io_checks import MAX_CONFIG_BYTES, read_input_text

if TYPE_CHECKING:
    from workbench.config.schema import RunConfig

DEEPSPEED_PRESETS: dict[str, Path] = {
    name: Path(__file__).parent / "deepspeed" / f"{name}.json" for name in ("zero2", "zero3")
}
"""devices.deepspeed names -> the ZeRO configs shipped in the package. Every size the Trainer knows
is "auto" (batch, accumulation, clipping, precision, bucket sizes), so the run config stays the
one source of those; ZeRO-3 gathers 16-bit weights on save so adapter/ holds whole tensors."""

ACCELERATE_MODULE = "accelerate.commands.launch"
"""Run as `python -m`, so the launcher is the venv's accelerate whatever PATH holds."""

SHARDING_TYPES = ("DEEPSPEED", "FSDP", "MEGATRON_LM")
"""accelerate distributed_type values the workbench takes from its own config instead."""

SINGLE_PROCESS_TYPES = ("NO", "MULTI_CPU")
"""distributed_type values for which `accelerate launch` starts one process on each machine:
without --mpirun_hostfile its CPU launcher runs the script once and leaves the other ranks to mpirun
(accelerate 1.15 `launch_command` -> `simple_launcher`)."""


def deepspeed_config_file(value: Optional[str], base_dir: str | os.PathLike | None = None) -> Optional[Path]:
    """The DeepSpeed JSON that devices.deepspeed names: a shipped preset (zero2, zero3) or a path."""
    if not value:
        return None
    if value in DEEPSPEED_PRESETS:
        return DEEPSPEED_PRESETS[value]
    return resolve_config_path(value, base_dir)


def zero_stage(value: Optional[str], base_dir: str | os.PathLike | None = None) -> Optional[int]:
    """The ZeRO stage of devices.deepspeed's config, or None when it is off or unreadable."""
    path = deepspeed_config_file(value, base_dir)
    if path is None:
        return None
    try:
        return int(json.loads(path.read_text(encoding="utf-8"))["zero_optimization"]["stage"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


@dataclass(frozen=True)
class AccelerateConfig:
    """What an accelerate config file says about where the ranks run (accelerate's ClusterConfig
    keys and defaults). Read with PyYAML rather than accelerate's `load_config_from_file`, which
    imports torch (2.4 s measured here) and would make every config check that slow."""

    path: Path
    distributed_type: str
    num_processes: int
    num_machines: int = 1
    machine_rank: int = 0
    main_process_ip: Optional[str] = None
    main_process_port: Optional[int] = None
    use_cpu: bool = False
    gpu_ids: Optional[str] = None
    mixed_precision: Optional[str] = None

    @property
    def starts_one_process(self) -> bool:
        """accelerate launch with this file starts the script once per machine."""
        return self.use_cpu or self.distributed_type in SINGLE_PROCESS_TYPES


class AccelerateConfigError(ValueError):
    """An accelerate config file that cannot be read; the message says why."""


def read_accelerate_config(value: str, base_dir: str | os.PathLike | None = None) -> AccelerateConfig:
    """devices.accelerate_config, read.

    Raises:
        AccelerateConfigError: no such file, not YAML/JSON, or no distributed_type.
    """
    import yaml

    path = resolve_config_path(value, base_dir)
    if not path.exists() and not path.is_symlink():
        raise AccelerateConfigError(f"no such file: {value}")
    try:
        text = read_input_text(path, label=value, max_bytes=MAX_CONFIG_BYTES)
        data = json.loads(text) if path.suffix == ".json" else safe_load_bounded(text, value)
    except WorkbenchError as error:
        raise AccelerateConfigError(str(error)) from None
    except (ValueError, RecursionError, yaml.YAMLError) as error:
        raise AccelerateConfigError(f"{value} is not valid {'JSON' if path.suffix == '.json' else 'YAML'}: "
                                    f"{str(error).splitlines()[0]}") from None
    if not isinstance(data, dict) or "distributed_type" not in data:
        raise AccelerateConfigError(f"{value} names no distributed_type; write it with `accelerate config`")
    distributed_type = str(data["distributed_type"]).upper()
    default_processes = 1 if distributed_type == "NO" else -1
    try:
        return AccelerateConfig(
            path=path,
            distributed_type=distributed_type,
            num_processes=int(data.get("num_processes", default_processes)),
            num_machines=int(data.get("num_machines", 1) or 1),
            machine_rank=int(data.get("machine_rank", 0) or 0),
            main_process_ip=data.get("main_process_ip") or None,
            main_process_port=int(data["main_process_port"]) if data.get("main_process_port") not in (None, "") else None,
            use_cpu=bool(data.get("use_cpu", False)),
            gpu_ids=str(data["gpu_ids"]) if data.get("gpu_ids") not in (None, "") else None,
            mixed_precision=data.get("mixed_precision"),
        )
    except (TypeError, ValueError) as error:
        raise AccelerateConfigError(f"{value}: {error}") from None


def num_machines(config: "RunConfig") -> int:
    """Machines the run spans (devices.accelerate_config's num_machines; 1 without one or unreadable)."""
    if not config.devices.accelerate_config:
        return 1
    try:
        return read_accelerate_config(config.devices.accelerate_config).num_machines
    except AccelerateConfigError:
        return 1


def uses_launcher(config: "RunConfig") -> bool:
    """`workbench train` starts this config's ranks through accelerate launch."""
    return config.devices.num_processes > 1 or bool(config.devices.accelerate_config)


def launch_options(config: "RunConfig") -> list[str]:
    """The options of `accelerate launch` for this config (before `-m workbench train`).

    With devices.accelerate_config, the file says where the ranks run. Without one the ranks run on
    this machine: every value accelerate would otherwise fill in (and warn about) is given, the port
    is a free one (0) so two runs on one machine never collide, and `--gpu_ids all` leaves the GPU
    choice to CUDA_VISIBLE_DEVICES (narrowed from devices.gpus). `--multi_gpu` also runs on the CPU
    (gloo) where there is no GPU; `--cpu` would start one process. The mixed precision is always
    "no": the workbench's own precision decides, through TrainingArguments' bf16/fp16.
    """
    devices = config.devices
    if devices.accelerate_config:
        path = resolve_config_path(devices.accelerate_config)
        return ["--config_file", str(path), "--mixed_precision", "no", "--dynamo_backend", "no"]
    return [
        "--multi_gpu", "--num_processes", str(devices.num_processes), "--num_machines", "1",
        "--gpu_ids", "all", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "0",
    ]


def train_arguments(config_path: str | os.PathLike, run_dir: str | os.PathLike | None = None, resume: bool = False) -> list[str]:
    """`workbench train` arguments for each rank."""
    if resume:
        return ["--resume", str(run_dir)]
    arguments = [str(config_path)]
    if run_dir is not None:
        arguments += ["--run-dir", str(run_dir)]
    return arguments


def launch_argv(
    config: "RunConfig", config_path: str | os.PathLike, run_dir: str | os.PathLike | None = None,
    resume: bool = False, python: str = "python",
) -> list[str]:
    """The argv that starts this config's ranks: `python -m accelerate.commands.launch ... -m workbench train ...`."""
    return [python, "-m", ACCELERATE_MODULE, *launch_options(config), "-m", "workbench", "train",
            *train_arguments(config_path, run_dir, resume)]


def launch_command(config: "RunConfig", config_path: str | os.PathLike | None = None) -> str:
    """The shell command that trains this config headless, for display (`config show --as command`).

    One process: `workbench train CONFIG` (what "Start training" runs). Several: the `accelerate
    launch` line that `workbench train CONFIG` runs, with the GPU choice as CUDA_VISIBLE_DEVICES;
    on several machines it runs on each one, with that machine's rank.
    """
    path = str(config_path) if config_path else "CONFIG.yaml"
    if not uses_launcher(config):
        return f"workbench train {shlex.quote(path)}"
    argv = ["accelerate", "launch", *launch_options(config), "-m", "workbench", "train", path]
    visible = visible_gpu_environment(config.devices.gpus, config.devices.use_cpu)
    prefix = f"CUDA_VISIBLE_DEVICES={shlex.quote(visible)} " if visible is not None else ""
    command = prefix + shlex.join(argv)
    machines = num_machines(config)
    if machines > 1:
        command += f"\n# on each of the {machines} machines, with its machine_rank in the file (or --machine_rank K)"
    return command


def fsdp_enabled(config: "RunConfig") -> bool:
    return bool(config.devices.fsdp) or bool(config.devices.fsdp_config)


def trainer_arguments(config: "RunConfig") -> dict[str, Any]:
    """TrainingArguments' DeepSpeed and FSDP settings: the DeepSpeed JSON's path (presets resolved),
    the FSDP options and fsdp_config. Empty where neither is on."""
    devices = config.devices
    arguments: dict[str, Any] = {}
    deepspeed = deepspeed_config_file(devices.deepspeed)
    if deepspeed is not None:
        arguments["deepspeed"] = str(deepspeed)
    if fsdp_enabled(config):
        arguments["fsdp"] = devices.fsdp or True
        arguments["fsdp_config"] = dict(devices.fsdp_config)
    return arguments
