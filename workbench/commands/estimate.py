"""`workbench estimate`: how much memory a fine-tuning run needs, why, and whether it fits."""

from __future__ import annotations

import argparse
import json

from workbench.memory.inputs import ATTENTIONS, METHODS, OPTIMIZERS, PRECISIONS, SHARDINGS

_EXAMPLES = """examples:
  workbench estimate --model qwen2.5-7b --method qlora --seq-len 2048 --gpu-memory 24
  workbench estimate --model default --method full --precision fp32 --batch-size 4 --seq-len 512
  workbench estimate --model ./my-model --method lora --lora-targets q_proj,v_proj --json
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = _EXAMPLES
    parser.add_argument("--model", default="default",
                        help="catalog name (e.g. qwen2.5-7b, llama-3.1-8b; --list-models), a local model directory, or 'default'")
    parser.add_argument("--method", choices=METHODS, default="lora", help="what trains (default: lora)")
    parser.add_argument("--precision", choices=PRECISIONS, default=None,
                        help="fp32, mixed-bf16/mixed-fp16 (autocast), bf16/fp16 (pure); default: what training's 'auto' picks "
                             "(mixed-bf16 where bf16 is native, mixed-fp16 on older GPUs, else fp32)")
    parser.add_argument("--optimizer", choices=OPTIMIZERS, default="adamw", help="default: adamw")
    parser.add_argument("--batch-size", type=int, default=1, help="sequences per step per device (default: 1)")
    parser.add_argument("--seq-len", type=int, default=1024, help="tokens per sequence (default: 1024)")
    parser.add_argument("--lora-r", type=int, default=16, help="LoRA rank (default: 16)")
    parser.add_argument("--lora-targets", default="all-linear",
                        help="comma-separated linear layer names, or all-linear (default)")
    # 0.05 is the run config's default, so the CLI and the Memory pane answer the same question alike
    parser.add_argument("--lora-dropout", type=float, default=0.05,
                        help="LoRA dropout (default: 0.05; 0 saves each adapter's copy of its input)")
    parser.add_argument("--dora", action="store_true", help="weight-decomposed LoRA")
    parser.add_argument("--no-double-quant", action="store_true", help="QLoRA without double quantization")
    parser.add_argument("--gradient-checkpointing", action="store_true", help="recompute activations in backward")
    parser.add_argument("--attention", choices=ATTENTIONS, default="sdpa", help="attention kernel (default: sdpa)")
    parser.add_argument("--no-attention-mask", action="store_true",
                        help="batches carry no padding or packing mask (sdpa can skip repeating K/V heads)")
    parser.add_argument("--gpus", type=int, default=1, help="data-parallel GPUs (default: 1)")
    parser.add_argument("--sharding", choices=SHARDINGS, default="ddp", help="with --gpus > 1 (default: ddp)")
    device = parser.add_mutually_exclusive_group()
    device.add_argument("--cpu", action="store_true", help="estimate CPU training (RAM) even when a GPU is present")
    device.add_argument("--gpu-memory", type=float, default=None, metavar="GIB",
                        help="check against a GPU with this much memory instead of the detected devices")
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")
    parser.add_argument("--list-models", action="store_true", help="list the built-in catalog and exit")


def _device(args: argparse.Namespace) -> str:
    if args.cpu:
        return "cpu"
    if args.gpu_memory is not None:
        return "cuda"
    from workbench.devices import detect_devices

    return "cuda" if detect_devices().has_cuda else "cpu"


def _auto_precision(method: str, device: str) -> str:
    """What "auto" resolves to for this method and device: the same rule `workbench train` follows."""
    from workbench.devices import detect_devices
    from workbench.precision import resolve_training_precision

    return resolve_training_precision("auto", detect_devices(), device == "cuda", method).label


def _list_models() -> int:
    from workbench.memory.spec import catalog_spec
    from workbench.memory.catalog import catalog_names

    print(f"{'model':<18}{'parameters':>16}  layers  hidden  vocab")
    for name in catalog_names():
        spec = catalog_spec(name)
        print(f"{name:<18}{spec.total_params:>16,}  {spec.num_layers:>6}  {spec.hidden_size:>6}  {spec.vocab_size:>6}")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.list_models:
        return _list_models()
    from workbench.errors import WorkbenchError
    from workbench.memory import (
        MemoryInputs,
        check_fit,
        estimate_training_memory,
        memory_budget,
        resolve_model_spec,
    )

    if args.gpu_memory is not None and args.gpu_memory <= 0:
        raise WorkbenchError(f"--gpu-memory: must be a positive number of GiB, got {args.gpu_memory:g}")
    device = _device(args)
    precision = args.precision or _auto_precision(args.method, device)
    targets = tuple(name.strip() for name in args.lora_targets.split(",") if name.strip())
    inputs = MemoryInputs(
        method=args.method,
        precision=precision,
        optimizer=args.optimizer,
        lora_r=args.lora_r,
        lora_targets=targets,
        lora_dropout=args.lora_dropout,
        dora=args.dora,
        double_quant=not args.no_double_quant,
        batch_size=args.batch_size,
        seq_len=args.seq_len,
        gradient_checkpointing=args.gradient_checkpointing,
        attention=args.attention,
        attention_mask=not args.no_attention_mask and args.attention != "flash",
        gpus=args.gpus,
        sharding=args.sharding,
        device=device,
    )
    spec = resolve_model_spec(args.model)
    estimate = estimate_training_memory(spec, inputs)
    verdict = check_fit(estimate, memory_budget(inputs, gpu_memory_gib=args.gpu_memory))
    if args.json:
        print(json.dumps(_as_json(estimate, verdict), indent=2))
    else:
        print(_as_text(estimate, verdict))
    return 0


def _as_json(estimate, verdict) -> dict:
    from dataclasses import asdict

    from workbench.memory import rule_of_thumb

    thumb = rule_of_thumb(estimate)
    return {
        "model": estimate.spec.name,
        "model_source": estimate.spec.source,
        "total_params": estimate.spec.total_params,
        "trainable_params": estimate.trainable_params,
        "total_bytes": estimate.total_bytes,
        "peak_phase": estimate.peak_phase,
        "breakdown": estimate.breakdown(),
        "at_peak": estimate.at_peak(),
        "bytes_per_param_before_activations": round(estimate.persistent_bytes_per_param, 3),
        "rule_of_thumb_bytes": [thumb.low_bytes, thumb.high_bytes],
        "inputs": asdict(estimate.inputs),
        "verdict": {
            "status": verdict.status,
            "headline": verdict.headline,
            "budget_bytes": verdict.budget.bytes,
            "budget": verdict.budget.label,
            "suggestions": [
                {"text": s.text, "total_bytes": s.total_bytes, "fits": s.fits, "changes": s.changes}
                for s in verdict.suggestions
            ],
        },
        "notes": list(estimate.notes),
    }


def _as_text(estimate, verdict) -> str:
    from workbench.memory import format_bytes, plain_explanation, rule_of_thumb

    spec, inputs = estimate.spec, estimate.inputs
    per_device = " per GPU" if inputs.device == "cuda" and inputs.gpus > 1 else ""
    head = (
        f"{spec.name} ({spec.total_params:,} parameters, {estimate.trainable_params:,} trainable) - "
        f"{inputs.method}, {inputs.precision}, {inputs.optimizer}, batch {inputs.batch_size} x {inputs.seq_len} tokens"
        + (", gradient checkpointing" if inputs.gradient_checkpointing else "")
        + (f", {inputs.gpus} GPUs {inputs.sharding}" if inputs.gpus > 1 and inputs.device == "cuda" else "")
        + f", on {'CPU' if inputs.device == 'cpu' else 'GPU'}"
    )
    at_peak = estimate.at_peak()
    rows = [f"  {'component':<24}{'bytes' + per_device:>14}"]
    for name, value in estimate.breakdown().items():
        marker = "" if name in at_peak else "   (not at the peak)"
        rows.append(f"  {name:<24}{format_bytes(value):>14}{marker}")
    rows.append(f"  {'peak (' + estimate.peak_phase + ')':<24}{format_bytes(estimate.total_bytes):>14}")
    lines = [head, "", *rows, "", verdict.headline]
    if verdict.suggestions:
        lines.append("What would change it:")
        for suggestion in verdict.suggestions[:5]:
            fits = "fits" if suggestion.fits else "still too big"
            lines.append(f"  - {suggestion.text}: {format_bytes(suggestion.total_bytes)} ({fits})")
    lines += ["", rule_of_thumb(estimate).text, "", *plain_explanation(estimate)]
    lines += [f"note: {note}" for note in estimate.notes]
    return "\n".join(lines)
