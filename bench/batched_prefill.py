"""Batched prefill and decoding: what the output layer's contiguous input and the allocator are worth.

A batch of prompts (half asked to the base model, half to a LoRA adapter, through the chat engine
as eval and decks ask them) is answered with 1 new token (the prefill) and with 33 (the prefill and
32 decoding steps), on the default SmolLM2-135M-Instruct in the Chat pane's dtype. Each case runs
in its own process, under glibc's allocator (WORKBENCH_ALLOCATOR=system) and under mimalloc (what
the workbench's model commands run with, workbench/allocator.py), rounds interleaved; inside a
process the output layer's contiguity hook (workbench/models.py) is removed and put back between
measurements, so both sides see the same load.

    .venv/bin/python bench/batched_prefill.py [--rows 24] [--rounds 2] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


def child(rows: int, repeats: int) -> dict:
    from engine_setup import demo_prompts, engine_with_random_adapter

    engine, tuned = engine_with_random_adapter("default", "prefill-")
    from workbench.allocator import tuned_allocator_loaded
    from workbench.inference.engine import GenerationJob
    from workbench.inference.settings import SamplingSettings
    from workbench.inference.sources import BASE_SOURCE

    prompts = demo_prompts()
    jobs = [
        GenerationJob(source, [{"role": "user", "content": prompts[index % len(prompts)]}], None)
        for index in range(rows // 2) for source in (BASE_SOURCE, tuned)
    ]

    def answer(new_tokens: int) -> float:
        settings = SamplingSettings(temperature=0.0, max_new_tokens=new_tokens)
        started = time.perf_counter()
        engine.generate([GenerationJob(job.source, job.messages, settings) for job in jobs], force_length=True,
                        batch_size=len(jobs))
        return time.perf_counter() - started

    output_layer = engine._base.get_output_embeddings()
    hooks = dict(output_layer._forward_pre_hooks)  # the one load_model installed

    def set_hook(on: bool) -> None:
        output_layer._forward_pre_hooks.clear()
        if on:
            output_layer._forward_pre_hooks.update(hooks)

    assert hooks, "load_model installs the output layer's hook"
    answer(2)
    figures: dict[str, list[tuple[float, float]]] = {"hook": [], "no hook": []}
    for _ in range(repeats):
        for name in figures:
            set_hook(name == "hook")
            prefill = answer(1)
            figures[name].append((prefill, (answer(33) - prefill) / 32))
    set_hook(True)
    return {
        "allocator": "mimalloc" if tuned_allocator_loaded() else "system",
        **{name: {"prefill_s": statistics.median(p for p, _ in values), "step_s": statistics.median(s for _, s in values)}
           for name, values in figures.items()},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=24, help="rows per batch (half base, half adapter)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3, help="measurements per side inside one process")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.rows, args.repeats)))
        return 0
    results: dict[tuple[str, str], list[dict]] = {}
    loads = []
    for _ in range(args.rounds):
        for allocator in ("system", "mimalloc"):
            environment = {**os.environ, "WORKBENCH_ALLOCATOR": allocator}
            if allocator == "mimalloc":
                from workbench.allocator import allocator_environment

                environment.pop("WORKBENCH_ALLOCATOR")
                environment.update(allocator_environment(environment))
            loads.append(os.getloadavg()[0])
            done = subprocess.run(
                [sys.executable, __file__, "--child", "--rows", str(args.rows), "--repeats", str(args.repeats)],
                env=environment, capture_output=True, text=True, check=True,
            )
            figures = json.loads(done.stdout.strip().splitlines()[-1])
            for side in ("hook", "no hook"):
                results.setdefault((figures["allocator"], side), []).append(figures[side])
    print(f"{args.rows} rows (half base, half LoRA r=16) · SmolLM2-135M-Instruct · {os.cpu_count()} CPUs · "
          f"load {min(loads):.1f}-{max(loads):.1f} · {args.rounds} rounds x {args.repeats} repeats")
    print(f"{'allocator':10} {'output layer':18} {'prefill s':>10} {'decode ms/step':>15}")
    for (allocator, side), values in sorted(results.items()):
        label = "contiguous input" if side == "hook" else "strided (before)"
        prefill = statistics.median(v["prefill_s"] for v in values)
        step = statistics.median(v["step_s"] for v in values) * 1000
        print(f"{allocator:10} {label:18} {prefill:10.2f} {step:15.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
