"""The row formats and how each becomes a Conversation.

- alpaca: `instruction`, `input`, `output`, optional `system`, `history` ([[question, answer], ...])
  and `tools`.
- sharegpt: `conversations` (or `messages`) as a list of `{"from", "value"}` with speakers
  human/gpt/system/function_call/observation, optional `system` and `tools` (LLaMA-Factory's glaive
  layout: a `function_call` turn's value is JSON `{"name", "arguments"}` or a list of them, an
  `observation` turn is the tool's result).
- messages: OpenAI chat format, `messages` as a list of `{"role", "content"}`, content a string or a
  list of text parts; assistant `tool_calls` (or the legacy `function_call`), `tool` turns with
  `tool_call_id`, reasoning in `reasoning_content`, and OpenAI's per-message `weight` (0 or 1).
- llamafactory-v1: LLaMA-Factory v1 messages, content a list of `{"type", "value"}` parts (text,
  reasoning, tool_call) and a per-message `loss_weight` (0 masked, 1 trained).
- prompt-completion: TRL's `prompt` and `completion`, each a string or a list of messages.
- text: TRL's `text` rows (raw text, no chat template, every token trained).

Tool schemas (`tools`, any format) become `Conversation.tools` in the chat-template shape; tool
calls become structured `ToolCall`s, never text pasted into the content.

Normalizers raise RowError(field, reason); the loader adds the file and row to make the one-line
user error.
"""

from __future__ import annotations

import json
from typing import Any, Callable

from workbench.data.columns import ColumnMap
from workbench.data.conversation import Conversation, Message, ToolCall, check_role_order
from workbench.data.tool_layouts import (
    RowError,
    parse_call_value,
    parse_openai_tool_calls,
    parse_tools,
    type_name,
)

FORMATS = ("alpaca", "sharegpt", "messages", "llamafactory-v1", "prompt-completion", "text")
"""Every row layout the loader reads (the names `data.format` and `--format` take)."""
FORMAT_CHOICES = ("auto", *FORMATS)
"""What `data.format`, `--format` and the Data pane's format list offer: auto-detection, then each format."""

SHAREGPT_ROLES = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "chatgpt": "assistant",
    "bing": "assistant",
    "bard": "assistant",
    "system": "system",
    # LLaMA-Factory's tool-use convention: the model's call is an assistant turn, the result a tool turn.
    "function_call": "assistant",
    "observation": "tool",
    "tool": "tool",
    "function": "tool",
}
SHAREGPT_CALL_SPEAKERS = ("function_call",)
MESSAGE_ROLES = {
    "system": "system",
    "developer": "system",
    "user": "user",
    "assistant": "assistant",
    "tool": "tool",
    "function": "tool",
    "ipython": "tool",
}
TEXT_PART_TYPES = ("text", "input_text", "output_text")
REASONING_KEYS = ("reasoning_content", "reasoning", "thinking")
LF_V1_ROLES = ("system", "user", "assistant", "tool")
MULTIMODAL_COLUMNS = ("images", "videos", "audios")
PREFERENCE_COLUMNS = ("chosen", "rejected", "chosen_messages", "rejected_messages")

__all__ = ["FORMATS", "FORMAT_CHOICES", "RowError", "detect_format", "make_conversation", "describe_expected_keys"]


def _maybe_json_list(value: Any) -> Any:
    """CSV cells hold nested lists as JSON text; accept them."""
    if isinstance(value, str) and value.lstrip().startswith("["):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _require_text(row: dict, field: str, *, optional: bool = False) -> str:
    if field not in row or row[field] is None:
        if optional:
            return ""
        raise RowError(field, "missing" if field not in row else "is null; expected text")
    value = row[field]
    if isinstance(value, str):
        return value
    raise RowError(field, f"expected a string, got {type_name(value)}")


def _unsupported_part(part_type: Any, field: str) -> RowError:
    return RowError(
        f"{field}.type",
        f"{part_type!r} parts are not supported (text-only training data); remove the part or the row",
    )


def _text_content(value: Any, field: str) -> str:
    """OpenAI message content: a string, or a list of text parts joined in order."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        pieces = []
        for position, part in enumerate(value):
            where = f"{field}[{position}]"
            if isinstance(part, str):
                pieces.append(part)
                continue
            if not isinstance(part, dict):
                raise RowError(where, f"expected a text part object, got {type_name(part)}")
            part_type = part.get("type", "text")
            if part_type not in TEXT_PART_TYPES:
                raise _unsupported_part(part_type, where)
            text = part.get("text")
            if not isinstance(text, str):
                raise RowError(f"{where}.text", f"expected a string, got {type_name(text)}")
            pieces.append(text)
        return "".join(pieces)
    raise RowError(field, f"expected a string or a list of text parts, got {type_name(value)}")


def _finish(messages: list[Message], origins: list[str], role_key: str) -> tuple[Message, ...]:
    """Check the role order; `origins[i]` names where message i came from in the row."""
    if not messages:
        raise RowError(origins[0] if origins else "messages", "no messages")
    problem = check_role_order([message.role for message in messages])
    if problem:
        position, reason = problem
        raise RowError(f"{origins[position]}.{role_key}", reason)
    return tuple(messages)


def _trained_flag(value: Any, field: str) -> bool | None:
    """A per-message loss weight: 0 masks the turn, 1 trains it, absent keeps the default rule."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value not in (0, 1):
        raise RowError(field, f"expected 0 (masked) or 1 (trained), got {value!r}")
    return value == 1


def _turns(row: dict, names: tuple[str, str]) -> tuple[str, list]:
    field = names[0] if names[0] in row else names[1]
    turns = _maybe_json_list(row.get(field))
    if turns is None:
        raise RowError(names[0], "missing")
    if not isinstance(turns, list):
        raise RowError(field, f"expected a list of turns, got {type_name(turns)}")
    if not turns:
        raise RowError(field, "empty list; expected at least one turn")
    return field, turns


def _leading_system(row: dict, messages: list[Message], origins: list[str]) -> None:
    system = _require_text(row, "system", optional=True)
    if system and not (messages and messages[0].role == "system"):
        messages.insert(0, Message("system", system))
        origins.insert(0, "system")


def _name_results(messages: list[Message], call_ids: list[str | None]) -> list[Message]:
    """Give tool results the function name of the call they answer (by `tool_call_id`)."""
    names_by_id = {call.id: call.name for message in messages for call in message.tool_calls if call.id}
    named = []
    for message, call_id in zip(messages, call_ids):
        if message.role == "tool" and message.name is None and call_id in names_by_id:
            message = Message("tool", message.content, name=names_by_id[call_id])
        named.append(message)
    return named


# ---- the formats ---------------------------------------------------------------------------------


def normalize_alpaca(row: dict) -> tuple[Message, ...]:
    instruction = _require_text(row, "instruction")
    extra_input = _require_text(row, "input", optional=True)
    output = _require_text(row, "output")
    system = _require_text(row, "system", optional=True)
    messages: list[Message] = [Message("system", system)] if system else []
    history = _maybe_json_list(row.get("history")) or []
    if not isinstance(history, list):
        raise RowError("history", f"expected a list of [question, answer] pairs, got {type_name(history)}")
    for position, pair in enumerate(history):
        if not (isinstance(pair, (list, tuple)) and len(pair) == 2 and all(isinstance(x, str) for x in pair)):
            raise RowError(f"history[{position}]", "expected a [question, answer] pair of strings")
        messages += [Message("user", pair[0]), Message("assistant", pair[1])]
    prompt = f"{instruction}\n{extra_input}" if extra_input.strip() else instruction
    messages += [Message("user", prompt), Message("assistant", output)]
    return tuple(messages)


def normalize_sharegpt(row: dict) -> tuple[Message, ...]:
    field, turns = _turns(row, ("conversations", "messages"))
    messages: list[Message] = []
    origins: list[str] = []
    for position, turn in enumerate(turns):
        where = f"{field}[{position}]"
        if not isinstance(turn, dict):
            raise RowError(where, f"expected an object with 'from' and 'value', got {type_name(turn)}")
        speaker = turn.get("from", turn.get("role"))
        if not isinstance(speaker, str):
            raise RowError(f"{where}.from", "missing" if speaker is None else f"expected a string, got {type_name(speaker)}")
        role = SHAREGPT_ROLES.get(speaker.lower())
        if role is None:
            raise RowError(f"{where}.from", f"unknown role {speaker!r}; expected one of {', '.join(SHAREGPT_ROLES)}")
        value = turn.get("value", turn.get("content"))
        if value is None:
            raise RowError(f"{where}.value", "missing")
        if speaker.lower() in SHAREGPT_CALL_SPEAKERS:
            messages.append(Message("assistant", "", tool_calls=parse_call_value(value, f"{where}.value")))
        else:
            messages.append(Message(role, _text_content(value, f"{where}.value")))
        origins.append(where)
    _leading_system(row, messages, origins)
    return _finish(messages, origins, "from")


def _openai_message(turn: Any, where: str) -> tuple[Message, str | None]:
    """One OpenAI-style message, and the `tool_call_id` a tool result answers."""
    if not isinstance(turn, dict):
        raise RowError(where, f"expected an object with 'role' and 'content', got {type_name(turn)}")
    role_name = turn.get("role")
    if not isinstance(role_name, str):
        raise RowError(f"{where}.role", "missing" if role_name is None else f"expected a string, got {type_name(role_name)}")
    role = MESSAGE_ROLES.get(role_name.lower())
    if role is None:
        raise RowError(f"{where}.role", f"unknown role {role_name!r}; expected one of {', '.join(MESSAGE_ROLES)}")
    calls: tuple[ToolCall, ...] = ()
    for key in ("tool_calls", "function_call"):
        if turn.get(key):
            if role != "assistant":
                raise RowError(f"{where}.{key}", f"only assistant messages make calls, this one is {role_name!r}")
            calls = parse_openai_tool_calls(turn[key], f"{where}.{key}")
            break
    content = turn.get("content")
    if content is None and not calls:
        raise RowError(f"{where}.content", "missing" if "content" not in turn else "is null; expected text")
    text = "" if content is None else _text_content(content, f"{where}.content")
    reasoning = next((turn[key] for key in REASONING_KEYS if isinstance(turn.get(key), str)), None)
    trained = _trained_flag(turn.get("weight"), f"{where}.weight")
    name = turn.get("name") if role == "tool" and isinstance(turn.get("name"), str) else None
    call_id = turn.get("tool_call_id")
    return Message(role, text, calls, reasoning, trained, name), call_id if isinstance(call_id, str) else None


def _openai_messages(turns: list, field: str) -> tuple[list[Message], list[str]]:
    origins = [f"{field}[{position}]" for position in range(len(turns))]
    read = [_openai_message(turn, where) for turn, where in zip(turns, origins)]
    return _name_results([message for message, _ in read], [call_id for _, call_id in read]), origins


def normalize_messages(row: dict) -> tuple[Message, ...]:
    field, turns = _turns(row, ("messages", "conversations"))
    messages, origins = _openai_messages(turns, field)
    _leading_system(row, messages, origins)
    return _finish(messages, origins, "role")


def _lf_v1_message(turn: Any, where: str) -> tuple[Message, tuple[dict[str, Any], ...]]:
    """One LLaMA-Factory v1 message, and any tool schemas given as a `tools` part."""
    if not isinstance(turn, dict):
        raise RowError(where, f"expected an object with 'role' and 'content', got {type_name(turn)}")
    role = turn.get("role")
    if role not in LF_V1_ROLES:
        reason = "missing" if role is None else f"unknown role {role!r}; expected one of {', '.join(LF_V1_ROLES)}"
        raise RowError(f"{where}.role", reason)
    content = turn.get("content")
    parts = [{"type": "text", "value": content}] if isinstance(content, str) else content
    if not isinstance(parts, list):
        raise RowError(f"{where}.content", f"expected a list of {{type, value}} parts, got {type_name(content)}")
    texts: list[str] = []
    reasoning: list[str] = []
    calls: list[ToolCall] = []
    tools: tuple[dict[str, Any], ...] = ()
    for position, part in enumerate(parts):
        part_where = f"{where}.content[{position}]"
        if not isinstance(part, dict):
            raise RowError(part_where, f"expected a {{type, value}} part, got {type_name(part)}")
        part_type, value = part.get("type"), part.get("value")
        if part_type in ("tool_call", "tool_calls"):
            calls += parse_call_value(value, f"{part_where}.value")
        elif part_type == "tools":
            tools += parse_tools(value, f"{part_where}.value") or ()
        elif part_type in ("text", "reasoning"):
            if not isinstance(value, str):
                raise RowError(f"{part_where}.value", f"expected a string, got {type_name(value)}")
            (texts if part_type == "text" else reasoning).append(value)
        else:
            raise _unsupported_part(part_type, part_where)
    if calls and role != "assistant":
        raise RowError(f"{where}.content", f"only assistant messages make tool calls, this one is {role!r}")
    trained = _trained_flag(turn.get("loss_weight"), f"{where}.loss_weight")
    message = Message(role, "".join(texts), tuple(calls), "".join(reasoning) if reasoning else None, trained)
    return message, tools


def normalize_lf_v1(row: dict) -> tuple[tuple[Message, ...], tuple[dict[str, Any], ...]]:
    field, turns = _turns(row, ("messages", "conversations"))
    origins = [f"{field}[{position}]" for position in range(len(turns))]
    read = [_lf_v1_message(turn, where) for turn, where in zip(turns, origins)]
    messages = [message for message, _ in read]
    tools = tuple(tool for _, part_tools in read for tool in part_tools)
    return _finish(messages, origins, "role"), tools


def normalize_prompt_completion(row: dict) -> tuple[Message, ...]:
    halves: list[list[Message]] = []
    origins: list[str] = []
    for field, default_role in (("prompt", "user"), ("completion", "assistant")):
        if field not in row or row[field] is None:
            raise RowError(field, "missing" if field not in row else "is null; expected text")
        value = _maybe_json_list(row[field])
        if isinstance(value, str):
            halves.append([Message(default_role, value)])
            origins.append(field)
        elif isinstance(value, list) and value:
            messages, where = _openai_messages(value, field)
            halves.append(messages)
            origins += where
        else:
            raise RowError(field, f"expected a string or a non-empty list of messages, got {type_name(value)}")
    return _finish(halves[0] + halves[1], origins, "role")


NORMALIZERS: dict[str, Callable[[dict], tuple[Message, ...]]] = {
    "alpaca": normalize_alpaca,
    "sharegpt": normalize_sharegpt,
    "messages": normalize_messages,
    "prompt-completion": normalize_prompt_completion,
}


# ---- detection -----------------------------------------------------------------------------------


def _turns_look_like_sharegpt(turns: Any) -> bool:
    first = turns[0] if isinstance(turns, list) and turns else None
    return isinstance(first, dict) and ("from" in first or "value" in first)


def _turns_look_like_lf_v1(turns: Any) -> bool:
    """LLaMA-Factory v1: a `loss_weight` on a message, or content parts carrying `value` (OpenAI parts carry `text`)."""
    if not isinstance(turns, list):
        return False
    for turn in turns[:4]:
        if not isinstance(turn, dict):
            return False
        if "loss_weight" in turn:
            return True
        content = turn.get("content")
        if isinstance(content, list) and content and isinstance(content[0], dict):
            return "value" in content[0] and "text" not in content[0]
    return False


def detect_format(row: dict) -> str | None:
    """The format a row's keys say it is in, or None when they match none."""
    for field in ("messages", "conversations"):
        if field in row:
            turns = _maybe_json_list(row[field])
            if _turns_look_like_sharegpt(turns):
                return "sharegpt"
            return "llamafactory-v1" if _turns_look_like_lf_v1(turns) else "messages"
    if "instruction" in row and "output" in row:
        return "alpaca"
    if "prompt" in row and "completion" in row:
        return "prompt-completion"
    if "text" in row:
        return "text"
    return None


def describe_expected_keys(row: dict | None = None) -> str:
    """What the loader expected, for a row it could not place (preference rows get their own reason)."""
    if row is not None and any(key in row for key in PREFERENCE_COLUMNS):
        return "chosen/rejected pairs are preference data (DPO/KTO); supervised fine-tuning needs one answer per prompt"
    return (
        "expected alpaca (instruction/input/output), sharegpt (conversations of from/value), "
        "messages (messages of role/content), prompt-completion (prompt/completion) or text"
    )


def make_conversation(
    row: dict,
    source_format: str,
    source_index: int,
    source_line: int | None,
    columns: ColumnMap | None = None,
    source: str | None = None,
) -> Conversation:
    """Normalize one row (raises RowError naming the field in the file's own column names).

    Args:
        row: the row as read from the file.
        source_format: one of FORMATS (the format of the row after `columns` renamed it).
        source_index / source_line: where the row is in its file.
        columns: the column mapping, when the file's columns have other names.
        source: the mixture source the row belongs to.
    """
    try:
        renamed = columns.apply(row, source_format) if columns is not None else row
        return _conversation(renamed, source_format, source_index, source_line, source)
    except RowError as error:
        if columns is None:
            raise
        raise RowError(columns.source_field(error.field, source_format), error.reason) from None


def _conversation(row: dict, source_format: str, source_index: int, source_line: int | None, source: str | None) -> Conversation:
    for column in MULTIMODAL_COLUMNS:
        if row.get(column):
            raise RowError(column, "images, videos and audio are not supported (text-only training); drop the column or the row")
    if source_format == "text":
        text = _require_text(row, "text")
        return Conversation((), source_index, "text", source_line, text=text, source=source)
    part_tools: tuple[dict[str, Any], ...] = ()
    if source_format == "llamafactory-v1":
        messages, part_tools = normalize_lf_v1(row)
    else:
        messages = NORMALIZERS[source_format](row)
    tools = (parse_tools(row.get("tools")) or ()) + part_tools
    return Conversation(messages, source_index, source_format, source_line, tools or None, source=source)
