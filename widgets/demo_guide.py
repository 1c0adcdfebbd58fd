"""The tour's guide panel: the step's title, a few plain sentences, a live status line and the keys.

Sized for a projector: bold title, short lines, padding around everything, nothing else. The app
moves one panel to whichever pane the step shows (attributes down: `show`, `set_status`).
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from workbench.demo.tour import TourStep

KEYS_TEXT = "[b]n[/b] next   [b]b[/b] back   [b]q[/b] quit tour   (PgDn / PgUp also turn pages while typing)"


class GuidePanel(Vertical):
    """One tour step on screen."""

    def __init__(self, step: TourStep, index: int, total: int, status: str = "") -> None:
        super().__init__(id="demo-guide")
        self.step = step
        self.index = index
        self.total = total
        self.status = status

    def compose(self) -> ComposeResult:
        yield Static("", id="demo-guide-title")
        yield Static("", id="demo-guide-body")
        yield Static("", id="demo-guide-status")
        yield Static("", id="demo-guide-keys")

    def on_mount(self) -> None:
        self._redraw()

    def show(self, step: TourStep, index: int, total: int, status: str = "") -> None:
        self.step, self.index, self.total, self.status = step, index, total, status
        self._redraw()

    def set_status(self, text: str) -> None:
        """The live line under the sentences (what the step is doing or waiting for)."""
        if text != self.status:
            self.status = text
            if self.is_mounted:
                status = self.query_one("#demo-guide-status", Static)
                status.update(text)
                status.display = bool(text)

    def _redraw(self) -> None:
        if not self.is_mounted:
            return
        self.query_one("#demo-guide-title", Static).update(f"[b]{self.step.title}[/b]")
        self.query_one("#demo-guide-body", Static).update("\n".join(self.step.lines))
        status = self.query_one("#demo-guide-status", Static)
        status.update(self.status)
        status.display = bool(self.status)
        last = self.index == self.total - 1
        keys = KEYS_TEXT.replace("next", "finish") if last else KEYS_TEXT
        self.query_one("#demo-guide-keys", Static).update(f"step {self.index + 1} of {self.total}    {keys}")
