"""Estimated against measured training memory on CPU, with the settings users get.

Two kinds of rows:
- the grid: each configuration runs in a fresh Python process started the way the launcher starts
  the trainer child (the same environment, so the same allocator: workbench/allocator.py).
  The child imports what the trainer process holds (torch, transformers and its Trainer, PEFT,
  datasets, the default tokenizer), builds or loads the model, wraps it (LoRA), and runs a few real
  optimizer steps (forward with labels, backward, gradient clipping at 1.0, AdamW step,
  zero_grad(set_to_none=True), as transformers' Trainer does; KV cache off, as in the trainer).
- quick-demo: the real `workbench train` on the quick-demo-cpu preset (a few steps, an evaluation
  with sample answers and a checkpoint), compared as the Memory pane compares it: status.json's
  estimated_peak_bytes against measured_peak_bytes.

Measured = the whole process's peak RSS (VmHWM, what the trainer reports); the CPU estimate covers
the whole process too (its framework overhead includes the ~0.4 GiB Python and the libraries hold).
Nothing is tuned by hand here: `--allocator system` runs the children with WORKBENCH_ALLOCATOR=system
(glibc's defaults) for comparison.

    .venv/bin/python bench/memory_accuracy.py            # the grid and quick-demo (~30-60 min on 2 busy cores)
    .venv/bin/python bench/memory_accuracy.py --quick    # three grid rows and quick-demo
    .venv/bin/python bench/memory_accuracy.py --only 9,demo --steps 2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

VOCAB = 49152  # the default model's tokenizer, so synthetic models have its realistic vocabulary

# Synthetic Llama models (random weights, built from config in the child) between a toy and the
# 135M default model; "default" is the real SmolLM2-135M-Instruct from resolve_model(None).
# "toy" has tensors of a few KiB: what it measures is the framework overhead alone.
SYNTHETIC_CONFIGS = {
    "toy": dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                num_key_value_heads=2, vocab_size=256),
    "tiny": dict(hidden_size=64, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, vocab_size=VOCAB),
    "small": dict(hidden_size=576, intermediate_size=1536, num_hidden_layers=8, num_attention_heads=9,
                  num_key_value_heads=3, vocab_size=VOCAB),
}


@dataclass(frozen=True)
class Case:
    model: str  # "tiny", "small" or "default"
    method: str  # "full" or "lora"
    batch_size: int
    seq_len: int
    gradient_checkpointing: bool = False
    attention: str = "sdpa"
    lora_dropout: float = 0.0

    @property
    def label(self) -> str:
        extras = [self.attention] if self.attention != "sdpa" else []
        if self.gradient_checkpointing:
            extras.append("ckpt")
        if self.lora_dropout:
            extras.append(f"dropout {self.lora_dropout:g}")
        tail = f" ({', '.join(extras)})" if extras else ""
        return f"{self.model} {self.method} b{self.batch_size} s{self.seq_len}{tail}"


GRID = [
    Case("toy", "full", 1, 16),
    Case("tiny", "full", 4, 128),
    Case("tiny", "lora", 4, 128),
    Case("small", "full", 2, 256),
    Case("small", "lora", 8, 256),
    Case("default", "full", 1, 256),
    Case("default", "full", 4, 128),
    Case("default", "full", 2, 512, gradient_checkpointing=True),
    Case("default", "lora", 4, 128),
    Case("default", "lora", 8, 256),
    Case("default", "lora", 4, 256, lora_dropout=0.05),
    Case("default", "lora", 1, 512, attention="eager"),
    Case("default", "lora", 2, 1024, gradient_checkpointing=True),
    Case("default", "lora", 4, 512, gradient_checkpointing=True),
]
QUICK = [0, 6, 8]


# --------------------------------------------------------------------------- child process


def _proc_status() -> dict[str, int]:
    values = {}
    with open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(value.split()[0]) * 1024
    return values


def _child(spec: dict) -> None:
    # What the trainer process holds besides its tensors: part of the measured peak, as the
    # estimate's process baseline (CPU_PROCESS_BASELINE_BYTES) says.
    import datasets  # noqa: F401
    import peft  # noqa: F401
    import torch
    from transformers import Trainer  # noqa: F401  (with accelerate, datasets, pandas, pyarrow)

    from workbench.allocator import tuned_allocator_loaded
    from workbench.models import load_model, load_tokenizer, resolve_model

    load_tokenizer(resolve_model(None))
    torch.manual_seed(0)
    case = Case(**spec["case"])
    baseline = _proc_status()["VmRSS"]
    started = time.perf_counter()
    if case.model == "default":
        model = load_model(spec["model_dir"], attn_implementation=case.attention)
    else:
        from transformers import AutoConfig, AutoModelForCausalLM

        config = AutoConfig.from_pretrained(spec["model_dir"])
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32, attn_implementation=case.attention)
    model.config.use_cache = False  # as the trainer does: no KV cache holding keys and values in training
    if case.gradient_checkpointing:
        model.gradient_checkpointing_enable()
    if case.method == "lora":
        from peft import LoraConfig, get_peft_model

        if case.gradient_checkpointing:
            model.enable_input_require_grads()
        lora = LoraConfig(r=16, lora_alpha=32, lora_dropout=case.lora_dropout, target_modules="all-linear",
                          task_type="CAUSAL_LM")
        model = get_peft_model(model, lora)
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=1e-5, weight_decay=0.0, fused=True)  # the trainer's adamw_torch
    vocab = model.get_input_embeddings().weight.shape[0]
    input_ids = torch.randint(0, vocab, (case.batch_size, case.seq_len))
    step_seconds, step_cpu_seconds = [], []
    for _ in range(spec["steps"]):
        step_start, cpu_start = time.perf_counter(), time.process_time()
        loss = model(input_ids=input_ids, labels=input_ids).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        step_seconds.append(time.perf_counter() - step_start)
        step_cpu_seconds.append(time.process_time() - cpu_start)
    status = _proc_status()
    print(json.dumps({
        "baseline_bytes": baseline,
        "measured_bytes": status["VmHWM"],
        "final_bytes": status["VmRSS"],
        "mimalloc": tuned_allocator_loaded(),
        "step_seconds": step_seconds,
        "step_cpu_seconds": step_cpu_seconds,
        "total_seconds": time.perf_counter() - started,
        "loss": float(loss),
    }))


# --------------------------------------------------------------------------- parent


def _model_dirs(workdir: Path) -> dict[str, str]:
    from workbench.models import resolve_model

    dirs = {"default": str(resolve_model(None).path)}
    for name, fields in SYNTHETIC_CONFIGS.items():
        from transformers import LlamaConfig

        directory = workdir / name
        LlamaConfig(tie_word_embeddings=True, max_position_embeddings=2048, **fields).save_pretrained(directory)
        dirs[name] = str(directory)
    return dirs


def _estimate(case: Case, model_dir: str):
    from workbench.memory import MemoryInputs, estimate_training_memory, spec_from_model_dir

    inputs = MemoryInputs(
        method=case.method, precision="fp32", optimizer="adamw_torch", lora_r=16, lora_dropout=case.lora_dropout,
        batch_size=case.batch_size, seq_len=case.seq_len, gradient_checkpointing=case.gradient_checkpointing,
        attention=case.attention, attention_mask=False, device="cpu",
    )
    return estimate_training_memory(spec_from_model_dir(model_dir), inputs)


def _child_environment(allocator: str) -> dict[str, str]:
    """The trainer child's environment as the launcher builds it (workbench/runs/launch.py)."""
    from workbench.cpu_budget import prepare_process
    from workbench.allocator import ALLOCATOR_ENV, allocator_environment

    prepare_process()  # passive OpenMP waiting, as every workbench process sets it
    base = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if allocator == "system":
        return {**base, ALLOCATOR_ENV: "system"}
    return {**base, **allocator_environment(base)}


def _run_case(case: Case, model_dir: str, steps: int, allocator: str) -> dict:
    env = _child_environment(allocator)
    spec = json.dumps({"case": asdict(case), "model_dir": model_dir, "steps": steps})
    done = subprocess.run([sys.executable, __file__, "--child", spec], capture_output=True, text=True, env=env,
                          cwd=ROOT)
    if done.returncode != 0:
        raise RuntimeError(f"{case.label}: child failed\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _run_quick_demo(workdir: Path, steps: int, allocator: str) -> dict:
    """`workbench train` on the quick-demo-cpu preset for `steps` steps (an evaluation with sample
    answers and a checkpoint on the last one), started the way the launcher starts it."""
    from workbench.config.io import save_config
    from workbench.config.presets import QUICK_DEMO

    config = QUICK_DEMO.config()
    config.data.train_file = str(ROOT / config.data.train_file)
    config.optimization.max_steps = steps
    config.evaluation.eval_steps = config.evaluation.save_steps = steps
    config_path, run_dir = workdir / "quick-demo.yaml", workdir / "quick-demo-run"
    save_config(config, config_path)
    env = _child_environment(allocator)
    done = subprocess.run([sys.executable, "-m", "workbench", "train", str(config_path), "--run-dir", str(run_dir)],
                          capture_output=True, text=True, env=env, cwd=ROOT)
    if done.returncode != 0:
        raise RuntimeError(f"quick-demo: workbench train failed\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    status = json.loads((run_dir / "status.json").read_text(encoding="utf-8"))
    return {"estimated_bytes": status["estimated_peak_bytes"], "measured_bytes": status["measured_peak_bytes"],
            "precision": next((json.loads(line)["precision"] for line in (run_dir / "events.jsonl").open()
                               if '"start"' in line), "?")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="three grid rows and quick-demo")
    parser.add_argument("--only", default=None, help="comma-separated grid row numbers (1-based) and/or 'demo'")
    parser.add_argument("--steps", type=int, default=3, help="optimizer steps per grid configuration (default 3)")
    parser.add_argument("--demo-steps", type=int, default=12, help="quick-demo training steps (default 12)")
    parser.add_argument("--allocator", choices=("trainer", "system"), default="trainer",
                        help="trainer: the environment the launcher gives the trainer child (default); "
                             "system: the same with WORKBENCH_ALLOCATOR=system (glibc's defaults)")
    args = parser.parse_args()
    if args.child:
        _child(json.loads(args.child))
        return
    if args.only:
        wanted = [item.strip() for item in args.only.split(",")]
        rows = [int(item) - 1 for item in wanted if item != "demo"]
        demo = "demo" in wanted
    else:
        rows, demo = (QUICK if args.quick else list(range(len(GRID)))), True
    mib = 2**20
    print(f"allocator: {args.allocator} (children under mimalloc: see the column); load at start "
          f"{os.getloadavg()[0]:.1f}; {args.steps} steps per grid row; fp32, AdamW, LoRA r=16 all-linear")
    print("| # | configuration | params | trainable | estimate (MiB) | measured peak RSS (MiB) | error | "
          "baseline (MiB) | peak phase | mimalloc | s/step | CPU s/step |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    errors = []
    with tempfile.TemporaryDirectory() as folder:
        dirs = _model_dirs(Path(folder))
        for index in rows:
            case = GRID[index]
            estimate = _estimate(case, dirs[case.model])
            result = _run_case(case, dirs[case.model], args.steps, args.allocator)
            measured = result["measured_bytes"]
            error = (estimate.total_bytes - measured) / measured
            errors.append(error)
            seconds = sorted(result["step_seconds"])[len(result["step_seconds"]) // 2]
            cpu_seconds = sorted(result["step_cpu_seconds"])[len(result["step_cpu_seconds"]) // 2]
            print(f"| {index + 1} | {case.label} | {estimate.spec.total_params / 1e6:.1f}M | "
                  f"{estimate.trainable_params / 1e6:.2f}M | {estimate.total_bytes / mib:,.0f} | {measured / mib:,.0f} | "
                  f"{error:+.1%} | {result['baseline_bytes'] / mib:,.0f} | {estimate.peak_phase} | "
                  f"{'yes' if result['mimalloc'] else 'no'} | {seconds:.1f} | {cpu_seconds:.1f} |", flush=True)
        if demo:
            result = _run_quick_demo(Path(folder), args.demo_steps, args.allocator)
            error = (result["estimated_bytes"] - result["measured_bytes"]) / result["measured_bytes"]
            errors.append(error)
            print(f"| demo | quick-demo-cpu, `workbench train`, {args.demo_steps} steps ({result['precision']}) | "
                  f"134.5M | 4.88M | {result['estimated_bytes'] / mib:,.0f} | {result['measured_bytes'] / mib:,.0f} | "
                  f"{error:+.1%} | | | | | |", flush=True)
    worst = max(errors, key=abs)
    print(f"\nworst relative error: {worst:+.1%} over {len(errors)} configurations; "
          f"mean |error| {sum(abs(e) for e in errors) / len(errors):.1%}; load at end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
