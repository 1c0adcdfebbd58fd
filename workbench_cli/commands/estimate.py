"""`workbench estimate`: how much memory a fine-tuning run needs, why, and whether it fits."""

from __future__ import annotations

import argparse
import json

from workbench.memory.command_line import FLAGS
from workbench.memory.inputs import ATTENTIONS, METHODS, OPTIMIZERS, PRECISIONS, SHARDINGS
import workbench.devices  # looked up at each call: tests put a fixed machine there
from workbench.precision import resolve_training_precision
from workbench.memory.spec import catalog_spec
from workbench.memory.catalog import catalog_names
from workbench.errors import WorkbenchError
from workbench.memory import (
    MemoryInputs,
    check_fit,
    estimate_training_memory,
    memory_budget,
    plain_explanation,
    resolve_model_spec,
    rule_of_thumb,
)
from workbench.memory.verdict import machine_for
from workbench.memory.command_line import estimate_argv
from workbench.memory.from_config import config_changes
from workbench.units import format_bytes

_EXAMPLES = """examples:
  workbench estimate --model qwen2.5-7b --method qlora --seq-len 2048 --gpu-memory 24
  workbench estimate --model llama-3.1-8b --seq-len 2048 --gpu-memory 24 --advise
  workbench estimate --model default --method full --precision fp32 --batch-size 4 --seq-len 512
  workbench estimate --model ./my-model --method lora --lora-targets q_proj,v_proj --json

Advice (printed whenever the run does not fit, or with --advise) lists the cheapest combinations of
changes that fit, each with its peak and the command line that estimates it.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = _EXAMPLES
    parser.add_argument("--model", default="default",
                        help="catalog name (e.g. qwen2.5-7b, llama-3.1-8b; --list-models), a local model directory, or 'default'")
    parser.add_argument(FLAGS["method"], choices=METHODS, default="lora", help="what trains (default: lora)")
    parser.add_argument(FLAGS["precision"], choices=PRECISIONS, default=None,
                        help="fp32, mixed-bf16/mixed-fp16 (autocast), bf16/fp16 (pure); default: what training's 'auto' picks "
                             "(mixed-bf16 where bf16 is native, mixed-fp16 on older GPUs, else fp32)")
    parser.add_argument(FLAGS["optimizer"], choices=OPTIMIZERS, default="adamw_torch", help="default: adamw_torch")
    parser.add_argument(FLAGS["batch_size"], type=int, default=1, help="sequences per step per device (default: 1)")
    parser.add_argument(FLAGS["seq_len"], type=int, default=1024, help="tokens per sequence (default: 1024)")
    parser.add_argument(FLAGS["lora_r"], type=int, default=16, help="LoRA rank (default: 16)")
    parser.add_argument(FLAGS["lora_targets"], default="all-linear",
                        help="comma-separated linear layer names, or all-linear (default)")
    # 0.05 is the run config's default, so the CLI and the Memory pane answer the same question alike
    parser.add_argument(FLAGS["lora_dropout"], type=float, default=0.05,
                        help="LoRA dropout (default: 0.05; 0 saves each adapter's copy of its input)")
    parser.add_argument(FLAGS["dora"], action="store_true", help="weight-decomposed LoRA")
    parser.add_argument(FLAGS["no_double_quant"], action="store_true", help="QLoRA without double quantization")
    parser.add_argument(FLAGS["gradient_checkpointing"], action="store_true", help="recompute activations in backward")
    parser.add_argument(FLAGS["attention"], choices=ATTENTIONS, default="sdpa", help="attention kernel (default: sdpa)")
    parser.add_argument(FLAGS["no_attention_mask"], action="store_true",
                        help="batches carry no padding or packing mask (sdpa can skip repeating K/V heads)")
    parser.add_argument(FLAGS["gpus"], type=int, default=1, help="data-parallel GPUs (default: 1)")
    parser.add_argument(FLAGS["sharding"], choices=SHARDINGS, default="ddp", help="with --gpus > 1 (default: ddp)")
    parser.add_argument(FLAGS["grad_accum"], type=int, default=1, metavar="N",
                        help="gradient accumulation steps; advice that lowers the batch raises it to keep "
                             "the effective batch (default: 1)")
    parser.add_argument(FLAGS["eval_batch_size"], type=int, default=0, metavar="N",
                        help="sequences per evaluation step; evaluation's logits can set the peak "
                             "(default: 0, no evaluation)")
    device = parser.add_mutually_exclusive_group()
    device.add_argument(FLAGS["cpu"], action="store_true", help="estimate CPU training (RAM) even when a GPU is present")
    device.add_argument(FLAGS["gpu_memory"], type=float, default=None, metavar="GIB",
                        help="check against a GPU with this much memory instead of the detected devices")
    device.add_argument(FLAGS["ram"], type=float, default=None, metavar="GIB",
                        help="estimate CPU training and check against this much RAM instead of what is free here")
    parser.add_argument(FLAGS["headroom"], type=float, default=None, metavar="PERCENT",
                        help="share of the memory to leave free; the fit line is the rest "
                             "(default: 10 on a GPU, 5 on the CPU)")
    parser.add_argument("--advise", action="store_true",
                        help="print the cheapest changes that fit even when the run fits already")
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")
    parser.add_argument("--list-models", action="store_true", help="list the built-in catalog and exit")


def _device(args: argparse.Namespace) -> str:
    if args.cpu or args.ram is not None:
        return "cpu"
    if args.gpu_memory is not None:
        return "cuda"

    return "cuda" if workbench.devices.detect_devices().has_cuda else "cpu"


def _auto_precision(method: str, device: str) -> str:
    """What "auto" resolves to for this method and device: the same rule `workbench train` follows."""

    return resolve_training_precision("auto", workbench.devices.detect_devices(), device == "cuda", method).label


def _list_models() -> int:

    print(f"{'model':<18}{'parameters':>16}  layers  hidden   vocab  context")
    for name in catalog_names():
        spec = catalog_spec(name)
        print(f"{name:<18}{spec.total_params:>16,}  {spec.num_layers:>6}  {spec.hidden_size:>6}  {spec.vocab_size:>6}"
              f"  {spec.context_length or 0:>7}")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.list_models:
        return _list_models()

    for flag, value in ((FLAGS["gpu_memory"], args.gpu_memory), (FLAGS["ram"], args.ram)):
        if value is not None and value <= 0:
            raise WorkbenchError(f"{flag}: must be a positive number of GiB, got {value:g}")
    if args.headroom is not None and not 0 <= args.headroom < 100:
        raise WorkbenchError(f"{FLAGS['headroom']}: must be a percentage from 0 to under 100, got {args.headroom:g}")
    if args.grad_accum < 1:
        raise WorkbenchError(f"{FLAGS['grad_accum']}: must be at least 1, got {args.grad_accum}")
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
        eval_batch_size=args.eval_batch_size,
    )
    spec = resolve_model_spec(args.model)
    estimate = estimate_training_memory(spec, inputs)
    devices = None if args.gpu_memory is not None or args.ram is not None else workbench.devices.detect_devices()
    budget = memory_budget(inputs, devices, gpu_memory_gib=args.gpu_memory, ram_gib=args.ram)
    headroom = None if args.headroom is None else args.headroom / 100
    verdict = check_fit(estimate, budget, headroom=headroom, gradient_accumulation=args.grad_accum,
                        machine=machine_for(inputs, devices, whatif_gpu=args.gpu_memory is not None))
    budget_flags = {"gpu_memory_gib": args.gpu_memory, "ram_bytes": budget.bytes if device == "cpu" else None,
                    "headroom": headroom}
    if args.json:
        print(json.dumps(_as_json(args.model, estimate, verdict, budget_flags, args.grad_accum), indent=2))
    else:
        print(_as_text(args.model, estimate, verdict, budget_flags, args.grad_accum, advise=args.advise))
    return 0


def _suggestion_argv(model: str, estimate, suggestion, budget_flags: dict, accumulation: int) -> list[str]:

    changed = estimate.inputs.with_changes(**suggestion.changes)
    return estimate_argv(model, changed, gradient_accumulation=suggestion.gradient_accumulation or accumulation,
                         **budget_flags)


def _as_json(model: str, estimate, verdict, budget_flags: dict, accumulation: int) -> dict:
    from dataclasses import asdict


    thumb = rule_of_thumb(estimate)
    return {
        "model": estimate.spec.name,
        "model_source": estimate.spec.source,
        "context_length": estimate.spec.context_length,
        "total_params": estimate.spec.total_params,
        "trainable_params": estimate.trainable_params,
        "total_bytes": estimate.total_bytes,
        "peak_phase": estimate.peak_phase,
        "breakdown": estimate.breakdown(),
        "at_peak": estimate.at_peak(),
        "bytes_per_param_before_activations": round(estimate.persistent_bytes_per_param, 3),
        "rule_of_thumb_bytes": [thumb.low_bytes, thumb.high_bytes],
        "inputs": asdict(estimate.inputs),
        "gradient_accumulation": accumulation,
        "verdict": {
            "status": verdict.status,
            "headline": verdict.headline,
            "budget_bytes": verdict.budget.bytes,
            "budget": verdict.budget.label,
            "headroom": verdict.headroom,
            "fit_line_bytes": verdict.fit_line_bytes,
            "advice_note": verdict.advice_note,
            "suggestions": [
                {
                    "text": s.text,
                    "total_bytes": s.total_bytes,
                    "fits": s.fits,
                    "changes": s.changes,
                    "gradient_accumulation": s.gradient_accumulation,
                    "config_changes": config_changes(s.changes, s.gradient_accumulation),
                    "cost": round(s.cost, 3),
                    "cost_text": s.cost_text,
                    "cuts_data": s.cuts_data,
                    "argv": _suggestion_argv(model, estimate, s, budget_flags, accumulation),
                }
                for s in verdict.suggestions
            ],
        },
        "warnings": list(estimate.warnings),
        "notes": list(estimate.notes),
    }


def _as_text(model: str, estimate, verdict, budget_flags: dict, accumulation: int, *, advise: bool) -> str:
    import shlex


    spec, inputs = estimate.spec, estimate.inputs
    per_device = " per GPU" if inputs.device == "cuda" and inputs.gpus > 1 else ""
    head = (
        f"{spec.name} ({spec.total_params:,} parameters, {estimate.trainable_params:,} trainable) - "
        f"{inputs.method}, {inputs.precision}, {inputs.optimizer}, batch {inputs.batch_size} x {inputs.seq_len} tokens"
        + (f" x {accumulation} accumulated" if accumulation > 1 else "")
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
    lines = [head, "", *rows, "", *[f"warning: {warning}" for warning in estimate.warnings], verdict.headline]
    if verdict.fit_line_text:
        lines.append(verdict.fit_line_text)
    if verdict.suggestions and (advise or verdict.status != "fits"):
        heading = "Room to grow:" if verdict.status == "fits" else "Cheapest changes that fit:"
        lines += ["", heading] + ([verdict.advice_note] if verdict.advice_note else [])
        for number, suggestion in enumerate(verdict.suggestions, start=1):
            tight = "" if suggestion.fits else " (tight: over the fit line, within the budget)"
            lines.append(f"  {number}. {suggestion.text}: {format_bytes(suggestion.total_bytes)}{tight}"
                         + (f" - {suggestion.cost_text}" if suggestion.cost_text else ""))
            argv = _suggestion_argv(model, estimate, suggestion, budget_flags, accumulation)
            lines.append("     " + shlex.join(["workbench", "estimate", *argv]))
    elif verdict.advice_note:
        lines.append(verdict.advice_note)
    lines += ["", rule_of_thumb(estimate).text, "", *plain_explanation(estimate)]
    lines += [f"note: {note}" for note in estimate.notes]
    return "\n".join(lines)
