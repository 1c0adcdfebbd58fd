"""`workbench eval`: metrics on held-out rows for the base, the tuned model and its checkpoints, the
loss on the same rows, and a general-knowledge forgetting check; results in <run>/eval/.

    workbench eval RUN                          the run's validation rows, base vs tuned, + knowledge check
    workbench eval RUN --checkpoints all        every saved checkpoint too
    workbench eval RUN --data heldout.jsonl     any data file, or questions with expect_any / regex
    workbench eval MODEL --data FILE            one model alone
    workbench eval RUN --json                   JSON Lines: one {"type": "row"} per row as it finishes,
                                                then one {"type": "summary"} (results.json without rows)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from workbench_cli.arguments import positive_int
from workbench.evaluation.runner import BATCH_PROMPTS
from workbench.evaluation.knowledge import KNOWLEDGE_FILE
from workbench.evaluation.lm_eval_bridge import NOT_INSTALLED, lm_eval_available, parse_tasks
from workbench.evaluation.metrics import parse_metrics
from workbench.evaluation.plan import build_plan, default_out_dir, resolve_target
from workbench.paths import runs_dir
from workbench.io_checks import check_output_dir
from workbench.inference.engine import ChatEngine
from workbench.evaluation.report import write_results
from workbench.evaluation.lm_eval_bridge import lm_eval_lines
from workbench.evaluation.report import text_report
from workbench.inference.prompting import training_mismatches
from workbench.evaluation.runner import EvalProgress, RowScored, run_evaluation
from workbench.devices import inference_placement
from workbench.evaluation.lm_eval_bridge import run_lm_eval

JSON_EPILOG = """with --json, JSON Lines on stdout:
  {"type": "row", "index": 3, "prompt": "...", "references": [...], "accepted": [...],
   "answers": {"base": {"text": "...", "tokens": 12, "finish_reason": "eos",
                        "scores": {"contains": 0.0, "rougeL": 0.21, ...}}, "final": {...}}, ...}
  ... one per row, as each finishes ...
  {"type": "summary", ... results.json without its rows ...}
metrics: exact, contains (normalized; whole words), regex, rougeL (0-1), bleu and chrf (0-100,
sacrebleu), length (tokens), loss (teacher-forced, masked as in training; perplexity = exp).
intervals: Wilson for rates, bootstrap for means, paired bootstrap for differences."""

PROGRESS_EVERY_S = 5.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = JSON_EPILOG
    parser.add_argument("target", metavar="RUN|MODEL", help="a training run (name or path), an adapter directory, or a model")
    parser.add_argument("--data", help="held-out rows: a data file the loaders accept, or questions (prompt + expect_any/regex/reference)")
    parser.add_argument("--format", default="auto", help="the data file's format (default: auto)")
    parser.add_argument("--checkpoints", choices=("all", "best", "last"), help="also evaluate these checkpoints of the run")
    parser.add_argument(
        "--metrics", default="all", help="comma-separated: exact,contains,regex,rougeL,bleu,chrf,length,loss (default: all)"
    )
    parser.add_argument("--regex", help="a pattern answers should match (Python re; rows may carry their own 'regex')")
    parser.add_argument(
        "--max-new-tokens", type=positive_int, default=None,
        help="longest answer (default: 1.25x the longest reference + 8, at most 256; 48 without references)",
    )
    parser.add_argument("--system-prompt", default=None, help="system message (default: the one the run trained with)")
    parser.add_argument(
        "--knowledge", default="default",
        help="multiple-choice forgetting check: 'default' (sample_data/general_knowledge.jsonl), a JSONL file, or 'none'",
    )
    parser.add_argument("--lm-eval", metavar="TASKS", help="also run lm-evaluation-harness tasks on both models (needs lm-eval and cached task data)")
    parser.add_argument("--model", default=None, help="base model (default: the run's or the adapter's)")
    parser.add_argument("--limit", type=positive_int, default=None, help="evaluate only the first N rows")

    parser.add_argument(
        "--batch-size", type=positive_int, default=None,
        help=f"prompts per batched generate, each asked to every model (default {BATCH_PROMPTS})",
    )
    parser.add_argument("--out", type=Path, default=None, help="where results.json and report.md go (default: <run>/eval/)")
    parser.add_argument("--json", action="store_true", help="print JSON Lines as rows finish, then a summary")


def _knowledge_file(value: str):

    if value.strip().lower() == "none":
        return None
    return KNOWLEDGE_FILE if value.strip().lower() == "default" else Path(value)


def run(args: argparse.Namespace) -> int:
    import os

    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

    metrics = parse_metrics(args.metrics)
    tasks = parse_tasks(args.lm_eval) if args.lm_eval else []
    if tasks and not lm_eval_available():
        print(NOT_INSTALLED, file=sys.stderr)
        tasks = []
    runs_root = runs_dir()
    target = resolve_target(args.target, runs_root, args.model)

    # checked before the models load and answer, not after minutes of work
    check_output_dir(args.out or default_out_dir(target, runs_root), option=f"--out {args.out}" if args.out else "the eval folder")

    from transformers.utils import logging as hf_logging


    hf_logging.disable_progress_bar()
    trust = bool(target.config.model.trust_remote_code) if target.config is not None else False
    engine = ChatEngine.load(target.base_model, trust_remote_code=trust)
    plan = build_plan(
        target,
        engine.tokenizer,
        data=args.data,
        data_format=args.format,
        checkpoints=args.checkpoints,
        metrics=metrics,
        max_new_tokens=args.max_new_tokens,
        system_prompt=args.system_prompt,
        system_prompt_given=args.system_prompt is not None,
        regex=args.regex,
        knowledge_file=_knowledge_file(args.knowledge),
        limit=args.limit,
        batch_prompts=args.batch_size or BATCH_PROMPTS,
    )
    _warn_mismatches(plan, engine)
    names = " · ".join(model.label for model in plan.models)
    print(
        f"eval: {names} on {plan.description}; {plan.settings.summary()}"
        + (f"; knowledge check: {len(plan.knowledge)} questions" if plan.knowledge else ""),
        file=sys.stderr,
    )
    results = _evaluate(engine, plan, as_json=args.json)
    if tasks:
        results["lm_eval"] = _lm_eval(tasks, plan, engine, args.limit)
    out_dir = args.out or default_out_dir(target, runs_root)
    results["out_dir"] = str(out_dir)

    results_path, report_path = write_results(results, out_dir)
    if args.json:
        summary = {key: value for key, value in results.items() if key != "rows"}
        print(json.dumps({"type": "summary", **summary}, ensure_ascii=False), flush=True)
    else:

        for line in text_report(results):
            print(line)
        if results.get("lm_eval"):
            for line in lm_eval_lines(results["lm_eval"], {m.key: m.label for m in plan.models}):
                print(line)
    print(f"results: {results_path} · report: {report_path}", file=sys.stderr)
    return 0


def _warn_mismatches(plan, engine) -> None:

    for model in plan.models[1:]:
        for warning in training_mismatches(model.source, engine.tokenizer, plan.system_prompt, engine.model_path):
            print(f"warning: {warning}", file=sys.stderr)


def _evaluate(engine, plan, *, as_json: bool):

    last = {"time": 0.0, "stage": ""}

    def on_event(event) -> None:
        if isinstance(event, RowScored):
            if as_json:
                print(json.dumps({"type": "row", **event.row}, ensure_ascii=False), flush=True)
            return
        assert isinstance(event, EvalProgress)
        now = time.monotonic()
        if event.stage != last["stage"] or now - last["time"] >= PROGRESS_EVERY_S or event.done == event.total:
            last.update(time=now, stage=event.stage)
            print(f"  {event.stage}: {event.done}/{event.total} · {event.fraction * 100:.0f}% of the evaluation", file=sys.stderr)

    return run_evaluation(engine, plan, on_event)


def _lm_eval(tasks, plan, engine, limit):

    dtype, device = inference_placement()  # where and in what precision the engine loaded the base model
    print(f"lm-eval: {', '.join(tasks)} on {' and '.join(m.label for m in plan.models[:2])}", file=sys.stderr)
    return run_lm_eval(tasks, plan.models[:2], str(engine.model_path), dtype, device, limit)
