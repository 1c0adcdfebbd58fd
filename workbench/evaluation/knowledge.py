"""The forgetting check: multiple-choice general knowledge, scored by log-likelihood (no generation).

Each question goes through the chat template as a user turn (with the run's system prompt, the
way the model is used after training), and each choice is scored as the assistant's answer: the
sum of the log-probabilities of the choice's tokens after the assistant header. The model's pick
is the choice with the highest summed log-probability (lm-evaluation-harness's `acc`). The pick by
log-probability per character (its `acc_norm`) is recorded too: on the shipped set, whose choices
have the same form and similar length, the base default model scored 57.7% by sum and 54.7% per
character (measured here), so the sum is the headline figure.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional, Sequence

from workbench.data.conversation import Conversation, Message
from workbench.data.json_rows import read_json_lines
from workbench.data.system_prompt import with_system_prompt
from workbench.errors import WorkbenchError
from workbench.evaluation.loglik import score_choice_groups
from workbench.inference.prompting import encode_prompt
from workbench.io_checks import MAX_PROMPTS_BYTES, read_input_text

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from workbench.inference.engine import ChatEngine
    from workbench.inference.sources import ModelSource

KNOWLEDGE_FILE = Path(__file__).resolve().parents[2] / "sample_data" / "general_knowledge.jsonl"
"""The shipped set (300 questions, six topics; see sample_data/README.md)."""


@dataclass(frozen=True)
class ChoiceItem:
    """One multiple-choice question: the question, its choices, the correct choice's index, a topic."""

    id: str
    question: str
    choices: tuple[str, ...]
    answer: int
    topic: str = ""


@dataclass(frozen=True)
class ItemScore:
    """One model's scores for one item.

    Attributes:
        logprobs: sum of log-probabilities per choice.
        lengths: characters per choice (the normalizer).
        pick: the choice with the best summed log-probability (the headline `acc`).
        pick_norm: the choice with the best log-probability per character (`acc_norm`).
    """

    logprobs: tuple[float, ...]
    lengths: tuple[int, ...]

    @property
    def pick(self) -> int:
        return max(range(len(self.logprobs)), key=self.logprobs.__getitem__)

    @property
    def pick_norm(self) -> int:
        normalized = [lp / max(1, n) for lp, n in zip(self.logprobs, self.lengths)]
        return max(range(len(normalized)), key=normalized.__getitem__)


def read_choice_items(path: str | Path = KNOWLEDGE_FILE) -> list[ChoiceItem]:
    """Items from JSON Lines: question, choices (a list of 2 or more strings), answer (0-based index); id and topic optional."""
    path = Path(path).expanduser()
    if not path.exists() and not path.is_symlink():
        raise WorkbenchError(f"{path}: no such multiple-choice file")
    rows = read_json_lines(str(path), read_input_text(path, max_bytes=MAX_PROMPTS_BYTES)).records
    items = []
    for row, number in rows:
        where = f"{path}:{number}"
        question, choices, answer = row.get("question"), row.get("choices"), row.get("answer")
        if not isinstance(question, str) or not question.strip():
            raise WorkbenchError(f"{where}: question: expected non-empty text")
        if not isinstance(choices, list) or len(choices) < 2 or not all(isinstance(c, str) and c.strip() for c in choices):
            raise WorkbenchError(f"{where}: choices: expected a list of at least two non-empty strings")
        if not isinstance(answer, int) or isinstance(answer, bool) or not 0 <= answer < len(choices):
            raise WorkbenchError(f"{where}: answer: expected the 0-based index of the correct choice (0 to {len(choices) - 1})")
        items.append(ChoiceItem(str(row.get("id", number)), question, tuple(choices), answer, str(row.get("topic", ""))))
    if not items:
        raise WorkbenchError(f"{path}: holds no questions")
    return items


def choice_groups(
    tokenizer: "PreTrainedTokenizerBase", items: Sequence[ChoiceItem], system_prompt: Optional[str]
) -> list[tuple[list[int], list[list[int]]]]:
    """(prompt ids, [choice ids, ...]) per item: the question as a user turn through the chat template
    (with the system prompt rule of training) up to the assistant header, and each choice's tokens."""
    groups = []
    for item in items:
        conversation = with_system_prompt(Conversation((Message("user", item.question),), 0, "question"), system_prompt)
        prompt = encode_prompt(tokenizer, conversation.to_chat())
        groups.append((prompt, [list(tokenizer(choice, add_special_tokens=False)["input_ids"]) for choice in item.choices]))
    return groups


def score_items(
    engine: "ChatEngine",
    source: "ModelSource",
    items: Sequence[ChoiceItem],
    groups: Sequence[tuple[list[int], list[list[int]]]],
    *,
    progress: Callable[[int], None] = lambda done: None,
    cancelled: Callable[[], bool] = lambda: False,
) -> list[ItemScore]:
    """Every item's choice scores under one model (`groups` from `choice_groups`)."""
    with engine.model_for(source) as model:
        scored = score_choice_groups(model, groups, pad_token_id=engine.pad_token_id, progress=progress, cancelled=cancelled)
    return [
        ItemScore(tuple(logprobs), tuple(len(choice) for choice in item.choices)) for item, logprobs in zip(items, scored)
    ]
