"""What one decoding step costs by rows and adapters, and the floor that puts under base + tuned.

`workbench eval` with base + tuned decodes each batch's prompts twice over (a base row and a LoRA
row per prompt) in one batch. Against the tuned model alone, a step then carries n more base rows;
if the adapter's update cost nothing on rows that are not its own, a step of the pair would cost

    ideal = base(2n) + (tuned(n) - base(n))        (the base's step on 2n rows + the adapter's extra)

so ideal / tuned(n) is the least any routing of the adapter can reach per step, and times the
forward-pass ratio that the answers' lengths set (bench/eval_speed.py prints it) it is a floor
under eval's both / tuned. Cases, on the model's own forward pass with its KV cache (no generate):

    base n, base 2n      adapters off
    tuned n, tuned 2n    the adapter on every row
    mixed 2n             n base rows and n LoRA rows, routed by the engine's row masks

The host's speed drifts by tens of percent within seconds, so the cases are interleaved step by
step: each case is prefilled once, then step 1 of every case, step 2 of every case, and so on;
the first 2 steps are dropped and the median reported. Greedy tokens, the default model in the
Chat pane's dtype, a random LoRA (r=16, every linear layer, non-zero B), the workbench's allocator.

    .venv/bin/python bench/decode_steps.py [--rows 24] [--steps 40]
    .venv/bin/python bench/decode_steps.py --model TINY_DIR --rows 2 --steps 4   # does it run
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from contextlib import nullcontext
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

SKIPPED_STEPS = 2


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--rows", type=int, default=24, help="n: the tuned model's rows alone (eval's prompts per batch)")
    parser.add_argument("--steps", type=int, default=40)
    args = parser.parse_args()

    from workbench.allocator import reexec_script_with_allocator, tuned_allocator_loaded

    reexec_script_with_allocator()
    from engine_setup import demo_prompts, engine_with_random_adapter

    engine, tuned = engine_with_random_adapter(args.model, "decode-steps-")
    import torch

    from workbench.inference.engine import BASE_ADAPTER_NAME
    from workbench.inference.prompting import encode_prompt
    from workbench.inference.sources import BASE_SOURCE

    with engine.model_for(tuned) as model:
        adapter = model.active_adapter
    with engine.model_for(BASE_SOURCE) as model:
        peft = model
    prompts = demo_prompts()
    n = args.rows

    def routing(case: str):
        if case.startswith("base"):
            return peft.disable_adapter()
        if case.startswith("tuned"):
            peft.set_adapter(adapter)
            return nullcontext()
        rows = [BASE_ADAPTER_NAME] * n + [adapter] * n
        return engine._row_masks(rows, engine._plain_lora_outputs({adapter}))  # the engine's own routing

    cases = {"base n": n, "base 2n": 2 * n, "tuned n": n, "tuned 2n": 2 * n, "mixed 2n": 2 * n}
    states = {}
    with torch.inference_mode():
        for case, rows in cases.items():
            ids = [encode_prompt(engine.tokenizer, [{"role": "user", "content": prompts[i % len(prompts)]}]) for i in range(rows)]
            input_ids, attention_mask = engine._left_pad(ids)
            with routing(case):
                out = peft(input_ids=input_ids, attention_mask=attention_mask, use_cache=True)
            states[case] = (out.past_key_values, out.logits[:, -1].argmax(-1, keepdim=True), attention_mask)
        times: dict[str, list[float]] = {case: [] for case in cases}
        loads = []
        for _ in range(args.steps):
            loads.append(os.getloadavg()[0])
            for case in cases:
                cache, token, attention_mask = states[case]
                attention_mask = torch.cat([attention_mask, torch.ones_like(token)], dim=1)
                with routing(case):
                    started = time.perf_counter()
                    out = peft(input_ids=token, attention_mask=attention_mask, past_key_values=cache, use_cache=True)
                    token = out.logits[:, -1].argmax(-1, keepdim=True)
                    times[case].append(time.perf_counter() - started)
                states[case] = (out.past_key_values, token, attention_mask)

    step = {case: statistics.median(values[SKIPPED_STEPS:] or values) * 1000 for case, values in times.items()}
    print(f"{engine.model_name} ({next(peft.parameters()).dtype}) + LoRA r=16 (all linear) · n = {n} rows · "
          f"{args.steps} steps interleaved · {os.cpu_count()} CPUs · load {min(loads):.1f}-{max(loads):.1f} · "
          f"allocator {'mimalloc' if tuned_allocator_loaded() else 'system'}")
    for case, rows in cases.items():
        print(f"  {case:9} {rows:4} rows  {step[case]:7.1f} ms per step")
    adapter_extra = step["tuned n"] - step["base n"]
    ideal = step["base 2n"] + adapter_extra
    print(f"  n more base rows: +{step['base 2n'] - step['base n']:.1f} ms; the adapter on n rows: +{adapter_extra:.1f} ms, "
          f"on 2n: +{step['tuned 2n'] - step['base 2n']:.1f} ms")
    print(f"  per step, mixed 2n / tuned n = {step['mixed 2n'] / step['tuned n']:.2f}; the ideal routing's "
          f"(base 2n + the adapter's extra on n) / tuned n = {ideal / step['tuned n']:.2f}: times eval's forward-pass "
          f"ratio, the least both / tuned can be on this machine")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
