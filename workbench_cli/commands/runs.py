"""`workbench runs`: the training runs, their state (a vanished trainer shows as dead), step and best eval loss."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from workbench.errors import WorkbenchError
from workbench.paths import runs_dir
from workbench.runs.monitor import summarize_runs
from workbench.runs.launch import stop_run


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--runs-dir", type=Path, default=None, help="where runs live (default: ./runs)")
    parser.add_argument("--json", action="store_true", help="one JSON object per run, for scripts")
    parser.add_argument("--stop", type=Path, default=None, metavar="RUN_DIR", help="ask a running run to stop (it saves a checkpoint)")


def _age(started_at: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(started_at)) if started_at else "-"


def run(args: argparse.Namespace) -> int:

    if args.stop is not None:

        if not stop_run(args.stop):
            raise WorkbenchError(f"{args.stop}: no running trainer to stop")
        print(f"asked {args.stop} to stop; it saves a checkpoint first")
        return 0

    root = runs_dir(args.runs_dir)
    summaries = summarize_runs(root)
    if args.json:
        for summary in summaries:
            print(json.dumps({
                "run_dir": str(summary.run_dir), "name": summary.name, "state": summary.state,
                "step": summary.step, "max_steps": summary.max_steps, "best_eval_loss": summary.best_eval_loss,
                "started_at": summary.started_at, "reason": summary.reason, "can_resume": summary.can_resume,
            }))
        return 0
    if not summaries:
        print(f"no runs under {root}")
        return 0
    rows = [("RUN", "STATE", "STEP", "BEST EVAL", "STARTED", "NOTE")]
    for s in summaries:
        steps = f"{s.step}/{s.max_steps}" if s.max_steps else str(s.step)
        best = f"{s.best_eval_loss:.4f}" if s.best_eval_loss is not None else "-"
        note = s.reason or ("resume with `workbench train --resume RUN`" if s.can_resume else "")
        rows.append((s.run_dir.name, s.state, steps, best, _age(s.started_at), note[:70]))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    for row in rows:
        print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:5])) + "  " + row[5])
    return 0
