"""Batched decks: N prompts × base and tuned in batches, against one prompt × both sides.

Model: the default SmolLM2-135M-Instruct in the Chat pane's dtype (bf16 where native), with a LoRA
adapter on every linear layer (r=16, PEFT's random init for A and B, so the tuned side really
differs). The prompts are the demo deck's (sample_data/demo_prompts.txt, cycled). Every answer is
forced to `--new-tokens` (end-of-turn ignored) so each row does the same work; `--natural` lets
answers stop at their end-of-turn token instead, as `workbench compare` does.

Cases, each through `DeckReplay` (what `workbench compare`, the deck dialog and the demo run):

    one prompt     1 prompt × both sides (2 rows, one batch)
    deck batched   N prompts × both sides in batches of `--batch-size` rows (default: the deck's)
    deck serial    the same N prompts one at a time (batches of 2 rows: the old way), with --serial

After one warm-up of each, the cases run `--repeats` times interleaved (one of each per round), so a
burst of load from other processes hits every case alike; medians are reported with the load
average before and after every round.

Target (issue 16): 10 prompts × both sides at 64 tokens in <= 2.5× the time of one prompt × both sides.

    .venv/bin/python bench/deck_batching.py [--prompts 10] [--new-tokens 64] [--repeats 3] [--serial] [--json]
    .venv/bin/python bench/deck_batching.py --prompts 3 --new-tokens 4 --repeats 1   # a quick check that it runs
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

from workbench.allocator import reexec_script_with_allocator  # noqa: E402
from workbench.cpu_budget import prepare_process  # noqa: E402

reexec_script_with_allocator()  # the allocator `workbench compare` and the TUI run with
prepare_process()  # as every workbench process: before torch starts its threads


def make_adapter(model_dir: Path, out_dir: Path) -> Path:
    import torch
    from peft import LoraConfig, get_peft_model

    from workbench.models import load_model

    torch.manual_seed(0)
    config = LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", init_lora_weights=False, task_type="CAUSAL_LM")
    get_peft_model(load_model(model_dir), config).save_pretrained(out_dir)
    return out_dir


def cpu_model() -> str:
    from workbench.devices import detect_devices

    return detect_devices().cpu.name


def main() -> int:
    from workbench.inference.settings import DEFAULT_DECK_BATCH_SIZE

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=10, help="prompts in the deck (default 10)")
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=DEFAULT_DECK_BATCH_SIZE, help="rows per batch (prompt × side)")
    parser.add_argument("--serial", action="store_true", help="also time the deck one prompt at a time (slow: N× one prompt)")
    parser.add_argument("--natural", action="store_true", help="stop answers at end-of-turn instead of forcing the length")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = parser.parse_args()

    import torch
    from transformers.utils import logging as hf_logging

    from workbench.devices import inference_placement
    from workbench.inference.deck import DeckReplay, read_prompt_file
    from workbench.inference.engine import ChatEngine
    from workbench.inference.settings import SamplingSettings
    from workbench.inference.sources import BASE_SOURCE, source_from_directory
    from workbench.models import load_model, load_tokenizer, resolve_model

    hf_logging.disable_progress_bar()
    deck = read_prompt_file(ROOT / "sample_data" / "demo_prompts.txt")
    prompts = [deck[index % len(deck)] for index in range(args.prompts)]
    dtype, device = inference_placement()
    resolved = resolve_model(None)
    settings = SamplingSettings(max_new_tokens=args.new_tokens)
    force = not args.natural
    loads: list[tuple[float, float]] = []
    results: dict[str, list[dict]] = {"one prompt": [], "deck batched": []}
    if args.serial:
        results["deck serial"] = []
    with tempfile.TemporaryDirectory() as folder:
        tuned = source_from_directory(make_adapter(resolved.path, Path(folder) / "adapter"))
        engine = ChatEngine(
            load_model(resolved, dtype=dtype, device=device), load_tokenizer(resolved),
            model_path=resolved.path, model_name=resolved.display_name,
        )
        engine.attach(tuned)
        sides = [BASE_SOURCE, tuned]
        cases = {
            "one prompt": lambda: DeckReplay(engine, sides, prompts[:1], settings, batch_size=args.batch_size, force_length=force),
            "deck batched": lambda: DeckReplay(engine, sides, prompts, settings, batch_size=args.batch_size, force_length=force),
            "deck serial": lambda: DeckReplay(engine, sides, prompts, settings, batch_size=2, force_length=force),
        }

        def timed(name: str) -> dict:
            started = time.perf_counter()
            rows = list(cases[name]().rows())
            wall = time.perf_counter() - started
            tokens = sum(answer.tokens for row in rows for answer in row.answers)
            return {"wall_s": wall, "tokens": tokens, "distinct": all(r.answers[0].token_ids != r.answers[1].token_ids for r in rows)}

        for name in results:  # warm-up: first calls pay allocation and lazy initialization
            timed(name)
        for _ in range(args.repeats):
            before = os.getloadavg()[0]
            for name in results:
                results[name].append(timed(name))
            loads.append((before, os.getloadavg()[0]))

    def wall(name: str) -> float:
        return statistics.median(run["wall_s"] for run in results[name])

    figures = {
        "machine": cpu_model(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "dtype": dtype,
        "model": resolved.display_name,
        "prompts": args.prompts,
        "new_tokens": args.new_tokens,
        "forced_length": force,
        "batch_size": args.batch_size,
        "repeats": args.repeats,
        "load_per_round": [[round(a, 2), round(b, 2)] for a, b in loads],
        "median_wall_s": {name: round(wall(name), 3) for name in results},
        "tokens": {name: results[name][-1]["tokens"] for name in results},
        "adapter_changes_answers": all(run["distinct"] for runs in results.values() for run in runs),
        "batched_over_one": round(wall("deck batched") / wall("one prompt"), 3),
    }
    if args.serial:
        figures["serial_over_one"] = round(wall("deck serial") / wall("one prompt"), 3)
        figures["serial_over_batched"] = round(wall("deck serial") / wall("deck batched"), 3)
    if args.json:
        print(json.dumps(figures, indent=1))
        return 0
    print(f"{figures['model']} {dtype} · LoRA r=16 all linear · {args.new_tokens} new tokens "
          f"{'forced' if force else 'or end-of-turn'} · batch {args.batch_size} rows · median of {args.repeats} · "
          f"torch threads {figures['torch_threads']} · {figures['machine']}")
    print("load average per round (before -> after): " + ", ".join(f"{a:.1f}->{b:.1f}" for a, b in loads))
    print(f"{'case':<14}{'wall s':>9}{'tokens':>8}")
    for name in results:
        print(f"{name:<14}{wall(name):>9.2f}{figures['tokens'][name]:>8}")
    print(f"{args.prompts} prompts × both sides / one prompt × both sides: {figures['batched_over_one']:.2f}x "
          f"(target <= 2.5 at 10 prompts, 64 tokens)")
    if args.serial:
        print(f"one prompt at a time / one prompt: {figures['serial_over_one']:.2f}x; "
              f"batching is {figures['serial_over_batched']:.2f}x faster than one at a time")
    print(f"adapter changes the answers: {figures['adapter_changes_answers']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
