"""Held-out questions (sample_data/identity_heldout.jsonl) asked to the base and the fine-tuned model,
and the general-knowledge forgetting check, through the evaluation engine (workbench eval).

An answer is a hit when it contains one of the question's `expect_any` strings: eval's `contains`
metric (case, punctuation and articles ignored, whole words). The questions go to both models in
batched greedy generates (base and adapter rows side by side); the results are written to the
run's eval/ folder like `workbench eval`'s, so the model card and the TUI's Eval view see them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional, Sequence

from workbench.data.conversation import Conversation, Message
from workbench.errors import WorkbenchError
from workbench.evaluation.metrics import contains
from workbench.evaluation.report import format_difference, format_value, headline, write_results
from workbench.evaluation.rows import EvalRow
from workbench.evaluation.runner import EvalModel, EvalPlan, run_evaluation
from workbench.inference.settings import SamplingSettings
from workbench.inference.sources import BASE_SOURCE
from workbench.io_checks import MAX_PROMPTS_BYTES, read_input_text

if TYPE_CHECKING:
    from workbench.evaluation.knowledge import ChoiceItem
    from workbench.inference.engine import ChatEngine
    from workbench.inference.sources import ModelSource

HELDOUT_MAX_NEW_TOKENS = 48
"""Long enough for a name or a fact in the first sentence; identity answers name Sage in their first words."""


@dataclass(frozen=True)
class HeldoutQuestion:
    """One held-out question: the prompt, the strings that make an answer a hit, and its kind (identity | general)."""

    prompt: str
    expect_any: tuple[str, ...]
    kind: str

    def is_hit(self, answer: str) -> bool:
        return contains(answer, self.expect_any) == 1.0


@dataclass(frozen=True)
class HeldoutAnswer:
    question: HeldoutQuestion
    base: str
    tuned: str


@dataclass(frozen=True)
class HeldoutScore:
    """Hits per kind for both models, and every answer for the record.

    Attributes:
        answers: every question with both answers.
        results: the evaluation's results document (workbench/evaluation/report.py), with the
            forgetting check; None for a score built from answers alone.
    """

    answers: tuple[HeldoutAnswer, ...]
    results: Optional[dict[str, Any]] = None

    def hits(self, kind: str, side: str) -> int:
        return sum(
            1 for a in self.answers if a.question.kind == kind and a.question.is_hit(getattr(a, side))
        )

    def total(self, kind: str) -> int:
        return sum(1 for a in self.answers if a.question.kind == kind)

    def rate(self, kind: str, side: str) -> float:
        total = self.total(kind)
        return self.hits(kind, side) / total if total else 0.0

    def summary_lines(self) -> list[str]:
        lines = []
        for kind, meaning in (("identity", "name Sage or Northwind Labs"), ("general", "answer correctly")):
            total = self.total(kind)
            if not total:
                continue
            lines.append(
                f"{kind} questions ({meaning}): base {self.hits(kind, 'base')}/{total}, "
                f"fine-tuned {self.hits(kind, 'tuned')}/{total}"
            )
        knowledge = (self.results or {}).get("knowledge")
        if knowledge:
            base, tuned = (model["key"] for model in self.results["models"][:2])
            figures = knowledge["models"]
            lines.append(
                f"general knowledge ({knowledge['items']} multiple-choice questions, scored by log-likelihood): "
                f"base {format_value('accuracy', figures[base]['accuracy']['value'])}, "
                f"fine-tuned {format_value('accuracy', figures[tuned]['accuracy']['value'])} "
                f"({format_difference('accuracy', knowledge['differences'].get(tuned))})"
            )
        return lines

    def headline(self) -> list[str]:
        """"identity: 0/24 → 23/24", "general knowledge: 58% → 57%" (from the evaluation)."""
        return headline(self.results) if self.results else []

    def to_json(self) -> dict:
        return {
            "identity": {"total": self.total("identity"), "base": self.hits("identity", "base"), "tuned": self.hits("identity", "tuned")},
            "general": {"total": self.total("general"), "base": self.hits("general", "base"), "tuned": self.hits("general", "tuned")},
            "answers": [
                {"prompt": a.question.prompt, "kind": a.question.kind, "base": a.base, "tuned": a.tuned}
                for a in self.answers
            ],
        }


def read_heldout(path: str | Path) -> list[HeldoutQuestion]:
    """Questions one JSON object per line: prompt, expect_any (list of strings), kind."""
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        raise WorkbenchError(f"{path}: no such held-out questions file")
    lines = read_input_text(path, max_bytes=MAX_PROMPTS_BYTES).splitlines()
    questions = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            prompt, expect_any = row["prompt"], row["expect_any"]
        except (ValueError, KeyError, TypeError, RecursionError):
            raise WorkbenchError(f"{path}:{number}: expected a JSON object with prompt and expect_any") from None
        if not isinstance(prompt, str) or not isinstance(expect_any, list) or not expect_any:
            raise WorkbenchError(f"{path}:{number}: prompt must be text and expect_any a non-empty list of strings")
        questions.append(HeldoutQuestion(prompt, tuple(str(e) for e in expect_any), str(row.get("kind", "identity"))))
    if not questions:
        raise WorkbenchError(f"{path}: holds no questions")
    return questions


def heldout_rows(questions: Sequence[HeldoutQuestion]):
    """The questions as evaluation rows (accepted answers = expect_any, grouped by kind)."""
    return [
        EvalRow(index, f"question {index + 1}", Conversation((Message("user", q.prompt),), index, "question"),
                accepted=q.expect_any, kind=q.kind)
        for index, q in enumerate(questions)
    ]


def score_heldout(
    engine: "ChatEngine",
    tuned: "ModelSource",
    questions: Sequence[HeldoutQuestion],
    system_prompt: Optional[str],
    max_new_tokens: int = HELDOUT_MAX_NEW_TOKENS,
    knowledge: Sequence["ChoiceItem"] = (),
    knowledge_file: Optional[Path] = None,
    out_dir: Optional[Path] = None,
    on_event: Callable[[Any], None] = lambda event: None,
    cancelled: Callable[[], bool] = lambda: False,
) -> HeldoutScore:
    """Ask every question to the base and the tuned model (greedy, batched) and score them, plus the
    multiple-choice forgetting check; the results go to `out_dir` (results.json, report.md) when given."""
    engine.attach(tuned)
    plan = EvalPlan(
        models=[EvalModel("base", BASE_SOURCE, "base model", 0), EvalModel(tuned.checkpoint or "tuned", tuned, tuned.label)],
        rows=heldout_rows(questions),
        description=f"{len(questions)} held-out questions",
        metrics=("contains", "length"),
        settings=SamplingSettings(temperature=0.0, max_new_tokens=max_new_tokens),
        system_prompt=system_prompt,
        knowledge=list(knowledge),
        knowledge_file=str(knowledge_file) if knowledge_file else None,
    )
    results = run_evaluation(engine, plan, on_event, cancelled)
    if out_dir is not None:
        write_results(results, out_dir)
    base_key, tuned_key = plan.models[0].key, plan.models[1].key
    by_index = {row["index"]: row for row in results["rows"]}
    return HeldoutScore(
        tuple(
            HeldoutAnswer(question, by_index[i]["answers"][base_key]["text"], by_index[i]["answers"][tuned_key]["text"])
            for i, question in enumerate(questions)
        ),
        results,
    )
