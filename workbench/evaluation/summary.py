"""From per-row scores to the results document: aggregates with intervals, differences from the
base, figures per kind, the forgetting check, and the rows where the models differ most."""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any, Optional, Sequence

from workbench.evaluation.intervals import estimate_for, paired_difference, pooled_estimate, rate_estimate
from workbench.evaluation.metrics import BINARY_METRICS, METRICS, corpus_bleu, corpus_chrf

if TYPE_CHECKING:
    from workbench.evaluation.runner import EvalPlan
    from workbench.inference.engine import ChatEngine

RESULTS_VERSION = 1
PRIMARY_ORDER = ("contains", "regex", "exact", "rougeL", "chrf", "bleu")
"""The headline metric is the first of these every model has: a row's own accepted answers or
pattern say most directly whether it was right; ROUGE-L is the fallback for free text."""
MOST_DIFFERENT_ROWS = 20


def _values(records: Sequence[dict[str, Any]], key: str, metric: str) -> list[float]:
    return [
        r["answers"][key]["scores"][metric]
        for r in records
        if key in r["answers"] and metric in r["answers"][key]["scores"]
    ]


def _paired(records: Sequence[dict[str, Any]], first: str, second: str, metric: str) -> tuple[list[float], list[float]]:
    a, b = [], []
    for r in records:
        one, two = r["answers"].get(first), r["answers"].get(second)
        if one and two and metric in one["scores"] and metric in two["scores"]:
            a.append(one["scores"][metric])
            b.append(two["scores"][metric])
    return a, b


def metric_table(records: Sequence[dict[str, Any]], keys: Sequence[str], metrics: Sequence[str]) -> dict[str, dict[str, Any]]:
    """model key -> metric -> Estimate dict, for the metrics that have rows."""
    table: dict[str, dict[str, Any]] = {}
    for key in keys:
        table[key] = {}
        for metric in metrics:
            values = _values(records, key, metric)
            if values:
                table[key][metric] = estimate_for(metric in BINARY_METRICS, values).to_dict()
    return table


def primary_metric(table: dict[str, dict[str, Any]], records: Sequence[dict[str, Any]], regex: Optional[str] = None) -> Optional[str]:
    """The headline metric for these rows: contains when rows carry accepted short answers, regex
    when they carry a pattern, else ROUGE-L (a long reference is rarely contained word for word);
    then the first of PRIMARY_ORDER that every model has. None when there is none."""
    preferred = []
    if any(r["accepted"] for r in records):
        preferred.append("contains")
    if regex or any(r["pattern"] for r in records):
        preferred.append("regex")
    if any(r["references"] for r in records):
        preferred.append("rougeL")
    for metric in (*preferred, *PRIMARY_ORDER):
        if table and all(metric in scores for scores in table.values()):
            return metric
    return None


def _row_difference(record: dict[str, Any], base: str, tuned: str, metric: Optional[str]) -> tuple[float, ...]:
    """How much base and tuned differ on one row: |change| of the headline metric, then of ROUGE-L,
    chrF and length (scaled to 0-1), then whether the texts differ at all."""
    one, two = record["answers"].get(base), record["answers"].get(tuned)
    if not one or not two:
        return (0.0,)
    changes = []
    for name, scale in ((metric, 1.0), ("rougeL", 1.0), ("chrf", 100.0), ("length", 100.0)):
        if name and name in one["scores"] and name in two["scores"]:
            changes.append(abs(two["scores"][name] - one["scores"][name]) / scale)
        else:
            changes.append(0.0)
    return (*changes, float(one["text"] != two["text"]))


def most_different(records: Sequence[dict[str, Any]], base: str, tuned: str, metric: Optional[str], limit: int) -> list[int]:
    """Row indices where base and tuned differ most: the headline metric first, then ROUGE-L (or length)."""
    ranked = sorted(
        (r for r in records if base in r["answers"] and tuned in r["answers"]),
        key=lambda r: _row_difference(r, base, tuned, metric),
        reverse=True,
    )
    return [r["index"] for r in ranked[:limit] if any(_row_difference(r, base, tuned, metric))]


def _loss_figures(losses: dict[str, tuple[list[float], list[int]]]) -> dict[str, dict[str, Any]]:
    figures = {}
    for key, (nll, tokens) in losses.items():
        loss = pooled_estimate(nll, tokens).to_dict()
        perplexity = {name: math.exp(loss[name]) if math.isfinite(loss[name]) else None for name in ("value", "low", "high")}
        figures[key] = {"loss": loss, "perplexity": {**perplexity, "n": loss["n"], "method": loss["method"]}}
    return figures


def _knowledge_figures(plan: "EvalPlan", knowledge: dict[str, list]) -> Optional[dict[str, Any]]:
    if not knowledge:
        return None
    items = plan.knowledge
    base = plan.models[0].key
    models: dict[str, Any] = {}
    correct: dict[str, list[float]] = {}
    for key, scores in knowledge.items():
        hits = [float(score.pick == item.answer) for item, score in zip(items, scores)]
        hits_norm = [float(score.pick_norm == item.answer) for item, score in zip(items, scores)]
        correct[key] = hits
        topics: dict[str, list[float]] = {}
        for item, hit in zip(items, hits):
            topics.setdefault(item.topic or "all", []).append(hit)
        models[key] = {
            "accuracy": rate_estimate(hits).to_dict(),
            "accuracy_norm": rate_estimate(hits_norm).to_dict(),
            "by_topic": {topic: sum(values) / len(values) for topic, values in topics.items()},
        }
    differences = {}
    for key in knowledge:
        if key != base and base in correct:
            estimate = paired_difference(correct[base], correct[key])
            differences[key] = estimate.to_dict() if estimate else None
    picks = {key: [score.pick for score in scores] for key, scores in knowledge.items()}
    return {
        "file": plan.knowledge_file,
        "items": len(items),
        "scoring": "sum of the choice's token log-probabilities given the question (acc); acc_norm divides by characters",
        "chance": sum(1 / len(item.choices) for item in items) / len(items),
        "models": models,
        "differences": differences,
        "items_detail": [
            {"id": item.id, "topic": item.topic, "answer": item.answer, "picks": {key: picks[key][i] for key in picks}}
            for i, item in enumerate(items)
        ],
    }


def summarize(
    engine: "ChatEngine",
    plan: "EvalPlan",
    records: list[dict[str, Any]],
    losses: dict[str, tuple[list[float], list[int]]],
    knowledge: dict[str, list],
    seconds: dict[str, float],
) -> dict[str, Any]:
    """The results document (the field list is in workbench/evaluation/report.py)."""
    keys = [model.key for model in plan.models]
    answer_metrics = [m for m in METRICS if m in plan.metrics]
    table = metric_table(records, keys, answer_metrics)
    for key, figures in _loss_figures(losses).items():
        table.setdefault(key, {}).update(figures)
    primary = primary_metric({key: {m: v for m, v in scores.items() if m in METRICS} for key, scores in table.items()}, records, plan.regex)
    base = keys[0]
    differences: dict[str, dict[str, Any]] = {}
    for key in keys[1:]:
        differences[key] = {}
        for metric in answer_metrics:
            estimate = paired_difference(*_paired(records, base, key, metric))
            if estimate is not None:
                differences[key][metric] = estimate.to_dict()
    corpus = {}
    for key in keys:
        pairs = [(r["answers"][key]["text"], r["references"]) for r in records if key in r["answers"] and r["references"]]
        if pairs and ("bleu" in plan.metrics or "chrf" in plan.metrics):
            texts, references = [p[0] for p in pairs], [p[1] for p in pairs]
            corpus[key] = {
                "bleu": corpus_bleu(texts, references) if "bleu" in plan.metrics else None,
                "chrf": corpus_chrf(texts, references) if "chrf" in plan.metrics else None,
            }
    kinds: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        if record["kind"] is not None:
            kinds.setdefault(record["kind"], []).append(record)
    by_kind = {kind: metric_table(rows, keys, answer_metrics) for kind, rows in kinds.items()}
    primary_by_kind = {kind: primary_metric(by_kind[kind], rows, plan.regex) for kind, rows in kinds.items()}
    tuned = keys[1] if len(keys) > 1 else None
    return {
        "version": RESULTS_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "base_model": engine.model_name,
        "data": plan.description,
        "row_count": len(plan.rows),
        "system_prompt": plan.system_prompt,
        "settings": plan.settings.to_dict(),
        "metrics_requested": list(plan.metrics),
        "primary_metric": primary,
        "intervals": "95%: Wilson score for 0/1 metrics and accuracy; percentile bootstrap (2000 resamples, seed 0) "
        "for means and the pooled loss; paired bootstrap for differences from the base",
        "models": [model.to_dict() for model in plan.models],
        "metrics": table,
        "corpus": corpus,
        "by_kind": by_kind,
        "primary_by_kind": primary_by_kind,
        "differences": differences,
        "knowledge": _knowledge_figures(plan, knowledge),
        "most_different": most_different(records, base, tuned, primary, MOST_DIFFERENT_ROWS) if tuned else [],
        "rows": records,
        "seconds": seconds,
    }
