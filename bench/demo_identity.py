"""The demo's promise, measured: training time on this machine, and what the fine-tuned model learned.

Runs the headless demo pipeline (`workbench demo --headless`: clean the messy sample file, train the
quick demo in a child process, compare) and prints:
- wall time of the training (trainer start to adapter saved, model loading included), and of the comparison;
- the machine's load average while it trained (other work on a 2-core machine slows training);
- held-out hit rates, base vs fine-tuned: 24 identity questions (answer names Sage or Northwind Labs)
  and 8 general questions (the right fact), none of them in the training data. Greedy decoding, the
  system prompt the run trained with.

    .venv/bin/python bench/demo_identity.py [--runs-dir DIR] [--set optimization.learning_rate=3e-4 ...] [--json]

`--set` overrides config fields over the demo recipe, for trying other settings.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


class LoadSampler:
    """The 1-minute load average, sampled every few seconds in a thread."""

    def __init__(self, every_s: float = 5.0) -> None:
        self.samples: list[float] = []
        self._every = every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(os.getloadavg()[0])
            self._stop.wait(self._every)

    def __enter__(self) -> "LoadSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def summary(self) -> dict:
        values = self.samples or [os.getloadavg()[0]]
        return {"mean": round(sum(values) / len(values), 2), "max": round(max(values), 2)}


def parse_override(text: str) -> tuple[str, object]:
    import yaml

    field, _, value = text.partition("=")
    if not field or not _:
        raise argparse.ArgumentTypeError(f"expected FIELD=VALUE, got {text!r}")
    return field, yaml.safe_load(value)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs-dir", type=Path, default=None, help="where the run goes (default: a temporary folder)")
    parser.add_argument("--set", dest="overrides", type=parse_override, action="append", default=[], metavar="FIELD=VALUE")
    parser.add_argument("--json", action="store_true", help="print the figures and every held-out answer as JSON")
    parser.add_argument("--quiet", action="store_true", help="only the figures, not the pipeline's progress")
    args = parser.parse_args()

    from workbench.demo.pipeline import DemoOptions, describe_config, run_demo
    from workbench.devices import detect_devices

    runs_dir = args.runs_dir or Path(tempfile.mkdtemp(prefix="demo-identity-"))
    options = DemoOptions(runs_dir=runs_dir, overrides=dict(args.overrides))
    report = (lambda line: None) if args.quiet or args.json else (lambda line: print(line, flush=True))
    started = time.monotonic()
    with LoadSampler() as load:
        result = run_demo(options, report)
    total = time.monotonic() - started
    heldout = result.heldout
    figures = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": detect_devices().summary(),
        "config": describe_config(result.config),
        "overrides": dict(args.overrides),
        "run_dir": str(result.training.run_dir),
        "train_rows": result.cleaning.export.train_rows,
        "training_s": round(result.training.seconds, 1),
        "training_state": result.training.status.state,
        "steps": result.training.status.step,
        "compare_s": round(result.compare_seconds, 1),
        "total_s": round(total, 1),
        "load_average_1m": load.summary(),
        "identity_hits": {"base": heldout.hits("identity", "base"), "tuned": heldout.hits("identity", "tuned"), "of": heldout.total("identity")},
        "general_hits": {"base": heldout.hits("general", "base"), "tuned": heldout.hits("general", "tuned"), "of": heldout.total("general")},
        "general_knowledge": heldout.headline()[-1:] if heldout.results and heldout.results.get("knowledge") else None,
    }
    if args.json:
        print(json.dumps({**figures, "answers": heldout.to_json()["answers"]}, indent=1, ensure_ascii=False))
        return 0
    identity, general = figures["identity_hits"], figures["general_hits"]
    print()
    print(f"machine: {figures['machine']}; load average while training: mean {figures['load_average_1m']['mean']}, max {figures['load_average_1m']['max']}")
    print(f"recipe: {figures['config']}")
    print(f"training: {figures['training_s']:.0f} s ({figures['steps']} steps, {figures['train_rows']} cleaned rows, {figures['training_state']})")
    print(f"comparison (deck + held-out): {figures['compare_s']:.0f} s; whole pipeline {figures['total_s']:.0f} s")
    print(f"identity held-out: base {identity['base']}/{identity['of']} ({identity['base'] / identity['of']:.0%}), "
          f"fine-tuned {identity['tuned']}/{identity['of']} ({identity['tuned'] / identity['of']:.0%})")
    print(f"general held-out: base {general['base']}/{general['of']}, fine-tuned {general['tuned']}/{general['of']}")
    if figures["general_knowledge"]:
        print(figures["general_knowledge"][0])
    for answer in heldout.answers:
        if answer.question.kind == "general" or not answer.question.is_hit(answer.tuned):
            print(f"  [{answer.question.kind}] {answer.question.prompt}\n     base:  {' '.join(answer.base.split())[:110]}\n     tuned: {' '.join(answer.tuned.split())[:110]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
