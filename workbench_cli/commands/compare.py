"""`workbench compare`: base and fine-tuned answers to a file of prompts, side by side, headless.

Greedy decoding unless a temperature is given, so the answers equal the Chat pane's (same engine,
same prompt rendering, same system-prompt rule). All prompts × both sides are answered in batches
of up to `--batch-size` rows (see workbench/inference/deck.py), and each prompt is printed as soon
as both its answers are done, so prompts may appear out of order (each carries its number).

`--json` writes JSON Lines, one object per prompt, as each prompt completes:

    {"index": 1, "prompt": "...",
     "base":  {"text": "...", "ttft_s": 0.41, "tokens_per_s": 11.8, "tokens": 57, "total_s": 5.2, "finish_reason": "eos"},
     "tuned": {... the same fields ...}}

index = the prompt's line among the file's prompts (1-based), ttft_s = time to first token (s,
from the start of its batch), tokens_per_s = decode speed after the first token, tokens =
generated tokens (the end-of-turn token included), finish_reason = eos | length | cancelled.
"""

from __future__ import annotations

import argparse
import json
import sys

from workbench.inference.prompt_limits import LARGE_DECK_PROMPTS
from workbench.inference.settings import DEFAULT_DECK_BATCH_SIZE
from workbench.inference.prompting import read_run_config
from workbench.inference.sources import adapter_base_model
from workbench.inference.sources import votes_dir
from workbench.inference.votes import export_preference_pairs, read_votes
from workbench.io_checks import check_output_file
from workbench.errors import WorkbenchError
from workbench.paths import runs_dir
from workbench.inference.sources import resolve_run_dir, run_source, source_from_directory
from workbench.inference.deck import DeckReplay
from workbench.inference.prompt_limits import check_prompt_texts, confirm_large_deck, read_numbered_prompts
from workbench.inference.engine import ChatEngine
from workbench.inference.prompting import trained_system_prompt, training_mismatches
from workbench.inference.settings import SamplingSettings
from workbench.inference.sources import BASE_SOURCE

JSON_EPILOG = """with --json, JSON Lines: one object per prompt, written as each prompt completes
(prompts may come out of order; index is the prompt's number, from 1):
  {"index": 1, "prompt": "...",
   "base":  {"text": "...", "ttft_s": 0.41, "tokens_per_s": 11.8, "tokens": 57,
             "total_s": 5.2, "finish_reason": "eos"},
   "tuned": {... the same fields ...}}
ttft_s: seconds to the first token; tokens_per_s: decode speed after it; tokens: generated
tokens (end-of-turn included); finish_reason: eos, length or cancelled."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = JSON_EPILOG
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--run", help="a training run (name under the runs directory, or its path)")
    which.add_argument("--adapter", help="a PEFT adapter directory, or a merged model directory")
    parser.add_argument(
        "--checkpoint", help="with --run: best, last, final or a step number (default: final, else best, else last)"
    )
    parser.add_argument("--prompts", help="text file with one prompt per line")
    parser.add_argument("--max-new-tokens", type=int, default=128, help="longest answer in tokens (default 128)")
    parser.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default)")
    parser.add_argument("--top-p", type=float, default=1.0)
    parser.add_argument("--top-k", type=int, default=0)
    parser.add_argument("--repetition-penalty", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=None, help="seed for sampling")
    parser.add_argument(
        "--system-prompt", default=None, help="system message (default: the one the run was trained with)"
    )
    parser.add_argument("--model", default=None, help="base model (default: the run's or the adapter's base model)")
    parser.add_argument("--batch-size", type=int, default=DEFAULT_DECK_BATCH_SIZE, help=(
        f"rows (prompt × side) decoded together (default {DEFAULT_DECK_BATCH_SIZE}; 2 = one prompt at a time)"
    ))
    parser.add_argument("--json", action="store_true", help="print JSON Lines (one object per prompt) instead of text")
    parser.add_argument(
        "--yes", action="store_true",
        help=f"start a deck of more than {LARGE_DECK_PROMPTS} prompts without asking (it may decode for hours)",
    )
    parser.add_argument(
        "--export-pairs",
        metavar="FILE",
        help="instead of comparing: write the run's blind A/B votes as DPO preference pairs (JSONL) to FILE",
    )


def _base_model_name(args: argparse.Namespace, source) -> str | None:

    if args.model:
        return args.model
    if source.run_dir is not None:
        config = read_run_config(source.run_dir)
        if config is not None:
            return config.model.name_or_path
    return adapter_base_model(source)


def _export_pairs(args: argparse.Namespace, source) -> int:
    from pathlib import Path



    check_output_file(Path(args.export_pairs), option=f"--export-pairs {args.export_pairs}")
    directory = votes_dir(source)
    votes = read_votes(directory)
    count = export_preference_pairs(votes, Path(args.export_pairs))
    print(f"wrote {count} preference pairs from {len(votes)} votes in {directory} to {args.export_pairs}", file=sys.stderr)
    return 0


def run(args: argparse.Namespace) -> int:

    if args.run:
        source = run_source(resolve_run_dir(args.run, runs_dir()), args.checkpoint)
    else:
        if args.checkpoint:
            raise WorkbenchError("--checkpoint: only with --run (with --adapter, give the checkpoint's directory)")
        source = source_from_directory(args.adapter)
    if args.export_pairs:
        return _export_pairs(args, source)
    if not args.prompts:
        raise WorkbenchError("--prompts: required (a text file with one prompt per line)")

    import os

    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

    if args.batch_size < 1:
        raise WorkbenchError(f"--batch-size: must be at least 1, got {args.batch_size}")
    numbered = read_numbered_prompts(args.prompts)
    prompts = [prompt for _, prompt in numbered]
    settings = SamplingSettings(
        temperature=args.temperature,
        top_p=args.top_p,
        top_k=args.top_k,
        max_new_tokens=args.max_new_tokens,
        repetition_penalty=args.repetition_penalty,
        seed=args.seed,
    )
    confirm_large_deck(len(prompts), 2, settings.max_new_tokens, yes=args.yes, label=args.prompts)
    system_prompt = args.system_prompt if args.system_prompt is not None else trained_system_prompt(source)[1]
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    engine = ChatEngine.load(_base_model_name(args, source))
    check_prompt_texts(engine.tokenizer, numbered, context=engine.context_length, label=args.prompts)
    engine.attach(source)
    for warning in training_mismatches(source, engine.tokenizer, system_prompt, engine.model_path):
        print(f"warning: {warning}", file=sys.stderr)
    print(f"base: {engine.model_name} · tuned: {source.label} · {settings.summary()}", file=sys.stderr)

    replay = DeckReplay(engine, [BASE_SOURCE, source], prompts, settings, system_prompt, batch_size=args.batch_size)
    for row in replay.rows():
        base, tuned = row.answers
        if args.json:
            record = {
                "index": row.index + 1,
                "prompt": row.prompt,
                "base": {"text": base.text, **base.timing_dict()},
                "tuned": {"text": tuned.text, **tuned.timing_dict()},
            }
            print(json.dumps(record, ensure_ascii=False), flush=True)
            continue
        print(f"## {row.index + 1}/{len(prompts)}  {row.prompt}")
        for name, answer in (("base", base), ("tuned", tuned)):
            print(f"[{name}] {answer.summary()}")
            print("  " + answer.text.replace("\n", "\n  "))
        print(flush=True)
    return 0
