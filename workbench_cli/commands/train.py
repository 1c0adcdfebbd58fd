"""`workbench train`: run a training config headless, printing progress; or resume a run."""

from __future__ import annotations

import argparse
from pathlib import Path

from workbench_cli.commands.config import add_overrides_argument


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", nargs="?", type=Path, help="run config (YAML); not needed with --resume")
    add_overrides_argument(parser)
    parser.add_argument("--run-dir", type=Path, default=None, help="write the run here (default: runs/<time>-<name>/)")
    parser.add_argument("--runs-dir", type=Path, default=None, help="where new run directories go (default: ./runs)")
    parser.add_argument(
        "--resume", type=Path, default=None, metavar="RUN_DIR",
        help="continue a stopped, failed or killed run from its last complete checkpoint",
    )
    parser.add_argument(
        "--detach", action="store_true",
        help="start in the background, print the run directory and return (watch it with `workbench runs`)",
    )


def run(args: argparse.Namespace) -> int:
    from workbench_cli.train_command import train_command  # the trainer's modules load only for `train`

    config, overrides = args.config, list(args.overrides)
    if config is not None and "=" in str(config) and not config.exists():
        config, overrides = None, [str(config), *overrides]  # `--resume DIR key=value`: no config file given
    return train_command(config, args.run_dir, args.resume, args.runs_dir, args.detach, overrides=overrides)
