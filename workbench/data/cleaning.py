"""Cleaning without loss: operations that say what they will touch before they run, an undo
stack, and export of the result plus a recipe that replays the same steps on the next version
of the data.

Every state is an immutable tuple of Conversations; an operation builds a new state and the old
one stays on the stack, so undo is exact and the source file is never touched.
"""

from __future__ import annotations

import dataclasses
import html
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from workbench.data.checks import (
    CODE_SPANS,
    CONTROL_CHARACTERS,
    DEFAULT_MAX_SEQ_LENGTH,
    HTML_TAG_PATTERN,
    MARKUP_TOPIC,
    QualityReport,
    conflict_groups,
    conversation_text,
    empty_response_reason,
    exact_duplicate_groups,
    near_duplicate_row_groups,
    run_quality_checks,
)
from workbench.data.conversation import Conversation
from workbench.data.near_duplicates import DEFAULT_THRESHOLD
from workbench.errors import WorkbenchError

if TYPE_CHECKING:
    from workbench.data.token_lengths import TokenCounter

OPERATIONS = (
    "dedupe",
    "drop_empty",
    "drop_too_long",
    "truncate_too_long",
    "strip_markup",
    "resolve_conflicts",
    "filter",
    "drop_rows",
    "split_validation",
)


@dataclass(frozen=True)
class Operation:
    """One cleaning step, as the recipe stores it: a name from OPERATIONS and its options.

    Options: dedupe(mode="exact"|"near"), resolve_conflicts(mode="drop"|"keep-first"|"pick",
    keep_rows=[...] for "pick"), filter(query, regex=False, action="keep"|"drop"),
    drop_rows(rows=[...]), split_validation(fraction, seed=0); the others take none.
    """

    name: str
    options: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        """Words for the undo list and the CLI."""
        options = self.options
        if self.name == "dedupe":
            return f"drop {options.get('mode', 'exact')} duplicates (keep the first)"
        if self.name == "resolve_conflicts":
            return {"drop": "drop every conflicting row", "keep-first": "keep the first answer of each conflict"}.get(
                options.get("mode", "keep-first"), "keep the answers picked by hand"
            )
        if self.name == "filter":
            return f"{options.get('action', 'keep')} rows matching {options.get('query', '')!r}"
        if self.name == "drop_rows":
            return f"drop {len(options.get('rows', []))} chosen rows"
        if self.name == "split_validation":
            return f"hold out {options.get('fraction', 0):.0%} for validation (seed {options.get('seed', 0)})"
        return {
            "drop_empty": "drop empty answers",
            "drop_too_long": "drop rows longer than the max sequence length",
            "truncate_too_long": "cut over-long rows back to their whole exchanges that fit",
            "strip_markup": "strip markup, broken characters and stray whitespace",
        }[self.name]

    def to_recipe(self) -> dict[str, Any]:
        return {"op": self.name, **self.options}


@dataclass(frozen=True)
class CleaningState:
    """The rows after some operations, and the rows held out for validation (None: no split)."""

    conversations: tuple[Conversation, ...]
    validation: frozenset[int] | None = None
    cache: dict = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class Plan:
    """What an operation would do to the current state (shown before it is applied).

    Attributes:
        operation: the step.
        dropped: rows it removes.
        changed: rows whose text it rewrites (replacements holds the new conversations).
        validation: for split_validation, the rows held out.
    """

    operation: Operation
    dropped: tuple[int, ...] = ()
    changed: tuple[int, ...] = ()
    replacements: dict[int, Conversation] = field(default_factory=dict)
    validation: frozenset[int] | None = None

    @property
    def affected(self) -> int:
        if self.validation is not None:
            return len(self.validation)
        return len(self.dropped) + len(self.changed)

    def summary(self) -> str:
        """One line: '12 rows dropped, 3 changed'."""
        if self.validation is not None:
            return f"{len(self.validation):,} rows to validation"
        parts = []
        if self.dropped or not self.changed:
            parts.append(f"{len(self.dropped):,} rows dropped")
        if self.changed:
            parts.append(f"{len(self.changed):,} changed")
        return ", ".join(parts)


def _drop_later_members(groups: list[list[int]]) -> tuple[int, ...]:
    return tuple(sorted(row for group in groups for row in group[1:]))


def _matches(conversation: Conversation, query: str, regex: bool) -> bool:
    text = conversation_text(conversation)
    if regex:
        return re.search(query, text, re.IGNORECASE) is not None
    return query.casefold() in text.casefold()


def strip_message(text: str, keep_tags: bool) -> str:
    """Markup remnants and stray whitespace removed; code spans and fences are left as written."""
    pieces = []
    last = 0
    for code in CODE_SPANS.finditer(text):
        pieces.append(_strip_prose(text[last : code.start()], keep_tags))
        pieces.append(code.group())
        last = code.end()
    pieces.append(_strip_prose(text[last:], keep_tags))
    cleaned = "".join(pieces)
    cleaned = "\n".join(line.rstrip() for line in cleaned.split("\n"))
    return re.sub(r"\n{3,}", "\n\n", cleaned).strip()


def _strip_prose(text: str, keep_tags: bool) -> str:
    text = text.replace("\ufffd", "")
    text = CONTROL_CHARACTERS.sub("", text)
    if not keep_tags:
        text = HTML_TAG_PATTERN.sub(lambda tag: "\n" if tag.group().lower().startswith(("<br", "<p", "</p")) else "", text)
    if "&" in text:
        text = html.unescape(text).replace("\u00a0", " ")
    return re.sub(r"[ \t]{2,}", " ", text)


class CleaningSession:
    """A dataset being cleaned: the current state, the steps taken, undo and export.

    Args:
        conversations: the loaded rows.
        source_path / source_format: where they came from (for the recipe).
        token_counter: counts tokens with the model's template; needed for the too-long steps.
        model_name: recorded in the recipe.
        max_seq_length / near_threshold: limits the checks use.
    """

    def __init__(
        self,
        conversations: list[Conversation] | tuple[Conversation, ...],
        *,
        source_path: Path | None = None,
        source_format: str = "messages",
        token_counter: "TokenCounter | None" = None,
        model_name: str = "default",
        max_seq_length: int = DEFAULT_MAX_SEQ_LENGTH,
        near_threshold: float = DEFAULT_THRESHOLD,
    ) -> None:
        self.source_path = source_path
        self.source_format = source_format
        self.token_counter = token_counter
        self.model_name = model_name
        self.max_seq_length = max_seq_length
        self.near_threshold = near_threshold
        self._states: list[CleaningState] = [CleaningState(tuple(conversations))]
        self._applied: list[Plan] = []

    @property
    def state(self) -> CleaningState:
        return self._states[-1]

    @property
    def conversations(self) -> tuple[Conversation, ...]:
        return self.state.conversations

    @property
    def applied(self) -> list[Plan]:
        """The plans applied so far, oldest first."""
        return list(self._applied)

    @property
    def operations(self) -> list[Operation]:
        return [plan.operation for plan in self._applied]

    # Checks on the current state, each computed once per state (and per threshold or limit, so
    # changing near_threshold or max_seq_length between calls gives fresh results).
    def _cached(self, key: str, compute: Callable[[], Any]) -> Any:
        cache = self.state.cache
        if key not in cache:
            cache[key] = compute()
        return cache[key]

    def exact_groups(self) -> list[list[int]]:
        return self._cached("exact", lambda: exact_duplicate_groups(self.conversations))

    def near_groups(self) -> list[list[int]]:
        """Near-duplicate groups including exact copies (each group keeps its first row)."""

        def compute() -> list[list[int]]:
            merged: dict[int, set[int]] = {}
            exact = self.exact_groups()
            later = {row for group in exact for row in group[1:]}
            distinct = [c for c in self.conversations if c.source_index not in later]
            near = near_duplicate_row_groups(distinct, self.near_threshold)
            copies = {group[0]: group for group in exact}
            for group in near:
                rows = {distinct[position].source_index for position in group}
                for row in list(rows):
                    rows.update(copies.get(row, ()))
                merged[min(rows)] = rows
            for group in exact:
                if not any(group[0] in rows for rows in merged.values()):
                    merged[group[0]] = set(group)
            return sorted((sorted(rows) for rows in merged.values()), key=lambda rows: rows[0])

        return self._cached(f"near@{self.near_threshold}", compute)

    def conflicts(self) -> list[list[int]]:
        return self._cached("conflicts", lambda: conflict_groups(self.conversations))

    def token_totals(self, progress: Callable[[float], None] | None = None) -> dict[int, int]:
        """Row -> templated token count."""
        if self.token_counter is None:
            raise WorkbenchError("token counts need the model's tokenizer (pass --model)")

        def compute() -> dict[int, int]:
            lengths = self.token_counter.lengths(self.conversations, progress)
            return {c.source_index: int(total) for c, total in zip(self.conversations, lengths.total)}

        return self._cached("tokens", compute)

    def report(self, progress: Callable[[str, float | None], None] | None = None) -> QualityReport:
        """The full quality report of the current state."""

        def compute() -> QualityReport:
            lengths = None
            if self.token_counter is not None:
                lengths = self.token_counter.lengths(
                    self.conversations,
                    (lambda fraction: progress("Counting tokens with the model's chat template", fraction))
                    if progress
                    else None,
                )
            return run_quality_checks(
                self.conversations,
                self.token_counter.tokenizer if self.token_counter else None,
                max_seq_length=self.max_seq_length,
                near_threshold=self.near_threshold,
                token_lengths=lengths,
                progress=progress,
            )

        return self._cached(f"report@{self.near_threshold}@{self.max_seq_length}", compute)

    # Planning, applying, undoing.
    def plan(self, operation: Operation) -> Plan:
        """What `operation` would do now, without doing it."""
        if operation.name not in OPERATIONS:
            raise WorkbenchError(f"unknown cleaning operation {operation.name!r}; expected one of {', '.join(OPERATIONS)}")
        options = operation.options
        rows = self.conversations
        if operation.name == "dedupe":
            mode = options.get("mode", "exact")
            if mode not in ("exact", "near"):
                raise WorkbenchError(f"dedupe: mode must be exact or near, got {mode!r}")
            groups = self.exact_groups() if mode == "exact" else self.near_groups()
            return Plan(operation, dropped=_drop_later_members(groups))
        if operation.name == "drop_empty":
            return Plan(operation, dropped=tuple(c.source_index for c in rows if empty_response_reason(c)))
        if operation.name == "drop_too_long":
            totals = self.token_totals()
            return Plan(operation, dropped=tuple(row for row, total in totals.items() if total > self.max_seq_length))
        if operation.name == "truncate_too_long":
            return self._plan_truncate(operation)
        if operation.name == "strip_markup":
            return self._plan_strip(operation)
        if operation.name == "resolve_conflicts":
            return self._plan_conflicts(operation)
        if operation.name == "filter":
            query = options.get("query", "")
            action = options.get("action", "keep")
            if not query or action not in ("keep", "drop"):
                raise WorkbenchError("filter: needs a non-empty query and action keep or drop")
            regex = bool(options.get("regex", False))
            if regex:
                try:
                    re.compile(query)
                except re.error as error:
                    raise WorkbenchError(f"filter: invalid regular expression {query!r}: {error}") from None
            matching = {c.source_index for c in rows if _matches(c, query, regex)}
            dropped = [c.source_index for c in rows if (c.source_index in matching) != (action == "keep")]
            return Plan(operation, dropped=tuple(dropped))
        if operation.name == "drop_rows":
            wanted = set(options.get("rows", []))
            return Plan(operation, dropped=tuple(c.source_index for c in rows if c.source_index in wanted))
        return self._plan_split(operation)

    def _plan_truncate(self, operation: Operation) -> Plan:
        totals = self.token_totals()
        too_long = [c for c in self.conversations if totals[c.source_index] > self.max_seq_length]
        candidates = []
        for conversation in too_long:
            ends = [i + 1 for i, m in enumerate(conversation.messages) if m.role == "assistant"][:-1]
            candidates += [(conversation, conversation.with_messages(conversation.messages[:end])) for end in ends]
        fitting: dict[int, Conversation] = {}
        if candidates:
            lengths = self.token_counter.lengths([shorter for _, shorter in candidates])
            for (original, shorter), total in zip(candidates, lengths.total):
                if total <= self.max_seq_length:
                    fitting[original.source_index] = shorter  # later (longer) prefixes overwrite earlier ones
        dropped = tuple(c.source_index for c in too_long if c.source_index not in fitting)
        return Plan(operation, dropped=dropped, changed=tuple(sorted(fitting)), replacements=fitting)

    def _plan_strip(self, operation: Operation) -> Plan:
        replacements = {}
        for conversation in self.conversations:
            # Like the junk check: tags stay where the conversation is about markup.
            topic = bool(MARKUP_TOPIC.search(conversation.first_prompt))
            messages = tuple(
                dataclasses.replace(m, content=strip_message(m.content, topic or bool(MARKUP_TOPIC.search(m.content))))
                for m in conversation.messages
            )
            if messages != conversation.messages:
                replacements[conversation.source_index] = conversation.with_messages(messages)
        return Plan(operation, changed=tuple(sorted(replacements)), replacements=replacements)

    def _plan_conflicts(self, operation: Operation) -> Plan:
        mode = operation.options.get("mode", "keep-first")
        groups = self.conflicts()
        if mode == "drop":
            return Plan(operation, dropped=tuple(sorted(row for group in groups for row in group)))
        if mode == "keep-first":
            return Plan(operation, dropped=_drop_later_members(groups))
        if mode == "pick":
            keep = set(operation.options.get("keep_rows", []))
            dropped = [row for group in groups if keep & set(group) for row in group if row not in keep]
            return Plan(operation, dropped=tuple(sorted(dropped)))
        raise WorkbenchError(f"resolve_conflicts: mode must be drop, keep-first or pick, got {mode!r}")

    def _plan_split(self, operation: Operation) -> Plan:
        fraction = operation.options.get("fraction")
        seed = operation.options.get("seed", 0)
        if not isinstance(fraction, (int, float)) or not 0 < fraction < 1:
            raise WorkbenchError(f"split_validation: fraction must be between 0 and 1, got {fraction!r}")
        rows = sorted(c.source_index for c in self.conversations)
        count = min(len(rows) - 1, max(1, round(fraction * len(rows)))) if len(rows) > 1 else 0
        return Plan(operation, validation=frozenset(random.Random(seed).sample(rows, count)))

    def apply(self, operation: Operation | Plan) -> Plan:
        """Apply an operation (or a plan made for the current state); returns what it did."""
        plan = operation if isinstance(operation, Plan) else self.plan(operation)
        dropped = set(plan.dropped)
        conversations = tuple(
            plan.replacements.get(c.source_index, c) for c in self.conversations if c.source_index not in dropped
        )
        validation = plan.validation if plan.validation is not None else self.state.validation
        if validation is not None:
            validation = validation & {c.source_index for c in conversations}
        self._states.append(CleaningState(conversations, frozenset(validation) if validation is not None else None))
        self._applied.append(plan)
        return plan

    def undo(self) -> Plan | None:
        """Take back the last step; returns it (None when there is nothing to undo)."""
        if not self._applied:
            return None
        self._states.pop()
        return self._applied.pop()

    def split(self) -> tuple[list[Conversation], list[Conversation]]:
        """(train, validation) rows of the current state."""
        held_out = self.state.validation or frozenset()
        train = [c for c in self.conversations if c.source_index not in held_out]
        validation = [c for c in self.conversations if c.source_index in held_out]
        return train, validation
