"""Real token counts for many conversations at once, through the model's chat template.

Counts are exactly `render_training_example(...).full_length` (same template, same tokenizer, no
extra special tokens), computed in batches: the template renders every row, and the fast
tokenizer's Rust batch encoder tokenizes them on all cores.

Tokenizing is most of the cost of inspecting a dataset, so repeated text is tokenized once. A
tokenizer splits its input at added (control) tokens before anything else, so a templated text's
token count is the number of control tokens plus the counts of the pieces between them. The
pieces repeat a lot (the default system message, the newlines between turns), and each distinct
piece is tokenized once per batch; about a quarter of the tokens of a typical SmolLM2-templated
dataset are such repeats. Tokenizers whose added tokens strip neighbouring whitespace or are
normalized cannot be split this way and are counted on the full texts.
"""

from __future__ import annotations

import json
import re
from bisect import bisect_right
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator, Sequence

from workbench.data.batch_rendering import render_plain_chats
from workbench.data.conversation import Conversation
from workbench.data.row_bounds import capped_for_counting
from workbench.data.system_prompt import with_system_prompt
from workbench.data.templating import (
    bos_prefix,
    control_token_strings,
    raw_text_rendering,
    render_chat_text,
    trained_character_spans,
)
from workbench.errors import WorkbenchError
from workbench.known_errors import model_file_error
from workbench.models import load_tokenizer, resolve_model

if TYPE_CHECKING:
    import numpy as np
    from transformers import PreTrainedTokenizerBase

BATCH_ROWS = 4096
GENERIC_TOKENIZER_CLASSES = ("TokenizersBackend", "PreTrainedTokenizerFast")


@dataclass(frozen=True)
class TokenLengths:
    """Per-row token counts (numpy int arrays, in the order of the conversations given).

    Attributes:
        total: tokens of the whole templated conversation (what max_seq_length is compared with).
        response: tokens of the assistant turns' text.
        prompt: everything else: system, user and tool turns, the template's markup and
            end-of-turn tokens.
    """

    total: "np.ndarray"
    response: "np.ndarray"

    @property
    def prompt(self) -> "np.ndarray":
        return self.total - self.response


def load_data_tokenizer(model: str | None = None) -> tuple[str, "PreTrainedTokenizerBase"]:
    """(display name, tokenizer) for counting tokens, without importing torch when possible.

    `workbench.models.load_tokenizer` goes through AutoTokenizer, which loads the model config and
    with it torch (about 2 s on this machine). When the tokenizer config names the generic fast
    tokenizer class and has no custom code, AutoTokenizer instantiates exactly that class, so it is
    loaded directly; any other tokenizer goes through load_tokenizer.
    """
    resolved = resolve_model(model)
    config_path = Path(resolved.path) / "tokenizer_config.json"
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        config = {}
    generic = config.get("tokenizer_class") in GENERIC_TOKENIZER_CLASSES and "auto_map" not in config
    if generic and (Path(resolved.path) / "tokenizer.json").is_file():
        from transformers.tokenization_utils_tokenizers import TokenizersBackend

        try:
            tokenizer = TokenizersBackend.from_pretrained(resolved.path)
        except Exception as error:  # a damaged tokenizer.json: one line

            raise model_file_error(resolved.path, "its tokenizer", error) from None
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        return resolved.display_name, tokenizer
    return resolved.display_name, load_tokenizer(resolved)


def _assistant_spans(
    text: str, conversation: Conversation, tokenizer: "PreTrainedTokenizerBase | None" = None
) -> list[tuple[int, int]]:
    """Character spans of each answer in the rendered text (the response tokens).

    Plain rows (answers of text only) are searched in order, which needs no extra rendering. A raw
    text row's answer is its text. A row whose answers call tools, reason or carry a loss weight
    takes the trained spans of `trained_character_spans` (prefix renders), less their closing
    control token, so a call-only turn counts its call.
    """
    if conversation.text is not None:
        start = len(bos_prefix(tokenizer)) if tokenizer is not None else 0
        return [(start, start + len(conversation.text))] if conversation.text else []
    if tokenizer is not None and any(
        message.tool_calls or message.reasoning or message.trained is not None for message in conversation.messages
    ):
        exact = trained_character_spans(tokenizer, conversation.messages, text, tools=conversation.tools_for_template())
        controls = control_token_strings(tokenizer)
        trimmed = []
        for start, end, ends_with_control in exact:
            if ends_with_control:
                end -= next((len(token) for token in controls if text.startswith(token, end - len(token))), 0)
            trimmed.append((start, len(text[:end].rstrip()) if end > start else end))
        return [(start, end) for start, end in trimmed if end > start]
    spans = []
    cursor = 0
    for message in conversation.messages:
        content = message.content.strip() if message.role == "assistant" else message.content
        if not content:
            continue
        found = text.find(content, cursor)
        if found < 0:
            continue
        if message.role == "assistant":
            spans.append((found, found + len(content)))
        cursor = found + len(content)
    return spans


def _control_token_splitter(tokenizer: "PreTrainedTokenizerBase") -> "re.Pattern[str] | None":
    """A pattern matching the added tokens when cutting the text at them keeps counts exact."""
    added = list((getattr(tokenizer, "added_tokens_decoder", None) or {}).values())
    if not added:
        return None
    if any(token.lstrip or token.rstrip or token.single_word or token.normalized for token in added):
        return None
    alternatives = "|".join(re.escape(token.content) for token in sorted(added, key=lambda t: -len(t.content)))
    return re.compile(f"({alternatives})")


def measure_token_lengths(
    tokenizer: "PreTrainedTokenizerBase",
    conversations: Sequence[Conversation],
    *,
    system_prompt: str | None = None,
    progress: Callable[[float], None] | None = None,
) -> TokenLengths:
    """Token counts for every conversation, in batches.

    Args:
        tokenizer: a fast tokenizer prepared for the chat template (`chat_templates.prepare_tokenizer`).
        conversations: the rows to count.
        system_prompt: as in render_training_example (None: the template's own behaviour).
        progress: called with the fraction done after each batch; may raise to cancel.
    """
    import numpy as np

    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise WorkbenchError("token counts need a fast tokenizer (tokenizer.json); this model has only a slow one")
    splitter = _control_token_splitter(tokenizer)
    total = np.zeros(len(conversations), dtype=np.int64)
    response = np.zeros(len(conversations), dtype=np.int64)
    counter = _PieceCounter(backend, splitter, tokenizer) if splitter is not None else _WholeTextCounter(backend, tokenizer)
    cuts: dict[int, list] = {}

    def prepare(batch_start: int):
        # an enormous row is counted on a bounded part and scaled (workbench/data/row_bounds.py)
        capped = [capped_for_counting(with_system_prompt(c, system_prompt)) for c in conversations[batch_start : batch_start + BATCH_ROWS]]
        batch = [conversation for conversation, _ in capped]
        cuts[batch_start] = [cut for _, cut in capped]
        texts = _render_batch(tokenizer, batch)
        return batch_start, batch, texts, counter.split(batch, texts)

    # The Rust encoder releases the GIL: encode one batch in a helper thread while this thread
    # renders the next batch and reads the counts of the previous one.
    with ThreadPoolExecutor(max_workers=1) as encoder:
        starts = range(0, len(conversations), BATCH_ROWS)
        pending = None
        for batch_start in [*starts, None]:
            prepared = prepare(batch_start) if batch_start is not None else None
            if pending is not None:
                (done_start, batch, texts, split), future = pending
                totals, responses = counter.count(batch, texts, split, future.result())
                row_cuts = cuts.pop(done_start)
                if any(cut.any for cut in row_cuts):
                    estimated = [cut.estimate(t, r) if cut.any else (t, r) for cut, t, r in zip(row_cuts, totals, responses)]
                    totals, responses = [t for t, _ in estimated], [r for _, r in estimated]
                total[done_start : done_start + len(batch)] = totals
                response[done_start : done_start + len(batch)] = responses
                if progress is not None:
                    progress(min(1.0, (done_start + len(batch)) / len(conversations)))
            if prepared is not None:
                pending = prepared, encoder.submit(counter.encode, prepared[3])
            else:
                pending = None
    return TokenLengths(total=total, response=response)


def _tokens_in_span(encoding, start: int, end: int) -> int:
    first = encoding.char_to_token(start)
    last = encoding.char_to_token(end - 1)
    return 0 if first is None or last is None else last - first + 1


class _WholeTextCounter:
    """Counts by tokenizing each templated text whole."""

    def __init__(self, backend, tokenizer: "PreTrainedTokenizerBase | None" = None) -> None:
        self.backend = backend
        self.tokenizer = tokenizer

    def split(self, batch: list[Conversation], texts: list[str]) -> list[str]:
        return texts

    def encode(self, texts: list[str]) -> list:
        return self.backend.encode_batch(texts, add_special_tokens=False)

    def count(self, batch: list[Conversation], texts: list[str], split, encodings) -> tuple[list[int], list[int]]:
        totals, responses = [], []
        for conversation, text, encoding in zip(batch, texts, encodings):
            totals.append(len(encoding))
            spans = _assistant_spans(text, conversation, self.tokenizer)
            responses.append(sum(_tokens_in_span(encoding, s, e) for s, e in spans))
        return totals, responses


class _PieceCounter:
    """Counts by tokenizing each distinct piece between control tokens once.

    Nothing needs character offsets (which cost the encoder about 15% more) except an answer that
    does not run to the end of its piece. For the usual piece, a role header then the answer up to
    the end-of-turn token, the answer's tokens are the piece's tokens minus the header's: exact when
    the piece's token ids start with the header's own ids, because then those tokens spell exactly
    the header's bytes. Anything else is counted from offsets.
    """

    def __init__(self, backend, splitter: "re.Pattern[str]", tokenizer: "PreTrainedTokenizerBase | None" = None) -> None:
        self.backend = backend
        self.splitter = splitter
        self.tokenizer = tokenizer
        self.encode_without_offsets = getattr(backend, "encode_batch_fast", backend.encode_batch)
        # A normalizer may change the text's length, and then ids no longer spell the text's bytes.
        self.headers_usable = backend.normalizer is None

    def split(self, batch: list[Conversation], texts: list[str]):
        """Per row (parts, answers), where answers are (start, stop, piece) in piece coordinates;
        the distinct pieces with their ids; for each piece holding an answer, the header before
        the answer (None: count it from offsets)."""
        piece_ids: dict[str, int] = {}
        answer_headers: dict[str, str | None] = {}
        rows = []
        for conversation, text in zip(batch, texts):
            parts = self.splitter.split(text)  # text, control, text, control, ..., text
            for piece in parts[::2]:
                if piece and piece not in piece_ids:
                    piece_ids[piece] = len(piece_ids)
            answers = list(_pieces_holding(parts, _assistant_spans(text, conversation, self.tokenizer)))
            for start, stop, piece in answers:
                header = piece[:start] if self.headers_usable and stop == len(piece) else None
                if answer_headers.setdefault(piece, header) != header:
                    answer_headers[piece] = None
            rows.append((parts, answers))
        return rows, piece_ids, answer_headers

    def encode(self, split) -> tuple[list, dict[str, list[int]]]:
        _rows, piece_ids, answer_headers = split
        with_offsets = [piece for piece in piece_ids if piece in answer_headers and answer_headers[piece] is None]
        without_offsets = [piece for piece in piece_ids if answer_headers.get(piece, "") is not None]
        headers = sorted({header for header in answer_headers.values() if header is not None})
        encodings: list = [None] * len(piece_ids)
        for pieces, encoded in (
            (with_offsets, self.backend.encode_batch(with_offsets, add_special_tokens=False)),
            (without_offsets, self.encode_without_offsets(without_offsets, add_special_tokens=False)),
        ):
            for piece, encoding in zip(pieces, encoded):
                encodings[piece_ids[piece]] = encoding
        header_ids = {
            header: encoding.ids
            for header, encoding in zip(headers, self.encode_without_offsets(headers, add_special_tokens=False))
        }
        return encodings, header_ids

    def count(self, batch: list[Conversation], texts: list[str], split, encoded) -> tuple[list[int], list[int]]:
        rows, piece_ids, answer_headers = split
        encodings, header_ids = encoded
        piece_lengths = [len(encoding) for encoding in encodings]
        totals, responses = [], []
        for parts, answers in rows:
            totals.append(len(parts) // 2 + sum(piece_lengths[piece_ids[p]] for p in parts[::2] if p))
            responses.append(sum(self._answer_tokens(encodings[piece_ids[piece]], start, stop, piece, answer_headers[piece], header_ids) for start, stop, piece in answers))
        return totals, responses

    def _answer_tokens(self, encoding, start: int, stop: int, piece: str, header: str | None, header_ids) -> int:
        if header is not None:
            prefix = header_ids[header]
            ids = encoding.ids
            if ids[: len(prefix)] == prefix:
                return len(ids) - len(prefix)
            encoding = self.backend.encode(piece, add_special_tokens=False)  # rare: the header merged into the answer
        return _tokens_in_span(encoding, start, stop)


def _pieces_holding(parts: list[str], spans: list[tuple[int, int]]) -> Iterator[tuple[int, int, str]]:
    """(start, stop, piece) for each span, in the coordinates of the piece holding its start."""
    if not spans:
        return
    piece_starts, position = [], 0
    for index, part in enumerate(parts):
        if index % 2 == 0:
            piece_starts.append(position)
        position += len(part)
    pieces = parts[::2]
    for start, end in spans:
        which = bisect_right(piece_starts, start) - 1
        piece, offset = pieces[which], piece_starts[which]
        # An answer holding a control token's text is counted up to it (the junk check flags it).
        yield start - offset, min(end, offset + len(piece)) - offset, piece


def _render_batch(tokenizer: "PreTrainedTokenizerBase", batch: list[Conversation]) -> list[str]:
    """Each row's text as training renders it: rows without tools through one batched template
    call, rows with tool schemas one by one (`tools=` is per call), raw-text rows without a template."""
    texts: list[str | None] = [None] * len(batch)
    plain = []
    for position, conversation in enumerate(batch):
        if conversation.text is not None:
            texts[position] = raw_text_rendering(tokenizer, conversation.text)
        elif conversation.tools:
            texts[position] = _render_one(tokenizer, conversation)
        else:
            plain.append(position)
    if plain:
        chats = [batch[position].to_chat() for position in plain]
        has_template = bool(getattr(tokenizer, "chat_template", None))
        # one Jinja render for the whole batch when the rows allow it (workbench/data/batch_rendering.py)
        rendered = render_plain_chats(tokenizer, chats) if has_template else None
        try:
            if rendered is None and has_template:
                rendered = tokenizer.apply_chat_template(chats, tokenize=False)
        except Exception:
            rendered = None
        if rendered is None:  # find the row the template refused, and say which
            rendered = [_render_one(tokenizer, batch[position]) for position in plain]
        for position, text in zip(plain, rendered):
            texts[position] = text
    return texts  # type: ignore[return-value]


def _render_one(tokenizer: "PreTrainedTokenizerBase", conversation: Conversation) -> str:
    try:
        return render_chat_text(tokenizer, conversation.to_chat(), tools=conversation.tools_for_template())
    except WorkbenchError as error:
        raise WorkbenchError(f"row {conversation.source_index}: {error}") from None


class TokenCounter:
    """Token counts with a memory: conversations already counted (the same objects) are not
    tokenized again, so cleaning steps that only drop rows cost nothing to re-measure."""

    def __init__(self, tokenizer: "PreTrainedTokenizerBase", system_prompt: str | None = None) -> None:
        self.tokenizer = tokenizer
        self.system_prompt = system_prompt
        self._known: dict[int, tuple[Conversation, int, int]] = {}

    def lengths(
        self, conversations: Sequence[Conversation], progress: Callable[[float], None] | None = None
    ) -> TokenLengths:
        import numpy as np

        missing = [c for c in conversations if id(c) not in self._known]
        if missing:
            measured = measure_token_lengths(
                self.tokenizer, missing, system_prompt=self.system_prompt, progress=progress
            )
            for conversation, total, response in zip(missing, measured.total, measured.response):
                self._known[id(conversation)] = (conversation, int(total), int(response))
        total = np.fromiter((self._known[id(c)][1] for c in conversations), dtype=np.int64, count=len(conversations))
        response = np.fromiter((self._known[id(c)][2] for c in conversations), dtype=np.int64, count=len(conversations))
        return TokenLengths(total=total, response=response)
