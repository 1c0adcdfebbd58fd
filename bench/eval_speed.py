"""Evaluation speed: base and tuned together vs one of them alone, on the same rows.

`workbench eval` asks every prompt to every model in one batched generate (base rows and adapter
rows share the weights, routed by row masks), so the second model should cost little on a CPU,
where small-batch decoding is bound by reading the weights. This times `run_evaluation` on the
same rows three ways, greedy, answers only (no loss, no knowledge check) unless --with-loss:

    tuned   the fine-tuned model alone (the LoRA adapter unmerged: the slower of the two)
    base    the base model alone
    both    base + tuned in one evaluation

Target: both <= 1.3x tuned. Each case also reports its decoding steps (forward passes of the model,
the prefill counted as the first) and the rows they carried: a batch runs until its longest answer
ends, so when the base answers at length and the tuned model stops early, the steps alone put a
floor under both / tuned that no per-step saving removes. Rows: the first --rows rows of --data
(default: the identity training set's 300 Alpaca rows, whose references are short answers). The tuned model: --run (a training run,
its final adapter) or --adapter DIR; without either, a random LoRA adapter (r=16, all linear layers,
non-zero B) is made on the fly, which costs the same to run as a trained one.

    .venv/bin/python bench/eval_speed.py [--run RUN | --adapter DIR] [--model default] [--rows 100]
        [--max-new-tokens 48] [--batch-size N [N ...]] [--repeats 1] [--with-loss]

Several --batch-size values run every case at each of them, interleaved in every repeat, so
batch sizes compare under the same load. --previous-engine adds the both case as the engine ran
it before adapters were switched off once their rows are done (kept on until the batch ends),
interleaved with the others.
Tiny check that the script works (seconds):
    .venv/bin/python bench/eval_speed.py --model TINY_DIR --rows 8 --max-new-tokens 4
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

DEFAULT_DATA = Path(__file__).resolve().parent.parent / "sample_data" / "identity_alpaca.json"


class ForwardCounter:
    """A forward pre-hook on the output layer: one call per forward pass of the model (a decoding
    step, or a batch's prefill), with the rows that pass carried (finished rows ride along)."""

    def __init__(self) -> None:
        self.passes = 0
        self.rows = 0

    def __call__(self, _module, args) -> None:
        self.passes += 1
        self.rows += args[0].shape[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--run", help="a training run (name under the runs directory, or its path)")
    which.add_argument("--adapter", type=Path, help="a PEFT adapter directory")
    parser.add_argument("--model", default="default", help="base model (default: SmolLM2-135M-Instruct)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--rows", type=int, default=100)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--batch-size", type=int, nargs="+", default=None,
                        help="prompts per batch, one or several (default: the runner's)")
    parser.add_argument("--repeats", type=int, default=1, help="timed runs per case (median reported)")
    parser.add_argument("--with-loss", action="store_true", help="also score the teacher-forced loss")
    parser.add_argument("--previous-engine", action="store_true",
                        help="also run both with adapters kept on until each batch ends")
    args = parser.parse_args()

    from workbench.allocator import reexec_script_with_allocator, tuned_allocator_loaded

    reexec_script_with_allocator()  # the allocator `workbench eval` runs with
    from engine_setup import make_adapter
    from transformers.utils import logging as hf_logging

    from workbench.cpu_budget import prepare_process
    from workbench.evaluation.rows import load_eval_file
    from workbench.evaluation.runner import BATCH_PROMPTS, EvalModel, EvalPlan, run_evaluation
    from workbench.inference.engine import ChatEngine
    from workbench.inference.settings import SamplingSettings
    from workbench.inference.sources import BASE_SOURCE, resolve_run_dir, run_source, source_from_directory
    from workbench.paths import runs_dir

    prepare_process()
    hf_logging.disable_progress_bar()
    engine = ChatEngine.load(args.model)
    if args.run:
        tuned = run_source(resolve_run_dir(args.run, runs_dir()))
    elif args.adapter:
        tuned = source_from_directory(args.adapter)
    else:
        tuned = source_from_directory(make_adapter(engine.model_path, Path(tempfile.mkdtemp(prefix="eval-speed-"))))
    engine.attach(tuned)
    rows = load_eval_file(args.data).rows[: args.rows]
    metrics = ("exact", "contains", "rougeL", "bleu", "chrf", "length") + (("loss",) if args.with_loss else ())
    base_model, tuned_model = EvalModel("base", BASE_SOURCE, "base", 0), EvalModel("tuned", tuned, tuned.label)

    def plan(models, batch_prompts):
        return EvalPlan(
            models=models, rows=rows, description=args.data.name, metrics=metrics,
            settings=SamplingSettings(temperature=0.0, max_new_tokens=args.max_new_tokens),
            batch_prompts=batch_prompts,
        )

    batch_sizes = args.batch_size or [BATCH_PROMPTS]
    cases = {"tuned": [tuned_model], "base": [base_model], "both": [base_model, tuned_model]}
    if args.previous_engine:
        cases["both-previous"] = [base_model, tuned_model]
    engine_as = {name: previous_engine if name.endswith("-previous") else nullcontext for name in cases}
    runs = [(name, size) for size in batch_sizes for name in cases]
    run_evaluation(engine, plan([base_model, tuned_model], batch_sizes[0]), cancelled=lambda: False)  # warm-up
    counter = ForwardCounter()
    with engine.model_for(BASE_SOURCE) as model:
        model.get_output_embeddings().register_forward_pre_hook(counter)
    timings: dict[tuple[str, int], list[float]] = {run: [] for run in runs}
    tokens: dict[tuple[str, int], int] = {}
    passes: dict[tuple[str, int], tuple[int, int]] = {}
    for _ in range(max(1, args.repeats)):
        for name, size in runs:
            counter.passes = counter.rows = 0
            with engine_as[name]():
                started = time.perf_counter()
                results = run_evaluation(engine, plan(cases[name], size))
                timings[name, size].append(time.perf_counter() - started)
            tokens[name, size] = sum(a["tokens"] for r in results["rows"] for a in r["answers"].values())
            passes[name, size] = (counter.passes, counter.rows)
    medians = {run: statistics.median(values) for run, values in timings.items()}
    print(f"model {engine.model_name} + {tuned.label} · {len(rows)} rows of {args.data.name} · "
          f"max {args.max_new_tokens} new tokens · {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}, "
          f"allocator {'mimalloc' if tuned_allocator_loaded() else 'system'}")
    for size in batch_sizes:
        print(f"batch {size} prompts{' (the runner default)' if size == BATCH_PROMPTS else ''}:")
        for name in cases:
            steps, carried = passes[name, size]
            print(f"  {name:14} {medians[name, size]:7.1f} s  ({tokens[name, size]} answer tokens; {steps} forward "
                  f"passes carrying {carried} rows, {1000 * medians[name, size] / steps:.0f} ms each)")
        both, tuned_alone, base_alone = medians["both", size], medians["tuned", size], medians["base", size]
        print(f"  both / tuned = {both / tuned_alone:.2f} (target <= 1.3); both / base = {both / base_alone:.2f}; "
              f"forward passes both / tuned = {passes['both', size][0] / passes['tuned', size][0]:.2f} "
              f"(the floor the answers' lengths put under both / tuned at equal cost per pass)")
        if args.previous_engine:
            def per_repeat(top: str, bottom: str) -> str:
                return ", ".join(f"{a / b:.2f}" for a, b in zip(timings[top, size], timings[bottom, size]))

            print(f"  both / both-previous per repeat: {per_repeat('both', 'both-previous')}; previous both / tuned "
                  f"{medians['both-previous', size] / tuned_alone:.2f}")
    return 0


@contextmanager
def previous_engine():
    """The engine as it ran before: adapters kept on until their batch ends."""
    from workbench.inference import engine as engine_module

    retire = engine_module._AdapterRetirement.__call__
    engine_module._AdapterRetirement.__call__ = lambda self, finished: None
    try:
        yield
    finally:
        engine_module._AdapterRetirement.__call__ = retire


if __name__ == "__main__":
    raise SystemExit(main())
