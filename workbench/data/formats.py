"""The four row formats and how each becomes a Conversation.

- alpaca: `instruction`, `input`, `output`, optional `system` and `history` ([[question, answer], ...]).
- sharegpt: `conversations` (or `messages`) as a list of `{"from", "value"}` with roles
  human/gpt/system/function_call/observation/tool, optional `system` and `tools`.
- messages: OpenAI chat format, `messages` as a list of `{"role", "content"}`, content a string or a
  list of text parts; assistant `tool_calls` are kept as JSON text.
- prompt-completion: `prompt` and `completion`, each a string or a list of messages.

Normalizers raise RowError(field, reason); the loader adds the file and row to make the one-line
user error.
"""

from __future__ import annotations

import json
from typing import Any, Callable

from workbench.data.conversation import Conversation, Message, check_role_order

FORMATS = ("alpaca", "sharegpt", "messages", "llamafactory-v1", "prompt-completion", "text")
"""Every row layout the loader reads (the names `data.format` and `--format` take)."""

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
MESSAGE_ROLES = {
    "system": "system",
    "developer": "system",
    "user": "user",
    "assistant": "assistant",
    "tool": "tool",
    "function": "tool",
    "ipython": "tool",
}


class RowError(Exception):
    """A problem with one row: `field` names where (e.g. 'messages[2].role'), the message says what."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def _type_name(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), f"a {type(value).__name__}"
    )


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
    raise RowError(field, f"expected a string, got {_type_name(value)}")


def _text_content(value: Any, field: str) -> str:
    """Message content: a string, or a list of text parts joined in order."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        pieces = []
        for position, part in enumerate(value):
            if isinstance(part, str):
                pieces.append(part)
                continue
            if not isinstance(part, dict):
                raise RowError(f"{field}[{position}]", f"expected a text part object, got {_type_name(part)}")
            part_type = part.get("type", "text")
            if part_type not in ("text", "input_text", "output_text"):
                raise RowError(
                    f"{field}[{position}].type", f"{part_type!r} parts are not supported (text-only training data)"
                )
            text = part.get("text")
            if not isinstance(text, str):
                raise RowError(f"{field}[{position}].text", f"expected a string, got {_type_name(text)}")
            pieces.append(text)
        return "".join(pieces)
    raise RowError(field, f"expected a string or a list of text parts, got {_type_name(value)}")


def _finish(messages: list[Message], origins: list[str], role_key: str) -> tuple[Message, ...]:
    """Check the role order; `origins[i]` names where message i came from in the row."""
    if not messages:
        raise RowError(origins[0] if origins else "messages", "no messages")
    problem = check_role_order([message.role for message in messages])
    if problem:
        position, reason = problem
        raise RowError(f"{origins[position]}.{role_key}", reason)
    return tuple(messages)


def normalize_alpaca(row: dict) -> tuple[tuple[Message, ...], str | None]:
    instruction = _require_text(row, "instruction")
    extra_input = _require_text(row, "input", optional=True)
    output = _require_text(row, "output")
    system = _require_text(row, "system", optional=True)
    messages: list[Message] = [Message("system", system)] if system else []
    history = _maybe_json_list(row.get("history")) or []
    if not isinstance(history, list):
        raise RowError("history", f"expected a list of [question, answer] pairs, got {_type_name(history)}")
    for position, pair in enumerate(history):
        if not (isinstance(pair, (list, tuple)) and len(pair) == 2 and all(isinstance(x, str) for x in pair)):
            raise RowError(f"history[{position}]", "expected a [question, answer] pair of strings")
        messages += [Message("user", pair[0]), Message("assistant", pair[1])]
    prompt = f"{instruction}\n{extra_input}" if extra_input.strip() else instruction
    messages += [Message("user", prompt), Message("assistant", output)]
    return tuple(messages), None


def _tools_text(row: dict) -> str | None:
    tools = row.get("tools")
    if tools is None or tools == [] or (isinstance(tools, str) and tools.strip() in ("", "[]")):
        return None
    return tools if isinstance(tools, str) else json.dumps(tools, ensure_ascii=False)


def normalize_sharegpt(row: dict) -> tuple[tuple[Message, ...], str | None]:
    field = "conversations" if "conversations" in row else "messages"
    turns = _maybe_json_list(row.get(field))
    if turns is None:
        raise RowError("conversations", "missing")
    if not isinstance(turns, list):
        raise RowError(field, f"expected a list of turns, got {_type_name(turns)}")
    messages: list[Message] = []
    origins: list[str] = []
    system = _require_text(row, "system", optional=True)
    if system:
        messages.append(Message("system", system))
        origins.append("system")
    for position, turn in enumerate(turns):
        where = f"{field}[{position}]"
        if not isinstance(turn, dict):
            raise RowError(where, f"expected an object with 'from' and 'value', got {_type_name(turn)}")
        speaker = turn.get("from", turn.get("role"))
        if not isinstance(speaker, str):
            raise RowError(f"{where}.from", "missing" if speaker is None else f"expected a string, got {_type_name(speaker)}")
        role = SHAREGPT_ROLES.get(speaker.lower())
        if role is None:
            raise RowError(f"{where}.from", f"unknown role {speaker!r}; expected one of {', '.join(SHAREGPT_ROLES)}")
        value = turn.get("value", turn.get("content"))
        if value is None:
            raise RowError(f"{where}.value", "missing")
        messages.append(Message(role, _text_content(value, f"{where}.value")))
        origins.append(where)
    if not turns:
        raise RowError(field, "empty list; expected at least one turn")
    return _finish(messages, origins, "from"), _tools_text(row)


def _openai_message(turn: Any, where: str) -> Message:
    if not isinstance(turn, dict):
        raise RowError(where, f"expected an object with 'role' and 'content', got {_type_name(turn)}")
    role_name = turn.get("role")
    if not isinstance(role_name, str):
        raise RowError(f"{where}.role", "missing" if role_name is None else f"expected a string, got {_type_name(role_name)}")
    role = MESSAGE_ROLES.get(role_name.lower())
    if role is None:
        raise RowError(f"{where}.role", f"unknown role {role_name!r}; expected one of {', '.join(MESSAGE_ROLES)}")
    content = turn.get("content")
    tool_calls = turn.get("tool_calls") or turn.get("function_call")
    if content is None and tool_calls:
        return Message(role, json.dumps(tool_calls, ensure_ascii=False))
    if content is None:
        raise RowError(f"{where}.content", "missing" if "content" not in turn else "is null; expected text")
    return Message(role, _text_content(content, f"{where}.content"))


def normalize_messages(row: dict) -> tuple[tuple[Message, ...], str | None]:
    field = "messages" if "messages" in row else "conversations"
    turns = _maybe_json_list(row.get(field))
    if turns is None:
        raise RowError("messages", "missing")
    if not isinstance(turns, list):
        raise RowError(field, f"expected a list of messages, got {_type_name(turns)}")
    if not turns:
        raise RowError(field, "empty list; expected at least one message")
    origins = [f"{field}[{position}]" for position in range(len(turns))]
    messages = [_openai_message(turn, where) for turn, where in zip(turns, origins)]
    return _finish(messages, origins, "role"), _tools_text(row)


def normalize_prompt_completion(row: dict) -> tuple[tuple[Message, ...], str | None]:
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
            halves.append([_openai_message(turn, f"{field}[{position}]") for position, turn in enumerate(value)])
            origins += [f"{field}[{position}]" for position in range(len(value))]
        else:
            raise RowError(field, f"expected a string or a non-empty list of messages, got {_type_name(value)}")
    return _finish(halves[0] + halves[1], origins, "role"), None


NORMALIZERS: dict[str, Callable[[dict], tuple[tuple[Message, ...], str | None]]] = {
    "alpaca": normalize_alpaca,
    "sharegpt": normalize_sharegpt,
    "messages": normalize_messages,
    "prompt-completion": normalize_prompt_completion,
}


def _turns_look_like_sharegpt(turns: Any) -> bool:
    turns = _maybe_json_list(turns)
    first = turns[0] if isinstance(turns, list) and turns else None
    return isinstance(first, dict) and ("from" in first or "value" in first)


def detect_format(row: dict) -> str | None:
    """The format a row's keys say it is in, or None when they match none."""
    for field in ("messages", "conversations"):
        if field in row:
            return "sharegpt" if _turns_look_like_sharegpt(row[field]) else "messages"
    if "instruction" in row and "output" in row:
        return "alpaca"
    if "prompt" in row and "completion" in row:
        return "prompt-completion"
    return None


def describe_expected_keys() -> str:
    return (
        "expected alpaca (instruction/input/output), sharegpt (conversations of from/value), "
        "messages (messages of role/content) or prompt-completion (prompt/completion)"
    )


def make_conversation(
    row: dict, source_format: str, source_index: int, source_line: int | None
) -> Conversation:
    """Normalize one row (raises RowError naming the field)."""
    messages, tools = NORMALIZERS[source_format](row)
    return Conversation(messages, source_index, source_format, source_line, tools)
