"""A CPU training step with grouped-query attention handed to sdpa as it is, against transformers'
default of repeating the key and value heads first.

With an attention mask, transformers' sdpa path repeats each key/value head for every query head
that shares it (`repeat_kv`, a copy forward and a sum backward) unless `TRANSFORMERS_SDPA_FORCE_GQA`
is set: CUDA's fused kernels take no mask with grouped heads. PyTorch's CPU kernel does take both,
and the packed rows' block mask is always there. So the trainer sets the switch for CPU runs
(`workbench.training.run`). Cases, on the quick-demo-cpu preset's model, precision and first packed
batch (`bench/step_floor.py`'s set-up), a training step each, alternating step by step in an order
that flips every pair:

    repeat     TRANSFORMERS_SDPA_FORCE_GQA=0 (transformers' default)
    grouped    TRANSFORMERS_SDPA_FORCE_GQA=1 (what the trainer runs on CPU)

Also the loss and the adapters' gradients of one batch under each.

    .venv/bin/python bench/sdpa_gqa.py [--steps 40]
    .venv/bin/python bench/sdpa_gqa.py --model TINY_DIR --steps 4      # does it run
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

SWITCH = "TRANSFORMERS_SDPA_FORCE_GQA"
CASES = {"repeat": "0", "grouped": "1"}
SKIPPED_PAIRS = 2


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--data", default=str(ROOT / "sample_data" / "identity_alpaca.json"))
    parser.add_argument("--steps", type=int, default=40, help="steps per case")
    args = parser.parse_args()

    from step_floor import started_cases

    cases = started_cases(args.model, args.data)

    outcomes = {}
    for name, value in CASES.items():
        os.environ[SWITCH] = value
        outcomes[name] = cases.loss_and_gradients()
    (loss_a, grads_a), (loss_b, grads_b) = outcomes.values()
    difference = max((a - b).abs().max().item() for a, b in zip(grads_a, grads_b))
    largest = max(g.abs().max().item() for g in grads_a)

    seconds: dict[str, list[float]] = {name: [] for name in CASES}
    for pair in range(args.steps + SKIPPED_PAIRS):
        order = list(CASES) if pair % 2 else list(reversed(CASES))
        for name in order:
            os.environ[SWITCH] = CASES[name]
            started = time.perf_counter()
            cases.run("step")
            if pair >= SKIPPED_PAIRS:
                seconds[name].append(time.perf_counter() - started)
    median = {name: statistics.median(values) for name, values in seconds.items()}
    ratios = [g / r for g, r in zip(seconds["grouped"], seconds["repeat"])]
    print(f"step, median of {args.steps}: repeat {median['repeat'] * 1e3:.0f} ms, grouped {median['grouped'] * 1e3:.0f} ms; "
          f"grouped / repeat {median['grouped'] / median['repeat']:.3f} (per pair: median {statistics.median(ratios):.3f}, "
          f"quartiles {statistics.quantiles(ratios, n=4)[0]:.3f}-{statistics.quantiles(ratios, n=4)[2]:.3f})")
    print(f"loss of one batch: repeat {loss_a:.6f}, grouped {loss_b:.6f}; adapters' gradients differ by at most "
          f"{difference:.2e} (largest gradient {largest:.2e}); load {os.getloadavg()[0]:.2f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
