"""What the model sees: a conversation through the model's chat template, with the loss mask.

`render_training_example` is the single definition of "which tokens are trained" for the Data
pane's preview and for the trainer. Masking is worked out in characters first and then mapped to
tokens through the fast tokenizer's offsets, so it works for any chat template without requiring
`{% generation %}` markers (SmolLM2's template has none).
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

from workbench.data.conversation import Conversation
from workbench.data.system_prompt import with_system_prompt
from workbench.errors import WorkbenchError

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

IGNORE_INDEX = -100
"""Label value for tokens that receive no loss (PyTorch's cross-entropy default ignore_index)."""


@dataclass(frozen=True)
class TrainingExample:
    """One tokenized training example.

    Attributes:
        input_ids: token ids after the chat template, cut to max_seq_len.
        labels: same length as input_ids; the token id where the token is trained, -100 where masked.
            Not shifted: causal-LM models shift labels themselves.
        truncated: the templated conversation was longer than max_seq_len and was cut.
        eos_trained: every assistant turn's end-of-turn token (`<|im_end|>` for the default model)
            is present after truncation and receives loss, so the model learns to stop. False when
            the conversation has no assistant turn, when truncation cut an end-of-turn token off,
            or when the template closes assistant turns without a special token.
        full_length: the token count before truncation.
        max_seq_len: the limit the example was cut to.
        text: the full templated text (before truncation).
        token_texts: for each kept token, the slice of `text` it covers (gaps included), for display.
    """

    input_ids: list[int]
    labels: list[int]
    truncated: bool
    eos_trained: bool
    full_length: int
    max_seq_len: int
    text: str
    token_texts: list[str]

    @property
    def trained_token_count(self) -> int:
        """How many kept tokens receive loss."""
        return sum(1 for label in self.labels if label != IGNORE_INDEX)

    @property
    def trained_mask(self) -> list[bool]:
        """Per kept token: True where it receives loss."""
        return [label != IGNORE_INDEX for label in self.labels]


def render_chat_text(
    tokenizer: "PreTrainedTokenizerBase",
    messages: Sequence[dict[str, str]],
    *,
    add_generation_prompt: bool = False,
) -> str:
    """The chat template applied to `messages` as text; template errors become a WorkbenchError."""
    if not getattr(tokenizer, "chat_template", None):
        raise WorkbenchError(
            f"model tokenizer {getattr(tokenizer, 'name_or_path', '')!r}: has no chat template; "
            "choose an instruction-tuned model or add a chat_template to its tokenizer_config.json"
        )
    try:
        return tokenizer.apply_chat_template(
            list(messages), tokenize=False, add_generation_prompt=add_generation_prompt
        )
    except WorkbenchError:
        raise
    except Exception as error:  # jinja's raise_exception and TemplateError carry the template's reason
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise WorkbenchError(f"chat template: cannot render this conversation: {reason}") from None


def _control_token_strings(tokenizer: "PreTrainedTokenizerBase") -> list[str]:
    """Text forms of the tokenizer's special/added tokens, longest first."""
    added = getattr(tokenizer, "added_tokens_decoder", {}) or {}
    strings = {token.content for token in added.values() if getattr(token, "special", True)}
    strings.update(token for token in getattr(tokenizer, "all_special_tokens", []) if token)
    return sorted(strings, key=len, reverse=True)


def trained_character_spans(
    tokenizer: "PreTrainedTokenizerBase", chat: list[dict[str, str]], text: str
) -> list[tuple[int, int, bool]]:
    """Character spans of `text` that receive loss under assistant-only training.

    One span per assistant turn: from the start of its content to the end of the template's
    end-of-turn marker (trailing whitespace after the marker stays masked: the model never
    generates it). Each span carries whether it ends with a control token (the end-of-turn token).

    Spans are found by rendering prefixes of the conversation: the text up to a turn's header
    (`add_generation_prompt=True`) and up to the end of the turn. Templates that render earlier
    turns differently depending on later ones (e.g. ones that drop old reasoning) break the prefix
    property; then the content is located by searching the full text in order.
    """
    control_tokens = _control_token_strings(tokenizer)

    def control_token_at(position: int) -> str | None:
        return next((token for token in control_tokens if text.startswith(token, position)), None)

    def control_token_ending_at(position: int, floor: int) -> bool:
        return any(position - len(token) >= floor and text.startswith(token, position - len(token)) for token in control_tokens)

    spans: list[tuple[int, int, bool]] = []
    cursor = 0
    for position, message in enumerate(chat):
        if message["role"] != "assistant":
            continue
        content = message["content"].strip()
        header = render_chat_text(tokenizer, chat[:position], add_generation_prompt=True) if position else ""
        through_turn = render_chat_text(tokenizer, chat[: position + 1])
        if text.startswith(through_turn) and through_turn.startswith(header) and len(header) >= cursor:
            start, turn_end = len(header), len(through_turn)
            # Templates without a generation prompt leave the role header inside the turn.
            found = text.find(content, start, turn_end) if content else -1
            start = found if found >= 0 else start
        else:
            found = text.find(content, cursor) if content else cursor
            if found < 0:
                raise WorkbenchError(
                    f"chat template: cannot find assistant turn {position} in the templated text; "
                    "this template rewrites assistant content and loss masking cannot be derived"
                )
            start, turn_end = found, found + len(content)
        end = start + len(text[start:turn_end].rstrip())
        ends_with_control = control_token_ending_at(end, start)
        if not ends_with_control:
            # The end-of-turn token may sit right after what the prefix rendering showed (templates
            # that close a turn only when another follows, or when searched for).
            following = control_token_at(end)
            if following is not None:
                end += len(following)
                ends_with_control = True
        spans.append((start, end, ends_with_control))
        cursor = max(cursor, turn_end)
    return spans


def render_training_example(
    tokenizer: "PreTrainedTokenizerBase",
    conversation: Conversation,
    max_seq_len: int,
    assistant_only: bool = True,
    system_prompt: str | None = None,
) -> TrainingExample:
    """Tokenize one conversation exactly as training sees it, with labels for the loss.

    The conversation goes through the tokenizer's chat template (`apply_chat_template`), then is
    tokenized without adding extra special tokens (the template writes them). With
    `assistant_only=True`, every assistant turn's content and its end-of-turn token receive loss;
    system, user and tool turns and the template's role headers are masked with -100. Multi-turn
    conversations train on every assistant turn, not only the last.

    Args:
        tokenizer: a fast Hugging Face tokenizer with a chat template.
        conversation: the normalized conversation.
        max_seq_len: cut input_ids and labels to this many tokens (`truncated` says whether it did).
        assistant_only: False trains on every token (labels equal input_ids).
        system_prompt: None keeps the template's own behaviour (SmolLM2 adds a default system
            message when there is none); a string is inserted as the system message when the
            conversation has none ("" gives an empty system message).

    Returns:
        A TrainingExample with input_ids, labels, truncated, eos_trained and the per-token text
        pieces the preview draws.
    """
    if max_seq_len < 1:
        raise WorkbenchError(f"max_seq_len: must be at least 1, got {max_seq_len}")
    if not getattr(tokenizer, "is_fast", False):
        raise WorkbenchError(
            f"model tokenizer {getattr(tokenizer, 'name_or_path', '')!r}: loss masking needs a fast tokenizer "
            "(tokenizer.json); this model only has a slow one"
        )
    chat = with_system_prompt(conversation, system_prompt).to_chat()
    text = render_chat_text(tokenizer, chat)
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids: list[int] = list(encoded["input_ids"])
    starts = [start for start, _ in encoded["offset_mapping"]]
    ends = [end for _, end in encoded["offset_mapping"]]

    spans = trained_character_spans(tokenizer, chat, text)
    if assistant_only:
        # A token is trained when any of its characters lies in a trained span: a token that
        # straddles a header and the answer (" Hello" after "assistant:") is the answer's first token.
        labels = [IGNORE_INDEX] * len(ids)
        span_index = 0
        for token_index, (start, end) in enumerate(zip(starts, ends)):
            while span_index < len(spans) and spans[span_index][1] <= start:
                span_index += 1
            if span_index < len(spans) and end > spans[span_index][0] and start < spans[span_index][1]:
                labels[token_index] = ids[token_index]
    else:
        labels = list(ids)

    kept = min(len(ids), max_seq_len)
    eos_trained = bool(spans)
    for _, end, ends_with_control in spans:
        last_token = _token_at(starts, end - 1)
        if not ends_with_control or last_token >= kept or labels[last_token] == IGNORE_INDEX:
            eos_trained = False
    boundaries = starts[:kept] + [starts[kept] if kept < len(starts) else len(text)]
    if boundaries:
        boundaries[0] = 0
    token_texts = [text[boundaries[i] : boundaries[i + 1]] for i in range(kept)]
    return TrainingExample(
        input_ids=ids[:kept],
        labels=labels[:kept],
        truncated=len(ids) > max_seq_len,
        eos_trained=eos_trained,
        full_length=len(ids),
        max_seq_len=max_seq_len,
        text=text,
        token_texts=token_texts,
    )


def _token_at(starts: list[int], char_index: int) -> int:
    """Index of the token covering `char_index` (tokens start at `starts`, in order)."""
    return max(0, bisect_right(starts, char_index) - 1)
