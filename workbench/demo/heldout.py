"""Held-out questions (sample_data/identity_heldout.jsonl) asked to the base and the fine-tuned model.

An answer is a hit when it contains any of the question's `expect_any` strings, ignoring case. All
questions go to the model in one batched greedy `generate` (base and adapter rows side by side),
which on two CPU cores takes about as long as a few single answers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Sequence

from workbench.errors import WorkbenchError

if TYPE_CHECKING:
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
        folded = answer.casefold()
        return any(expected.casefold() in folded for expected in self.expect_any)


@dataclass(frozen=True)
class HeldoutAnswer:
    question: HeldoutQuestion
    base: str
    tuned: str


@dataclass(frozen=True)
class HeldoutScore:
    """Hits per kind for both models, and every answer for the record."""

    answers: tuple[HeldoutAnswer, ...]

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
        return lines

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
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise WorkbenchError(f"{path}: no such held-out questions file") from None
    questions = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            prompt, expect_any = row["prompt"], row["expect_any"]
        except (ValueError, KeyError, TypeError):
            raise WorkbenchError(f"{path}:{number}: expected a JSON object with prompt and expect_any") from None
        if not isinstance(prompt, str) or not isinstance(expect_any, list) or not expect_any:
            raise WorkbenchError(f"{path}:{number}: prompt must be text and expect_any a non-empty list of strings")
        questions.append(HeldoutQuestion(prompt, tuple(str(e) for e in expect_any), str(row.get("kind", "identity"))))
    if not questions:
        raise WorkbenchError(f"{path}: holds no questions")
    return questions


def score_heldout(
    engine: "ChatEngine",
    tuned: "ModelSource",
    questions: Sequence[HeldoutQuestion],
    system_prompt: Optional[str],
    max_new_tokens: int = HELDOUT_MAX_NEW_TOKENS,
) -> HeldoutScore:
    """Ask every question to the base and the tuned model (greedy, in batches of prompt × model rows) and score them."""
    from workbench.inference.engine import GenerationJob
    from workbench.inference.prompting import build_messages
    from workbench.inference.settings import DEFAULT_DECK_BATCH_SIZE, SamplingSettings
    from workbench.inference.sources import BASE_SOURCE

    settings = SamplingSettings(temperature=0.0, max_new_tokens=max_new_tokens)
    engine.attach(tuned)
    jobs = []
    for question in questions:
        messages = build_messages(system_prompt, [], question.prompt)
        jobs += [GenerationJob(BASE_SOURCE, messages, settings), GenerationJob(tuned, messages, settings)]
    answers = engine.generate(jobs, batch_size=DEFAULT_DECK_BATCH_SIZE)
    return HeldoutScore(
        tuple(
            HeldoutAnswer(question, answers[2 * i].text.strip(), answers[2 * i + 1].text.strip())
            for i, question in enumerate(questions)
        )
    )
