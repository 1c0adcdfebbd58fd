"""The tour's guide panel: the step's title, a few plain sentences, a live status line and the keys.

Sized for a projector: bold title, short lines, padding around everything, nothing else. The app
moves one panel to whichever pane the step shows (attributes down: `show`, `set_status`).
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Static

from workbench.demo.tour import TourStep

KEYS_TEXT = "[b]n[/b]/PgDn next · [b]b[/b]/PgUp back · [b]q[/b] quit tour"
COMPACT_BELOW_ROWS = 32
"""On terminals shorter than this the panel drops its padding and gaps, so the pane keeps some room."""


class GuidePanel(Vertical):
    """One tour step on screen."""

    def __init__(self, step: TourStep, index: int, total: int, status: str = "") -> None:
        super().__init__(id="demo-guide")
        self.step = step
        self.index = index
        self.total = total
        self.status = status

    def compose(self) -> ComposeResult:
        with Horizontal(id="demo-guide-header"):
            yield Static(self._title(), id="demo-guide-title")
            yield Static(self._counter(), id="demo-guide-counter")
        yield Static(self._body(), id="demo-guide-body")
        with Horizontal(id="demo-guide-footer"):
            yield Static(self.status, id="demo-guide-status")
            yield Static(self._keys(), id="demo-guide-keys")

    def on_mount(self) -> None:
        self.fit_to(self.app.size.height)

    def fit_to(self, terminal_rows: int) -> None:
        self.set_class(terminal_rows < COMPACT_BELOW_ROWS, "-compact")

    def show(self, step: TourStep, index: int, total: int, status: str = "") -> None:
        self.step, self.index, self.total = step, index, total
        if not self.children:
            self.status = status
            return  # not composed yet: compose draws the new step
        self.query_one("#demo-guide-title", Static).update(self._title())
        self.query_one("#demo-guide-counter", Static).update(self._counter())
        self.query_one("#demo-guide-body", Static).update(self._body())
        self.query_one("#demo-guide-keys", Static).update(self._keys())
        self.set_status(status)

    def set_status(self, text: str) -> None:
        """The live line under the sentences (what the step is doing or waiting for)."""
        self.status = text
        if self.children:
            self.query_one("#demo-guide-status", Static).update(text)

    def _title(self) -> str:
        return f"[b]{self.step.title}[/b]"

    def _counter(self) -> str:
        return f"step {self.index + 1} of {self.total}"

    def _body(self) -> str:
        return "\n".join(self.step.lines)

    def _keys(self) -> str:
        return KEYS_TEXT.replace("next", "finish", 1) if self.index == self.total - 1 else KEYS_TEXT
