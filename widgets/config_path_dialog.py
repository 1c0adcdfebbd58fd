"""Ask for a config file path (save as, open): Enter accepts, Escape cancels."""

from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static


class ConfigPathDialog(ModalScreen[str | None]):
    """Returns the path typed (stripped), or None when cancelled."""

    # Part of the Hyperparameters pane, so it shares that pane's stylesheet.
    CSS_PATH = str(Path(__file__).resolve().parent.parent / "screens" / "styles" / "hyperparameters.tcss")
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, path: str, hint: str) -> None:
        super().__init__()
        self.title_text = title
        self.initial_path = path
        self.hint = hint

    def compose(self) -> ComposeResult:
        with Vertical(id="path-dialog"):
            yield Label(self.title_text, id="path-dialog-title")
            yield Input(self.initial_path, id="path-dialog-input")
            yield Static(f"[dim]{self.hint} · Enter to confirm · Esc to cancel[/dim]", id="path-dialog-hint")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value.strip() or None)

    def action_cancel(self) -> None:
        self.dismiss(None)
