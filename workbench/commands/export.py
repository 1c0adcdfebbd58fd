"""`workbench export`: a run's adapter, or a merged model plain transformers can load."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", type=Path, help="the run directory")
    parser.add_argument("-o", "--output", type=Path, required=True, help="new directory to write")
    parser.add_argument(
        "--checkpoint", default=None, metavar="best|last|STEP",
        help="which weights (default: the final adapter/, else the best checkpoint)",
    )
    parser.add_argument(
        "--merge", action="store_true",
        help="merge the adapter into the base model (safetensors + tokenizer + chat template)",
    )


def run(args: argparse.Namespace) -> int:
    from workbench.training.export import export_run

    def report(line: str) -> None:
        print(line, flush=True)

    written = export_run(args.run, args.output, checkpoint=args.checkpoint, merge=args.merge, report=report)
    print(f"wrote {written}")
    return 0
