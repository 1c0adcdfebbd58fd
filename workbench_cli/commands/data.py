"""`workbench data`: inspect a data file (format, token lengths, quality checks) and clean it.

    workbench data inspect PATH [--format ...] [--model M] [--chat-template T] [--max-seq-length N] [--json]
    workbench data show PATH --row N [--model M] [--chat-template T] [--system-prompt S]
    workbench data clean PATH -o OUT [--dedupe exact|near] [--drop-empty] [--drop-too-long]
                         [--resolve-conflicts drop|keep-first] [--split-validation FRACTION] ...
    workbench data clean NEW.jsonl -o OUT --recipe OLD.recipe.yaml     (replay a recipe)
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from typing import Callable

from workbench.data.export import OUTPUT_FORMATS
from workbench.data.formats import FORMAT_CHOICES
from workbench.data.near_duplicates import DEFAULT_THRESHOLD as DEFAULT_NEAR_THRESHOLD
from workbench.data.row_bounds import DEFAULT_MAX_SEQ_LENGTH
from workbench_cli.arguments import positive_int
from workbench.data.chat_templates import prepare_tokenizer
from workbench.data.token_lengths import load_data_tokenizer
from workbench.data.data_refs import column_map
from workbench.data.checks import run_quality_checks
from workbench.data.loading import load_conversations
from workbench.data.templating import render_training_example, renders_tool_parts
from workbench.errors import WorkbenchError
from workbench.data.cleaning import CleaningSession, Operation
from workbench.data.recipe import export_session, read_recipe
from workbench.data.token_lengths import TokenCounter
from workbench.io_checks import check_output_file

SHOWN_ROWS = 8


def _fraction(text: str) -> float:
    value = float(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1 (exclusive), got {value}")
    return value


def _column_pairs(text: str) -> dict[str, str]:
    """--columns prompt=question,response=answer -> {"prompt": "question", "response": "answer"}."""
    pairs = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, equals, column = item.partition("=")
        if not equals or not key.strip() or not column.strip():
            raise argparse.ArgumentTypeError(f"expected KEY=COLUMN pairs like prompt=question,response=answer, got {item!r}")
        pairs[key.strip()] = column.strip()
    return pairs


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "path",
        help="a .json, .jsonl, .csv, .parquet or .arrow file, a save_to_disk directory, a dataset id in the local "
        "Hugging Face cache (owner/name), or dataset_info.json#entry",
    )
    parser.add_argument("--format", choices=FORMAT_CHOICES, default=None, help="row format (default: auto-detect)")
    parser.add_argument(
        "--columns", type=_column_pairs, default=None, metavar="KEY=COLUMN,...",
        help="column mapping as in data.columns, e.g. prompt=question,response=answer or "
        "messages=dialog,role_tag=speaker,content_tag=text,user_tag=customer,assistant_tag=agent",
    )
    parser.add_argument("--split", default=None, help="split of a save_to_disk directory or cached dataset (default train)")
    parser.add_argument("--subset", default=None, help="configuration (subset) of a cached dataset")
    parser.add_argument("--model", default=None, help="whose tokenizer and chat template count tokens (default: the default model)")
    parser.add_argument(
        "--chat-template", default=None, metavar="T",
        help="auto (the tokenizer's own, default), a built-in (chatml, llama3, qwen2.5, …) or a .jinja file",
    )
    parser.add_argument("--max-seq-length", "--max-seq-len", dest="max_seq_length", type=positive_int, default=None, help=f"token limit (default {DEFAULT_MAX_SEQ_LENGTH})")
    parser.add_argument(
        "--near-threshold", type=float, default=None,
        help=f"Jaccard similarity for near-duplicates, 0..1 (default {DEFAULT_NEAR_THRESHOLD})",
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    inspect = actions.add_parser("inspect", help="format, token lengths and quality checks of a data file")
    _add_common(inspect)
    inspect.add_argument("--json", action="store_true", help="print one JSON object instead of a summary")

    show = actions.add_parser("show", help="one row as the model sees it: the templated text, trained spans marked")
    _add_common(show)
    show.add_argument("--row", type=int, required=True, help="the row to show (0-based, in file order)")
    show.add_argument(
        "--system-prompt", default=None, metavar="S",
        help="system message for a row that has none (default: the chat template's own behaviour)",
    )

    clean = actions.add_parser("clean", help="clean a data file into a new JSONL file plus a replayable recipe")
    _add_common(clean)
    clean.add_argument("-o", "--output", required=True, help="the cleaned JSONL file to write (never the source)")
    clean.add_argument("--output-format", choices=OUTPUT_FORMATS, default=None, help="row format to write (default messages)")
    clean.add_argument("--strip-markup", action="store_true", help="remove HTML remnants, broken characters, stray whitespace")
    clean.add_argument("--drop-empty", action="store_true", help="drop rows with an empty answer")
    clean.add_argument("--dedupe", choices=("exact", "near"), help="drop duplicate rows, keeping the first")
    clean.add_argument("--resolve-conflicts", choices=("drop", "keep-first"), help="same prompt, different answers")
    long_rows = clean.add_mutually_exclusive_group()
    long_rows.add_argument("--drop-too-long", action="store_true", help="drop rows longer than --max-seq-length tokens")
    long_rows.add_argument(
        "--truncate-too-long", action="store_true",
        help="keep the whole exchanges of an over-long conversation that fit (drop it when none fit)",
    )
    clean.add_argument("--keep-matching", metavar="TEXT", help="keep only rows containing TEXT (case-insensitive)")
    clean.add_argument("--drop-matching", metavar="TEXT", help="drop rows containing TEXT (case-insensitive)")
    clean.add_argument("--split-validation", type=_fraction, metavar="FRACTION", help="hold out this share as OUT.validation.jsonl")
    clean.add_argument("--seed", type=int, default=0, help="seed for --split-validation (default 0)")
    clean.add_argument("--recipe", help="replay the steps and settings of a recipe written by an earlier clean")


def _progress_printer(enabled: bool):
    last = {"stage": None}

    def report(stage: str, fraction: float | None) -> None:
        if enabled and stage != last["stage"]:
            print(f"{stage}...", file=sys.stderr, flush=True)
            last["stage"] = stage

    return report


def _load_tokenizer(model: str | None, chat_template: str | None = None):
    """(model name, PreparedTokenizer for the chat template choice: `.tokenizer`, `.notes()`)."""

    name, tokenizer = load_data_tokenizer(model)
    return name, prepare_tokenizer(tokenizer, chat_template, in_place=True)


def _load_tokenizer_in_background(model: str | None, chat_template: str | None = None) -> Callable[[], tuple]:
    """Start loading the tokenizer (importing transformers, reading tokenizer.json) while the data
    file loads; returns a function that waits for it. The thread is a daemon so that a bad data
    file exits at once instead of waiting for a first-use model conversion."""
    outcome: dict[str, object] = {}

    def load() -> None:
        try:
            outcome["tokenizer"] = _load_tokenizer(model, chat_template)
        except BaseException as error:  # handed to the waiting thread
            outcome["error"] = error

    thread = threading.Thread(target=load, name="load-tokenizer", daemon=True)
    thread.start()

    def wait() -> tuple:
        thread.join()
        if "error" in outcome:
            raise outcome["error"]  # type: ignore[misc]
        return outcome["tokenizer"]  # type: ignore[return-value]

    return wait


def _source_options(args: argparse.Namespace) -> dict:
    """load_conversations' column mapping, split and subset from the flags (errors name --columns)."""

    return {"columns": column_map(args.columns, "--columns"), "split": args.split, "subset": args.subset}


def run(args: argparse.Namespace) -> int:
    if args.data_command == "inspect":
        return run_inspect(args)
    if args.data_command == "show":
        return run_show(args)
    return run_clean(args)


def run_inspect(args: argparse.Namespace) -> int:

    progress = _progress_printer(sys.stderr.isatty())
    max_seq_length = args.max_seq_length or DEFAULT_MAX_SEQ_LENGTH
    threshold = DEFAULT_NEAR_THRESHOLD if args.near_threshold is None else args.near_threshold
    _check_threshold(threshold)
    wait_for_tokenizer = _load_tokenizer_in_background(args.model, args.chat_template)
    loaded = load_conversations(args.path, args.format or "auto", progress, **_source_options(args))
    _print_warnings(loaded)
    model_name, prepared = wait_for_tokenizer()
    tokenizer = prepared.tokenizer
    report = run_quality_checks(
        loaded.conversations, tokenizer, max_seq_length=max_seq_length, near_threshold=threshold, progress=progress
    )
    result = {
        "path": str(loaded.path),
        "format": loaded.format,
        "rows": loaded.rows,
        "model": model_name,
        "chat_template": args.chat_template or "auto",
        "max_seq_length": max_seq_length,
        "near_threshold": threshold,
        "token_lengths": report.token_summary(),
        **report.to_json(),
    }
    result["notes"] = prepared.notes() + result.get("notes", [])
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
    else:
        _print_summary(result, loaded.detected)
    return 0


def run_show(args: argparse.Namespace) -> int:
    """`data show`: one row through the chat template, trained spans marked, and its counts."""

    max_seq_length = args.max_seq_length or DEFAULT_MAX_SEQ_LENGTH
    wait_for_tokenizer = _load_tokenizer_in_background(args.model, args.chat_template)
    loaded = load_conversations(args.path, args.format or "auto", **_source_options(args))
    _print_warnings(loaded)
    conversation = next((c for c in loaded.conversations if c.source_index == args.row), None)
    if conversation is None:
        last = f"0..{loaded.rows - 1}" if loaded.rows else "none"
        raise WorkbenchError(f"{loaded.path}: --row {args.row}: no such row (the file has {loaded.rows:,} rows, 0-based: {last})")
    model_name, prepared = wait_for_tokenizer()
    tokenizer = prepared.tokenizer
    example = render_training_example(tokenizer, conversation, max_seq_length, system_prompt=args.system_prompt)
    template = args.chat_template or "auto"
    print(f"{conversation.location(str(loaded.path))} · {loaded.format} · {model_name} · chat template {template}")
    _print_marked(example, color=sys.stdout.isatty())
    trained = example.trained_token_count
    kept = len(example.input_ids)
    cut = f"yes, {example.full_length - kept:,} cut" if example.truncated else "no"
    print(
        f"tokens {example.full_length:,} · trained {trained:,} · masked {kept - trained:,} · "
        f"truncated {cut} (max_seq_length {max_seq_length:,}) · end-of-turn trained {'yes' if example.eos_trained else 'no'}"
    )
    for note in prepared.notes():
        print(f"note: {note}")
    if not renders_tool_parts(tokenizer, conversation):
        print(f"note: chat template {template} does not render this row's tool schemas or calls; choose one that does (qwen2.5, llama3)")
    return 0


TRAINED_MARKERS = ("[[", "]]")
"""How `data show` marks trained text when the output is not a terminal (no colours)."""


def _print_marked(example, *, color: bool) -> None:
    """The kept text with trained runs highlighted (a terminal) or wrapped in TRAINED_MARKERS,
    then what max_seq_length cut off."""
    runs = example.trained_runs()
    cut_text = example.text[sum(len(text) for text, _ in runs):]
    if color:
        from rich.console import Console
        from rich.text import Text

        shown = Text()
        for text, trained in runs:
            shown.append(text, style="bold green" if trained else "dim")
        if cut_text:
            shown.append("\n✂ cut by max_seq_length:\n", style="bold red")
            shown.append(cut_text, style="dim strike")
        Console(highlight=False, soft_wrap=True).print(shown)
        print("(bold green: trained, receives loss; dim: masked)")
        return
    opening, closing = TRAINED_MARKERS
    body = "".join(f"{opening}{text}{closing}" if trained else text for text, trained in runs)
    print(body + (f"\n--- cut by max_seq_length ---\n{cut_text}" if cut_text else ""))
    print(f"({opening}…{closing}: trained, receives loss; everything else is masked)")


def _print_warnings(loaded) -> None:
    """The loader's warnings (a key repeated in a row, …), one line each on stderr."""
    for warning in loaded.warnings:
        print(warning, file=sys.stderr)


def _check_threshold(threshold: float) -> None:

    if not 0 < threshold <= 1:
        raise WorkbenchError(f"--near-threshold: must be in (0, 1], got {threshold}")


def _rows_text(rows: list[int]) -> str:
    shown = ", ".join(str(row) for row in rows[:SHOWN_ROWS])
    return shown + (f", ... (+{len(rows) - SHOWN_ROWS})" if len(rows) > SHOWN_ROWS else "")


def _template_words(chat_template: str) -> str:
    return "chat template" if chat_template == "auto" else f"tokenizer and the {chat_template} chat template"


def _print_summary(result: dict, detected: bool) -> None:
    lengths = result["token_lengths"]
    print(f"{result['path']}: {result['rows']:,} rows, format {result['format']}{' (detected)' if detected else ''}")
    print(
        f"tokens with the {result['model']} {_template_words(result['chat_template'])}: min {lengths['min']:,}, median {lengths['median']:,}, "
        f"p95 {lengths['p95']:,}, max {lengths['max']:,} (max_seq_length {result['max_seq_length']:,})"
    )
    labels = {
        "exact_duplicates": "exact duplicates",
        "near_duplicates": "near duplicates",
        "conflicts": "conflicts",
        "empty_response": "empty answers",
        "too_long": "too long",
        "malformed_turns": "malformed turns",
        "junk": "junk",
    }
    for name, label in labels.items():
        found = result["checks"][name]
        if name in ("exact_duplicates", "near_duplicates", "conflicts"):
            rows = [row for group in found for row in group]
            count = f"{len(found):,} groups, {len(rows):,} rows"
            shown = "; ".join(" ".join(str(row) for row in group) for group in found[:4])
            shown += f"; ... (+{len(found) - 4} groups)" if len(found) > 4 else ""
        else:
            count = f"{len(found):,} rows"
            shown = _rows_text(found)
        print(f"  {label:<17} {count:<24} {shown}")
    balance = result.get("label_balance")
    if balance:
        print("label balance: " + ", ".join(f"{label!r} {count:,}" for label, count in balance.items()))
    for note in result.get("notes", []):
        print(f"note: {note}")
    print("rows are 0-based, in file order; --json lists every row and the reasons")


def run_clean(args: argparse.Namespace) -> int:
    from pathlib import Path


    output = Path(args.output).expanduser()
    check_output_file(output, option=f"-o {args.output}")  # before any work: a folder, no space, read-only
    flagged_operations = _operations_from_flags(args)
    recipe = read_recipe(args.recipe) if args.recipe else None
    if recipe is not None and flagged_operations:
        raise WorkbenchError("--recipe: replays the recipe's own steps; leave out the step flags (--dedupe, ...)")
    operations = recipe.operations if recipe is not None else flagged_operations

    def setting(flag_value, recipe_value, default):
        if flag_value is not None:
            return flag_value
        return recipe_value if recipe_value is not None else default

    data_format = setting(args.format, recipe.format if recipe else None, "auto")
    model = setting(args.model, recipe.model if recipe else None, None)
    max_seq_length = setting(args.max_seq_length, recipe.max_seq_length if recipe else None, DEFAULT_MAX_SEQ_LENGTH)
    threshold = setting(args.near_threshold, recipe.near_threshold if recipe else None, DEFAULT_NEAR_THRESHOLD)
    output_format = setting(args.output_format, recipe.output_format if recipe else None, "messages")
    _check_threshold(threshold)

    progress = _progress_printer(sys.stderr.isatty())
    loaded = load_conversations(args.path, data_format, progress, **_source_options(args))
    _print_warnings(loaded)
    needs_tokens = any(op.name in ("drop_too_long", "truncate_too_long") for op in operations)
    model_name, counter = "default", None
    if needs_tokens or model is not None:
        model_name, prepared = _load_tokenizer(model, args.chat_template)
        counter = TokenCounter(prepared.tokenizer)
    session = CleaningSession(
        loaded.conversations,
        source_path=loaded.path,
        source_format=loaded.format,
        token_counter=counter,
        model_name=model_name if model is None else str(model),
        max_seq_length=max_seq_length,
        near_threshold=threshold,
    )
    print(f"{loaded.path}: {loaded.rows:,} rows, format {loaded.format}")
    for operation in operations:
        plan = session.apply(Operation(operation.name, dict(operation.options)))
        print(f"  {operation.describe()}: {plan.summary()}")
    if not session.split()[0]:
        raise WorkbenchError(
            f"{loaded.path}: no rows left to train on after these steps (all {loaded.rows:,} dropped or held out); "
            f"nothing written to {args.output}"
        )
    result = export_session(session, output, output_format)
    print(f"wrote {result.train_path} ({result.train_rows:,} rows, {output_format})")
    if result.validation_path is not None:
        print(f"wrote {result.validation_path} ({result.validation_rows:,} rows)")
    print(f"wrote {result.recipe_path} (replay: workbench data clean NEW -o OUT --recipe {result.recipe_path})")
    return 0


def _operations_from_flags(args: argparse.Namespace) -> list:
    """The flagged steps, in a fixed order: text fixes first, so duplicates are found on clean text,
    and the split last, so it holds out rows that survive every other step."""

    operations = []
    if args.strip_markup:
        operations.append(Operation("strip_markup"))
    if args.drop_empty:
        operations.append(Operation("drop_empty"))
    if args.dedupe:
        operations.append(Operation("dedupe", {"mode": args.dedupe}))
    if args.resolve_conflicts:
        operations.append(Operation("resolve_conflicts", {"mode": args.resolve_conflicts}))
    if args.drop_too_long:
        operations.append(Operation("drop_too_long"))
    if args.truncate_too_long:
        operations.append(Operation("truncate_too_long"))
    if args.keep_matching:
        operations.append(Operation("filter", {"query": args.keep_matching, "action": "keep"}))
    if args.drop_matching:
        operations.append(Operation("filter", {"query": args.drop_matching, "action": "drop"}))
    if args.split_validation:
        operations.append(Operation("split_validation", {"fraction": args.split_validation, "seed": args.seed}))
    return operations
