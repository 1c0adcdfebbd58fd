"""The diff view: this config against a preset, the saved file or a previous run's config."""

from __future__ import annotations

from dataclasses import dataclass

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import DataTable, Select, Static


def _shown(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(map(str, value)) or "[]"
    return "—" if value is None else str(value)


class ConfigDiff(Vertical):
    """Pick what to compare against (`SourceChosen` goes up); the screen sends back the rows."""

    @dataclass
    class SourceChosen(Message):
        key: str

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._sources: list[tuple[str, str]] = []

    def compose(self) -> ComposeResult:
        yield Select([], prompt="Compare with…", id="diff-source", compact=True)
        yield Static("", id="diff-summary")
        table = DataTable(id="diff-table", cursor_type="row", zebra_stripes=True)
        table.add_columns("field", "this config", "other")
        yield table

    def set_sources(self, sources: list[tuple[str, str]]) -> None:
        """(label, key) pairs; keeps the current choice when it is still offered."""
        if sources == self._sources:
            return
        self._sources = sources
        select = self.query_one("#diff-source", Select)
        current = select.value
        with select.prevent(Select.Changed):
            select.set_options(sources)
            if any(key == current for _, key in sources):
                select.value = current

    @property
    def source(self) -> str | None:
        value = self.query_one("#diff-source", Select).value
        return None if value is Select.NULL else str(value)

    def show_differences(self, label: str, differences: list[tuple[str, Any, Any]]) -> None:
        table = self.query_one("#diff-table", DataTable)
        table.clear()
        for dotted, ours, theirs in differences:
            table.add_row(dotted, Text(_shown(ours), style="bold"), _shown(theirs))
        count = len(differences)
        summary = f"Same as {label}." if not count else f"{count} field(s) differ from {label}."
        self.query_one("#diff-summary", Static).update(summary)

    def on_select_changed(self, event: Select.Changed) -> None:
        event.stop()
        if event.value is not Select.NULL:
            self.post_message(self.SourceChosen(str(event.value)))
