"""Finding rows: search text, a check's flag and a token-length floor, for the Data pane's table."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

from workbench.data.checks import conversation_text
from workbench.data.conversation import Conversation

ANY_FLAG = "any"


@dataclass(frozen=True)
class RowFilter:
    """What to list. Empty query, flag None and min_tokens None list everything.

    Attributes:
        query: case-insensitive text to find in any message.
        flag: a short check flag ("dup", "near", ...), "any" for rows with any flag, or None.
        min_tokens: only rows with at least this many templated tokens.
    """

    query: str = ""
    flag: str | None = None
    min_tokens: int | None = None

    @property
    def is_empty(self) -> bool:
        return not self.query and self.flag is None and self.min_tokens is None


class SearchIndex:
    """Case-folded text of each conversation, built once so each search is one pass of `in`."""

    def __init__(self, conversations: Sequence[Conversation]) -> None:
        self.conversations = conversations
        self._texts: list[str] | None = None

    def texts(self) -> list[str]:
        if self._texts is None:
            self._texts = [conversation_text(c).casefold() for c in self.conversations]
        return self._texts

    def matching(
        self,
        row_filter: RowFilter,
        flags: Mapping[int, tuple[str, ...]] | None = None,
        tokens: Mapping[int, int] | None = None,
    ) -> list[int]:
        """Positions (into the conversations) of the rows the filter lets through, in order."""
        positions = range(len(self.conversations))
        if row_filter.query:
            needle = row_filter.query.casefold()
            texts = self.texts()
            positions = [i for i in positions if needle in texts[i]]
        if row_filter.flag is not None:
            flags = flags or {}
            if row_filter.flag == ANY_FLAG:
                positions = [i for i in positions if self.conversations[i].source_index in flags]
            else:
                positions = [i for i in positions if row_filter.flag in flags.get(self.conversations[i].source_index, ())]
        if row_filter.min_tokens is not None:
            tokens = tokens or {}
            floor = row_filter.min_tokens
            positions = [i for i in positions if tokens.get(self.conversations[i].source_index, 0) >= floor]
        return list(positions)
