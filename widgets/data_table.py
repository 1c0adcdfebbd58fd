"""A table of dataset rows that renders only the lines on screen.

Textual's DataTable builds a row object per row up front (seconds for 100,000 rows); this table
is a Line-API ScrollView that formats a row only when it scrolls into view, so a 100,000-row file
scrolls as fast as a 10-row one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Mapping, Sequence

from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

if TYPE_CHECKING:
    from textual import events

    from workbench.data.conversation import Conversation

LINE_CACHE_SIZE = 512
"""Drawn lines kept for redraws (a few screens' worth; scrolling far away starts afresh)."""
FORMAT_CODES = {"alpaca": "alp", "sharegpt": "sgpt", "messages": "msg", "prompt-completion": "p/c"}


@dataclass(frozen=True)
class Column:
    title: str
    width: int  # 0: shares the remaining width
    align: str = "left"


COLUMNS = (
    Column("row", 6, "right"),
    Column("fmt", 4),
    Column("T", 2, "right"),
    Column("prompt", 0),
    Column("response", 0),
    Column("tokens", 6, "right"),
    Column("flags", 13),
)


def _one_line(text: str) -> str:
    return " ".join(text[:400].split())


def _fit(text: str, width: int, align: str) -> str:
    if len(text) > width:
        return text[: max(0, width - 1)] + "…" if width > 1 else text[:width]
    return text.rjust(width) if align == "right" else text.ljust(width)


class RowTable(ScrollView, can_focus=True):
    """Rows of a dataset: index, format, turns, prompt and response previews, tokens and flags.

    Attributes down: `show(rows, view)` sets the conversations and which of them are listed (in
    order); `annotate(tokens, flags, max_seq_length)` adds the checks' results. Messages up:
    `RowTable.Highlighted` when the cursor moves.
    """

    BINDINGS = [
        Binding("up", "move(-1)", "Up", show=False),
        Binding("down", "move(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home", "jump(0)", "First", show=False),
        Binding("end", "jump(-1)", "Last", show=False),
    ]

    COMPONENT_CLASSES = {"row-table--cursor"}
    """The highlighted row."""

    DEFAULT_CSS = """
    RowTable > .row-table--cursor {
        background: $primary 40%;
    }
    RowTable:focus > .row-table--cursor {
        background: $primary;
        color: $text;
    }
    """

    cursor: reactive[int] = reactive(0, always_update=True)
    """Position of the highlighted row in the current view."""

    @dataclass
    class Highlighted(Message):
        """The cursor moved to `row` (a source row index; None when the view is empty)."""

        table: "RowTable"
        row: int | None

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.rows: Sequence["Conversation"] = ()
        self.view: Sequence[int] = ()
        self.tokens: Mapping[int, int] = {}
        self.flags: Mapping[int, tuple[str, ...]] = {}
        self.max_seq_length: int | None = None
        self._line_cache: dict[tuple[int, int, bool], Strip] = {}
        self._header_style = Style(bold=True, underline=True)
        self._flag_style = Style(color="red", bold=True)
        self._long_style = Style(color="yellow")
        self._dim_style = Style(dim=True)

    # ---- data ------------------------------------------------------------------------------------

    def show(self, rows: Sequence["Conversation"], view: Sequence[int]) -> None:
        """List `rows[i]` for each i in `view`, keeping the cursor on the same row when it is still listed."""
        current = self.current_row
        self.rows, self.view = rows, view
        self._line_cache.clear()
        self.virtual_size = Size(self.size.width, len(view) + 1)
        position = 0
        if current is not None:
            position = next((i for i, index in enumerate(view) if rows[index].source_index == current), 0)
        self.cursor = position
        self.refresh()

    def annotate(self, tokens: Mapping[int, int], flags: Mapping[int, tuple[str, ...]], max_seq_length: int | None) -> None:
        """Token counts and check flags by source row."""
        self.tokens, self.flags, self.max_seq_length = tokens, flags, max_seq_length
        self._line_cache.clear()
        self.refresh()

    @property
    def current_row(self) -> int | None:
        """The source row under the cursor."""
        if not self.view or not 0 <= self.cursor < len(self.view):
            return None
        return self.rows[self.view[self.cursor]].source_index

    # ---- cursor ----------------------------------------------------------------------------------

    def validate_cursor(self, value: int) -> int:
        return max(0, min(value, len(self.view) - 1)) if self.view else 0

    def watch_cursor(self, old: int, new: int) -> None:
        self._line_cache = {key: strip for key, strip in self._line_cache.items() if key[0] not in (old, new)}
        self._scroll_cursor_into_view()
        self.refresh()
        self.post_message(self.Highlighted(self, self.current_row))

    def _scroll_cursor_into_view(self) -> None:
        rows_visible = max(1, self.scrollable_content_region.height - 1)
        top = round(self.scroll_y)
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False)
        elif self.cursor >= top + rows_visible:
            self.scroll_to(y=self.cursor - rows_visible + 1, animate=False)

    def action_move(self, delta: int) -> None:
        self.cursor += delta

    def action_page(self, direction: int) -> None:
        self.cursor += direction * max(1, self.scrollable_content_region.height - 2)

    def action_jump(self, position: int) -> None:
        self.cursor = position if position >= 0 else len(self.view) - 1

    def on_click(self, event: "events.Click") -> None:
        offset = event.get_content_offset(self)
        if offset is not None and offset.y >= 1:
            self.cursor = round(self.scroll_y) + offset.y - 1

    def on_focus(self) -> None:
        self._line_cache.clear()
        self.refresh()

    def on_blur(self) -> None:
        self._line_cache.clear()
        self.refresh()

    def on_resize(self) -> None:
        self.virtual_size = Size(self.size.width, len(self.view) + 1)
        self._line_cache.clear()

    # ---- drawing ---------------------------------------------------------------------------------

    def _widths(self, width: int) -> list[int]:
        fixed = sum(column.width for column in COLUMNS) + len(COLUMNS) - 1
        flexible = max(8, width - fixed)
        shares = [flexible // 2 + flexible % 2, flexible // 2]
        return [column.width or shares.pop(0) for column in COLUMNS]

    def _cells(self, index: int) -> list[str]:
        conversation = self.rows[index]
        row = conversation.source_index
        tokens = self.tokens.get(row)
        return [
            str(row),
            FORMAT_CODES.get(conversation.source_format, conversation.source_format[:4]),
            str(conversation.assistant_turns),
            _one_line(conversation.first_prompt),
            _one_line(conversation.final_response or ""),
            "…" if tokens is None else f"{tokens:,}",
            ",".join(self.flags.get(row, ())),
        ]

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        if y == 0:
            return self._header(width)
        position = round(self.scroll_y) + y - 1
        if position >= len(self.view):
            return Strip.blank(width, self.rich_style)
        highlighted = position == self.cursor
        key = (position, width, highlighted and self.has_focus)
        cached = self._line_cache.get(key)
        if cached is None:
            if len(self._line_cache) > LINE_CACHE_SIZE:
                self._line_cache.clear()
            cached = self._row_strip(self.view[position], width, highlighted)
            self._line_cache[key] = cached
        return cached

    def _header(self, width: int) -> Strip:
        cells = [_fit(column.title, size, column.align) for column, size in zip(COLUMNS, self._widths(width))]
        return Strip([Segment(" ".join(cells), self.rich_style + self._header_style)]).adjust_cell_length(
            width, self.rich_style
        )

    def _row_strip(self, index: int, width: int, highlighted: bool) -> Strip:
        base = self.rich_style
        if highlighted:
            base = base + self.get_component_rich_style("row-table--cursor")
        segments = []
        row = self.rows[index].source_index
        for position, (column, size, text) in enumerate(zip(COLUMNS, self._widths(width), self._cells(index))):
            style = base
            if column.title == "flags" and text:
                style = base + self._flag_style
            elif column.title == "tokens" and self.max_seq_length and self.tokens.get(row, 0) > self.max_seq_length:
                style = base + self._long_style
            elif column.title in ("fmt", "T"):
                style = base + self._dim_style
            if position:
                segments.append(Segment(" ", base))
            segments.append(Segment(_fit(text, size, column.align), style))
        return Strip(segments).adjust_cell_length(width, base)
