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
        self._lines: dict[str, Static] = {}
        """The composed lines by id, updated directly: nested containers mount their children later
        than the panel, so a query right after compose can miss them."""

    def compose(self) -> ComposeResult:
        self._lines = {
            name: Static(text, id=f"demo-guide-{name}")
            for name, text in (
                ("title", self._title()), ("counter", self._counter()), ("body", self._body()),
                ("status", self.status), ("keys", self._keys()),
            )
        }
        with Horizontal(id="demo-guide-header"):
            yield self._lines["title"]
            yield self._lines["counter"]
        yield self._lines["body"]
        with Horizontal(id="demo-guide-footer"):
            yield self._lines["status"]
            yield self._lines["keys"]

    def on_mount(self) -> None:
        self.fit_to(self.app.size.height)

    def fit_to(self, terminal_rows: int) -> None:
        self.set_class(terminal_rows < COMPACT_BELOW_ROWS, "-compact")

    def show(self, step: TourStep, index: int, total: int, status: str = "") -> None:
        self.step, self.index, self.total = step, index, total
        if not self._lines:
            self.status = status
            return  # not composed yet: compose draws the new step
        self._lines["title"].update(self._title())
        self._lines["counter"].update(self._counter())
        self._lines["body"].update(self._body())
        self._lines["keys"].update(self._keys())
        self.set_status(status)

    def set_status(self, text: str) -> None:
        """The live line under the sentences (what the step is doing or waiting for)."""
        self.status = text
        if self._lines:
            self._lines["status"].update(text)

    def _title(self) -> str:
        return f"[b]{self.step.title}[/b]"

    def _counter(self) -> str:
        return f"step {self.index + 1} of {self.total}"

    def _body(self) -> str:
        return "\n".join(self.step.lines)

    def _keys(self) -> str:
        return KEYS_TEXT.replace("next", "finish", 1) if self.index == self.total - 1 else KEYS_TEXT
