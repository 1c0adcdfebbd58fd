"""The one structure every data format is normalized into.

A `Conversation` is a list of `Message`s with roles system/user/assistant/tool, plus where it came
from (its 0-based row index in the source file, the line when the file has lines, and the format).
Conversations are immutable: cleaning builds new ones, so the original rows stay available for undo.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

ROLES = ("system", "user", "assistant", "tool")


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One function call an assistant turn makes.

    Attributes:
        name: the function's name.
        arguments: the arguments, a JSON object (a dict) when the source gave valid JSON, else the raw text.
        id: the call's id when the source names one (OpenAI `tool_calls[].id`).
    """

    name: str
    arguments: Any
    id: str | None = None

    def to_chat(self) -> dict[str, Any]:
        """The call in the shape Hugging Face chat templates read (`tool_calls[]` entries)."""
        call: dict[str, Any] = {"type": "function", "function": {"name": self.name, "arguments": self.arguments}}
        if self.id is not None:
            call["id"] = self.id
        return call


@dataclass(frozen=True, slots=True)
class Message:
    """One turn.

    Attributes:
        role: one of ROLES.
        content: plain text ("" for an assistant turn that only calls tools).
        tool_calls: the function calls an assistant turn makes, structured (never pasted into content).
        reasoning: an assistant turn's thinking text, rendered the way the chat template renders it.
        trained: the turn's loss weight when the source states one (LLaMA-Factory v1 `loss_weight`):
            True trains it, False masks it; None applies the default rule (assistant turns trained).
        name: a tool result's function name, when the source gives it.
    """

    role: str
    content: str
    tool_calls: tuple[ToolCall, ...] = ()
    reasoning: str | None = None
    trained: bool | None = None
    name: str | None = None

    def to_chat(self) -> dict[str, Any]:
        """The message as the dict Hugging Face chat templates read; optional keys only when set."""
        chat: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.tool_calls:
            chat["tool_calls"] = [call.to_chat() for call in self.tool_calls]
        if self.reasoning is not None:
            chat["reasoning_content"] = self.reasoning
        if self.name is not None:
            chat["name"] = self.name
        return chat


@dataclass(frozen=True, slots=True)
class Conversation:
    """One training example.

    Attributes:
        messages: the turns in order; optional system messages first, then user/assistant exchanges,
            where an assistant turn may be followed by tool results and another assistant turn.
        source_index: 0-based row index in the source file (file order), kept through cleaning.
        source_format: "alpaca", "sharegpt", "messages" or "prompt-completion".
        source_line: 1-based line in the source file, when the file has one line per row (JSONL).
        tools: the tool schemas the row offers the model, each in the shape chat templates read
            (`{"type": "function", "function": {"name", "description", "parameters"}}`); None when none.
            Part of the prompt: passed to `apply_chat_template(tools=...)`.
        text: a raw-text row (TRL `text`): no messages and no chat template; every token is trained.
        source: which training source of a mixture the row came from (its name), None for one file.
    """

    messages: tuple[Message, ...]
    source_index: int
    source_format: str
    source_line: int | None = None
    tools: tuple[dict[str, Any], ...] | None = None
    text: str | None = None
    source: str | None = None

    def with_messages(self, messages: tuple[Message, ...] | list[Message]) -> "Conversation":
        """A copy with other messages, keeping where the row came from."""
        return dataclasses.replace(self, messages=tuple(messages))

    @property
    def system(self) -> str | None:
        """The leading system message's text, or None when there is none."""
        if self.messages and self.messages[0].role == "system":
            return self.messages[0].content
        return None

    @property
    def final_response(self) -> str | None:
        """The last assistant message's text (None when the conversation has no assistant turn)."""
        for message in reversed(self.messages):
            if message.role == "assistant":
                return message.content
        return None

    @property
    def prompt_messages(self) -> tuple[Message, ...]:
        """Everything before the last assistant turn: the context its answer is conditioned on."""
        for position in range(len(self.messages) - 1, -1, -1):
            if self.messages[position].role == "assistant":
                return self.messages[:position]
        return self.messages

    @property
    def first_prompt(self) -> str:
        """The first user message's text ('' when there is none)."""
        for message in self.messages:
            if message.role == "user":
                return message.content
        return ""

    @property
    def assistant_turns(self) -> int:
        """How many assistant turns (answers) the conversation trains on."""
        return sum(1 for message in self.messages if message.role == "assistant")

    def to_chat(self) -> list[dict[str, Any]]:
        """The messages as the dicts chat templates expect (tool calls and reasoning included)."""
        return [message.to_chat() for message in self.messages]

    def tools_for_template(self) -> list[dict[str, Any]] | None:
        """The `tools=` argument for `apply_chat_template`."""
        return [dict(tool) for tool in self.tools] if self.tools else None

    def location(self, path: str) -> str:
        """Where this row lives, for messages: 'data.jsonl:15 (row 14)' or 'data.json: row 14'."""
        if self.source_line is not None:
            return f"{path}:{self.source_line} (row {self.source_index})"
        return f"{path}: row {self.source_index}"


def check_role_order(roles: list[str] | tuple[str, ...]) -> tuple[int, str] | None:
    """The first position whose role is out of order and why, or None when the order is fine.

    Accepted shape: system messages only at the start, then a user turn, then alternating
    user/assistant turns, where tool results may follow an assistant turn (a function call) and are
    followed by another assistant turn or more tool results.
    """
    previous = None
    for position, role in enumerate(roles):
        after = f"after '{previous}'" if previous else "as the first turn"
        if role == "system" and previous not in (None, "system"):
            return position, f"'system' is only allowed at the start, found {after}"
        if role == "user" and previous not in (None, "system", "assistant"):
            return position, f"'user' {after}; expected an assistant turn in between"
        if role == "assistant" and previous not in ("user", "tool"):
            return position, f"'assistant' {after}; expected a user turn first"
        if role == "tool" and previous not in ("assistant", "tool"):
            return position, f"'tool' {after}; tool results must follow an assistant (function call) turn"
        previous = role
    return None
