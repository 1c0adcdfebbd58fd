"""One AdamW step as the trainer runs it, against the implementations it could run instead.

`optimization.optim: adamw_torch` is handed to transformers as `adamw_torch_fused` (the library's
own default since torch 2.8). Until the fifth session of 2026-12-01 it was handed over as
`adamw_torch`, which on CPU runs PyTorch's per-tensor loop (foreach is a CUDA default only). Cases,
each on its own copy of the same parameters with the same random gradients, interleaved step by
step (the host's speed drifts within seconds); the median of the steps after the first few:

    loop       torch.optim.AdamW(foreach=False): what adamw_torch ran on CPU
    foreach    torch.optim.AdamW(foreach=True)
    fused      torch.optim.AdamW(fused=True): what the trainer runs now

on two parameter sets: the quick-demo-cpu preset's LoRA tensors (r 16 on every linear layer of the
default model) and every parameter of the default model (full fine-tuning, fp32). Also the largest
difference between the loop's and the fused kernel's parameters after the steps.

    .venv/bin/python bench/optimizer_step.py [--steps 20]
    .venv/bin/python bench/optimizer_step.py --model TINY_DIR --steps 4      # does it run
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
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

SKIPPED_STEPS = 3
CASES = {"loop": {"foreach": False}, "foreach": {"foreach": True}, "fused": {"fused": True}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()

    from workbench.allocator import reexec_script_with_allocator

    reexec_script_with_allocator()
    from workbench.cpu_budget import prepare_process

    prepare_process()
    import torch

    sys.path.insert(0, str(ROOT / "bench"))
    from train_throughput import cpu_model

    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} · {cpu_model()} · {torch.get_num_threads()} threads · "
          f"load {os.getloadavg()[0]:.2f}", flush=True)
    print("| parameters | tensors | values | loop ms | foreach ms | fused ms | loop / fused | max abs(loop - fused) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for label, shapes in parameter_sets(args.model):
        row = time_cases(shapes, args.steps)
        print(f"| {label} | {len(shapes)} | {sum(torch.Size(s).numel() for s in shapes) / 1e6:.1f}M "
              f"| {row['loop']:.1f} | {row['foreach']:.1f} | {row['fused']:.1f} | {row['loop'] / row['fused']:.2f}x "
              f"| {row['difference']:.1e} |", flush=True)
    print(f"load at end {os.getloadavg()[0]:.2f}")
    return 0


def parameter_sets(model_name: str) -> list[tuple[str, list[tuple[int, ...]]]]:
    """(label, shapes of the trained tensors) for the quick-demo LoRA and for full fine-tuning."""
    from peft import get_peft_model

    from workbench.config.hf_arguments import build_lora_config
    from workbench.config.presets import QUICK_DEMO
    from workbench.models import load_model, quiet_transformers, resolve_model

    quiet_transformers()
    model = load_model(resolve_model(model_name).path)
    full = [tuple(p.shape) for p in model.parameters()]
    lora = get_peft_model(model, build_lora_config(QUICK_DEMO.config()))
    adapters = [tuple(p.shape) for p in lora.parameters() if p.requires_grad]
    return [("quick-demo LoRA", adapters), ("full fine-tuning", full)]


def time_cases(shapes: list[tuple[int, ...]], steps: int) -> dict[str, float]:
    import torch

    generator = torch.Generator().manual_seed(0)
    start = [torch.randn(shape, generator=generator) * 0.02 for shape in shapes]
    optimizers, parameters = {}, {}
    for name, options in CASES.items():
        parameters[name] = [torch.nn.Parameter(tensor.clone()) for tensor in start]
        optimizers[name] = torch.optim.AdamW(parameters[name], lr=2e-4, **options)
    seconds: dict[str, list[float]] = {name: [] for name in CASES}
    for _ in range(steps):
        gradients = [torch.randn(shape, generator=generator) * 1e-3 for shape in shapes]
        for name, optimizer in optimizers.items():
            for parameter, gradient in zip(parameters[name], gradients):
                parameter.grad = gradient.clone()
            started = time.perf_counter()
            optimizer.step()
            seconds[name].append(time.perf_counter() - started)
    result = {name: statistics.median(values[SKIPPED_STEPS:] or values) * 1e3 for name, values in seconds.items()}
    result["difference"] = max((a - b).abs().max().item() for a, b in zip(parameters["loop"], parameters["fused"]))
    return result


if __name__ == "__main__":
    raise SystemExit(main())
