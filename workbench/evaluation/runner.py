"""One evaluation end to end: answers, metrics, loss and the forgetting check for several models.

All models share one copy of the weights through the chat engine: every batch asks a group of
prompts to every model at once (base rows and adapter rows in one `generate`, routed by row
masks; see workbench/inference/engine.py), so evaluating base and tuned costs little more than
evaluating one of them on a CPU, where decoding is bound by reading the weights (bench/eval_speed.py).
Answers are greedy, so a rerun gives the same answers. A row is scored as soon as every model has
answered it, and `on_event` hears about it at once (the CLI's --json prints it then).

Teacher-forced scoring (the loss and the multiple-choice check) runs one model at a time under the
engine's lock (`ChatEngine.model_for`): it is compute-bound, so mixing rows would save nothing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Optional, Sequence

from workbench.data.templating import render_training_example
from workbench.evaluation.knowledge import choice_groups, score_items
from workbench.evaluation.loglik import score_sequences
from workbench.evaluation.metrics import METRICS, score_answer
from workbench.evaluation.rows import EvalRow
from workbench.evaluation.summary import summarize
from workbench.inference.engine import GenerationJob
from workbench.inference.streaming import SideFinished

if TYPE_CHECKING:
    from workbench.evaluation.knowledge import ChoiceItem
    from workbench.inference.engine import ChatEngine
    from workbench.inference.settings import SamplingSettings
    from workbench.inference.sources import ModelSource

BATCH_PROMPTS = 24
"""Prompts per batched generate, each asked to every model (base + tuned: twice as many rows).
On a CPU a decoding step's cost is mostly reading the weights, so wider batches spread it over more
rows; a batch runs until its longest answer ends, so they also carry finished rows longer. Measured
with `bench/eval_speed.py --batch-size 12 24 32` (interleaved, 100 rows, SmolLM2-135M + LoRA, 2
cores): base + tuned took 71.4 s at 12 prompts, 47.1 s at 24 and 50.0 s at 32 (docs/benchmarks.md,
third session). Evaluating one model alone uses the same prompt batches, so the two timings compare
the same schedule."""
MAX_NEW_TOKENS_WITHOUT_REFERENCE = 48
"""Answers to rows that only have accepted short answers (`expect_any`) or a pattern: a name or a
fact shows in the first sentence."""
MAX_NEW_TOKENS_CAP = 256


@dataclass(frozen=True)
class EvalModel:
    """One model of the comparison.

    Attributes:
        key: a short stable id for the results ("base", "final", "best", "step-40").
        source: what the chat engine answers with.
        label: the human name ("base model", "my-run · final").
        step: the optimizer step the weights are from (0 for the base; None when unknown).
    """

    key: str
    source: "ModelSource"
    label: str
    step: Optional[int] = None

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "label": self.label, "step": self.step, **{
            k: v for k, v in self.source.to_dict().items() if k in ("kind", "path", "checkpoint")
        }}


@dataclass
class EvalPlan:
    """What to evaluate and how.

    Attributes:
        models: the base first, then the tuned model and any checkpoints.
        rows: the held-out rows.
        description: where the rows came from (the report's first line).
        metrics: answer metrics (names from metrics.METRICS) and "loss".
        settings: decoding settings (greedy; max_new_tokens as chosen, see `default_max_new_tokens`).
        system_prompt: applied with the training rule (None: the template's default).
        regex: a pattern for rows without their own.
        knowledge: multiple-choice items for the forgetting check (empty: skipped).
        knowledge_file: where the items came from.
        max_seq_length / assistant_only: how training tokenized the rows, for the loss.
        batch_prompts: prompts per batched generate.
    """

    models: list[EvalModel]
    rows: list[EvalRow]
    description: str
    metrics: tuple[str, ...]
    settings: "SamplingSettings"
    system_prompt: Optional[str] = None
    regex: Optional[str] = None
    knowledge: list["ChoiceItem"] = field(default_factory=list)
    knowledge_file: Optional[str] = None
    max_seq_length: int = 2048
    assistant_only: bool = True
    batch_prompts: int = BATCH_PROMPTS


@dataclass(frozen=True)
class EvalProgress:
    """Progress: `stage` is "answers", "loss" or "knowledge"; `fraction` covers the whole evaluation."""

    stage: str
    done: int
    total: int
    fraction: float


@dataclass(frozen=True)
class RowScored:
    """One row answered by every model and scored (the row's entry of results["rows"])."""

    row: dict[str, Any]


EvalEvent = EvalProgress | RowScored


class EvalCancelled(Exception):
    """The evaluation was stopped before it finished."""


def default_max_new_tokens(tokenizer, rows: Sequence[EvalRow]) -> int:
    """Room for the longest reference (1.25x its tokens plus 8, at most 256), or 48 without references."""
    longest = max(
        (len(tokenizer(reference, add_special_tokens=False)["input_ids"]) for row in rows for reference in row.references),
        default=0,
    )
    if not longest:
        return MAX_NEW_TOKENS_WITHOUT_REFERENCE
    return max(16, min(MAX_NEW_TOKENS_CAP, int(longest * 1.25) + 8))


class _Progress:
    """Turns per-stage counts into one fraction over the whole evaluation."""

    def __init__(self, plan: EvalPlan, emit: Callable[[EvalEvent], None]) -> None:
        models = len(plan.models)
        self.weights = {
            "answers": len(plan.rows) * models * 8.0,  # generating a row costs ~ many forward passes
            "loss": len(plan.rows) * models if "loss" in plan.metrics else 0.0,
            "knowledge": len(plan.knowledge) * models * 1.5,
        }
        self.total_weight = sum(self.weights.values()) or 1.0
        self.finished_weight = 0.0
        self.emit = emit

    def report(self, stage: str, done: int, total: int) -> None:
        share = self.weights[stage] * (done / total if total else 1.0)
        fraction = min(1.0, (self.finished_weight + share) / self.total_weight)
        self.emit(EvalProgress(stage, done, total, fraction))

    def finish(self, stage: str) -> None:
        self.finished_weight += self.weights[stage]


def _row_record(row: EvalRow) -> dict[str, Any]:
    return {
        "index": row.index,
        "where": row.where,
        "kind": row.kind,
        "prompt": row.prompt,
        "references": list(row.references),
        "accepted": list(row.accepted),
        "pattern": row.pattern,
        "answers": {},
        "loss": {},
    }


def _score_row(record: dict[str, Any], row: EvalRow, plan: EvalPlan, key: str, answer) -> None:
    pattern = row.pattern or plan.regex
    tokens = answer.tokens - (1 if answer.finish_reason == "eos" else 0)  # the end-of-turn token is no text
    text = answer.text.strip()
    scores = score_answer(
        text,
        metrics=[m for m in plan.metrics if m in METRICS],
        references=row.references,
        accepted=row.accepted,
        pattern=pattern,
        pattern_where=f"{row.where}: regex" if row.pattern else "--regex",
        answer_tokens=tokens,
    )
    record["answers"][key] = {"text": text, "tokens": tokens, "finish_reason": answer.finish_reason, "scores": scores}


def generate_and_score(
    engine: "ChatEngine",
    plan: EvalPlan,
    emit: Callable[[EvalEvent], None],
    progress: _Progress,
    cancelled: Callable[[], bool],
) -> list[dict[str, Any]]:
    """Every row asked to every model: one stream of batches of `plan.batch_prompts` prompts × every
    model (ChatEngine.start's batch_size); a row is scored the moment its last model answers."""
    records = [_row_record(row) for row in plan.rows]
    models = plan.models
    for model in models:
        engine.attach(model.source)
    prompt_lengths = [len(engine.prompt_ids(row.prompt_messages(plan.system_prompt))) for row in plan.rows]
    # Similar prompt lengths share a batch, so little of each batch is left padding.
    order = sorted(range(len(plan.rows)), key=prompt_lengths.__getitem__)
    jobs = [
        GenerationJob(model.source, plan.rows[i].prompt_messages(plan.system_prompt), plan.settings)
        for i in order
        for model in models
    ]
    waiting = {i: len(models) for i in order}
    done = 0
    progress.report("answers", 0, len(plan.rows))
    stream = engine.start(jobs, batch_size=max(1, plan.batch_prompts) * len(models))
    try:
        while not stream.finished:
            for event in stream.drain(timeout=0.5):
                if not isinstance(event, SideFinished):
                    continue
                position, model_index = divmod(event.side, len(models))
                row_index = order[position]
                _score_row(records[row_index], plan.rows[row_index], plan, models[model_index].key, event.answer)
                waiting[row_index] -= 1
                if waiting[row_index] == 0:
                    done += 1
                    emit(RowScored(records[row_index]))
                    progress.report("answers", done, len(plan.rows))
            if cancelled():
                stream.cancel()
    finally:
        if not stream.finished:
            stream.cancel()
            for _ in stream:
                pass
    if cancelled() or done < len(plan.rows):
        raise EvalCancelled()
    progress.finish("answers")
    return records


def score_losses(
    engine: "ChatEngine", plan: EvalPlan, records: list[dict[str, Any]], progress: _Progress, cancelled: Callable[[], bool]
) -> dict[str, tuple[list[float], list[int]]]:
    """Teacher-forced loss of each model on the rows with a reference, tokenized and masked exactly
    as training does (`render_training_example` with the run's options). Returns model key ->
    (summed negative log-likelihood per row, trained tokens per row), over the rows that have any."""
    scored_rows, sequences = [], []
    for position, row in enumerate(plan.rows):
        if not row.has_reference:
            continue
        example = render_training_example(
            engine.tokenizer, row.conversation, plan.max_seq_length, plan.assistant_only, plan.system_prompt
        )
        if any(label != -100 for label in example.labels[1:]):
            scored_rows.append(position)
            sequences.append((example.input_ids, example.labels))
    results: dict[str, tuple[list[float], list[int]]] = {}
    if not sequences:  # questions without reference answers have nothing to be teacher-forced on
        progress.finish("loss")
        return results
    total = len(sequences) * len(plan.models)
    for number, model in enumerate(plan.models):
        if cancelled():
            raise EvalCancelled()
        with engine.model_for(model.source) as network:
            scores = score_sequences(
                network,
                sequences,
                pad_token_id=engine.pad_token_id,
                progress=lambda rows, number=number: progress.report("loss", number * len(sequences) + rows, total),
                cancelled=cancelled,
            )
        if cancelled():
            raise EvalCancelled()
        results[model.key] = ([-s.logprob for s in scores], [s.tokens for s in scores])
        for position, score in zip(scored_rows, scores):
            records[position]["loss"][model.key] = -score.logprob / score.tokens if score.tokens else None
    progress.finish("loss")
    return results


def score_knowledge(
    engine: "ChatEngine", plan: EvalPlan, progress: _Progress, cancelled: Callable[[], bool]
) -> dict[str, list]:
    """Model key -> ItemScore per multiple-choice item."""
    groups = choice_groups(engine.tokenizer, plan.knowledge, plan.system_prompt)
    total = len(groups) * len(plan.models)
    results = {}
    for number, model in enumerate(plan.models):
        if cancelled():
            raise EvalCancelled()
        results[model.key] = score_items(
            engine,
            model.source,
            plan.knowledge,
            groups,
            progress=lambda items, number=number: progress.report("knowledge", number * len(groups) + items, total),
            cancelled=cancelled,
        )
        if cancelled():
            raise EvalCancelled()
    progress.finish("knowledge")
    return results


def run_evaluation(
    engine: "ChatEngine",
    plan: EvalPlan,
    on_event: Callable[[EvalEvent], None] = lambda event: None,
    cancelled: Callable[[], bool] = lambda: False,
) -> dict[str, Any]:
    """Answers, metrics, loss and the forgetting check for every model of the plan.

    Returns the results document (see workbench/evaluation/report.py for its fields). Raises
    EvalCancelled when `cancelled()` turns True; a bad row pattern raises WorkbenchError.
    """
    started = time.perf_counter()
    progress = _Progress(plan, on_event)
    seconds: dict[str, float] = {}
    records: list[dict[str, Any]] = [_row_record(row) for row in plan.rows]
    if plan.rows and any(m in METRICS for m in plan.metrics):
        records = generate_and_score(engine, plan, on_event, progress, cancelled)
    else:
        progress.finish("answers")
    seconds["answers"] = time.perf_counter() - started
    losses = {}
    if "loss" in plan.metrics and plan.rows:
        mark = time.perf_counter()
        losses = score_losses(engine, plan, records, progress, cancelled)
        seconds["loss"] = time.perf_counter() - mark
    knowledge = {}
    if plan.knowledge:
        mark = time.perf_counter()
        knowledge = score_knowledge(engine, plan, progress, cancelled)
        seconds["knowledge"] = time.perf_counter() - mark
    seconds["total"] = time.perf_counter() - started
    return summarize(engine, plan, records, losses, knowledge, seconds)
