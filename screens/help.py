"""The `?` help panel: what this step of fine-tuning is, in plain language."""

from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown, Static

from screens.keys import GLOBAL_KEYS_HELP


def help_text(pane: str) -> str:
    """The pane's page (screens/help/<pane>.md) and the keys that work everywhere (screens/keys.py)."""
    page = (Path(__file__).parent / "help" / f"{pane}.md").read_text(encoding="utf-8")
    return f"{page.rstrip()}\n\n{GLOBAL_KEYS_HELP}\n"


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
            yield Static("[dim]Esc, q, ? or F1 to close · scroll with ↑↓ · Alt+1–5 goes straight to a pane[/dim]", id="help-close")

    def on_mount(self) -> None:
        self.query_one("#help-body").focus()
