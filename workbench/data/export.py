"""Write conversations to JSON Lines in one of the formats, atomically.

Each format is written in its own layout, so a cleaned file reads back as what it was: tool schemas
as OpenAI lists (messages, prompt-completion), LLaMA-Factory JSON text (sharegpt, alpaca,
llamafactory-v1); calls as OpenAI `tool_calls` with JSON-text arguments and `tool_call_id`s,
ShareGPT `function_call` turns, or v1 `tool_call` parts; reasoning and per-turn loss weights where
the format has a place for them. What a format cannot hold (tool turns in alpaca, reasoning in
ShareGPT) is refused with the row, never dropped.

The output is written to a temporary file next to the target and moved into place with
os.replace, so a reader never sees half a file and an interrupted export leaves the old file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable, Sequence

from workbench.data.conversation import Conversation, Message
from workbench.data.formats import FORMATS
from workbench.data.tool_layouts import bare_tools_json, call_value_json, openai_tool_calls
from workbench.errors import WorkbenchError
from workbench.paths import workspace_dir

OUTPUT_FORMATS = ("messages", *(name for name in FORMATS if name != "messages"))
"""Formats a cleaned file can be written in (every format the loader reads), the default first."""

CLEAN_SUFFIX = ".clean.jsonl"


def default_clean_path(source: str | os.PathLike) -> Path:
    """Where a cleaned copy of `source` goes by default: `<stem>.clean.jsonl` beside it, or in the
    workspace folder (workbench.paths.workspace_dir) when the source's folder cannot be written.
    A save_to_disk directory's copy goes beside the directory."""
    source = Path(source)
    stem = source.name if source.is_dir() else source.stem
    folder = source.parent
    if not os.access(folder if str(folder) else Path.cwd(), os.W_OK):
        folder = workspace_dir()
    return folder / f"{stem}{CLEAN_SUFFIX}"


SHAREGPT_SPEAKERS = {"system": "system", "user": "human", "assistant": "gpt", "tool": "observation"}


def _default_trained(message: Message) -> bool:
    return message.role == "assistant"


def _no_reasoning_or_weights(messages: Sequence[Message], layout: str) -> None:
    for position, message in enumerate(messages):
        if message.reasoning is not None:
            raise ValueError(f"message {position} has reasoning, which {layout} has no place for")
        if message.trained is not None and message.trained != _default_trained(message):
            raise ValueError(f"message {position} has a loss weight {layout} cannot express")


def _call_ids(messages: Sequence[Message]) -> list[str | None]:
    """Per message: the id of the call a tool result answers (the k-th result after an assistant
    turn answers its k-th call, unless the result names another function)."""
    ids: list[str | None] = []
    pending: list = []
    for message in messages:
        if message.role == "assistant":
            pending = list(message.tool_calls)
        if message.role != "tool" or not pending:
            ids.append(None)
            continue
        match = next((call for call in pending if message.name in (None, call.name)), None)
        if match is not None:
            pending.remove(match)
        ids.append(match.id if match is not None else None)
    return ids


def _openai_message_dicts(messages: Sequence[Message]) -> list[dict[str, Any]]:
    dicts = []
    for message, call_id in zip(messages, _call_ids(messages)):
        entry: dict[str, Any] = {"role": message.role, "content": message.content}
        if message.tool_calls:
            entry["tool_calls"] = openai_tool_calls(message.tool_calls)
            if not message.content:
                entry["content"] = None
        if message.reasoning is not None:
            entry["reasoning_content"] = message.reasoning
        if call_id is not None:
            entry["tool_call_id"] = call_id
        elif message.name is not None:
            entry["name"] = message.name
        if message.trained is not None and message.role == "assistant":
            entry["weight"] = int(message.trained)
        elif message.trained:
            raise ValueError(f"a trained {message.role} turn cannot be written in OpenAI's layout (weight is for answers)")
        dicts.append(entry)
    return dicts


def _as_messages(conversation: Conversation) -> dict:
    row: dict = {"messages": _openai_message_dicts(conversation.messages)}
    if conversation.tools:
        row["tools"] = [dict(tool) for tool in conversation.tools]
    return row


def _as_sharegpt(conversation: Conversation) -> dict:
    _no_reasoning_or_weights(conversation.messages, "sharegpt")
    turns = []
    for position, message in enumerate(conversation.messages):
        if message.tool_calls:
            if message.content:
                raise ValueError(f"message {position} has text and tool calls; a sharegpt function_call turn holds only calls")
            turns.append({"from": "function_call", "value": call_value_json(message.tool_calls)})
        else:
            turns.append({"from": SHAREGPT_SPEAKERS[message.role], "value": message.content})
    row: dict = {"conversations": turns}
    if conversation.tools:
        row["tools"] = bare_tools_json(conversation.tools)
    return row


def _as_alpaca(conversation: Conversation) -> dict:
    messages = list(conversation.messages)
    _no_reasoning_or_weights(messages, "alpaca")
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
    if conversation.tools:
        row["tools"] = bare_tools_json(conversation.tools)
    return row


def _lf_v1_message(message: Message) -> dict[str, Any]:
    parts: list[dict[str, str]] = []
    if message.reasoning is not None:
        parts.append({"type": "reasoning", "value": message.reasoning})
    if message.content or not message.tool_calls:
        parts.append({"type": "text", "value": message.content})
    parts += [{"type": "tool_call", "value": call_value_json((call,))} for call in message.tool_calls]
    entry: dict[str, Any] = {"role": message.role, "content": parts}
    if message.trained is not None:
        entry["loss_weight"] = 1.0 if message.trained else 0.0
    return entry


def _as_lf_v1(conversation: Conversation) -> dict:
    row: dict = {"messages": [_lf_v1_message(message) for message in conversation.messages]}
    if conversation.tools:
        row["tools"] = json.dumps([dict(tool) for tool in conversation.tools], ensure_ascii=False)
    return row


def _as_prompt_completion(conversation: Conversation) -> dict:
    messages = conversation.messages
    if not messages or messages[-1].role != "assistant":
        raise ValueError("prompt-completion needs the conversation to end with an answer")
    simple = len(messages) == 2 and messages[0].role == "user" and not conversation.tools
    if simple and all(m.tool_calls == () and m.reasoning is None and m.trained is None for m in messages):
        return {"prompt": messages[0].content, "completion": messages[1].content}
    chat = _openai_message_dicts(messages)
    row: dict = {"prompt": chat[:-1], "completion": chat[-1:]}
    if conversation.tools:
        row["tools"] = [dict(tool) for tool in conversation.tools]
    return row


def _as_text(conversation: Conversation) -> dict:
    if conversation.text is None:
        raise ValueError("a conversation is not raw text")
    return {"text": conversation.text}


CONVERTERS = {
    "messages": _as_messages,
    "sharegpt": _as_sharegpt,
    "alpaca": _as_alpaca,
    "llamafactory-v1": _as_lf_v1,
    "prompt-completion": _as_prompt_completion,
    "text": _as_text,
}


def to_row(conversation: Conversation, output_format: str) -> dict:
    """The conversation as one row of `output_format` (raises WorkbenchError when it does not fit)."""
    if conversation.text is not None and output_format != "text":
        raise WorkbenchError(
            f"row {conversation.source_index}: a raw-text row can only be written as text; choose --output-format text"
        )
    try:
        return CONVERTERS[output_format](conversation)
    except ValueError as error:
        choice = "text" if conversation.text is not None else "messages or llamafactory-v1"
        raise WorkbenchError(
            f"row {conversation.source_index}: cannot be written as {output_format}: {error}; choose --output-format {choice}"
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
    if output_format not in OUTPUT_FORMATS:
        raise WorkbenchError(
            f"--output-format: unknown format {output_format!r}; expected one of {', '.join(OUTPUT_FORMATS)}"
        )
    rows = [json.dumps(to_row(conversation, output_format), ensure_ascii=False) for conversation in conversations]
    atomic_write_lines(path, rows)
