"""`workbench config`: create a run config from a preset, check it against this machine, show it
in Hugging Face's terms, import it from LLaMA-Factory or axolotl and export it back."""

from __future__ import annotations

import argparse
import sys

from workbench.config.dialects import DIALECTS
from workbench.config.dialects.commands import import_command
from workbench.config.dialects.commands import export_command
from workbench.config.io import save_config
from workbench.config.presets import get_preset
from workbench.config.schema import RunConfig
from workbench.errors import WorkbenchError
from workbench.io_checks import check_output_file
from workbench.config.checks import check_config
from workbench.config.io import ConfigError, load_config
from workbench.config.translate import render
from workbench.config.presets import PRESETS

PRESET_HELP = "quick-demo-cpu, lora-1gpu, qlora-large-1gpu, full-finetune"
VIEW_CHOICES = ("yaml", "training-args", "lora", "model", "command")


def add_overrides_argument(parser: argparse.ArgumentParser) -> None:
    """`section.field=value ...` after the config file (shared by train and config check/show)."""
    parser.add_argument(
        "overrides", nargs="*", metavar="section.field=value",
        help="settings over the file's, values read as YAML (e.g. optimization.learning_rate=1e-5 data.packing=false)",
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="config_action", metavar="ACTION", required=True)

    new = actions.add_parser("new", help="write a new run config (from a preset)")
    new.add_argument("-o", "--output", required=True, metavar="FILE", help="where to write the YAML config")
    new.add_argument("--preset", default=None, metavar="NAME", help=f"start from a preset: {PRESET_HELP}")
    new.add_argument("--train-file", default=None, metavar="PATH", help="set data.train_file")
    new.add_argument("--force", action="store_true", help="overwrite FILE if it exists")

    check = actions.add_parser("check", help="validate a config against the schema, this machine, the model and the data")
    check.add_argument("file", metavar="FILE")
    add_overrides_argument(check)

    show = actions.add_parser("show", help="print a config with every default filled in, or its Hugging Face equivalent")
    show.add_argument("file", metavar="FILE")
    add_overrides_argument(show)
    show.add_argument(
        "--as", dest="view", choices=VIEW_CHOICES, default="yaml",
        help="yaml (default), training-args (TrainingArguments), lora (LoraConfig), model (from_pretrained), command",
    )

    actions.add_parser("presets", help="list the presets and why each value was chosen")

    imported = actions.add_parser(
        "import", help="turn a LLaMA-Factory or axolotl training YAML into a workbench config, saying what became of each key"
    )
    imported.add_argument("file", metavar="FILE", help="the LLaMA-Factory or axolotl YAML")
    imported.add_argument("-o", "--output", default=None, metavar="OUT", help="where to write it (default: FILE's name + .workbench.yaml here)")
    imported.add_argument("--from", dest="dialect", choices=DIALECTS, default=None, help="the file's tool (detected by default)")
    imported.add_argument("--force", action="store_true", help="overwrite OUT if it exists")

    exported = actions.add_parser("export", help="write a workbench config as a LLaMA-Factory or axolotl training YAML")
    exported.add_argument("file", metavar="CFG")
    exported.add_argument("--to", dest="dialect", choices=DIALECTS, required=True, help="the tool to write for")
    exported.add_argument("-o", "--output", default=None, metavar="OUT", help="where to write it (default: CFG's name + .TOOL.yaml here)")
    exported.add_argument("--force", action="store_true", help="overwrite OUT if it exists")



def run(args: argparse.Namespace) -> int:
    actions = {"new": _new, "check": _check, "show": _show, "presets": _presets, "import": _import, "export": _export}
    return actions[args.config_action](args)


def _import(args: argparse.Namespace) -> int:

    return import_command(args.file, args.output, args.dialect, args.force)


def _export(args: argparse.Namespace) -> int:

    return export_command(args.file, args.output, args.dialect, args.force)


def _new(args: argparse.Namespace) -> int:
    from pathlib import Path



    output = check_output_file(Path(args.output), option=f"-o {args.output}")
    if output.exists() and not args.force:
        raise WorkbenchError(f"{output}: already exists; choose another name or pass --force to overwrite it")
    config = get_preset(args.preset).config() if args.preset else RunConfig()
    if args.train_file:
        config = config.model_copy(update={"data": config.data.model_copy(update={"train_file": args.train_file})})
    save_config(config, output)
    origin = f"preset {args.preset}" if args.preset else "the defaults"
    print(f"wrote {output} from {origin}; next: workbench config check {output}")
    return 0


def _check(args: argparse.Namespace) -> int:

    try:
        config = load_config(args.file, args.overrides)
    except ConfigError as error:
        for problem in error.problems:
            print(problem)
        print(f"{args.file}: {len(error.problems)} error(s); fix them and check again", file=sys.stderr)
        return 2
    problems = check_config(config)
    for problem in problems:
        print(problem.line(args.file))
    errors = sum(problem.is_error for problem in problems)
    warnings = len(problems) - errors
    if errors:
        print(f"{args.file}: {errors} error(s), {warnings} warning(s); fix the errors before training", file=sys.stderr)
        return 2
    note = f" ({warnings} warning(s))" if warnings else ""
    import shlex

    command = shlex.join(["workbench", "train", args.file, *args.overrides])
    print(f"{args.file}: ok{note}; train it with: {command}")
    return 0


def _show(args: argparse.Namespace) -> int:

    print(render(load_config(args.file, args.overrides), args.view, config_path=args.file))
    return 0


def _presets(args: argparse.Namespace) -> int:

    for preset in PRESETS.values():
        print(f"{preset.name} — {preset.title}\n  {preset.summary}")
        for dotted, reason in preset.reasons.items():
            print(f"  {dotted} = {preset.settings.get(dotted)!r}: {reason}")
        print()
    return 0
