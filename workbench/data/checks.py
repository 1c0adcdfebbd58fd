"""Quality checks over a dataset's conversations, each listing the rows it affects.

Row numbers in a report are `source_index` values: 0-based rows of the original file, in file
order, and stable through cleaning.
"""

from __future__ import annotations

import json
import re
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Sequence

from workbench.data.conversation import Conversation, Message
from workbench.data.near_duplicates import (
    DEFAULT_THRESHOLD,
    differ_only_in_small_edits,
    near_duplicate_groups,
    normalized_words,
)
from workbench.data.row_bounds import DEFAULT_MAX_SEQ_LENGTH, NEAR_DUPLICATE_PREFIX_CHARS, ROW_COUNT_MAX_CHARS, conversation_chars
from workbench.data.templating import renders_reasoning, renders_tool_parts
from workbench.data.token_lengths import measure_token_lengths
from workbench.errors import WorkbenchError

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from workbench.data.token_lengths import TokenLengths

GROUP_CHECKS = ("exact_duplicates", "near_duplicates", "conflicts")
ROW_CHECKS = ("empty_response", "too_long", "malformed_turns", "junk")
CHECK_NAMES = GROUP_CHECKS + ROW_CHECKS
CHECK_FLAGS = {
    "exact_duplicates": "dup",
    "near_duplicates": "near",
    "conflicts": "conflict",
    "empty_response": "empty",
    "too_long": "long",
    "malformed_turns": "turns",
    "junk": "junk",
}
"""Short flag names for each check, as the Data pane's table and flag filter show them."""

LABEL_MAX_WORDS = 3
LABEL_MAX_DISTINCT = 20
LABEL_MIN_SHARE = 0.9
TOP_LEADING = 20

HTML_TAG_PATTERN = re.compile(
    r"</?(?:a|b|i|u|p|br|hr|div|span|img|table|tr|td|th|tbody|thead|ul|ol|li|h[1-6]|font|center|strong|em|"
    r"sup|sub|blockquote|script|style|iframe|body|html|head|meta|link)"
    # Attributes only in name=value form: "<a statement>" in prose is not a tag.
    r"""(?:\s+[\w:-]+\s*=\s*(?:"[^"]*"|'[^']*'|[^\s<>"']+))*\s*/?>""",
    re.IGNORECASE,
)
_HTML_ENTITY = re.compile(r"&(?:nbsp|amp|lt|gt|quot|apos|mdash|ndash|hellip|#\d{1,6}|#x[0-9a-fA-F]{1,6});")
_MOJIBAKE = re.compile("(?:\u00c3[\u0080-\u00bf\u00a0-\u00bf]|\u00e2\u20ac[\u0080-\u00bf\u2122\u0153\u02dc\u201c\u201d\u00a6])")
CONTROL_CHARACTERS = re.compile("[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]")
CODE_SPANS = re.compile(r"```.*?(?:```|$)|`[^`\n]*`", re.DOTALL)
MARKUP_TOPIC = re.compile(r"\b(?:html|xml|markup|tags?|web ?page|css|svg|jsx)\b", re.IGNORECASE)
_LEADING_WORDS = re.compile(r"[^\w]*(\w+)(?:[^\w\n]+(\w+))?")


@dataclass
class QualityReport:
    """Everything the checks found.

    Attributes:
        rows: how many conversations were checked.
        max_seq_length: the token limit `too_long` compares with.
        near_threshold: the Jaccard threshold near-duplicates were found with.
        groups: for exact_duplicates, near_duplicates and conflicts, lists of row groups (each
            sorted, in file order of their first row).
        flagged: for empty_response, too_long, malformed_turns and junk, the sorted rows.
        reasons: per check, per row, a short explanation for the detail view.
        token_lengths: per-conversation token counts (None when no tokenizer was given),
            aligned with `source_indices`.
        source_indices: the row number of each checked conversation, in the order checked.
        turns: how many conversations have each number of assistant turns.
        leading_words / leading_phrases: the most common first words / two words of prompts.
        label_balance: answer -> count when answers are short categorical labels, else None.
        notes: findings about the data as a whole, one line each (e.g. tool calls the chat
            template does not write).
    """

    rows: int
    max_seq_length: int
    near_threshold: float
    groups: dict[str, list[list[int]]]
    flagged: dict[str, list[int]]
    reasons: dict[str, dict[int, str]]
    token_lengths: "TokenLengths | None"
    source_indices: list[int]
    turns: dict[int, int]
    leading_words: list[tuple[str, int]]
    leading_phrases: list[tuple[str, int]]
    label_balance: list[tuple[str, int]] | None
    notes: list[str] = field(default_factory=list)
    _flags_by_row: dict[int, tuple[str, ...]] | None = field(default=None, repr=False)

    def rows_in(self, check: str) -> list[int]:
        """Every row a check lists (for group checks, every member of every group)."""
        if check in self.groups:
            return sorted(row for group in self.groups[check] for row in group)
        return list(self.flagged[check])

    def count(self, check: str) -> int:
        return len(self.rows_in(check))

    def flags_by_row(self) -> dict[int, tuple[str, ...]]:
        """Row -> the short flag names (CHECK_FLAGS) of the checks that list it."""
        if self._flags_by_row is None:
            collected: dict[int, list[str]] = {}
            for check in CHECK_NAMES:
                for row in self.rows_in(check):
                    collected.setdefault(row, []).append(CHECK_FLAGS[check])
            self._flags_by_row = {row: tuple(flags) for row, flags in collected.items()}
        return self._flags_by_row

    def token_summary(self) -> dict[str, int] | None:
        """min / median / p95 / max of the templated token counts (observed values)."""
        if self.token_lengths is None or self.rows == 0:
            return None
        return summarize(self.token_lengths.total)

    def to_json(self) -> dict:
        """The report as JSON-ready data (the `checks` object of `workbench data inspect --json`)."""
        checks: dict[str, object] = {name: self.groups[name] for name in GROUP_CHECKS}
        checks.update({name: self.flagged[name] for name in ROW_CHECKS})
        distributions: dict[str, object] = {
            "turns": {str(turns): count for turns, count in sorted(self.turns.items())},
            "leading_words": [[word, count] for word, count in self.leading_words],
            "leading_phrases": [[phrase, count] for phrase, count in self.leading_phrases],
        }
        if self.token_lengths is not None and self.rows:
            distributions["prompt_tokens"] = summarize(self.token_lengths.prompt)
            distributions["response_tokens"] = summarize(self.token_lengths.response)
        return {
            "checks": checks,
            "reasons": {
                name: {str(row): reason for row, reason in sorted(found.items())}
                for name, found in self.reasons.items()
                if found
            },
            "distributions": distributions,
            "label_balance": dict(self.label_balance) if self.label_balance is not None else None,
            "notes": list(self.notes),
        }


def summarize(values) -> dict[str, int]:
    """min / median / p95 / max, each an observed value."""
    import numpy as np

    array = np.asarray(values)
    return {
        "min": int(array.min()),
        "median": int(np.percentile(array, 50, method="nearest")),
        "p95": int(np.percentile(array, 95, method="nearest")),
        "max": int(array.max()),
    }


def normalize_text(text: str) -> str:
    """Case-folded with runs of whitespace collapsed: what 'the same text' means for duplicates."""
    return " ".join(text.casefold().split())


def tools_key(conversation: Conversation, memo: dict[int, tuple] | None = None) -> str:
    """The row's tool list as one comparable string ('' when it offers none); order does not matter.
    Part of the prompt: the same question with other tools on offer is another prompt.

    `memo` (one per pass over the rows) reuses the key of a tool list that rows share (the loader
    parses a repeated JSON tool list once): serializing every row's schemas took about as long as
    the rest of the duplicate keys on 100,000 glaive rows."""
    tools = conversation.tools
    if not tools:
        return ""
    if memo is not None and id(tools) in memo and memo[id(tools)][0] is tools:
        return memo[id(tools)][1]
    key = "\x1d".join(sorted(json.dumps(tool, sort_keys=True, ensure_ascii=False) for tool in tools))
    if memo is not None:
        memo[id(tools)] = (tools, key)  # holding `tools` keeps its id from being reused meanwhile
    return key


def calls_text(message: Message) -> str:
    """A turn's tool calls as text, `name {"argument": ...}` per call ('' when it makes none)."""
    if not message.tool_calls:
        return ""
    return "\n".join(
        f"{call.name} {json.dumps(call.arguments, sort_keys=True, ensure_ascii=False)}" for call in message.tool_calls
    )


def _message_keys(conversation: Conversation) -> list[str]:
    if conversation.text is not None:
        return [f"text\x1f{normalize_text(conversation.text)}"]
    return [f"{m.role}\x1f{normalize_text(m.content)}\x1f{calls_text(m)}" for m in conversation.messages]


def _duplicate_keys(conversations: Sequence[Conversation]) -> tuple[list[str], list[str]]:
    """Per conversation: the normalized whole conversation, and its normalized prompt part (both
    with the tool list, which is part of the prompt)."""
    whole, prompts = [], []
    memo: dict[int, tuple] = {}
    for conversation in conversations:
        keys = _message_keys(conversation)
        tools = tools_key(conversation, memo)
        whole.append("\x1e".join([tools, *keys]))
        prompts.append("\x1e".join([tools, *keys[: len(conversation.prompt_messages)]]))
    return whole, prompts


def conversation_text(conversation: Conversation) -> str:
    """All message contents and tool calls (or a raw-text row's text), one per line: what
    near-duplicate detection and search look at."""
    if conversation.text is not None:
        return conversation.text
    return "\n".join(
        "\n".join(part for part in (message.content, calls_text(message)) if part) for message in conversation.messages
    )


def near_duplicate_row_groups(conversations: Sequence[Conversation], threshold: float) -> list[list[int]]:
    """Positions of near-duplicate conversations: texts that MinHash and the word check find
    alike, split so that rows offering different tools are never near-duplicates of each other."""
    groups = []
    memo: dict[int, tuple] = {}
    texts = [conversation_text(c)[:NEAR_DUPLICATE_PREFIX_CHARS] for c in conversations]  # bounded per row
    for group in near_duplicate_groups(texts, threshold):
        by_tools: dict[str, list[int]] = {}
        for position in group:
            by_tools.setdefault(tools_key(conversations[position], memo), []).append(position)
        groups += [members for members in by_tools.values() if len(members) > 1]
    return sorted(groups, key=lambda members: members[0])


def _answer_words(conversation: Conversation) -> tuple[str, ...]:
    """The final answer's words, its tool calls included."""
    for message in reversed(conversation.messages):
        if message.role == "assistant":
            return tuple(normalized_words(f"{message.content}\n{calls_text(message)}"))
    return ()


def exact_duplicate_groups(conversations: Sequence[Conversation], keys: list[str] | None = None) -> list[list[int]]:
    """Rows whose messages are identical after case and whitespace normalization."""
    keys = keys if keys is not None else _duplicate_keys(conversations)[0]
    seen: dict[str, list[int]] = {}
    for conversation, key in zip(conversations, keys):
        seen.setdefault(key, []).append(conversation.source_index)
    return sorted((rows for rows in seen.values() if len(rows) > 1), key=lambda rows: rows[0])


def _materially_different(left: list[str], right: list[str]) -> bool:
    """Answers say different things: each has content words the other lacks (after typo matching).
    An answer that only adds to the other ("Paris." / "Paris. Hope this helps!") is not a conflict."""
    return left != right and not differ_only_in_small_edits(left, right)


def conflict_groups(conversations: Sequence[Conversation], prompt_keys: list[str] | None = None) -> list[list[int]]:
    """Rows with the same prompt (same context, case/whitespace aside) but materially different answers."""
    prompt_keys = prompt_keys if prompt_keys is not None else _duplicate_keys(conversations)[1]
    by_prompt: dict[str, list[Conversation]] = {}
    for conversation, key in zip(conversations, prompt_keys):
        if conversation.final_response is not None:
            by_prompt.setdefault(key, []).append(conversation)
    groups = []
    for members in by_prompt.values():
        if len(members) < 2:
            continue
        answers = list({_answer_words(c) for c in members})
        if any(
            _materially_different(list(answers[i]), list(answers[j]))
            for i in range(len(answers))
            for j in range(i + 1, len(answers))
        ):
            groups.append(sorted(c.source_index for c in members))
    return sorted(groups, key=lambda rows: rows[0])


def empty_response_reason(conversation: Conversation) -> str | None:
    if conversation.text is not None:
        return None if conversation.text.strip() else "empty text"
    empty = [
        position
        for position, message in enumerate(conversation.messages)
        if message.role == "assistant" and not message.content.strip() and not message.tool_calls
    ]
    if not empty:
        return None
    return "empty answer" if len(empty) == 1 else f"{len(empty)} empty answers"


def malformed_turns_reason(conversation: Conversation) -> str | None:
    """Turns that load but make a poor training example."""
    if conversation.text is not None:
        return None  # raw text has no turns
    roles = [message.role for message in conversation.messages]
    if "assistant" not in roles:
        return "no assistant turn: nothing to train on"
    if roles[-1] != "assistant":
        return f"ends with a {roles[-1]} turn after the last answer (it is never answered)"
    for position, message in enumerate(conversation.messages):
        if message.role in ("user", "tool") and not message.content.strip():
            return f"{message.role} turn {position} is empty"
    return None


def suspicious_characters(control_tokens: Sequence[str] = ()) -> "re.Pattern[str]":
    """Characters that every kind of junk starts with; text without any of them is clean."""
    firsts = "".join(sorted({token[0] for token in control_tokens if token} | set("<&\ufffd\u00c3\u00e2")))
    return re.compile(f"[{re.escape(firsts)}\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]")


def junk_reason(
    conversation: Conversation, control_tokens: Sequence[str] = (), suspicious: "re.Pattern[str] | None" = None
) -> str | None:
    """Markup remnants, broken characters or the model's control tokens inside the text."""
    suspicious = suspicious or suspicious_characters(control_tokens)
    turns = [(message.role, message.content) for message in conversation.messages]
    if conversation.text is not None:
        turns = [("text", conversation.text)]
    if not any(suspicious.search(text) for _, text in turns):
        return None
    markup_topic = bool(MARKUP_TOPIC.search(conversation.first_prompt))
    for role, text in turns:
        if "\ufffd" in text:
            return f"replacement character U+FFFD in the {role} turn (text was decoded wrongly)"
        if CONTROL_CHARACTERS.search(text):
            return f"control character in the {role} turn"
        for token in control_tokens:
            if token in text:
                return f"the model's control token {token} inside the {role} turn"
        if ("\u00c3" in text or "\u00e2" in text) and _MOJIBAKE.search(text):
            return f"mojibake in the {role} turn ({_MOJIBAKE.search(text).group()!r}: UTF-8 read as Latin-1)"
        if "<" in text or "&" in text:
            prose = CODE_SPANS.sub(" ", text) if "`" in text else text
            if not (markup_topic or MARKUP_TOPIC.search(text)):
                tag = HTML_TAG_PATTERN.search(prose)
                if tag:
                    return f"HTML tag {tag.group()[:40]!r} in the {role} turn"
            entity = _HTML_ENTITY.search(prose)
            if entity:
                return f"HTML entity {entity.group()!r} in the {role} turn"
    return None


def label_balance(conversations: Sequence[Conversation]) -> list[tuple[str, int]] | None:
    """Answer -> count when answers are short categorical labels (most answers at most three words,
    at most twenty distinct values, each repeated); None for free-form answers."""
    if len(conversations) < 10:
        return None
    labels: Counter = Counter()
    allowed_long = (1 - LABEL_MIN_SHARE) * len(conversations)
    long_answers = 0
    for conversation in conversations:
        answer = (conversation.final_response or "").strip().casefold().rstrip(".!")
        # Labels are short: stop at the first sign of free-form answers.
        if not answer or len(answer) > 40 or len(answer.split()) > LABEL_MAX_WORDS:
            long_answers += 1
            if long_answers > allowed_long:
                return None
            continue
        labels[answer] += 1
        if len(labels) > LABEL_MAX_DISTINCT:
            return None
    if len(labels) * 2 > sum(labels.values()):
        return None
    return labels.most_common()


def leading_words(conversations: Sequence[Conversation]) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    """The most common first words and first two words of the first prompt."""
    words: Counter = Counter()
    phrases: Counter = Counter()
    for conversation in conversations:
        match = _LEADING_WORDS.match(conversation.first_prompt)
        if not match:
            continue
        first = match.group(1).casefold()
        words[first] += 1
        if match.group(2):
            phrases[f"{first} {match.group(2).casefold()}"] += 1
    return words.most_common(TOP_LEADING), phrases.most_common(TOP_LEADING)


def _control_tokens(tokenizer: "PreTrainedTokenizerBase | None") -> list[str]:
    if tokenizer is None:
        return []
    tokens = {token for token in getattr(tokenizer, "all_special_tokens", []) if len(token) > 2}
    return sorted(tokens)


def _measure(tokenizer, conversations, system_prompt, report_progress) -> "TokenLengths":
    stage = "Counting tokens with the model's chat template"
    return measure_token_lengths(
        tokenizer, conversations, system_prompt=system_prompt, progress=lambda fraction: report_progress(stage, fraction)
    )


def _row_checks(
    conversations: Sequence[Conversation], control_tokens: list[str], report_progress
) -> tuple[dict[str, dict[int, str]], dict[str, list[int]]]:
    report_progress("Checking answers, turns and junk", None)
    reasons: dict[str, dict[int, str]] = {name: {} for name in CHECK_NAMES}
    flagged: dict[str, list[int]] = {name: [] for name in ROW_CHECKS}
    suspicious = suspicious_characters(control_tokens)
    for conversation in conversations:
        row = conversation.source_index
        for name, reason in (
            ("empty_response", empty_response_reason(conversation)),
            ("malformed_turns", malformed_turns_reason(conversation)),
            ("junk", junk_reason(conversation, control_tokens, suspicious)),
        ):
            if reason:
                flagged[name].append(row)
                reasons[name][row] = reason
    for rows in flagged.values():
        rows.sort()
    return reasons, flagged


def _group_checks(conversations: Sequence[Conversation], near_threshold: float, report_progress) -> dict[str, list[list[int]]]:
    report_progress("Finding duplicates and conflicts", None)
    whole_keys, prompt_keys = _duplicate_keys(conversations)
    exact = exact_duplicate_groups(conversations, whole_keys)
    # Near-duplicates among distinct rows only: identical copies are already exact duplicates.
    later_copies = {row for group in exact for row in group[1:]}
    distinct = [c for c in conversations if c.source_index not in later_copies]
    report_progress("Finding near-duplicates (MinHash)", None)
    near_positions = near_duplicate_row_groups(distinct, near_threshold)
    near = [[distinct[position].source_index for position in group] for group in near_positions]
    conflicts = conflict_groups(conversations, prompt_keys)
    return {"exact_duplicates": exact, "near_duplicates": near, "conflicts": conflicts}


def _too_long(conversations, token_lengths, max_seq_length: int, flagged, reasons) -> None:
    import numpy as np

    for position in np.flatnonzero(token_lengths.total > max_seq_length):
        row = conversations[position].source_index
        total, prompt = int(token_lengths.total[position]), int(token_lengths.prompt[position])
        flagged["too_long"].append(row)
        estimated = conversation_chars(conversations[position]) > ROW_COUNT_MAX_CHARS
        count = f"about {total:,} tokens (estimated from {ROW_COUNT_MAX_CHARS:,} of its characters)" if estimated else f"{total:,} tokens"
        reasons["too_long"][row] = f"{count} > {max_seq_length:,}: " + (
            "the prompt alone fills the limit, nothing is trained" if prompt >= max_seq_length else "the answer is cut"
        )
    flagged["too_long"].sort()


def _rows_carry(count: int) -> str:
    return "1 row carries" if count == 1 else f"{count:,} rows carry"


def unrendered_tools_note(conversations: Sequence[Conversation], tokenizer: "PreTrainedTokenizerBase | None") -> str | None:
    """One line when rows carry tool schemas or calls that the chat template does not write
    (rendering with and without them gives the same text), with how many rows; else None.

    Whether a template writes tools is a property of the template, so it is tried on the first
    row with schemas and the first with calls, not on every row.
    """
    if tokenizer is None:
        return None

    with_tools = [c for c in conversations if c.tools or any(m.tool_calls for m in c.messages)]
    if not with_tools:
        return None
    samples = {
        id(row): row
        for row in (
            next((c for c in with_tools if c.tools), None),
            next((c for c in with_tools if any(m.tool_calls for m in c.messages)), None),
        )
        if row is not None
    }
    try:
        if all(renders_tool_parts(tokenizer, row) for row in samples.values()):
            return None
    except WorkbenchError:
        return None  # the rows the template refuses are reported where they are rendered
    return (
        f"{_rows_carry(len(with_tools))} tool schemas or tool calls that this chat template does not write, "
        "so the model would never see them; choose a template that renders tools (qwen2.5, llama3) or a model "
        "whose own template does"
    )


def unrendered_reasoning_note(conversations: Sequence[Conversation], tokenizer: "PreTrainedTokenizerBase | None") -> str | None:
    """One line when rows carry reasoning that the chat template does not write, with how many
    rows (tried on the first such row: a property of the template); else None."""
    if tokenizer is None:
        return None

    reasoning = [c for c in conversations if any(m.reasoning for m in c.messages)]
    try:
        if not reasoning or renders_reasoning(tokenizer, reasoning[0]):
            return None
    except WorkbenchError:
        return None
    return (
        f"{_rows_carry(len(reasoning))} reasoning that this chat template does not write, so it is not trained; "
        "choose a template that renders thinking (chatml, qwen2.5 write it as <think>…</think>)"
    )


class ChecksCancelled(Exception):
    """Raised inside the token-counting thread when the checks around it were interrupted."""


def run_quality_checks(
    conversations: Sequence[Conversation],
    tokenizer: "PreTrainedTokenizerBase | None" = None,
    *,
    max_seq_length: int = DEFAULT_MAX_SEQ_LENGTH,
    near_threshold: float = DEFAULT_THRESHOLD,
    system_prompt: str | None = None,
    token_lengths: "TokenLengths | None" = None,
    progress: Callable[[str, float | None], None] | None = None,
) -> QualityReport:
    """Run every check.

    Args:
        conversations: the rows to check.
        tokenizer: the model's tokenizer; without it token lengths and `too_long` are skipped.
        max_seq_length: the token limit for `too_long`.
        near_threshold: Jaccard threshold for near-duplicates.
        system_prompt: as in render_training_example (None: the template's own behaviour).
        token_lengths: counts already measured for these conversations (skips re-tokenizing).
        progress: called with a stage and a fraction; may raise to cancel.
    """
    report_progress = progress or (lambda stage, fraction: None)
    # Token counting is mostly Rust that releases the GIL: run it beside the other checks.
    stopped = threading.Event()

    def counting_progress(stage: str, fraction: float | None) -> None:
        if stopped.is_set():
            raise ChecksCancelled("the checks were interrupted")
        report_progress(stage, fraction)

    counter = ThreadPoolExecutor(max_workers=1)
    try:
        counting = None
        if token_lengths is None and tokenizer is not None and conversations:
            counting = counter.submit(_measure, tokenizer, conversations, system_prompt, counting_progress)
        reasons, flagged = _row_checks(conversations, _control_tokens(tokenizer), report_progress)
        groups = _group_checks(conversations, near_threshold, report_progress)
        if counting is not None:
            token_lengths = counting.result()
    except BaseException:
        # Ctrl-C or a cancelled worker: do not wait for the remaining batches to be counted
        stopped.set()
        counter.shutdown(wait=False, cancel_futures=True)
        raise
    counter.shutdown()
    if token_lengths is not None:
        _too_long(conversations, token_lengths, max_seq_length, flagged, reasons)

    turns = Counter(conversation.assistant_turns for conversation in conversations)
    words, phrases = leading_words(conversations)
    return QualityReport(
        rows=len(conversations),
        max_seq_length=max_seq_length,
        near_threshold=near_threshold,
        groups=groups,
        flagged=flagged,
        reasons=reasons,
        token_lengths=token_lengths,
        source_indices=[conversation.source_index for conversation in conversations],
        turns=dict(turns),
        leading_words=words,
        leading_phrases=phrases,
        label_balance=label_balance(conversations),
        notes=[
            note
            for note in (unrendered_tools_note(conversations, tokenizer), unrendered_reasoning_note(conversations, tokenizer))
            if note
        ],
    )
