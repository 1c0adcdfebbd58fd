"""Many plain conversations through a chat template in one Jinja render.

`tokenizer.apply_chat_template(chats, tokenize=False)` renders a batch one conversation at a time,
and each one pays for a fresh Jinja context (a copy of the template's globals), a defensive deep
copy of the messages and transformers' per-call checks. On 100,000 Alpaca rows with SmolLM2's
template that came to 5.4 of the 5.6 s `data inspect` spent rendering, all of it holding the GIL
that the checks running beside the token counts also need (py-spy, 2-core Xeon). Here the
conversations of a batch go through the same compiled template in one call: the chat template's
source wrapped in a loop over the batch, in transformers' own Jinja environment (same sandbox,
filters and globals), each row's text preceded by a separator that no text contains. A sample of
the rows is rendered the ordinary way too, and any difference (or a template that fails) sends the
batch back to `apply_chat_template`, so the texts are always exactly the ones training renders.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any, Sequence

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

SEPARATOR = "\x00\x1fworkbench-row\x1f\x00"
"""Written before every row's text. A row holding it would split into too many parts, which sends the batch back."""
CHECKED_EVERY = 1024
"""Every this many rows (and the last) is also rendered through `apply_chat_template` and compared."""
PLAIN_KEYS = frozenset({"role", "content"})


def _wrapped_source(chat_template: str) -> str:
    # `{% if true %}` + newline: trim_blocks eats that newline, so the template's first line starts
    # a source line as it does on its own (lstrip_blocks then treats it alike); `{{ '' }}` keeps
    # lstrip_blocks off whatever whitespace the template ends with.
    return (
        "{% for messages in workbench_chats %}{{ workbench_separator }}{% if true %}\n"
        + chat_template
        + "{{ '' }}{% endif %}{% endfor %}"
    )


@lru_cache(maxsize=8)
def _batch_template(chat_template: str):
    from transformers.utils.chat_template_utils import _compile_jinja_template

    return _compile_jinja_template(_wrapped_source(chat_template))


def is_plain(chat: Sequence[dict[str, Any]]) -> bool:
    """Messages of a role and a text only (no tool calls, reasoning or names to prepare)."""
    return all(message.keys() <= PLAIN_KEYS and isinstance(message.get("content"), str) for message in chat)


def render_plain_chats(tokenizer: "PreTrainedTokenizerBase", chats: list[list[dict[str, Any]]]) -> list[str] | None:
    """The texts `tokenizer.apply_chat_template(chats, tokenize=False)` gives, from one render;
    None when this batch cannot be rendered that way (the caller then renders it as usual)."""
    if not chats or not all(is_plain(chat) for chat in chats):
        return None
    try:
        source = tokenizer.get_chat_template()
        if not isinstance(source, str) or SEPARATOR in source:
            return None
        rendered = _batch_template(source).render(
            workbench_chats=chats,
            workbench_separator=SEPARATOR,
            tools=None,
            documents=None,
            add_generation_prompt=False,
            **_special_tokens(tokenizer),
        )
    except Exception:  # a template that refuses a row: the ordinary path says which row
        return None
    texts = rendered.split(SEPARATOR)
    if len(texts) != len(chats) + 1 or texts[0]:
        return None
    texts = texts[1:]
    checked = sorted({*range(0, len(chats), CHECKED_EVERY), len(chats) - 1})
    expected = tokenizer.apply_chat_template([chats[index] for index in checked], tokenize=False)
    if any(texts[index] != text for index, text in zip(checked, expected)):
        return None
    return texts


def _special_tokens(tokenizer: "PreTrainedTokenizerBase") -> dict[str, Any]:
    """What `apply_chat_template` passes the template besides the messages: the special tokens map."""
    return {str(key): value for key, value in tokenizer.special_tokens_map.items()}
