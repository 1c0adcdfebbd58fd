"""The one rule for a run's system prompt (`data.system_prompt`), for training, chat and export.

- None: the conversation goes to the chat template as it is, so the template does what it does by
  default (SmolLM2's template then adds "You are a helpful AI assistant named SmolLM…").
- Any string, the empty string included: inserted as the system message of every conversation that
  has none ("" gives an empty system message, which also stops the template adding its default).

Exports carry the same rule into the template itself (`template_with_default_system`), so a model
used outside the workbench, asked with no system message, is asked the way it was trained.
"""

from __future__ import annotations

import json
from typing import Any, Sequence

from workbench.data.conversation import Conversation, Message


def with_system_prompt(conversation: Conversation, system_prompt: str | None) -> Conversation:
    """The conversation with `system_prompt` as its system message when it has none (None: unchanged)."""
    if system_prompt is None or conversation.system is not None or conversation.text is not None:
        return conversation
    return conversation.with_messages((Message("system", system_prompt), *conversation.messages))


def chat_with_system_prompt(messages: Sequence[dict[str, Any]], system_prompt: str | None) -> list[dict[str, Any]]:
    """The same rule for chat-template message dicts (what Chat and generation send)."""
    messages = list(messages)
    if system_prompt is None or (messages and messages[0].get("role") == "system"):
        return messages
    return [{"role": "system", "content": system_prompt}, *messages]


def template_with_default_system(template: str, system_prompt: str | None) -> str:
    """`template` changed so that a conversation without a system message gets `system_prompt` as one.

    The prefix rebinds `messages` before the original template runs (a Jinja `set` inside a top-level
    `if` is visible after it), so the template's own default system message is never reached. None
    returns the template unchanged. The text is written as a JSON string literal, which Jinja reads
    with the same escapes.
    """
    if system_prompt is None:
        return template
    literal = json.dumps(system_prompt, ensure_ascii=False)
    prefix = (
        "{%- if not messages or messages[0]['role'] != 'system' -%}"
        "{%- set messages = [{'role': 'system', 'content': " + literal + "}] + messages -%}"
        "{%- endif -%}\n"
    )
    return prefix + template
