"""Training throughput: `workbench train`'s trainer against itself before a change, TRL's SFTTrainer
with packing, and this machine's matmul ceilings, in interleaved rounds.

Each measurement runs in a fresh process; one round runs every side once, in an order that rotates
from round to round, and ratios are taken within a round (interleaved pairs), so a load that
changes while the bench runs moves both sides of a ratio alike. The 1-minute load average is
recorded before and after every measurement.

Sides (each on every data set given):
- workbench: this tree's trainer (`workbench.training.run.run_training`) on the quick-demo-cpu
  preset with the data set swapped in (packing, assistant-only loss, LoRA r16 on every linear
  layer, mixed bf16 where native), evaluation and prompt deck off.
- before: the same, run from another checkout (`--before-tree`, e.g. a `git worktree` of the
  commit before a change) with that checkout's own preset and defaults.
- trl: TRL's SFTTrainer (`pip install 'sft-workbench[bench]'`) with packing (best-fit decreasing,
  padding-free), fed the workbench's own tokenized samples (same chat template, same loss mask),
  the same model dtype, attention kernel, LoraConfig, optimizer settings and batch size.

Tokens/s counts the tokens trained between the first and the last logged step (start-up and the
first step's warm-up left out). FLOP/s uses 4N per token (LoRA: forward 2N, backward through the
frozen weights 2N; N = every parameter, so the output layer counts at every position).

Ceilings, measured in a fresh process before the rounds:
- the usual 2048² matmul, bf16 and fp32;
- shape-matched: the model's own linear layers (each decoder layer's q, k, v, o, gate, up, down
  and the output layer) at the run's tokens per step (batch × max_seq_length rows), forward
  (x·Wᵀ) and the backward input gradient (g·W), timed as a whole step's worth of matmuls, in bf16
  and fp32. Its tokens/s is what a step made of nothing but those matmuls would reach; a side's
  share of it is its tokens/s over that.

    .venv/bin/python bench/train_throughput.py --before-tree /tmp/wb-before --trl \\
        --data sample_data/identity_alpaca.json sample_data/bikeshop_sharegpt.json ALPACA_DEMO:512

LLaMA-Factory's alpaca demo (`data/alpaca_en_demo.json`) is in its source package:
`pip download llamafactory==0.9.5 --no-deps --no-binary :all:` and unpack it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

THIS_ROOT = Path(__file__).resolve().parent.parent


def _tree_from_argv() -> Path:
    """The checkout whose `workbench` a side imports (--root), before anything imports it."""
    if "--root" in sys.argv:
        return Path(sys.argv[sys.argv.index("--root") + 1]).resolve()
    return THIS_ROOT


TREE = _tree_from_argv()
sys.path.insert(0, str(TREE))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Every side runs under the thread policy every workbench process uses (passive OpenMP waiting),
# set before torch starts its thread pool.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


# -- one side, in its own process -----------------------------------------------------------------


def side_config(data: str, max_seq_length: int | None, steps: int, overrides: list[str]):
    """The quick-demo-cpu preset of the imported tree with `data` swapped in, evaluation off."""
    from workbench.config.presets import QUICK_DEMO

    config = QUICK_DEMO.config()
    config.data.train_file = str(Path(data).resolve())
    config.data.validation_split = 0.0  # no evaluation: pure training throughput
    if max_seq_length:
        config.data.max_seq_length = max_seq_length
    config.optimization.max_steps = steps
    config.evaluation.save_steps = 100_000
    config.prompts = []
    for item in overrides:
        dotted, value = item.split("=", 1)
        section, name = dotted.split(".")
        import yaml

        setattr(getattr(config, section), name, yaml.safe_load(value))
    return config


def workbench_side(config, workdir: Path) -> dict:
    """The real trainer in this process; tokens and times from its events."""
    try:
        from workbench.runs.rundir import read_events
    except ImportError:  # a --before-tree from before the run watchers left workbench/training/
        from workbench.training.rundir import read_events
    from workbench.training.run import run_training

    run_dir = workdir / "run"
    code = run_training(config, run_dir, report=lambda line: None)
    if code != 0:
        raise SystemExit(f"workbench run failed; see {run_dir}")
    train = [event for event in read_events(run_dir) if event["event"] == "train"]
    start = next(event for event in read_events(run_dir) if event["event"] == "start")
    marks = [(event["time"], event["tokens_seen"]) for event in train]
    return {**_rate(marks), "rows": start.get("num_train_rows"), "precision": start.get("precision")}


def trl_side(config, workdir: Path) -> dict:
    """TRL's SFTTrainer with BFD packing on the workbench's tokenized samples."""
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, TrainerCallback
    from trl import SFTConfig, SFTTrainer

    from workbench.config.hf_arguments import build_from_pretrained_arguments, build_lora_config, run_facts
    from workbench.data.chat_templates import load_run_tokenizer
    from workbench.models import resolve_model, safetensors_model_path
    from workbench.training.examples import prepare_data
    from workbench.models import quiet_transformers

    quiet_transformers()
    tokenizer = load_run_tokenizer(config).tokenizer
    data = prepare_data(config, tokenizer, lambda line: None)
    dataset = Dataset.from_list([{"input_ids": s.input_ids, "labels": s.labels} for s in data.train])
    facts = run_facts(config, workdir, on_gpu=False, world_size=1, has_eval=False)
    model = AutoModelForCausalLM.from_pretrained(
        safetensors_model_path(resolve_model(config.model.name_or_path)), **build_from_pretrained_arguments(config, facts)
    )
    model.config.use_cache = False  # padding-free batches are isolated only without the KV cache
    marks: list[tuple[float, int]] = []

    class Clock(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                marks.append((time.time(), state.num_input_tokens_seen))

    o = config.optimization
    arguments = SFTConfig(
        output_dir=str(workdir / "trl"),
        packing=True,
        packing_strategy="bfd",
        max_length=config.data.max_seq_length,
        per_device_train_batch_size=o.per_device_train_batch_size,
        learning_rate=o.learning_rate,
        max_steps=o.max_steps,
        lr_scheduler_type=o.lr_scheduler_type,
        warmup_steps=o.warmup_ratio,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        use_cpu=True,
        seed=o.seed,
        include_num_input_tokens_seen="non_padding",
        bf16=facts.precision.autocast == "bf16",
    )
    trainer = SFTTrainer(
        model=model, args=arguments, train_dataset=dataset, processing_class=tokenizer,
        peft_config=build_lora_config(config), callbacks=[Clock()],
    )
    from transformers.trainer_callback import PrinterCallback

    trainer.remove_callback(PrinterCallback)
    torch.manual_seed(o.seed)
    trainer.train()
    return {**_rate(marks), "rows": len(trainer.train_dataset), "precision": facts.precision.label}


def _rate(marks: list[tuple[float, int]]) -> dict:
    (t0, n0), (t1, n1) = marks[0], marks[-1]
    return {"tokens": n1 - n0, "seconds": t1 - t0, "steps": len(marks) - 1, "tokens_per_s": (n1 - n0) / (t1 - t0)}


def run_side(args) -> None:
    try:
        from workbench.cpu_budget import prepare_process
    except ImportError:  # a --before-tree from before the CPU budget: this script set passive waiting
        pass
    else:
        prepare_process()
    config = side_config(args.data, args.max_seq_length, args.steps, args.set or [])
    started_cpu = time.process_time()
    with tempfile.TemporaryDirectory(prefix="train-bench-") as folder:
        result = (trl_side if args.side == "trl" else workbench_side)(config, Path(folder))
    result["cpu_seconds_total"] = time.process_time() - started_cpu
    result["lora_dropout"] = config.method.lora_dropout
    print("RESULT " + json.dumps(result), flush=True)


# -- ceilings, in their own process ---------------------------------------------------------------


def _best_seconds(function, repeats: int) -> float:
    # warm up for a second: the first AMX/AVX-512 calls of a process run at a fraction of full speed
    warm_until = time.perf_counter() + 1.0
    while time.perf_counter() < warm_until:
        function()
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - started)
    return best


def square_ceiling(dtype, size: int = 2048, repeats: int = 20) -> float:
    """GFLOP/s of one size² matmul (best of `repeats`)."""
    import torch

    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    return 2 * size**3 / _best_seconds(lambda: a @ b, repeats) / 1e9


def model_linear_shapes(model_config) -> list[tuple[int, int, int]]:
    """(in_features, out_features, count) of every linear layer of a Llama-style model, output layer included."""
    hidden = model_config.hidden_size
    heads = model_config.num_attention_heads
    head_dim = getattr(model_config, "head_dim", None) or hidden // heads
    kv = model_config.num_key_value_heads * head_dim
    inter = model_config.intermediate_size
    layers = model_config.num_hidden_layers
    per_layer = [(hidden, heads * head_dim), (hidden, kv), (hidden, kv), (heads * head_dim, hidden),
                 (hidden, inter), (hidden, inter), (inter, hidden)]
    shapes = [(k, n, layers) for k, n in per_layer]
    return [*shapes, (hidden, model_config.vocab_size, 1)]


def shape_matched_ceiling(model_config, rows: int, dtype, repeats: int = 10) -> dict:
    """One training step's worth of the model's linear matmuls at `rows` tokens: forward x·Wᵀ and
    the backward input gradient g·W for every layer. Returns the step time, tokens/s and GFLOP/s."""
    import torch

    cases = []
    for k, n, count in model_linear_shapes(model_config):
        x, w, g = torch.randn(rows, k, dtype=dtype), torch.randn(n, k, dtype=dtype), torch.randn(rows, n, dtype=dtype)
        cases.append((x, w, g, count))

    def one_shape(x, w, g):
        torch.nn.functional.linear(x, w)
        g @ w

    seconds = sum(count * _best_seconds(lambda: one_shape(x, w, g), repeats) for x, w, g, count in cases)
    flops = sum(4 * rows * k * n * count for k, n, count in model_linear_shapes(model_config))
    return {"step_seconds": seconds, "tokens_per_s": rows / seconds, "gflops": flops / seconds / 1e9,
            "flops_per_token": flops / rows}


def run_ceilings(args) -> None:
    import torch
    from transformers import AutoConfig

    from workbench.cpu_budget import prepare_process
    from workbench.models import resolve_model

    prepare_process()
    config = side_config(args.data, args.max_seq_length, args.steps, [])
    model_config = AutoConfig.from_pretrained(resolve_model(config.model.name_or_path).path)
    rows = config.optimization.per_device_train_batch_size * config.data.max_seq_length
    result = {"rows": rows, "threads": torch.get_num_threads()}
    for name, dtype in (("bf16", torch.bfloat16), ("fp32", torch.float32)):
        result[f"square_{name}_gflops"] = square_ceiling(dtype)
        result[f"shape_{name}"] = shape_matched_ceiling(model_config, rows, dtype)
    print("RESULT " + json.dumps(result), flush=True)


# -- the orchestrator ---------------------------------------------------------------------------


def _subprocess(argv: list[str], environment: dict[str, str]) -> dict:
    load_before = os.getloadavg()[0]
    started = time.time()
    done = subprocess.run([sys.executable, str(Path(__file__).resolve()), *argv], capture_output=True, text=True,
                          env=environment, cwd=THIS_ROOT)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"{' '.join(argv)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    result = json.loads(lines[-1].removeprefix("RESULT "))
    result.update(load_before=load_before, load_after=os.getloadavg()[0], wall_s=time.time() - started)
    return result


def _environment(allocator: str) -> dict[str, str]:
    sys.path.insert(0, str(THIS_ROOT))
    environment = {**os.environ, "WORKBENCH_CPU_BUDGET_DIR": tempfile.mkdtemp(prefix="bench-cpu-budget-")}
    if allocator == "mimalloc":
        from workbench.allocator import allocator_environment

        extra = allocator_environment()
        if not extra:
            raise SystemExit("--allocator mimalloc: cmeel-mimalloc is not installed here; use --allocator system")
        environment.update(extra)
    return environment


def cpu_model() -> str:
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", default=["sample_data/identity_alpaca.json"],
                        help="data sets, each FILE or FILE:MAX_SEQ_LENGTH (default: the preset's 256)")
    parser.add_argument("--steps", type=int, default=14, help="optimizer steps per measurement")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds (each runs every side once)")
    parser.add_argument("--before-tree", help="another checkout to run as the 'before' side (same venv)")
    parser.add_argument("--trl", action="store_true", help="also run TRL's SFTTrainer with packing")
    parser.add_argument("--set", action="append", default=[],
                        help="SECTION.FIELD=VALUE for this tree's workbench side (e.g. optimization.torch_compile=true)")
    parser.add_argument("--variant", action="append", default=[],
                        help="NAME:SECTION.FIELD=VALUE[,...]: an extra workbench side of this tree with these settings")
    parser.add_argument("--allocator", choices=("mimalloc", "system"), default="mimalloc",
                        help="allocator for every side alike (mimalloc: what `workbench train` runs with)")
    parser.add_argument("--json", help="write every measurement here")
    # internal: one measurement
    parser.add_argument("--side", choices=("workbench", "trl", "ceilings"))
    parser.add_argument("--root")
    parser.add_argument("--max-seq-length", type=int)
    args = parser.parse_args()
    if args.side:
        args.data = args.data[0]
        return run_ceilings(args) if args.side == "ceilings" else run_side(args)

    environment = _environment(args.allocator)
    sides: list[tuple[str, list[str]]] = [("workbench", ["--side", "workbench", *sum((["--set", s] for s in args.set), [])])]
    for variant in args.variant:
        name, settings = variant.split(":", 1)
        sides.append((name, ["--side", "workbench", *sum((["--set", s] for s in settings.split(",")), [])]))
    if args.before_tree:
        sides.append(("before", ["--side", "workbench", "--root", str(Path(args.before_tree).resolve())]))
    if args.trl:
        sides.append(("trl", ["--side", "trl"]))

    record = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "cpu": cpu_model(),
              "cores": os.cpu_count(), "allocator": args.allocator, "steps": args.steps, "data": {}}
    print(f"{record['date']} · {record['cpu']} · {record['cores']} cores · allocator {args.allocator} · "
          f"load {os.getloadavg()[0]:.2f}", flush=True)
    for item in args.data:
        data, _, length = item.partition(":")
        common = ["--data", data, "--steps", str(args.steps), *(["--max-seq-length", length] if length else [])]
        ceilings = _subprocess(["--side", "ceilings", *common], environment)
        rounds = []
        for number in range(args.rounds):
            shift = number % len(sides)
            order = sides[shift:] + sides[:shift]
            measured = {}
            for name, argv in order:
                measured[name] = _subprocess([*argv, *common], environment)
                m = measured[name]
                print(f"  {Path(data).name} round {number + 1} {name:>10}: {m['tokens_per_s']:7.1f} tokens/s "
                      f"(load {m['load_before']:.2f}→{m['load_after']:.2f})", flush=True)
            rounds.append(measured)
        record["data"][item] = {"ceilings": ceilings, "rounds": rounds}
        print_summary(item, ceilings, rounds, [name for name, _ in sides])
    if args.json:
        Path(args.json).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def print_summary(item: str, ceilings: dict, rounds: list[dict], names: list[str]) -> None:
    """Median tokens/s per side, shares of the ceilings, and the within-round ratios to 'workbench'."""
    bf16, fp32 = ceilings["shape_bf16"], ceilings["shape_fp32"]
    per_token = bf16["flops_per_token"]
    print(f"\n{item}: {ceilings['rows']} tokens per step; ceilings (GFLOP/s at 4N): 2048² bf16 "
          f"{ceilings['square_bf16_gflops']:.0f}, fp32 {ceilings['square_fp32_gflops']:.0f}; shape-matched bf16 "
          f"{bf16['gflops']:.0f} ({bf16['tokens_per_s']:.0f} tokens/s), fp32 {fp32['gflops']:.0f} "
          f"({fp32['tokens_per_s']:.0f} tokens/s)")
    print("| side | tokens/s (median) | GFLOP/s | of shape-matched bf16 | of 2048² bf16 | of shape-matched fp32 "
          "| workbench ÷ side (per round) |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for name in names:
        rates = [measured[name]["tokens_per_s"] for measured in rounds]
        rate = _median(rates)
        gflops = rate * per_token / 1e9
        ratios = [measured["workbench"]["tokens_per_s"] / measured[name]["tokens_per_s"] for measured in rounds]
        ratio_text = "" if name == "workbench" else ", ".join(f"{r:.2f}×" for r in ratios)
        print(f"| {name} | {rate:.1f} | {gflops:.0f} | {rate / bf16['tokens_per_s']:.0%} "
              f"| {gflops / ceilings['square_bf16_gflops']:.0%} | {rate / fp32['tokens_per_s']:.0%} | {ratio_text} |")
    print(flush=True)


if __name__ == "__main__":
    main()
