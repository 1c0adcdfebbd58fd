"""What an evaluation asks: held-out rows with their references, accepted answers and patterns.

Three sources, one shape (`EvalRow`):
- a run's validation rows: its `data.validation_file`, or exactly the rows the trainer held out
  (`split_for_validation` with the run's seed and fraction);
- any data file the loaders accept (alpaca, sharegpt, messages, prompt-completion): the prompt is
  everything before the last assistant turn, the reference that turn; a row may also carry
  `expect_any` (accepted short answers), `regex` and `kind` fields;
- a questions file (JSON Lines or a JSON array) of `prompt` with any of `expect_any`, `regex`,
  `reference` and `kind` (sample_data/identity_heldout.jsonl is one).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from workbench.data.conversation import Conversation, Message
from workbench.data.formats import detect_format
from workbench.data.loading import load_conversations, read_records
from workbench.data.mixture import split_for_validation
from workbench.data.system_prompt import with_system_prompt
from workbench.errors import WorkbenchError

if TYPE_CHECKING:
    from workbench.config.schema import RunConfig

QUESTION_FIELDS = ("expect_any", "regex", "reference")
"""A row with `prompt` and one of these (and no `completion`) is a question, not a training row."""


@dataclass(frozen=True)
class EvalRow:
    """One held-out row.

    Attributes:
        index: position in the evaluation set.
        where: "file:line (row n)", for the report.
        conversation: the row as training sees it (the system prompt rule not yet applied): the
            prompt turns and, when the row has one, the reference answer as the last assistant turn.
        references: full reference answers (for ROUGE-L, BLEU, chrF; exact and contains when
            there are no accepted answers). Empty for a question without a reference.
        accepted: short accepted answers (`expect_any`): exact and contains use these.
        pattern: a regular expression the answer should match (the row's `regex`).
        kind: a group name ("identity", "general"...); figures are also reported per kind.
    """

    index: int
    where: str
    conversation: Conversation
    references: tuple[str, ...] = ()
    accepted: tuple[str, ...] = ()
    pattern: Optional[str] = None
    kind: Optional[str] = None

    @property
    def prompt_conversation(self) -> Conversation:
        """The turns the answer is generated from (everything before the reference)."""
        return self.conversation.with_messages(self.conversation.prompt_messages) if self.references else self.conversation

    @property
    def prompt(self) -> str:
        """The last user message (what a person would type into the chat)."""
        for message in reversed(self.prompt_conversation.messages):
            if message.role == "user":
                return message.content
        return ""

    def prompt_messages(self, system_prompt: Optional[str]) -> list[dict[str, Any]]:
        """The chat messages to generate from, with the run's system prompt applied the training way."""
        return with_system_prompt(self.prompt_conversation, system_prompt).to_chat()

    @property
    def has_reference(self) -> bool:
        return bool(self.references)


@dataclass(frozen=True)
class EvalSet:
    """The rows and where they came from (for the report's first line)."""

    rows: list[EvalRow]
    description: str


def _texts(value: Any, where: str, field: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,) if value.strip() else ()
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tuple(item for item in value if item.strip())
    raise WorkbenchError(f"{where}: {field}: expected a string or a list of strings")


def _optional_text(value: Any, where: str, field: str) -> Optional[str]:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise WorkbenchError(f"{where}: {field}: expected a string")
    return value


def _is_question_file(first: Any) -> bool:
    return isinstance(first, dict) and "prompt" in first and detect_format(first) is None and any(
        field in first for field in QUESTION_FIELDS
    )


def _question_row(index: int, record: Any, path: Path, line: Optional[int]) -> EvalRow:
    where = f"{path}:{line} (row {index})" if line is not None else f"{path}: row {index}"
    if not isinstance(record, dict):
        raise WorkbenchError(f"{where}: expected an object with prompt and expect_any, regex or reference")
    prompt = record.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise WorkbenchError(f"{where}: prompt: expected non-empty text")
    accepted = _texts(record.get("expect_any"), where, "expect_any")
    references = _texts(record.get("reference"), where, "reference")
    pattern = _optional_text(record.get("regex"), where, "regex")
    kind = _optional_text(record.get("kind"), where, "kind")
    messages = [Message("user", prompt)]
    if references:
        messages.append(Message("assistant", references[0]))
    conversation = Conversation(tuple(messages), index, "question", line)
    return EvalRow(index, where, conversation, references, accepted, pattern, kind)


def _conversation_row(index: int, conversation: Conversation, path: Path, record: Any) -> EvalRow:
    where = conversation.location(str(path))
    extras = record if isinstance(record, dict) else {}
    reference = conversation.final_response
    references = (reference,) if reference and reference.strip() else ()
    return EvalRow(
        index,
        where,
        conversation,
        references,
        _texts(extras.get("expect_any"), where, "expect_any"),
        _optional_text(extras.get("regex"), where, "regex"),
        _optional_text(extras.get("kind"), where, "kind"),
    )


def load_eval_file(path: str | Path, format: str = "auto") -> EvalSet:
    """Rows from a questions file or any data file the loaders accept (see the module docstring)."""
    source = Path(path).expanduser()
    if not source.is_file():
        raise WorkbenchError(f"{source}: no such file (--data takes a data file or a questions file)")
    records = read_records(source)
    if not records:
        raise WorkbenchError(f"{source}: holds no rows")
    if format == "auto" and _is_question_file(records[0].row):
        rows = [_question_row(i, record.row, source, record.line) for i, record in enumerate(records)]
        return EvalSet(rows, f"{source.name} ({len(rows)} questions)")
    loaded = load_conversations(source, format)
    rows = [
        _conversation_row(i, conversation, source, records[conversation.source_index].row)
        for i, conversation in enumerate(loaded.conversations)
    ]
    return EvalSet(rows, f"{source.name} ({len(rows)} rows, {loaded.format})")


def _resolve_data_path(value: str, run_dir: Path) -> Path:
    """A data path from a run config: as written (relative to where training started), else beside the run."""
    path = Path(value).expanduser()
    for candidate in (path, run_dir / path, run_dir.parent.parent / path):
        if candidate.is_file():
            return candidate
    raise WorkbenchError(
        f"{run_dir / 'config.yaml'}: data file {value!r} is not there any more; pass the held-out rows with --data FILE"
    )


def run_validation_rows(run_dir: Path, config: "RunConfig") -> EvalSet:
    """Exactly the rows the run's trainer held out for its eval loss (or its validation_file)."""
    data = config.data
    if data.validation_file:
        return load_eval_file(_resolve_data_path(data.validation_file, run_dir), data.format)
    if not data.train_file:
        raise WorkbenchError(f"{run_dir / 'config.yaml'}: data.train_file: not set; pass the held-out rows with --data FILE")
    path = _resolve_data_path(data.train_file, run_dir)
    loaded = load_conversations(path, data.format)
    _, held_out = split_for_validation(loaded.conversations, data.validation_split, config.optimization.seed)
    if not held_out:
        raise WorkbenchError(
            f"{run_dir / 'config.yaml'}: data.validation_split is {data.validation_split:g}: the run held out no rows; "
            "pass the held-out rows with --data FILE"
        )
    records = read_records(path)
    rows = [
        _conversation_row(i, conversation, path, records[conversation.source_index].row)
        for i, conversation in enumerate(held_out)
    ]
    share = f"{math.ceil(data.validation_split * 100):g}%"
    return EvalSet(rows, f"the run's validation rows: {len(rows)} of {loaded.rows} in {path.name} ({share}, seed {config.optimization.seed})")


VALIDATION_KIND = "validation"


def run_eval_rows(run_dir: Path, config: "RunConfig") -> EvalSet:
    """What `workbench eval RUN` asks by default: the run's `evaluation.eval_file` questions (when it
    names one) and the run's validation rows (kind "validation" unless a row names its own)."""
    sets = []
    if config.evaluation.eval_file:
        sets.append(load_eval_file(_resolve_data_path(config.evaluation.eval_file, run_dir)))
    try:
        validation = run_validation_rows(run_dir, config)
    except WorkbenchError:
        if not sets:
            raise
    else:
        tagged = [row if row.kind else dataclasses.replace(row, kind=VALIDATION_KIND) for row in validation.rows]
        sets.append(EvalSet(tagged, validation.description) if sets else validation)
    if len(sets) == 1:
        return sets[0]
    rows = [dataclasses.replace(row, index=index) for index, row in enumerate(r for part in sets for r in part.rows)]
    return EvalSet(rows, " + ".join(part.description for part in sets))
