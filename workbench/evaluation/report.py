"""Where results go and how they read: `<run>/eval/results.json`, `<run>/eval/report.md`, text tables.

results.json (version 1) holds:

    version, created, base_model, data (where the rows came from), row_count, system_prompt,
    settings (decoding), metrics_requested, primary_metric (the headline: contains, regex, exact,
    rougeL, chrf or bleu), intervals (how they were computed),
    models        [{key, label, step, kind, path, checkpoint}]  base first, then tuned, then checkpoints
    metrics       {model key: {metric: {value, low, high, n, method}}}; "loss" (token-weighted mean
                  negative log-likelihood on the rows' trained tokens) and "perplexity" (exp of it) too
    corpus        {model key: {bleu, chrf}}  corpus-level scores (sacrebleu)
    by_kind       {kind: {model key: {metric: estimate}}}  when rows have a kind
    differences   {model key: {metric: {value, low, high, n, method}}}  model minus base, paired
    knowledge     {file, items, scoring, chance, models: {key: {accuracy, accuracy_norm, by_topic}},
                   differences: {key: estimate}, items_detail: [{id, topic, answer, picks}]} or null
    most_different  row indices, the rows where base and tuned differ most first
    rows          [{index, where, kind, prompt, references, accepted, pattern,
                    answers: {key: {text, tokens, finish_reason, scores: {metric: value}}},
                    loss: {key: mean loss per trained token}}]
    seconds       {answers, loss, knowledge, total}

Rates (exact, contains, regex, accuracy) are fractions 0-1, ROUGE-L an F-measure 0-1, BLEU and
chrF 0-100 (sacrebleu's scale), length in generated tokens.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

from workbench.errors import WorkbenchError
from workbench.evaluation.metrics import BINARY_METRICS, METRIC_TITLES, METRICS
from workbench.runs.rundir import write_json_atomic

EVAL_DIR_NAME = "eval"
RESULTS_FILE = "results.json"
REPORT_FILE = "report.md"
ROW_FIELDS_SHOWN = 5


def eval_dir(run_dir: Path) -> Path:
    """Where a run's evaluation results live."""
    return Path(run_dir) / EVAL_DIR_NAME


def write_results(results: dict[str, Any], out_dir: Path) -> tuple[Path, Path]:
    """results.json (written atomically) and report.md in `out_dir`."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    results_path = out_dir / RESULTS_FILE
    write_json_atomic(results_path, results)
    report_path = out_dir / REPORT_FILE
    report_path.write_text(markdown_report(results), encoding="utf-8")
    return results_path, report_path


def read_results(path: Path) -> Optional[dict[str, Any]]:
    """An evaluation's results.json, or a run's (in its eval/ folder: the run directory's own
    results.json is the trainer's summary, another document); None when there is none; a broken
    one is an error."""
    path = Path(path)
    if path.is_dir():
        path = path / EVAL_DIR_NAME / RESULTS_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise WorkbenchError(f"{path}: not a readable results file ({error})") from None


# -- formatting -------------------------------------------------------------------------------


def format_value(metric: str, value: Optional[float]) -> str:
    if value is None:
        return "–"
    if metric in BINARY_METRICS or metric in ("accuracy", "accuracy_norm"):
        return f"{value * 100:.0f}%"
    if metric == "rougeL":
        return f"{value:.2f}"
    if metric in ("bleu", "chrf", "length"):
        return f"{value:.1f}"
    if metric == "perplexity":
        return f"{value:.2f}"
    return f"{value:.3f}"


def format_estimate(metric: str, estimate: Optional[dict[str, Any]], counts: bool = False) -> str:
    """"62% [52–71]", or "23/24" with counts for a rate."""
    if not estimate:
        return "–"
    value = estimate.get("value")
    if counts and (metric in BINARY_METRICS or metric.startswith("accuracy")) and value is not None:
        return f"{round(value * estimate['n'])}/{estimate['n']}"
    text = format_value(metric, value)
    low, high = estimate.get("low"), estimate.get("high")
    if low is None or high is None or low == high:
        return text
    return f"{text} [{format_value(metric, low).rstrip('%')}–{format_value(metric, high)}]"


def format_difference(metric: str, estimate: Optional[dict[str, Any]]) -> str:
    """"+68 pts [+50, +83]" for rates, "+0.21 [+0.1, +0.3]" otherwise."""
    if not estimate:
        return "–"
    rate = metric in BINARY_METRICS or metric.startswith("accuracy")
    scale, unit, digits = (100.0, " pts", 0) if rate else (1.0, "", 2 if metric == "rougeL" else 1)

    def signed(value: float) -> str:
        return f"{value * scale:+.{digits}f}"

    return f"{signed(estimate['value'])}{unit} [{signed(estimate['low'])}, {signed(estimate['high'])}]"


def _labels(results: dict[str, Any]) -> dict[str, str]:
    return {model["key"]: model["label"] for model in results["models"]}


def _metric_rows(results: dict[str, Any]) -> list[str]:
    shown = [m for m in (*METRICS, "loss", "perplexity") if any(m in scores for scores in results["metrics"].values())]
    return shown


def kind_metric(results: dict[str, Any], kind: str) -> Optional[str]:
    """The headline metric of one kind of rows (the overall one when the kind has none of its own)."""
    return (results.get("primary_by_kind") or {}).get(kind) or results.get("primary_metric")


def headline(results: dict[str, Any]) -> list[str]:
    """Short "before → after" lines: each kind's headline metric, then general knowledge."""
    keys = [model["key"] for model in results["models"]]
    if len(keys) < 2:
        return []
    base, tuned = keys[0], keys[1]
    lines = []
    groups = results.get("by_kind") or {"held-out rows": results["metrics"]}
    for kind, table in groups.items():
        metric = kind_metric(results, kind)
        before, after = table.get(base, {}).get(metric), table.get(tuned, {}).get(metric)
        if metric and before and after:
            counts = metric in BINARY_METRICS
            title = "" if counts else f" {METRIC_TITLES[metric]}"
            lines.append(f"{kind}{title}: {format_estimate(metric, before, counts)} → {format_estimate(metric, after, counts)}")
    knowledge = results.get("knowledge")
    if knowledge:
        before, after = knowledge["models"].get(base), knowledge["models"].get(tuned)
        if before and after:
            lines.append(
                f"general knowledge: {format_value('accuracy', before['accuracy']['value'])} → "
                f"{format_value('accuracy', after['accuracy']['value'])}"
            )
    return lines


def _short(text: str, width: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def text_report(results: dict[str, Any], width: int = 100) -> list[str]:
    """The CLI's tables: metrics per model, differences, kinds, knowledge, rows that differ most."""
    labels = _labels(results)
    keys = list(labels)
    column = max(16, min(24, (width - 22) // max(1, len(keys) + 1)))
    lines = [f"{results['data']} · {results['row_count']} rows · {results['base_model']}"]
    lines.append(" " * 20 + "".join(_short(labels[k], column - 1).ljust(column) for k in keys) + (f"Δ {keys[1]} − base" if len(keys) > 1 else ""))
    for metric in _metric_rows(results):
        cells = [format_estimate(metric, results["metrics"].get(k, {}).get(metric)) for k in keys]
        difference = ""
        if len(keys) > 1 and metric in results["differences"].get(keys[1], {}):
            difference = format_difference(metric, results["differences"][keys[1]][metric])
        lines.append(METRIC_TITLES.get(metric, metric).ljust(20) + "".join(c.ljust(column) for c in cells) + difference)
    metric = results.get("primary_metric")
    for kind, table in (results.get("by_kind") or {}).items():
        own = kind_metric(results, kind)
        if own:
            cells = [format_estimate(own, table.get(k, {}).get(own), counts=True) for k in keys]
            lines.append(_short(f"{kind} · {METRIC_TITLES[own]}", 19).ljust(20) + "".join(c.ljust(column) for c in cells))
    knowledge = results.get("knowledge")
    if knowledge:
        cells = [format_estimate("accuracy", knowledge["models"].get(k, {}).get("accuracy")) for k in keys]
        difference = format_difference("accuracy", knowledge["differences"].get(keys[1])) if len(keys) > 1 else ""
        lines.append("general knowledge".ljust(20) + "".join(c.ljust(column) for c in cells) + difference)
        lines.append(
            f"  ({knowledge['items']} multiple-choice questions scored by log-likelihood, chance {knowledge['chance'] * 100:.0f}%)"
        )
    lines.append(f"intervals: {results['intervals']}")
    rows = {row["index"]: row for row in results["rows"]}
    if results.get("most_different") and len(keys) > 1:
        lines.append(f"Rows where {labels[keys[1]]} and the base differ most:")
        for index in results["most_different"][:ROW_FIELDS_SHOWN]:
            row = rows[index]
            lines.append(f"  [{index}] {_short(row['prompt'], width - 8)}")
            for key in (keys[0], keys[1]):
                answer = row["answers"].get(key)
                if answer:
                    score = answer["scores"].get(metric) if metric else None
                    mark = f" ({format_value(metric, score)})" if score is not None else ""
                    lines.append(f"      {key}{mark}: {_short(answer['text'], width - 16)}")
    return lines


def markdown_report(results: dict[str, Any]) -> str:
    """report.md: the same figures as the CLI, as Markdown tables, with the differing rows in full."""
    labels = _labels(results)
    keys = list(labels)
    out = [f"# Evaluation: {labels[keys[-1]] if len(keys) > 1 else labels[keys[0]]}", ""]
    out.append(f"- rows: {results['data']} ({results['row_count']} rows)")
    out.append(f"- base model: {results['base_model']}; system prompt: {results['system_prompt']!r}")
    settings = results["settings"]
    out.append(f"- decoding: {'greedy' if settings['temperature'] == 0 else 'sampled'}, at most {settings['max_new_tokens']} new tokens")
    out.append(f"- intervals: {results['intervals']}")
    out.append(f"- created {results['created']} in {results['seconds'].get('total', 0):.0f} s")
    for line in headline(results):
        out.append(f"- **{line}**")
    out += ["", "| metric | " + " | ".join(labels[k] for k in keys) + (f" | Δ {keys[1]} − base |" if len(keys) > 1 else " |")]
    out.append("|---" * (len(keys) + 1 + (1 if len(keys) > 1 else 0)) + "|")
    for metric in _metric_rows(results):
        cells = [format_estimate(metric, results["metrics"].get(k, {}).get(metric)) for k in keys]
        if len(keys) > 1:
            cells.append(format_difference(metric, results["differences"].get(keys[1], {}).get(metric)))
        out.append(f"| {METRIC_TITLES.get(metric, metric)} | " + " | ".join(cells) + " |")
    metric = results.get("primary_metric")
    knowledge = results.get("knowledge")
    if knowledge:
        cells = [format_estimate("accuracy", knowledge["models"].get(k, {}).get("accuracy")) for k in keys]
        if len(keys) > 1:
            cells.append(format_difference("accuracy", knowledge["differences"].get(keys[1])))
        out.append("| general knowledge | " + " | ".join(cells) + " |")
    if results.get("by_kind"):
        out += ["", "## By kind", "", "| kind | metric | " + " | ".join(labels[k] for k in keys) + " |"]
        out.append("|---" * (len(keys) + 2) + "|")
        for kind, table in results["by_kind"].items():
            own = kind_metric(results, kind)
            if own:
                cells = " | ".join(format_estimate(own, table.get(k, {}).get(own), counts=True) for k in keys)
                out.append(f"| {kind} | {METRIC_TITLES[own]} | {cells} |")
    if knowledge:
        topics = sorted({t for model in knowledge["models"].values() for t in model["by_topic"]})
        out += ["", f"## General knowledge ({knowledge['items']} questions, {knowledge['scoring']})", ""]
        out.append("| topic | " + " | ".join(labels[k] for k in keys if k in knowledge["models"]) + " |")
        out.append("|---" * (1 + len(knowledge["models"])) + "|")
        for topic in topics:
            out.append(
                f"| {topic} | "
                + " | ".join(format_value("accuracy", knowledge["models"][k]["by_topic"].get(topic)) for k in keys if k in knowledge["models"])
                + " |"
            )
    rows = {row["index"]: row for row in results["rows"]}
    if results.get("most_different") and len(keys) > 1:
        out += ["", f"## Rows where {labels[keys[1]]} and the base differ most", ""]
        out.append(f"| row | prompt | {labels[keys[0]]} | {labels[keys[1]]} |")
        out.append("|---|---|---|---|")
        for index in results["most_different"]:
            row = rows[index]
            cells = []
            for key in (keys[0], keys[1]):
                answer = row["answers"].get(key, {})
                score = answer.get("scores", {}).get(metric) if metric else None
                mark = f" ({format_value(metric, score)})" if score is not None else ""
                cells.append(_cell(answer.get("text", "")) + mark)
            out.append(f"| {index} | {_cell(row['prompt'])} | {cells[0]} | {cells[1]} |")
    return "\n".join(out) + "\n"


def _cell(text: str) -> str:
    return _short(text, 300).replace("|", "\\|")
