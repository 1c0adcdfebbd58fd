"""Training throughput: `workbench train` (packing) against a plain transformers Trainer with the
default padding collator, same model, LoRA config, data and batch size, in one process.

Measures, for each: effective tokens/s (non-padding tokens per wall-clock second between the first and
the last logged step, so start-up and the first step's warm-up are left out) and achieved FLOP/s at
4N FLOPs per token (LoRA: forward 2N, backward through frozen weights 2N), as a fraction of this
machine's fp32 matmul ceiling measured here with a 2048² sgemm. The same ratio is also given per
CPU-second this process used (sampled in the background), which changes less when other work shares
the cores.

    .venv/bin/python bench/train_throughput.py             # both trainers, 12 steps each
    .venv/bin/python bench/train_throughput.py --demo      # also time the Quick demo preset end to end
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from workbench.cpu_budget import prepare_process  # noqa: E402

# Both trainers run in this process under the thread policy every workbench process uses;
# it has to be in place before torch starts its thread pool.
prepare_process()


class CpuClock:
    """Samples (wall time, this process's CPU time) in the background, to price any wall-clock window in CPU-seconds."""

    def __init__(self, interval_s: float = 0.2) -> None:
        import threading

        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(interval_s,), daemon=True)
        self._thread.start()

    def _run(self, interval_s: float) -> None:
        while not self._stop.is_set():
            self.samples.append((time.time(), time.process_time()))
            self._stop.wait(interval_s)

    def cpu_at(self, wall: float) -> float:
        import bisect

        index = bisect.bisect_left(self.samples, (wall, 0.0))
        if index == 0:
            return self.samples[0][1]
        if index >= len(self.samples):
            return self.samples[-1][1]
        (w0, c0), (w1, c1) = self.samples[index - 1], self.samples[index]
        return c0 + (c1 - c0) * (wall - w0) / (w1 - w0)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def matmul_ceiling(size: int = 2048, repeats: int = 10) -> tuple[float, float]:
    """fp32 sgemm with torch's default threads: (best GFLOP/s of wall time, GFLOP per CPU-second)."""
    import torch

    a, b = torch.randn(size, size), torch.randn(size, size)
    for _ in range(3):
        a @ b
    best, cpu_total, wall_total = float("inf"), 0.0, 0.0
    for _ in range(repeats):
        started, cpu_started = time.perf_counter(), time.process_time()
        a @ b
        elapsed = time.perf_counter() - started
        best = min(best, elapsed)
        wall_total += elapsed
        cpu_total += time.process_time() - cpu_started
    flops = 2 * size**3
    return flops / best / 1e9, flops * repeats / cpu_total / 1e9


def bench_config(args):
    from workbench.config.presets import QUICK_DEMO

    config = QUICK_DEMO.config()
    config.data.train_file = str(ROOT / args.data)
    config.data.validation_split = 0.0  # no evaluation: pure training throughput
    config.data.max_seq_length = args.max_seq_length
    config.model.precision = args.precision
    config.optimization.max_steps = args.steps
    config.optimization.per_device_train_batch_size = args.batch_size
    config.evaluation.save_steps = 10_000
    config.prompts = []
    return config


def workbench_throughput(config, workdir: Path, clock: CpuClock) -> dict:
    """Run the real trainer in this process and read its events."""
    from workbench.training.rundir import read_events
    from workbench.training.run import run_training

    run_dir = workdir / "workbench-run"
    code = run_training(config, run_dir, report=lambda line: None)
    if code != 0:
        raise SystemExit(f"workbench run failed; see {run_dir}")
    train = [event for event in read_events(run_dir) if event["event"] == "train"]
    return _rate([(event["time"], event["tokens_seen"]) for event in train], clock)


def baseline_throughput(config, clock: CpuClock) -> dict:
    """A plain Trainer: same samples (same chat template and loss mask), padded per batch by
    DataCollatorForSeq2Seq, no packing."""
    import torch
    from transformers import DataCollatorForSeq2Seq, Trainer, TrainerCallback, TrainingArguments

    from workbench.config.hf_arguments import run_facts
    from workbench.models import load_tokenizer, resolve_model
    from workbench.training.examples import prepare_data
    from workbench.training.model_setup import build_training_model, quiet_transformers

    quiet_transformers()
    resolved = resolve_model(config.model.name_or_path)
    tokenizer = load_tokenizer(resolved)
    data = prepare_data(config, tokenizer, report=lambda line: None)
    rows = [{"input_ids": s.input_ids, "labels": s.labels, "attention_mask": [1] * len(s)} for s in data.train]
    facts = run_facts(config, tempfile.mkdtemp(prefix="baseline-"), on_gpu=False, world_size=1, has_eval=False)
    precision = facts.precision
    model = build_training_model(config, resolved, facts)
    marks: list[tuple[float, int]] = []

    class Clock(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                marks.append((time.time(), state.num_input_tokens_seen))

    o = config.optimization
    arguments = TrainingArguments(
        output_dir=tempfile.mkdtemp(prefix="baseline-"),
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
        remove_unused_columns=False,
        bf16=precision.autocast == "bf16",
    )
    from transformers.trainer_callback import PrinterCallback

    trainer = Trainer(
        model=model,
        args=arguments,
        train_dataset=rows,
        data_collator=DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100),
        callbacks=[Clock()],
    )
    trainer.remove_callback(PrinterCallback)
    torch.manual_seed(o.seed)
    trainer.train()
    return _rate(marks, clock)


def _rate(marks: list[tuple[float, int]], clock: CpuClock) -> dict:
    """Tokens/s between the first and the last logged step (the first step's warm-up excluded)."""
    (t0, n0), (t1, n1) = marks[0], marks[-1]
    cpu = clock.cpu_at(t1) - clock.cpu_at(t0)
    return {
        "tokens": n1 - n0, "seconds": t1 - t0, "cpu_seconds": cpu, "steps": len(marks) - 1,
        "tokens_per_s": (n1 - n0) / (t1 - t0), "tokens_per_cpu_s": (n1 - n0) / cpu,
    }


def time_quick_demo(workdir: Path) -> dict:
    """The Quick demo preset through `workbench train`, as a user runs it: wall-clock from the command to its end."""
    from workbench.config.io import save_config
    from workbench.config.presets import QUICK_DEMO
    from workbench.training.rundir import read_events, read_status

    config = QUICK_DEMO.config()
    config.data.train_file = str(ROOT / config.data.train_file)
    config_path = save_config(config, workdir / "quick-demo.yaml")
    run_dir = workdir / "quick-demo-run"
    started, started_wall = time.monotonic(), time.time()
    subprocess.run(
        [sys.executable, "-m", "workbench", "train", str(config_path), "--run-dir", str(run_dir)],
        cwd=ROOT, check=True, stdout=subprocess.DEVNULL,
    )
    total = time.monotonic() - started
    events = read_events(run_dir)
    start = next(event for event in events if event["event"] == "start")
    train = [event for event in events if event["event"] == "train"]
    evals = [event for event in events if event["event"] == "eval"]
    samples = [event for event in events if event["event"] == "samples"]
    return {
        "wall_s": total,
        "until_first_step_s": train[0]["time"] - started_wall,
        "training_s": train[-1]["time"] - start["time"],
        "steps": train[-1]["step"],
        "state": read_status(run_dir).state,
        "eval_losses": [round(event["eval_loss"], 4) for event in evals],
        "first_loss": train[0]["loss"],
        "last_loss": train[-1]["loss"],
        "last_samples": samples[-1]["samples"] if samples else [],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--max-seq-length", type=int, default=256)
    parser.add_argument("--data", default="sample_data/identity_alpaca.json")
    parser.add_argument("--precision", default="fp32", help="model.precision for both trainers (the Quick demo uses fp32)")
    parser.add_argument(
        "--baseline-batch-size", type=int, default=None,
        help="also run the baseline with this many samples per step (e.g. as many as a packed step holds)",
    )
    parser.add_argument("--demo", action="store_true", help="also time the Quick demo preset end to end")
    args = parser.parse_args()

    import torch

    from workbench.models import load_model, resolve_model

    clock = CpuClock()

    print(f"load average at start: {os.getloadavg()[0]:.2f}; torch threads: {torch.get_num_threads()}; "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}")
    ceiling, ceiling_per_cpu_s = matmul_ceiling()
    base_params = sum(p.numel() for p in load_model(resolve_model(None)).parameters())
    flops_per_token = 4 * base_params
    config = bench_config(args)
    with tempfile.TemporaryDirectory(prefix="train-bench-") as folder:
        workdir = Path(folder)
        ours = workbench_throughput(config, workdir, clock)
        baseline = baseline_throughput(config, clock)
        extra = {}
        if args.baseline_batch_size:
            larger = config.model_copy(deep=True)
            larger.optimization.per_device_train_batch_size = args.baseline_batch_size
            extra[f"baseline_bs{args.baseline_batch_size}"] = baseline_throughput(larger, clock)
        results = {"ceiling_gflops": ceiling, "ceiling_gflop_per_cpu_s": ceiling_per_cpu_s, "params": base_params, "config": {
            "batch_size": args.batch_size, "max_seq_length": args.max_seq_length, "steps": args.steps,
            "lora_r": config.method.r, "data": args.data, "precision": args.precision}}
        for name, measured in (("workbench", ours), ("baseline", baseline), *extra.items()):
            achieved = measured["tokens_per_s"] * flops_per_token / 1e9
            per_cpu_s = measured["tokens_per_cpu_s"] * flops_per_token / 1e9
            results[name] = {
                **measured, "gflops": achieved, "fraction_of_ceiling": achieved / ceiling,
                "gflop_per_cpu_s": per_cpu_s, "fraction_of_ceiling_per_cpu_s": per_cpu_s / ceiling_per_cpu_s,
            }
        results["speedup"] = ours["tokens_per_s"] / baseline["tokens_per_s"]
        if args.demo:
            results["quick_demo"] = time_quick_demo(workdir)
    print(f"fp32 matmul ceiling (2048² sgemm): {ceiling:.1f} GFLOP/s, {ceiling_per_cpu_s:.1f} GFLOP per CPU-s; "
          f"model {base_params / 1e6:.1f}M params")
    print("| trainer | tokens/s | GFLOP/s (4N) | of ceiling | of ceiling per CPU-s |")
    print("|---|---:|---:|---:|---:|")
    for name in ("workbench", "baseline", *(key for key in results if key.startswith("baseline_bs"))):
        r = results[name]
        print(f"| {name} | {r['tokens_per_s']:.1f} | {r['gflops']:.1f} | {r['fraction_of_ceiling']:.0%} "
              f"| {r['fraction_of_ceiling_per_cpu_s']:.0%} |")
    print(f"speedup: {results['speedup']:.2f}x")
    if "quick_demo" in results:
        demo = results["quick_demo"]
        print(f"quick demo: {demo['wall_s']:.0f} s wall, {demo['steps']} steps, state {demo['state']}, "
              f"eval losses {demo['eval_losses']}")
    print(f"load average at end: {os.getloadavg()[0]:.2f}")
    print(json.dumps(results, default=str))


if __name__ == "__main__":
    main()
