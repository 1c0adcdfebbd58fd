"""`workbench export`: a run as a merged model, a portable adapter, or GGUF for llama.cpp and Ollama."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from workbench.export.options import DEFAULT_QUANT, DTYPES, FORMAT_HELP, FORMATS, GGUF_QUANTS
from workbench.export.options import ExportOptions
from workbench.runs.export import export
from workbench.units import format_bytes


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", type=Path, help="the run directory")
    parser.add_argument(
        "--format", choices=FORMATS, default=None,
        help="; ".join(f"{name}: {text}" for name, text in FORMAT_HELP.items()) + " (default: adapter)",
    )
    parser.add_argument("--dtype", choices=DTYPES, default=None, help="hf: weight dtype (default: the base model's own)")
    parser.add_argument(
        "--quant", choices=GGUF_QUANTS, default=DEFAULT_QUANT,
        help=f"gguf: quantization (default {DEFAULT_QUANT}; f16 keeps the most, q4_0 is the smallest)",
    )
    parser.add_argument(
        "--checkpoint", default=None, metavar="best|last|STEP",
        help="which weights (default: the final adapter/, else the best checkpoint)",
    )
    parser.add_argument("-o", "--output", type=Path, default=None, help="new directory to write (default: RUN/exports/FORMAT-…)")
    parser.add_argument("--force", action="store_true", help="replace a target directory that is not empty")
    parser.add_argument("--push-to-hub", metavar="OWNER/NAME", default=None, help="also upload the export to this Hub repo (needs network and a token)")
    parser.add_argument("--merge", action="store_true", help="same as --format hf (kept for older scripts)")


class LineProgress:
    """Progress as plain lines (not a terminal): each stage once, then every quarter of the way."""

    def __init__(self) -> None:
        self.stage: str | None = None
        self.next_quarter = 0.25

    def __call__(self, stage: str, fraction: float | None) -> None:
        if stage != self.stage:
            self.stage, self.next_quarter = stage, 0.25
            print(f"{stage}…", flush=True)
        if fraction is not None and fraction >= self.next_quarter and fraction < 1.0:
            print(f"  {fraction:.0%}", flush=True)
            while self.next_quarter <= fraction:
                self.next_quarter += 0.25


class BarProgress:
    """Progress as rich bars in a terminal: one bar per stage, pulsing while the fraction is unknown."""

    def __init__(self) -> None:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self.bars = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                             TimeElapsedColumn(), transient=False)
        self.tasks: dict[str, int] = {}
        self.current: str | None = None

    def __call__(self, stage: str, fraction: float | None) -> None:
        if stage not in self.tasks:
            if self.current is not None:
                self.bars.update(self.tasks[self.current], completed=1.0, total=1.0)
            self.tasks[stage] = self.bars.add_task(stage, total=None)
            self.current = stage
        if fraction is not None:
            self.bars.update(self.tasks[stage], completed=fraction, total=1.0)

    def finish(self) -> None:
        if self.current is not None:
            self.bars.update(self.tasks[self.current], completed=1.0, total=1.0)
        self.bars.stop()

    def print(self, line: str) -> None:
        self.bars.console.print(line, markup=False, highlight=False)


def run(args: argparse.Namespace) -> int:

    export_format = args.format or ("hf" if args.merge else "adapter")
    options = ExportOptions(
        format=export_format, dtype=args.dtype, quant=args.quant, checkpoint=args.checkpoint,
        output=args.output, force=args.force, push_to_hub=args.push_to_hub,
    ).checked()
    if sys.stdout.isatty():
        bars = BarProgress()
        bars.bars.start()
        try:
            result = export(args.run, options, report=bars.print, progress=bars)
        finally:
            bars.finish()
    else:
        result = export(args.run, options, report=lambda line: print(line, flush=True), progress=LineProgress())
    print(f"wrote {result.path} ({format_bytes(result.weights_bytes)} of weights in {result.seconds:.0f} s)")
    for line in result.next_steps:
        print(f"  {line}")
    return 0
