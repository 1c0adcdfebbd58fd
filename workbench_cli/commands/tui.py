"""`workbench` / `workbench tui`: open the Textual workbench."""

from __future__ import annotations

import argparse
from screens.app import make_app


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=None, help="model to open: 'default', a local directory or a Hub id")
    parser.add_argument("--config", default=None, help="run config (YAML) to open in the Hyperparameters pane")
    parser.add_argument("--pane", default="data", help="pane to open first: data, memory, hyperparameters, train, chat")


def run(args: argparse.Namespace) -> int:

    app = make_app(model=args.model, config_path=args.config, initial_pane=args.pane)
    app.run()
    return app.return_code or 0
