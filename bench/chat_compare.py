"""Chat compare speed: both answers at once vs one answer alone, and the streaming engine vs plain generate.

Model: the default SmolLM2-135M-Instruct in fp32, with a LoRA adapter on every linear layer (r=16,
PEFT's random init for both A and B, so the adapter really changes the outputs). Every answer is
forced to the same length (min_new_tokens = max_new_tokens, end-of-turn ignored) so the timings
compare equal work. Each case runs `--repeats` times after one warm-up; medians are reported.

Cases (all greedy, same prompt):
    plain tuned   PeftModel.generate, batch 1, the adapter active: one fine-tuned answer alone
    plain base    the same with the adapter disabled: one base answer alone
    plain base x2 two base rows in one batch, adapter disabled: what a second row costs without LoRA
    engine one    ChatEngine, the fine-tuned side alone (streamer, cancel check, per-row limits)
    engine pair   ChatEngine, base + fine-tuned rows in one batched generate (adapter_names)

Targets: engine pair wall time <= 1.3x plain tuned; engine one decode tokens/s >= 0.9x plain tuned.

The plain cases run in a fresh thread, as the engine's generate does: on this 2-core machine under
load from other processes, the same plain generate measured 4-8x slower on the main thread than in
a fresh thread (small-op decoding; libgomp's thread team of the main thread), which would flatter
the engine.

    .venv/bin/python bench/chat_compare.py [--new-tokens 64] [--repeats 3] [--threads N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

PROMPT = "Explain what fine-tuning a language model means, with an example."


class TimestampStreamer:
    """Records when each decoding step's tokens arrive (the prompt is the first put)."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def put(self, value) -> None:
        self.times.append(time.perf_counter())

    def end(self) -> None:
        pass


def make_adapter(model_dir: Path, out_dir: Path) -> Path:
    import torch
    from peft import LoraConfig, get_peft_model

    from workbench.models import load_model

    torch.manual_seed(0)
    config = LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", init_lora_weights=False, task_type="CAUSAL_LM")
    get_peft_model(load_model(model_dir), config).save_pretrained(out_dir)
    return out_dir


def plain_generate(model, input_ids, new_tokens: int) -> tuple[float, float]:
    """(wall seconds, decode tokens/s after the first token) for one plain generate call (any batch)."""
    import torch

    streamer = TimestampStreamer()
    started = time.perf_counter()
    with torch.inference_mode():
        model.generate(
            input_ids=input_ids,
            attention_mask=torch.ones_like(input_ids),
            do_sample=False,
            max_new_tokens=new_tokens,
            min_new_tokens=new_tokens,
            streamer=streamer,
        )
    wall = time.perf_counter() - started
    steps = streamer.times[1:]  # the first put is the prompt
    return wall, (len(steps) - 1) / (steps[-1] - steps[0])


def in_fresh_thread(function):
    """Run `function` in a new thread and return its result (the engine runs generate the same way)."""
    import threading

    result = {}
    thread = threading.Thread(target=lambda: result.setdefault("value", function()))
    thread.start()
    thread.join()
    return result["value"]


def engine_generate(engine, jobs) -> tuple[float, list]:
    started = time.perf_counter()
    answers = engine.generate(jobs, force_length=True)
    return time.perf_counter() - started, answers


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument(
        "--dtype", choices=("auto", "fp32", "bf16"), default="auto",
        help="weights' dtype (auto: what the Chat pane uses on this machine, devices.inference_placement)",
    )
    args = parser.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from peft import PeftModel
    from transformers.utils import logging as hf_logging

    from workbench.devices import inference_placement
    from workbench.inference.engine import ChatEngine, GenerationJob
    from workbench.inference.prompting import build_messages, encode_prompt
    from workbench.inference.settings import SamplingSettings
    from workbench.inference.sources import BASE_SOURCE, source_from_directory
    from workbench.models import load_model, load_tokenizer, resolve_model

    dtype = inference_placement()[0] if args.dtype == "auto" else args.dtype
    hf_logging.disable_progress_bar()
    load_start = os.getloadavg()[0]
    resolved = resolve_model(None)
    tokenizer = load_tokenizer(resolved)
    messages = build_messages(None, [], PROMPT)
    input_ids = torch.tensor([encode_prompt(tokenizer, messages)])
    settings = SamplingSettings(max_new_tokens=args.new_tokens)
    results: dict[str, list] = {
        name: [] for name in ("plain tuned", "plain base", "plain base x2", "engine one", "engine pair")
    }
    with tempfile.TemporaryDirectory() as folder:
        adapter_dir = make_adapter(resolved.path, Path(folder) / "adapter")
        plain = PeftModel.from_pretrained(load_model(resolved, dtype=dtype), str(adapter_dir)).eval()
        engine = ChatEngine(load_model(resolved, dtype=dtype), tokenizer, model_path=resolved.path, model_name=resolved.display_name)
        tuned = source_from_directory(adapter_dir)
        engine.attach(tuned)
        one = [GenerationJob(tuned, messages, settings)]
        pair = [GenerationJob(BASE_SOURCE, messages, settings), GenerationJob(tuned, messages, settings)]

        def plain_base(rows: int = 1):
            with plain.disable_adapter():
                return plain_generate(plain, input_ids.repeat(rows, 1), args.new_tokens)

        cases = {
            "plain tuned": lambda: in_fresh_thread(lambda: plain_generate(plain, input_ids, args.new_tokens)),
            "plain base": lambda: in_fresh_thread(plain_base),
            "plain base x2": lambda: in_fresh_thread(lambda: plain_base(2)),
            "engine one": lambda: engine_generate(engine, one),
            "engine pair": lambda: engine_generate(engine, pair),
        }
        for case in cases.values():  # warm-up: first calls pay allocation and lazy initialization
            case()
        for _ in range(args.repeats):  # interleaved, so a burst of load hits every case alike
            for name, case in cases.items():
                results[name].append(case())
        pair_answers = results["engine pair"][-1][1]
        distinct = pair_answers[0].token_ids != pair_answers[1].token_ids
    load_end = os.getloadavg()[0]

    def wall(name: str) -> float:
        return statistics.median(run[0] for run in results[name])

    def plain_rate(name: str) -> float:
        return statistics.median(run[1] for run in results[name])

    def engine_rate(name: str, side: int) -> float:
        return statistics.median(run[1][side].decode_tokens_per_s for run in results[name])

    print(f"model {resolved.display_name} {dtype} · LoRA r=16 all linear · {args.new_tokens} new tokens forced · "
          f"median of {args.repeats} · torch threads {torch.get_num_threads()} · "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')} · load {load_start:.1f} -> {load_end:.1f}")
    print(f"adapter changes the answer: {distinct}")
    print(f"{'case':<14}{'wall s':>9}{'decode tok/s':>14}")
    print(f"{'plain tuned':<14}{wall('plain tuned'):>9.2f}{plain_rate('plain tuned'):>14.1f}")
    print(f"{'plain base':<14}{wall('plain base'):>9.2f}{plain_rate('plain base'):>14.1f}")
    print(f"{'plain base x2':<14}{wall('plain base x2'):>9.2f}{plain_rate('plain base x2'):>14.1f}  (per row)")
    print(f"{'engine one':<14}{wall('engine one'):>9.2f}{engine_rate('engine one', 0):>14.1f}")
    print(f"{'engine pair':<14}{wall('engine pair'):>9.2f}{engine_rate('engine pair', 1):>14.1f}  (per side)")
    pair_ratio = wall("engine pair") / wall("plain tuned")
    serial_ratio = (wall("plain base") + wall("plain tuned")) / wall("plain tuned")
    one_ratio = engine_rate("engine one", 0) / plain_rate("plain tuned")
    print(f"both answers / one answer alone: {pair_ratio:.2f}x (target <= 1.3; one after the other would be {serial_ratio:.2f}x)")
    print(f"engine decode tok/s / plain generate: {one_ratio:.2f}x (target >= 0.9)")
    print(f"pair per-side decode tok/s / plain generate: {engine_rate('engine pair', 1) / plain_rate('plain tuned'):.2f}x")
    print(f"two base rows, no LoRA / one tuned answer: {wall('plain base x2') / wall('plain tuned'):.2f}x (the floor for any batch of two)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
