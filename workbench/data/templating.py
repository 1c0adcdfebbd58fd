"""What the model sees: a conversation through the model's chat template, with the loss mask.

`render_training_example` is the single definition of "which tokens are trained" for the Data
pane's preview, `workbench data show` and the trainer. The row's tool schemas (`tools=`) and its
structured tool calls and reasoning go to the template, which writes them in its own format.
Masking is worked out in characters first, from renders of the conversation's prefixes, and then
mapped to tokens through the fast tokenizer's offsets, so it works for any chat template without
requiring `{% generation %}` markers (SmolLM2's template has none). The tokenizer comes prepared
for the run's chat template (`workbench.data.chat_templates.prepare_tokenizer`).
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Sequence

from workbench.data.conversation import Conversation, Message
from workbench.data.system_prompt import with_system_prompt
from workbench.errors import WorkbenchError
from workbench.known_errors import first_line

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

IGNORE_INDEX = -100
"""Label value for tokens that receive no loss (PyTorch's cross-entropy default ignore_index)."""


@dataclass(frozen=True)
class TrainingExample:
    """One tokenized training example: what the Data pane previews, and what the trainer packs
    (the one type from a data row to the packed batch).

    Attributes:
        input_ids: token ids after the chat template, cut to max_seq_length.
        labels: same length as input_ids; the token id where the token is trained, -100 where masked.
            Not shifted: causal-LM models shift labels themselves.
        truncated: the templated conversation was longer than max_seq_length and was cut.
        eos_trained: every assistant turn's end-of-turn token (`<|im_end|>` for the default model)
            is present after truncation and receives loss, so the model learns to stop. False when
            the conversation has no assistant turn, when truncation cut an end-of-turn token off,
            or when the template closes assistant turns without a special token.
        full_length: the token count before truncation (None: not known, an example built from ids).
        max_seq_length: the limit the example was cut to (None: not known).
        text: the full templated text (before truncation); "" when rendered without `with_text`.
        token_texts: for each kept token, the slice of `text` it covers (gaps included), for display;
            empty when rendered without `with_text`. The trainer keeps neither: per-token strings of
            every row would take more memory than the token ids themselves.
    """

    input_ids: list[int]
    labels: list[int]
    truncated: bool = False
    eos_trained: bool = False
    full_length: int | None = None
    max_seq_length: int | None = None
    text: str = ""
    token_texts: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        """Tokens kept (what packing fits into a row)."""
        return len(self.input_ids)

    @property
    def trained_token_count(self) -> int:
        """How many kept tokens receive loss."""
        return sum(1 for label in self.labels if label != IGNORE_INDEX)

    @property
    def trained_mask(self) -> list[bool]:
        """Per kept token: True where it receives loss."""
        return [label != IGNORE_INDEX for label in self.labels]

    def trained_runs(self) -> list[tuple[str, bool]]:
        """The kept text as (text, trained) runs of consecutive tokens alike."""
        runs: list[tuple[str, bool]] = []
        for text, trained in zip(self.token_texts, self.trained_mask):
            if runs and runs[-1][1] == trained:
                runs[-1] = (runs[-1][0] + text, trained)
            else:
                runs.append((text, trained))
        return runs


def render_chat_text(
    tokenizer: "PreTrainedTokenizerBase",
    messages: Sequence[dict[str, Any]],
    *,
    add_generation_prompt: bool = False,
    tools: Sequence[dict[str, Any]] | None = None,
) -> str:
    """The chat template applied to `messages` (and the tool schemas `tools`, when given) as text;
    template errors become a WorkbenchError."""
    if not getattr(tokenizer, "chat_template", None):
        from workbench.data.chat_templates import missing_template_message  # cycle: data.chat_templates -> data.token_lengths -> data.templating

        raise WorkbenchError(missing_template_message(tokenizer))
    extra = {"tools": list(tools)} if tools else {}
    try:
        return tokenizer.apply_chat_template(
            list(messages), tokenize=False, add_generation_prompt=add_generation_prompt, **extra
        )
    except WorkbenchError:
        raise
    except Exception as error:  # jinja's raise_exception and TemplateError carry the template's reason
        reason = first_line(error)
        raise WorkbenchError(f"chat template: cannot render this conversation: {reason}") from None


def raw_text_rendering(tokenizer: "PreTrainedTokenizerBase", text: str) -> str:
    """A raw-text row (TRL `text`) as training sees it: no chat template, the tokenizer's own BOS
    when its encoding adds one, and the EOS token appended unless the text already ends with it
    (what TRL's SFTTrainer does with language-modeling rows)."""
    eos = tokenizer.eos_token or ""
    body = text if not eos or text.endswith(eos) else text + eos
    return bos_prefix(tokenizer) + body


def bos_prefix(tokenizer: "PreTrainedTokenizerBase") -> str:
    """The BOS token's text when the tokenizer's own encoding starts with it (Llama-style), else ''."""
    bos, bos_id = getattr(tokenizer, "bos_token", None), getattr(tokenizer, "bos_token_id", None)
    if not bos or bos_id is None:
        return ""
    return bos if bos_id in tokenizer("", add_special_tokens=True)["input_ids"] else ""


def render_conversation_text(tokenizer: "PreTrainedTokenizerBase", conversation: Conversation) -> str:
    """The whole row as the model reads it: the chat template with the row's tools, or the raw text."""
    if conversation.text is not None:
        return raw_text_rendering(tokenizer, conversation.text)
    return render_chat_text(tokenizer, conversation.to_chat(), tools=conversation.tools_for_template())


def renders_tool_parts(tokenizer: "PreTrainedTokenizerBase", conversation: Conversation) -> bool:
    """Whether the template writes the row's tool schemas and its structured calls: rendering the
    row with and without each gives different text. True for a row that has neither."""
    chat = conversation.to_chat()
    calls = any(message.tool_calls for message in conversation.messages)
    if conversation.text is not None or not (conversation.tools or calls):
        return True
    plain = render_chat_text(tokenizer, chat)
    if conversation.tools and render_chat_text(tokenizer, chat, tools=conversation.tools_for_template()) == plain:
        return False
    bare = [{key: value for key, value in message.items() if key != "tool_calls"} for message in chat]
    return not calls or render_chat_text(tokenizer, bare) != plain


def renders_reasoning(tokenizer: "PreTrainedTokenizerBase", conversation: Conversation) -> bool:
    """Whether the template writes the row's reasoning (thinking): rendering with and without it
    gives different text. True for a row without reasoning."""
    if conversation.text is not None or not any(message.reasoning for message in conversation.messages):
        return True
    chat, tools = conversation.to_chat(), conversation.tools_for_template()
    bare = [{key: value for key, value in message.items() if key != "reasoning_content"} for message in chat]
    return render_chat_text(tokenizer, chat, tools=tools) != render_chat_text(tokenizer, bare, tools=tools)


def control_token_strings(tokenizer: "PreTrainedTokenizerBase") -> list[str]:
    """Text forms of the tokenizer's special/added tokens, longest first."""
    added = getattr(tokenizer, "added_tokens_decoder", {}) or {}
    strings = {token.content for token in added.values() if getattr(token, "special", True)}
    strings.update(token for token in getattr(tokenizer, "all_special_tokens", []) if token)
    return sorted(strings, key=len, reverse=True)


_GENERATION_PROMPTS: dict[str, bool] = {}


def _has_generation_prompt(tokenizer: "PreTrainedTokenizerBase") -> bool:
    """Whether the template writes an assistant header for `add_generation_prompt` (probed once
    per template): then an answer starts right after that header."""
    template = tokenizer.chat_template
    known = _GENERATION_PROMPTS.get(template)
    if known is None:
        probe = [{"role": "user", "content": "probe"}]
        known = render_chat_text(tokenizer, probe, add_generation_prompt=True) != render_chat_text(tokenizer, probe)
        if len(_GENERATION_PROMPTS) > 64:
            _GENERATION_PROMPTS.clear()
        _GENERATION_PROMPTS[template] = known
    return known


def is_trained_turn(message: Message) -> bool:
    """The loss rule per turn: assistant turns are trained unless the row masks them
    (`trained=False`); other turns only when the row asks (`trained=True`)."""
    if message.trained is not None:
        return message.trained
    return message.role == "assistant"


def _first_text(message: Message) -> list[str]:
    """What a turn's rendering is searched by when no header marks where it starts."""
    texts = [message.reasoning.strip() if message.reasoning else "", message.content.strip()]
    texts += [call.name for call in message.tool_calls]
    return [text for text in texts if text]


def trained_character_spans(
    tokenizer: "PreTrainedTokenizerBase",
    messages: Sequence[Message],
    text: str,
    *,
    tools: Sequence[dict[str, Any]] | None = None,
    stop_at: int | None = None,
) -> list[tuple[int, int, bool]]:
    """Character spans of `text` (the rendered conversation) that receive loss.

    `stop_at`: a character offset past which nothing is kept (where max_seq_length cuts the text);
    turns after it are not worked out (each costs a render of its whole prefix, so 10,000 turns
    would take hours) and one span (stop_at, end, False) stands for them.

    One span per trained turn (`is_trained_turn`): an assistant turn from where its rendering
    starts (its reasoning, text and tool calls, as the template writes them) to the end of the
    template's end-of-turn marker (trailing whitespace after the marker stays masked: the model
    never generates it). Each span carries whether it ends with a control token.

    Spans come from rendering prefixes of the conversation: the text up to the turn's header
    (`add_generation_prompt=True`) and the text through the turn, so a turn that only calls tools
    (empty content) is found as surely as one with text. A template without a generation prompt
    leaves the role header inside the turn; then the turn starts at its first text. Templates
    that render earlier turns differently depending on later ones (e.g. ones that drop old
    reasoning) break the prefix property; then the turn's text is searched in the full text in order.
    """
    control_tokens = control_token_strings(tokenizer)
    chat = [message.to_chat() for message in messages]
    generation_header = _has_generation_prompt(tokenizer) if any(m.role == "assistant" for m in messages) else False

    def control_token_at(position: int) -> str | None:
        return next((token for token in control_tokens if text.startswith(token, position)), None)

    def control_token_ending_at(position: int, floor: int) -> bool:
        return any(position - len(token) >= floor and text.startswith(token, position - len(token)) for token in control_tokens)

    def first_found(candidates: list[str], start: int, stop: int | None = None) -> int:
        found = [at for at in (text.find(candidate, start, stop or len(text)) for candidate in candidates) if at >= 0]
        return min(found) if found else -1

    spans: list[tuple[int, int, bool]] = []
    cursor = 0
    for position, message in enumerate(messages):
        if not is_trained_turn(message):
            continue
        if stop_at is not None and cursor >= stop_at:
            spans.append((stop_at, len(text), False))
            break
        assistant = message.role == "assistant"
        header = (
            render_chat_text(tokenizer, chat[:position], add_generation_prompt=assistant, tools=tools) if position else ""
        )
        through_turn = render_chat_text(tokenizer, chat[: position + 1], tools=tools)
        if text.startswith(through_turn) and through_turn.startswith(header) and len(header) >= cursor:
            start, turn_end = len(header), len(through_turn)
            if not (assistant and generation_header):
                found = first_found(_first_text(message), start, turn_end)
                start = found if found >= 0 else start
        else:
            found = first_found(_first_text(message), cursor)
            if found < 0:
                raise WorkbenchError(
                    f"chat template: cannot find turn {position} ({message.role}) in the templated text; "
                    "this template rewrites it and loss masking cannot be derived"
                )
            start, content = found, message.content.strip()
            if content and not message.tool_calls:
                turn_end = text.find(content, start) + len(content)
            else:  # a call's rendering has no known text: the turn runs to the next control token
                turn_end = _end_of_turn_after(text, start, control_tokens)
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


def _end_of_turn_after(text: str, start: int, control_tokens: list[str]) -> int:
    """Where the first control token after `start` begins (the end of the text when none follows)."""
    found = [at for at in (text.find(token, start) for token in control_tokens) if at >= 0]
    return min(found) if found else len(text)


def render_training_example(
    tokenizer: "PreTrainedTokenizerBase",
    conversation: Conversation,
    max_seq_length: int,
    assistant_only: bool = True,
    system_prompt: str | None = None,
    with_text: bool = True,
) -> TrainingExample:
    """Tokenize one conversation exactly as training sees it, with labels for the loss.

    The conversation goes through the tokenizer's chat template (`apply_chat_template`, with the
    row's tool schemas as `tools=` and its structured tool calls and reasoning in the messages),
    then is tokenized without adding extra special tokens (the template writes them). With
    `assistant_only=True`, every assistant turn (its reasoning, text and tool calls as the
    template renders them, and its end-of-turn token) receives loss unless the row masks it
    (`Message.trained=False`); system, user and tool turns and the template's role headers are
    masked with -100 (unless the row trains one: `trained=True`). Multi-turn conversations train
    on every assistant turn, not only the last. A raw-text row (`Conversation.text`) is tokenized
    without a template and every token is trained (`raw_text_rendering`).

    Args:
        tokenizer: a fast Hugging Face tokenizer with a chat template (see
            `workbench.data.chat_templates.prepare_tokenizer`).
        conversation: the normalized conversation.
        max_seq_length: cut input_ids and labels to this many tokens (`truncated` says whether it did).
        assistant_only: False trains on every token (labels equal input_ids).
        system_prompt: None keeps the template's own behaviour (SmolLM2 adds a default system
            message when there is none); a string is inserted as the system message when the
            conversation has none ("" gives an empty system message).
        with_text: keep the templated text and each token's slice of it (for previews); the
            trainer passes False.

    Returns:
        A TrainingExample with input_ids, labels, truncated, eos_trained and the per-token text
        pieces the preview draws.
    """
    if max_seq_length < 1:
        raise WorkbenchError(f"max_seq_length: must be at least 1, got {max_seq_length}")
    if not getattr(tokenizer, "is_fast", False):
        raise WorkbenchError(
            f"model tokenizer {getattr(tokenizer, 'name_or_path', '')!r}: loss masking needs a fast tokenizer "
            "(tokenizer.json); this model only has a slow one"
        )
    conversation = with_system_prompt(conversation, system_prompt)
    text = render_conversation_text(tokenizer, conversation)
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids: list[int] = list(encoded["input_ids"])
    starts = [start for start, _ in encoded["offset_mapping"]]
    ends = [end for _, end in encoded["offset_mapping"]]

    if conversation.text is not None:
        eos = tokenizer.eos_token or ""
        spans = [(0, len(text), bool(eos) and text.endswith(eos))]
        assistant_only = False
    else:
        cut = starts[max_seq_length] if len(ids) > max_seq_length else None  # nothing after it is kept
        spans = trained_character_spans(
            tokenizer, conversation.messages, text, tools=conversation.tools_for_template(), stop_at=cut
        )
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

    kept = min(len(ids), max_seq_length)
    eos_trained = bool(spans)
    for _, end, ends_with_control in spans:
        last_token = _token_at(starts, end - 1)
        if not ends_with_control or last_token >= kept or labels[last_token] == IGNORE_INDEX:
            eos_trained = False
    token_texts = []
    if with_text:
        boundaries = starts[:kept] + [starts[kept] if kept < len(starts) else len(text)]
        if boundaries:
            boundaries[0] = 0
        token_texts = [text[boundaries[i] : boundaries[i + 1]] for i in range(kept)]
    return TrainingExample(
        input_ids=ids[:kept],
        labels=labels[:kept],
        truncated=len(ids) > max_seq_length,
        eos_trained=eos_trained,
        full_length=len(ids),
        max_seq_length=max_seq_length,
        text=text if with_text else "",
        token_texts=token_texts,
    )


def _token_at(starts: list[int], char_index: int) -> int:
    """Index of the token covering `char_index` (tokens start at `starts`, in order)."""
    return max(0, bisect_right(starts, char_index) - 1)
