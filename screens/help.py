"""The `?` help panel: what this step of fine-tuning is, in plain language."""

from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown, Static


def help_text(pane: str) -> str:
    return (Path(__file__).parent / "help" / f"{pane}.md").read_text(encoding="utf-8")


class HelpScreen(ModalScreen[None]):
    CSS_PATH = "styles/help.tcss"
    BINDINGS = [
        Binding("escape,q,question_mark,f1", "dismiss", "Close help"),
    ]

    def __init__(self, pane: str) -> None:
        super().__init__()
        self.pane = pane

    def compose(self) -> ComposeResult:
        with Vertical(id="help-dialog"):
            with VerticalScroll(id="help-body"):
                yield Markdown(help_text(self.pane))
            yield Static("[dim]Esc, q or ? to close · scroll with ↑↓[/dim]", id="help-close")

    def on_mount(self) -> None:
        self.query_one("#help-body").focus()
