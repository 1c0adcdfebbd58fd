"""The Chat pane."""

from __future__ import annotations

from textual.app import ComposeResult

from screens.base import PaneScreen
from screens.pending import pending_body


class ChatScreen(PaneScreen):
    PANE_ID = "chat"
    PANE_TITLE = "Chat"

    def compose_body(self) -> ComposeResult:
        yield pending_body(
            "## Chat\n\n"
            "Not built yet. This pane will put the base model and the fine-tuned model side by side on the same question, with timings and a blind A/B vote. "
            "Press **?** to read what this step of fine-tuning is about."
        )
