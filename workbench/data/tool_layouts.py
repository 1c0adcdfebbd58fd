"""Tool schemas and tool calls in the layouts data files use, read into the structured types and
written back out.

Chat templates read tools as `{"type": "function", "function": {"name", "description", "parameters"}}`
and calls as `tool_calls=[{"type": "function", "function": {"name", "arguments": {...}}}]`. Files
spell them several ways:

- tool lists: a JSON string or a list; OpenAI/TRL wrap each schema in `{"type": "function",
  "function": ...}`, LLaMA-Factory and glaive give the bare `{"name", "description", "parameters"}`.
- ShareGPT `function_call` turns and LLaMA-Factory v1 `tool_call` parts: JSON `{"name", "arguments"}`
  or a list of them.
- OpenAI `tool_calls`: `[{"id", "type": "function", "function": {"name", "arguments": "<JSON text>"}}]`,
  and the legacy single `function_call`.

Every reader raises RowError naming the field; the writers produce each layout's own spelling so
an exported file reads back the same.
"""

from __future__ import annotations

import json
from typing import Any

from workbench.data.conversation import ToolCall


class RowError(Exception):
    """A problem with one row: `field` names where (e.g. 'messages[2].role'), the message says what."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def type_name(value: Any) -> str:
    """'an object', 'a list', 'a string', ... for error messages."""
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), f"a {type(value).__name__}"
    )


def _json_value(value: Any, field: str, expected: str) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError as error:
        raise RowError(field, f"not valid JSON ({getattr(error, 'msg', error)}); expected {expected}") from None


_PARSED_TOOLS: dict[str, tuple[dict[str, Any], ...] | None] = {}
_PARSED_TOOLS_LIMIT = 4096


def parse_tools(value: Any, field: str = "tools") -> tuple[dict[str, Any], ...] | None:
    """A row's tool list in the chat-template shape, or None when the row offers no tools.

    Rows of one file mostly repeat a few tool lists (LLaMA-Factory's glaive demo: 300 rows), so a
    list given as JSON text is parsed once and the rows share the result (treat it as read-only).
    """
    if isinstance(value, str):
        if value in _PARSED_TOOLS:
            return _PARSED_TOOLS[value]
        tools = _parse_tools(value, field)
        if len(_PARSED_TOOLS) >= _PARSED_TOOLS_LIMIT:
            _PARSED_TOOLS.clear()
        _PARSED_TOOLS[value] = tools
        return tools
    return _parse_tools(value, field)


def _parse_tools(value: Any, field: str) -> tuple[dict[str, Any], ...] | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    parsed = _json_value(value, field, "a JSON list of tool schemas")
    if isinstance(parsed, dict):
        parsed = [parsed]
    if not isinstance(parsed, list):
        raise RowError(field, f"expected a list of tool schemas, got {type_name(parsed)}")
    tools = []
    for position, tool in enumerate(parsed):
        where = f"{field}[{position}]"
        if not isinstance(tool, dict):
            raise RowError(where, f"expected a tool schema object, got {type_name(tool)}")
        function = tool.get("function") if tool.get("type") == "function" else tool
        if not isinstance(function, dict) or not isinstance(function.get("name"), str) or not function["name"]:
            raise RowError(where, "expected a tool schema with a 'name' (and 'description', 'parameters')")
        tools.append({"type": "function", "function": dict(function)})
    return tuple(tools) or None


def _arguments(value: Any) -> Any:
    """Arguments as a dict when they are a JSON object (given as one or as JSON text), else as given."""
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except ValueError:
            return value
        return parsed if isinstance(parsed, dict) else value
    return {} if value is None else value


def _one_call(call: Any, field: str, *, call_id: Any = None) -> ToolCall:
    if not isinstance(call, dict):
        raise RowError(field, f"expected a call object with 'name' and 'arguments', got {type_name(call)}")
    name = call.get("name")
    if not isinstance(name, str) or not name:
        raise RowError(f"{field}.name", "missing" if name is None else f"expected a function name, got {type_name(name)}")
    identifier = call_id if call_id is not None else call.get("id")
    return ToolCall(name, _arguments(call.get("arguments", call.get("parameters"))), identifier if isinstance(identifier, str) else None)


def parse_call_value(value: Any, field: str) -> tuple[ToolCall, ...]:
    """A ShareGPT `function_call` value or LLaMA-Factory `tool_call` part: `{"name", "arguments"}` or a list."""
    parsed = _json_value(value, field, 'a call like {"name": ..., "arguments": {...}}')
    calls = parsed if isinstance(parsed, list) else [parsed]
    if not calls:
        raise RowError(field, "an empty list of calls")
    return tuple(
        _one_call(call, f"{field}[{position}]" if isinstance(parsed, list) else field)
        for position, call in enumerate(calls)
    )


def parse_openai_tool_calls(value: Any, field: str) -> tuple[ToolCall, ...]:
    """OpenAI `tool_calls` (a list of `{"id", "type", "function": {...}}`) or a legacy `function_call` object."""
    parsed = _json_value(value, field, "a list of tool calls")
    if isinstance(parsed, dict) and "function" not in parsed:
        return (_one_call(parsed, field),)  # legacy function_call
    calls = parsed if isinstance(parsed, list) else [parsed]
    result = []
    for position, call in enumerate(calls):
        where = f"{field}[{position}]"
        if not isinstance(call, dict):
            raise RowError(where, f"expected a tool call object, got {type_name(call)}")
        function = call.get("function", call)
        result.append(_one_call(function, f"{where}.function" if "function" in call else where, call_id=call.get("id")))
    return tuple(result)


# ---- writing -------------------------------------------------------------------------------------


def bare_tools_json(tools: tuple[dict[str, Any], ...]) -> str:
    """Tools as LLaMA-Factory/glaive write them: JSON text of bare `{"name", "description", "parameters"}`."""
    return json.dumps([tool.get("function", tool) for tool in tools], ensure_ascii=False)


def call_value_json(calls: tuple[ToolCall, ...]) -> str:
    """Calls as a ShareGPT `function_call` value: one `{"name", "arguments"}` object, or a list of them."""
    objects = [{"name": call.name, "arguments": call.arguments} for call in calls]
    return json.dumps(objects[0] if len(objects) == 1 else objects, ensure_ascii=False)


def openai_tool_calls(calls: tuple[ToolCall, ...]) -> list[dict[str, Any]]:
    """Calls as OpenAI writes them: arguments as JSON text, the id when the source had one."""
    result = []
    for call in calls:
        arguments = call.arguments if isinstance(call.arguments, str) else json.dumps(call.arguments, ensure_ascii=False)
        entry: dict[str, Any] = {"type": "function", "function": {"name": call.name, "arguments": arguments}}
        if call.id is not None:
            entry = {"id": call.id, **entry}
        result.append(entry)
    return result
