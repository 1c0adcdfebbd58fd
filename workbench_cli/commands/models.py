"""`workbench models`: resolve a model (converting the default once) and print where it lives."""

from __future__ import annotations

import argparse
import sys
from workbench.models import resolve_model


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", nargs="?", default="default", help="'default', a local directory or a Hub id")
    parser.add_argument("--cache-dir", default=None, help="cache for the converted default model")
    parser.add_argument("--allow-download", action="store_true", help="download a Hub id that is not cached")


def run(args: argparse.Namespace) -> int:

    def report(stage: str, fraction: float | None) -> None:
        percent = f"{fraction * 100:3.0f}% " if fraction is not None else ""
        print(f"{percent}{stage}", file=sys.stderr, flush=True)

    resolved = resolve_model(
        args.name, allow_download=args.allow_download, cache_override=args.cache_dir, progress=report
    )
    print(f"{resolved.display_name}\t{resolved.source}\t{resolved.path}")
    return 0
