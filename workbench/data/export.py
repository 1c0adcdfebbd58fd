"""Write conversations to JSON Lines in one of the four formats, atomically.

The output is written to a temporary file next to the target and moved into place with
os.replace, so a reader never sees half a file and an interrupted export leaves the old file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable, Sequence

from workbench.data.conversation import Conversation, Message
from workbench.data.formats import FORMATS
from workbench.errors import WorkbenchError

SHAREGPT_SPEAKERS = {"system": "system", "user": "human", "assistant": "gpt", "tool": "observation"}


def _message_dicts(messages: Sequence[Message]) -> list[dict[str, str]]:
    return [{"role": message.role, "content": message.content} for message in messages]


def _as_messages(conversation: Conversation) -> dict:
    row: dict = {"messages": _message_dicts(conversation.messages)}
    if conversation.tools:
        row["tools"] = conversation.tools
    return row


def _as_sharegpt(conversation: Conversation) -> dict:
    turns = []
    messages = conversation.messages
    for position, message in enumerate(messages):
        speaker = SHAREGPT_SPEAKERS[message.role]
        followed_by_tool = position + 1 < len(messages) and messages[position + 1].role == "tool"
        if message.role == "assistant" and followed_by_tool:
            speaker = "function_call"
        turns.append({"from": speaker, "value": message.content})
    row: dict = {"conversations": turns}
    if conversation.tools:
        row["tools"] = conversation.tools
    return row


def _as_alpaca(conversation: Conversation) -> dict:
    messages = list(conversation.messages)
    system = messages.pop(0).content if messages and messages[0].role == "system" else ""
    roles = [message.role for message in messages]
    if len(messages) < 2 or len(messages) % 2 or roles != ["user", "assistant"] * (len(messages) // 2):
        raise ValueError("alpaca holds user/assistant exchanges only (no tool turns, ending with an answer)")
    history = [[messages[i].content, messages[i + 1].content] for i in range(0, len(messages) - 2, 2)]
    row: dict = {"instruction": messages[-2].content, "input": "", "output": messages[-1].content}
    if system:
        row["system"] = system
    if history:
        row["history"] = history
    return row


def _as_prompt_completion(conversation: Conversation) -> dict:
    messages = conversation.messages
    if not messages or messages[-1].role != "assistant":
        raise ValueError("prompt-completion needs the conversation to end with an answer")
    if len(messages) == 2 and messages[0].role == "user":
        return {"prompt": messages[0].content, "completion": messages[1].content}
    return {"prompt": _message_dicts(messages[:-1]), "completion": _message_dicts(messages[-1:])}


CONVERTERS = {
    "messages": _as_messages,
    "sharegpt": _as_sharegpt,
    "alpaca": _as_alpaca,
    "prompt-completion": _as_prompt_completion,
}


def to_row(conversation: Conversation, output_format: str) -> dict:
    """The conversation as one row of `output_format` (raises WorkbenchError when it does not fit)."""
    try:
        return CONVERTERS[output_format](conversation)
    except ValueError as error:
        raise WorkbenchError(
            f"row {conversation.source_index}: cannot be written as {output_format}: {error}; "
            "choose --output-format messages or sharegpt"
        ) from None


def atomic_write_lines(path: Path, lines: Iterable[str]) -> None:
    """Write `lines` (each without newline) to `path` via a temporary file and os.replace."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(temporary, "w", encoding="utf-8", newline="\n") as handle:
            for line in lines:
                handle.write(line)
                handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink()


def write_jsonl(path: Path, conversations: Sequence[Conversation], output_format: str) -> None:
    """Write conversations as JSON Lines in `output_format`, atomically."""
    if output_format not in FORMATS:
        raise WorkbenchError(f"--output-format: unknown format {output_format!r}; expected one of {', '.join(FORMATS)}")
    rows = [json.dumps(to_row(conversation, output_format), ensure_ascii=False) for conversation in conversations]
    atomic_write_lines(path, rows)
