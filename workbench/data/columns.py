"""Column mapping: read files whose columns (and speaker names) are named differently.

The keys are LLaMA-Factory's dataset_info.json `columns` and `tags` in one mapping (the config's
`data.columns`), so an entry of a dataset_info.json maps over unchanged:

- columns: prompt (alpaca `instruction`, or the TRL prompt when a `completion` column is mapped),
  query (alpaca `input`), response (alpaca `output`), completion, history, system, tools, messages
  (the turns), text (raw text rows).
- tags: role_tag / content_tag (the keys of one turn), user_tag, assistant_tag, observation_tag,
  function_tag, system_tag (the speaker names).

`ColumnMap.apply` renames a row into the format's usual names before it is normalized, and
`ColumnMap.source_field` turns a field named in an error back into the file's own names, so an
error still points at the column the user can find in the file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from workbench.data.tool_layouts import RowError, type_name

COLUMN_KEYS = ("prompt", "query", "response", "completion", "history", "system", "tools", "messages", "text")
TAG_KEYS = ("role_tag", "content_tag", "user_tag", "assistant_tag", "observation_tag", "function_tag", "system_tag")

# Where each mapped column goes in each format's usual layout.
CANONICAL_NAMES: dict[str, dict[str, str]] = {
    "alpaca": {"prompt": "instruction", "query": "input", "response": "output", "history": "history", "system": "system", "tools": "tools"},
    "prompt-completion": {"prompt": "prompt", "completion": "completion", "response": "completion", "tools": "tools"},
    "sharegpt": {"messages": "conversations", "system": "system", "tools": "tools"},
    "messages": {"messages": "messages", "system": "system", "tools": "tools"},
    "llamafactory-v1": {"messages": "messages", "system": "system", "tools": "tools"},
    "text": {"text": "text"},
}
# A speaker tag -> the speaker name the normalizer knows, for turns of ShareGPT (from/value) and of
# the message layouts (role/content).
SPEAKERS = {
    "sharegpt": {"user_tag": "human", "assistant_tag": "gpt", "observation_tag": "observation",
                 "function_tag": "function_call", "system_tag": "system"},
    "messages": {"user_tag": "user", "assistant_tag": "assistant", "observation_tag": "tool", "system_tag": "system"},
}
TURN_KEYS = {"sharegpt": ("from", "value"), "messages": ("role", "content")}
_FIELD_HEAD = re.compile(r"^([^\[.]+)(.*)$", re.DOTALL)


def _family(columns: Mapping[str, str], tags: Mapping[str, str], data_format: str) -> str:
    """The format whose names the mapped columns take; for "auto", the one the mapped keys imply."""
    if data_format != "auto":
        return data_format
    if "messages" in columns or tags:
        return "sharegpt" if tags else "messages"
    if "text" in columns and not {"prompt", "response", "completion"} & set(columns):
        return "text"
    return "prompt-completion" if "completion" in columns else "alpaca"


@dataclass(frozen=True)
class ColumnMap:
    """A column mapping: our key -> the file's column name, and tag key -> the file's value.

    Attributes:
        columns: e.g. {"prompt": "question", "response": "answer"}.
        tags: e.g. {"role_tag": "speaker", "user_tag": "customer"}.
    """

    columns: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any] | None, where: str = "data.columns") -> "ColumnMap | None":
        """A ColumnMap from the config's flat mapping (None values ignored); None when it maps nothing."""
        if not mapping:
            return None
        columns, tags = {}, {}
        for key, value in mapping.items():
            if value is None:
                continue
            if key not in COLUMN_KEYS + TAG_KEYS:
                raise RowError(f"{where}.{key}", f"unknown key; expected one of {', '.join(COLUMN_KEYS + TAG_KEYS)}")
            if not isinstance(value, str) or not value:
                raise RowError(f"{where}.{key}", f"expected a column name, got {type_name(value)}")
            (tags if key in TAG_KEYS else columns)[key] = value
        return cls(columns, tags) if columns or tags else None

    def target_format(self, data_format: str) -> str:
        """The format the renamed rows are in ("auto" resolves from the mapped keys)."""
        return _family(self.columns, self.tags, data_format)

    def _renames(self, data_format: str) -> dict[str, str]:
        """The file's column -> the format's usual column name."""
        names = CANONICAL_NAMES[self.target_format(data_format)]
        return {column: names[key] for key, column in self.columns.items() if key in names}

    def apply(self, row: dict, data_format: str) -> dict:
        """The row under the format's usual names (a new dict; the row itself is not changed)."""
        renames = self._renames(data_format)
        renamed = {key: value for key, value in row.items() if key not in renames}
        for column, canonical in renames.items():
            if column in row:
                renamed[canonical] = row[column]
        if self.tags:
            turns_key = "conversations" if "conversations" in renamed else "messages"
            layout = "sharegpt" if self.target_format(data_format) == "sharegpt" else "messages"
            if isinstance(renamed.get(turns_key), list):
                renamed[turns_key] = [self._turn(turn, f"{self.columns.get('messages', turns_key)}[{i}]", layout)
                                      for i, turn in enumerate(renamed[turns_key])]
        return renamed

    def _turn(self, turn: Any, where: str, layout: str) -> Any:
        """One turn with the layout's own keys and speaker names."""
        if not isinstance(turn, dict):
            return turn
        role_out, content_out = TURN_KEYS[layout]
        role_key, content_key = self.tags.get("role_tag", role_out), self.tags.get("content_tag", content_out)
        if role_key not in turn:
            raise RowError(f"{where}.{role_key}", "missing (the speaker key data.columns.role_tag names)")
        speaker = turn[role_key]
        by_value = {value: SPEAKERS[layout][tag] for tag, value in self.tags.items() if tag in SPEAKERS[layout]}
        rewritten = {key: value for key, value in turn.items() if key not in (role_key, content_key)}
        rewritten[role_out] = by_value.get(speaker, speaker) if isinstance(speaker, str) else speaker
        if content_key in turn:
            rewritten[content_out] = turn[content_key]
        return rewritten

    def source_field(self, field_name: str, data_format: str) -> str:
        """A field named after renaming ('conversations[2].from') in the file's names ('dialog[2].speaker')."""
        match = _FIELD_HEAD.match(field_name)
        if not match:
            return field_name
        head, rest = match.groups()
        back = {canonical: column for column, canonical in self._renames(data_format).items()}
        head = back.get(head, head)
        if self.tags and rest:
            role_key, content_key = self.tags.get("role_tag"), self.tags.get("content_tag")
            if role_key:
                rest = re.sub(r"^(\[\d+\])\.(?:from|role)\b", rf"\1.{role_key}", rest)
            if content_key:
                rest = re.sub(r"^(\[\d+\])\.(?:value|content)\b", rf"\1.{content_key}", rest)
        return head + rest
