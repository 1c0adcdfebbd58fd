"""`workbench demo`: the guided SFT demo in the TUI, or `--headless`: clean -> train -> compare, printed.

    workbench demo                      the guided tour through the five panes
    workbench demo --headless           the same pipeline without a screen
        [--runs-dir DIR] [--max-minutes N] [--model M] [--data FILE] [--prompts FILE]
        [--heldout FILE] [--epochs E | --max-steps N] [--max-new-tokens N]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from workbench_cli.arguments import positive_float, positive_int
from workbench.demo.pipeline import DECK_MAX_NEW_TOKENS, DemoOptions
from screens.demo import make_demo_app
from workbench.demo.pipeline import run_demo
from workbench.errors import WorkbenchError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--headless", action="store_true", help="run clean -> train -> compare without the UI and print it")
    parser.add_argument("--runs-dir", type=Path, default=None, help="where the run goes (default: ./runs)")
    parser.add_argument(
        "--max-minutes", type=positive_float, default=None,
        help="stop training after N minutes and compare with what it learned so far",
    )
    parser.add_argument("--model", default="default", help="base model (default: SmolLM2-135M-Instruct)")
    parser.add_argument("--data", type=Path, default=None, help="messy data to clean (default: sample_data/messy_identity.jsonl)")
    parser.add_argument("--prompts", type=Path, default=None, help="prompt deck (default: sample_data/demo_prompts.txt)")
    parser.add_argument(
        "--heldout", type=Path, default=None,
        help="held-out questions scored base vs fine-tuned (default: sample_data/identity_heldout.jsonl)",
    )
    parser.add_argument("--no-heldout", action="store_true", help="skip the held-out hit rates (headless)")
    length = parser.add_mutually_exclusive_group()
    length.add_argument("--epochs", type=positive_float, default=None, help="passes over the data (default: the demo recipe's)")
    length.add_argument("--max-steps", type=positive_int, default=None, help="stop after this many steps")
    parser.add_argument(
        "--max-new-tokens", type=positive_int, default=None, help="longest comparison answer in tokens (default 64)"
    )


def run(args: argparse.Namespace) -> int:

    defaults = DemoOptions()
    options = DemoOptions(
        data_file=args.data or defaults.data_file,
        prompts_file=args.prompts or defaults.prompts_file,
        heldout_file=None if args.no_heldout else (args.heldout or defaults.heldout_file),
        model=args.model,
        runs_dir=args.runs_dir,
        epochs=args.epochs,
        max_steps=args.max_steps,
        max_minutes=args.max_minutes,
        max_new_tokens=args.max_new_tokens or DECK_MAX_NEW_TOKENS,
    )
    if args.headless:
        return _run_headless(options)

    app = make_demo_app(options)
    app.run()
    return app.return_code or 0


def _run_headless(options) -> int:

    for label, path in (("--data", options.data_file), ("--prompts", options.prompts_file), ("--heldout", options.heldout_file)):
        if path is not None and not Path(path).is_file():
            raise WorkbenchError(f"{label} {path}: no such file")
    result = run_demo(options, lambda line: print(line, flush=True))
    if result.training.stopped_at_limit:
        print(f"note: training stopped at the {options.max_minutes:g}-minute limit before finishing")
    return 0
