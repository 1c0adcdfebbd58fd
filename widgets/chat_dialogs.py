"""Small Chat pane dialogs: the exact rendered prompt."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, Static, TextArea

from widgets.chat_settings import CHAT_CSS


class PromptDialog(ModalScreen[None]):
    """The exact text each side's model reads (chat template applied), with its length in tokens."""

    CSS_PATH = CHAT_CSS
    BINDINGS = [Binding("escape,q,ctrl+r", "dismiss", "Close")]

    def __init__(self, prompts: list[tuple[str, str, int]]) -> None:
        """Args: prompts: (side title, rendered text, token count) per side; equal texts are shown once."""
        super().__init__()
        self.prompts = prompts

    def compose(self) -> ComposeResult:
        shown = self.prompts
        if len(shown) == 2 and shown[0][1] == shown[1][1]:
            shown = [("both sides", shown[0][1], shown[0][2])]
        with Vertical(id="prompt-dialog", classes="chat-dialog"):
            yield Label("[b]The exact prompt[/b] [dim]the model writes on after the last line[/dim]", classes="dialog-title")
            for title, text, tokens in shown:
                yield Label(f"[b]{title}[/b] · {tokens} tokens")
                yield TextArea(text, read_only=True, soft_wrap=True, show_line_numbers=False, classes="prompt-text")
            yield Static("[dim]Esc to close[/dim]")
