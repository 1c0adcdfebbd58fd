"""Per-row bounds on the work the data checks do, so one enormous row cannot stall them.

Measured reason: a valid 50 MB single-row file took 85 s and 10 GB in `data inspect` (tokenizing
the whole row with character offsets, then shingling it for near-duplicates); an 8 MB row of one
repeated letter did not finish in minutes (BPE on one 8-million-character word). A training row
that long is far past any max_seq_length, so:

- token counting reads at most ROW_COUNT_MAX_CHARS characters of a row and scales its counts by
  the share it read (the row is marked as estimated; it is flagged too long either way);
- near-duplicates are found on the first NEAR_DUPLICATE_PREFIX_CHARS characters of each row;
- training tokenizes at most max_seq_length × TRAINING_CHARS_PER_TOKEN characters of each message:
  no token spans more characters than that, so the first max_seq_length tokens, all that is
  trained, are the same as the whole row's.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from workbench.data.conversation import Conversation

DEFAULT_MAX_SEQ_LENGTH = 1024
"""`data.max_seq_length`'s default (the schema's), and the limit the data checks use without a config."""
ROW_COUNT_MAX_CHARS = 200_000
"""About 50,000 tokens of English: more than any max_seq_length checks compare with here."""
NEAR_DUPLICATE_PREFIX_CHARS = 20_000
TRAINING_CHARS_PER_TOKEN = 128
WORD_CHUNK_CHARS = 64
"""Words longer than this are cut into pieces before tokenizing a capped row: BPE's cost grows
with the square of a word's length."""


def conversation_chars(conversation: Conversation) -> int:
    """Characters of text a row holds (its messages, or a raw-text row's text)."""
    if conversation.text is not None:
        return len(conversation.text)
    return sum(len(message.content or "") for message in conversation.messages)


def _cap(text: str, limit: int) -> str:
    cut = text[:limit]
    if len(max(cut.split(), key=len, default="")) <= WORD_CHUNK_CHARS:
        return cut
    # one giant "word" (a base64 blob, a run of one character): spaced so BPE stays linear
    return " ".join(cut[start : start + WORD_CHUNK_CHARS] for start in range(0, len(cut), WORD_CHUNK_CHARS))


@dataclass(frozen=True)
class CutText:
    """What counting left out of a capped row: characters of trained (assistant) text, of the
    rest, and how many characters it did read (to turn characters into estimated tokens)."""

    trained: int = 0
    other: int = 0
    kept: int = 1

    @property
    def any(self) -> bool:
        return bool(self.trained or self.other)

    def estimate(self, total: int, response: int) -> tuple[int, int]:
        """(total, response) token counts with the cut text added at the counted part's rate."""
        rate = total / max(1, self.kept)
        return round(total + rate * (self.trained + self.other)), round(response + rate * self.trained)


def capped_for_counting(conversation: Conversation) -> tuple[Conversation, CutText]:
    """The row as token counting reads it, and what it left out (nothing for a row within bounds)."""
    chars = conversation_chars(conversation)
    if chars <= ROW_COUNT_MAX_CHARS:
        return conversation, CutText()
    if conversation.text is not None:  # a raw-text row: every token is trained
        return replace(conversation, text=_cap(conversation.text, ROW_COUNT_MAX_CHARS)), CutText(
            trained=chars - ROW_COUNT_MAX_CHARS, kept=ROW_COUNT_MAX_CHARS)
    share = max(1, ROW_COUNT_MAX_CHARS // max(1, len(conversation.messages)))
    messages, trained, other, kept = [], 0, 0, 0
    for message in conversation.messages:
        content = message.content or ""
        cut = max(0, len(content) - share)
        if message.role == "assistant":
            trained += cut
        else:
            other += cut
        kept += min(len(content), share)
        messages.append(replace(message, content=_cap(content, share)))
    return replace(conversation, messages=tuple(messages)), CutText(trained, other, max(1, kept))


def capped_for_training(conversation: Conversation, max_seq_length: int) -> Conversation:
    """The row with each message cut to max_seq_length × TRAINING_CHARS_PER_TOKEN characters
    (unchanged when none is longer): its first max_seq_length tokens stay exactly the same."""
    limit = max_seq_length * TRAINING_CHARS_PER_TOKEN
    if conversation_chars(conversation) <= limit:
        return conversation
    if conversation.text is not None:
        return replace(conversation, text=conversation.text[:limit])
    messages = tuple(replace(message, content=(message.content or "")[:limit]) for message in conversation.messages)
    return replace(conversation, messages=messages)
