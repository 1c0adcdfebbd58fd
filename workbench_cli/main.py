"""The `workbench` command (also `python -m workbench`). Subcommands live in
workbench_cli/commands/<name>.py and are imported only when chosen, so `workbench --help` stays fast
and never imports torch.

`workbench_cli` sits above everything: it may import `screens` (the TUI and the demo) and the engine
`workbench`, which never imports it back (import-linter contracts in pyproject.toml)."""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from workbench import __version__
from workbench.allocator import reexec_with_allocator
from workbench.cpu_budget import prepare_process
from workbench.errors import WorkbenchError
from workbench.known_errors import describe_library_error

# name -> (module under workbench_cli.commands, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "tui": ("tui", "open the workbench (the default when no command is given)"),
    "models": ("models", "resolve a model and show where it lives (converts the default model once)"),
    "data": ("data", "inspect and clean SFT data files"),
    "estimate": ("estimate", "estimate training memory for a model and method"),
    "config": ("config", "create and check run configs"),
    "train": ("train", "train from a run config, headless"),
    "runs": ("runs", "list training runs"),
    "export": ("export", "export a run's adapter or merged model"),
    "compare": ("compare", "compare base and fine-tuned answers on a prompt file"),
    "eval": ("eval", "metrics on held-out rows for base, tuned and checkpoints, and a forgetting check"),
    "demo": ("demo", "the guided SFT demo"),
}

MODEL_COMMANDS = frozenset({"tui", "eval", "compare", "demo"})
"""Commands that answer with a model: they run under the allocator batched generation needs
(`train` re-executes itself, after its launcher checks)."""
WHOLE_FILE_DATA_ACTIONS = frozenset({"inspect", "clean"})
"""`data` actions that tokenize and check every row of a file: they run under the same allocator,
which the tokenizer's batch encoder needs more than anything (workbench/allocator.py)."""


def restarts_under_allocator(argv: list[str]) -> bool:
    """Whether this command line re-executes itself under mimalloc before it starts."""
    if not argv or {"-h", "--help"} & set(argv):
        return False
    return argv[0] in MODEL_COMMANDS or (argv[0] == "data" and len(argv) > 1 and argv[1] in WHOLE_FILE_DATA_ACTIONS)


def build_parser(chosen: str | None = None) -> tuple[argparse.ArgumentParser, dict[str, object]]:
    """The parser, with every command listed and only the `chosen` one's module imported and its
    arguments added (all of them when None). Building every command's arguments imported half the
    engine (pydantic's schema, the evaluation runner, the data exporter) for their choices and
    defaults: `workbench --help` took 0.65 s that way against 0.05 s listing names only."""
    parser = argparse.ArgumentParser(
        prog="workbench",
        description="SFT Workbench: supervised fine-tuning of language models, in the terminal.",
        epilog=(
            "CPU budget: a run training on the CPU and a chat answering share the cores; set "
            "WORKBENCH_CPU_THREADS (cores the workbench uses, default all) and WORKBENCH_CHAT_THREADS "
            "(chat's share while a run trains, default 1)."
        ),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    modules = {}
    for name, (module_name, help_text) in COMMANDS.items():
        sub = subparsers.add_parser(name, help=help_text, description=help_text)
        if chosen is None or name == chosen:
            module = importlib.import_module(f"workbench_cli.commands.{module_name}")
            module.add_arguments(sub)
            modules[name] = module
    return parser, modules


def main(argv: list[str] | None = None) -> int:
    # Before any command module can import torch: OpenMP reads its wait policy once, at start.
    prepare_process()
    from_command_line = argv is None
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0].startswith("--") and argv[0] not in {"--help", "--version"}:
        argv = ["tui", *argv]
    elif argv[0] == "-h":
        argv = ["--help"]
    command = argv[0] if argv[0] in COMMANDS else ""
    if from_command_line and restarts_under_allocator(argv):
        reexec_with_allocator(argv)  # once, before anything heavy loads (workbench/allocator.py)
    parser, modules = build_parser(command)
    args, unparsed = parser.parse_known_args(argv)
    if unparsed:
        # argparse fills a positional list once, so `train CFG --runs-dir R key=value` leaves the
        # overrides after the option unparsed; a command that takes overrides gets them.
        if not hasattr(args, "overrides") or any(item.startswith("-") or "=" not in item for item in unparsed):
            parser.error(f"unrecognized arguments: {' '.join(unparsed)}")
        args.overrides = [*args.overrides, *unparsed]
    try:
        return int(modules[args.command].run(args) or 0)
    except WorkbenchError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        # Exit now: the interpreter would otherwise join worker threads still inside a long Rust
        # call (tokenizing a batch) before exiting, which took seconds; nothing is left to flush.
        sys.stdout.flush()
        sys.stderr.flush()
        if from_command_line and args.command not in ("tui", "demo"):
            os._exit(130)
        return 130
    except RecursionError:
        # Input nested too deeply for something that walks it; the readers refuse most such input
        # with its line already (workbench/data/json_rows.py, workbench/config/yaml_limits.py).
        print("error: the input is nested too deeply to process", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # Output piped into `head` and the like: the reader left, which is not an error.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as error:
        # a full disk, a read-only folder, a model that needs its own code: one line, not a traceback
        line = describe_library_error(error)
        if line is None:
            raise
        print(f"error: {line}", file=sys.stderr)
        return 2
