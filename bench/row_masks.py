"""Mixed base/LoRA decoding: what a batch's second model costs per step, split into its rows and its masks.

The chat engine answers base and LoRA rows in one batch (row masks route each adapter's update to
its own rows: workbench/inference/engine.py); `workbench eval` with base + tuned decodes twice the
rows of the tuned model alone. Cases, inside one process, interleaved in every round (order rotating):

    tuned      the adapter alone on half the rows (what evaluating the tuned model alone runs)
    tuned-all  the adapter alone on all the rows (the rows' share of the second model's cost)
    mixed      half base rows, half adapter rows (what base + tuned runs: the masks' share on top)
    base-all   the base model (adapters off) on all the rows
    mixed-done the mixed batch once its adapter rows have finished (they answer with 1 token and
               ride along): the engine switches the adapter off, so its steps should cost base-all's
               (it skips the min-new-tokens processor below after its first token: ~3.5 ms a step)

Each case answers with 1 new token (the prefill) and with 33 (the prefill and 32 decoding steps),
greedy, every row forced to its length; a decoding step is (t33 - t1) / 32. Forcing the length runs
transformers' min-new-tokens processor at every step (a vocabulary-wide `where`, ~3.5 ms per call at
24 rows in a profile), which evaluation does not, so these steps run a little above eval's. The
adapter: a random LoRA (r=16, every linear layer, non-zero B) on the default SmolLM2-135M-Instruct,
in the Chat pane's dtype, under the allocator the workbench's model commands use.

    .venv/bin/python bench/row_masks.py [--rows 24] [--rounds 3]
    .venv/bin/python bench/row_masks.py --model TINY_DIR --rows 4 --rounds 1   # does it run
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--rows", type=int, default=24, help="rows of a mixed batch (half base, half adapter)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    from workbench.allocator import reexec_script_with_allocator, tuned_allocator_loaded

    reexec_script_with_allocator()
    from engine_setup import demo_prompts, engine_with_random_adapter

    engine, tuned = engine_with_random_adapter(args.model, "row-masks-")
    from workbench.inference.engine import GenerationJob
    from workbench.inference.settings import SamplingSettings
    from workbench.inference.sources import BASE_SOURCE

    prompts = demo_prompts()
    half = max(1, args.rows // 2)
    messages = [[{"role": "user", "content": prompts[index % len(prompts)]}] for index in range(half)]
    batches = {
        "tuned": [(tuned, m) for m in messages],
        "tuned-all": [(tuned, m) for m in messages for _ in range(2)],
        "mixed": [(source, m) for m in messages for source in (BASE_SOURCE, tuned)],
        "base-all": [(BASE_SOURCE, m) for m in messages for _ in range(2)],
        "mixed-done": [(source, m) for m in messages for source in (BASE_SOURCE, tuned)],
    }

    def answer(case: str, new_tokens: int) -> float:
        settings = SamplingSettings(temperature=0.0, max_new_tokens=new_tokens)
        done_at_once = SamplingSettings(temperature=0.0, max_new_tokens=1)
        jobs = [
            GenerationJob(source, m, done_at_once if case == "mixed-done" and source is tuned else settings)
            for source, m in batches[case]
        ]
        started = time.perf_counter()
        engine.generate(jobs, force_length=True, batch_size=len(jobs))
        return time.perf_counter() - started

    answer("mixed", 2)
    steps: dict[str, list[float]] = {case: [] for case in batches}
    prefills: dict[str, list[float]] = {case: [] for case in batches}
    loads = []
    for round_index in range(args.rounds):
        shift = round_index % len(batches)
        order = list(batches)[shift:] + list(batches)[:shift]
        for case in order:
            loads.append(os.getloadavg()[0])
            prefill = answer(case, 1)
            prefills[case].append(prefill)
            steps[case].append((answer(case, 33) - prefill) / 32)
    print(f"{engine.model_name} + LoRA r=16 (all linear) · mixed batch {2 * half} rows, tuned alone {half} · "
          f"{os.cpu_count()} CPUs · load {min(loads):.1f}-{max(loads):.1f} · {args.rounds} rounds, order rotating · "
          f"allocator {'mimalloc' if tuned_allocator_loaded() else 'system'}")
    print(f"{'case':10} {'rows':>5} {'prefill s':>10} {'ms/step':>8}  per round")
    for case in batches:
        median = statistics.median(steps[case]) * 1000
        rounds = ", ".join(f"{value * 1000:.0f}" for value in steps[case])
        print(f"{case:10} {len(batches[case]):5} {statistics.median(prefills[case]):10.2f} {median:8.0f}  {rounds}")

    def per_round(top: str, bottom: str) -> str:
        return ", ".join(f"{a / b:.2f}" for a, b in zip(steps[top], steps[bottom]))

    print(f"per round: mixed / tuned {per_round('mixed', 'tuned')} = rows (tuned-all / tuned) "
          f"{per_round('tuned-all', 'tuned')} x masks (mixed / tuned-all) {per_round('mixed', 'tuned-all')}")
    print(f"per round: mixed-done / base-all {per_round('mixed-done', 'base-all')}; "
          f"mixed-done / mixed {per_round('mixed-done', 'mixed')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
