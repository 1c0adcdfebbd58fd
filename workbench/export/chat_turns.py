"""How a chat template writes a conversation, read off the template by rendering it.

Most chat templates write every message as `prefix(role) + content + suffix(role)` and end with a
generation prompt. Rendering probe conversations one message longer each time and cutting at the
probe texts recovers those pieces without parsing Jinja, for any template of that shape (ChatML as
in SmolLM2 and Qwen2, Llama 3's headers, Zephyr, ...). Ollama's Go template, the end-of-turn token
in the GGUF metadata and the stop parameters are all built from these pieces.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

PROBES = {"system": "Wb7SystemProbe", "user": "Wb7UserProbe", "assistant": "Wb7AssistantProbe", "user2": "Wb7OtherProbe"}


@dataclass(frozen=True)
class TurnFormat:
    """The pieces a chat template writes around each message.

    `head` comes before the first message (often the BOS token); `default_system` is the system
    message the template adds to a conversation that has none (None when it adds nothing).
    """

    head: str
    system: tuple[str, str]
    user: tuple[str, str]
    assistant: tuple[str, str]
    generation_prompt: str
    default_system: Optional[str]

    def wrap(self, role: str, content: str) -> str:
        prefix, suffix = {"system": self.system, "user": self.user, "assistant": self.assistant}[role]
        return prefix + content + suffix

    def render(self, messages: list[dict[str, str]], add_generation_prompt: bool = True) -> str:
        """The conversation as these pieces write it (what the template itself renders)."""
        if self.default_system is not None and (not messages or messages[0]["role"] != "system"):
            messages = [{"role": "system", "content": self.default_system}, *messages]
        text = self.head + "".join(self.wrap(m["role"], m["content"]) for m in messages)
        return text + (self.generation_prompt if add_generation_prompt else "")


def _render(tokenizer: "PreTrainedTokenizerBase", roles: list[str], add_generation_prompt: bool = False) -> str:
    messages = [{"role": "user" if role == "user2" else role, "content": PROBES[role]} for role in roles]
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)


def _split_once(text: str, probe: str) -> Optional[tuple[str, str]]:
    if text.count(probe) != 1:
        return None
    before, after = text.split(probe)
    return before, after


def turn_format(tokenizer: "PreTrainedTokenizerBase") -> Optional[TurnFormat]:
    """The tokenizer's chat template as per-role pieces, or None when it is not of that shape
    (no template, a template that rejects the probes, or one that writes a message differently
    depending on what follows it)."""
    if not tokenizer.chat_template:
        return None
    try:
        chain = [_render(tokenizer, ["system", "user", "assistant", "user2"][:count]) for count in range(1, 5)]
        with_prompt = _render(tokenizer, ["system", "user", "assistant", "user2"], add_generation_prompt=True)
        user_only = _render(tokenizer, ["user"])
    except Exception:  # the template refuses a probe conversation (e.g. raise_exception in Jinja)
        return None
    texts = [*chain, with_prompt]
    if any(not later.startswith(earlier) for earlier, later in zip(texts, texts[1:])):
        return None
    chunks = [chain[0]] + [later[len(earlier):] for earlier, later in zip(chain, chain[1:])]
    pieces = [_split_once(chunk, PROBES[role]) for chunk, role in zip(chunks, ["system", "user", "assistant", "user2"])]
    if any(piece is None for piece in pieces):
        return None
    (system_before, system_suffix), user, assistant, second_user = pieces
    if second_user != user:
        return None
    generation_prompt = with_prompt[len(chain[-1]):]
    user_turn = user[0] + PROBES["user"] + user[1]
    if not user_only.endswith(user_turn):
        return None
    before_user = user_only[: -len(user_turn)]
    default_system = None
    if (
        before_user.startswith(system_before)
        and before_user.endswith(system_suffix)
        and len(before_user) >= len(system_before) + len(system_suffix)
    ):
        default_system = before_user[len(system_before): len(before_user) - len(system_suffix)]
        head = _head_before_system(system_before, user[0])
    elif system_before.startswith(before_user):
        head = before_user
    else:
        return None
    system = (system_before[len(head):], system_suffix)
    return TurnFormat(head, system, user, assistant, generation_prompt, default_system)


def _head_before_system(system_before: str, user_prefix: str) -> str:
    """What precedes the system turn's own prefix, found by spelling the user prefix with the system
    role ("<|start_header_id|>user..." -> "<|start_header_id|>system..."): Llama 3's BOS, or nothing."""
    if "user" not in user_prefix:
        return ""
    at = system_before.find(user_prefix.replace("user", "system", 1))
    return system_before[:at] if at > 0 else ""


def special_tokens_in(text: str, tokenizer: "PreTrainedTokenizerBase") -> list[str]:
    """The tokenizer's special tokens that occur in `text`, in order of appearance."""
    specials = {token.content for token in tokenizer.added_tokens_decoder.values() if token.special}
    specials |= set(tokenizer.all_special_tokens)
    found = [(text.find(token), token) for token in specials if token and token in text]
    return [token for _, token in sorted(found)]


def end_of_turn_token(turns: TurnFormat, tokenizer: "PreTrainedTokenizerBase") -> Optional[str]:
    """The special token that ends the assistant's turn (`<|im_end|>`, `<|eot_id|>`), if any."""
    found = special_tokens_in(turns.assistant[1], tokenizer)
    return found[0] if found else None


def stop_sequences(turns: TurnFormat, tokenizer: "PreTrainedTokenizerBase") -> list[str]:
    """What ends generation: the assistant turn's closing special tokens, the special token that
    opens the next user turn (so the model never writes the user's part), and the EOS token."""
    stops = special_tokens_in(turns.assistant[1], tokenizer)
    opening = special_tokens_in(turns.user[0], tokenizer)
    if opening:
        stops.append(opening[0])
    if tokenizer.eos_token:
        stops.append(tokenizer.eos_token)
    return list(dict.fromkeys(stops))
