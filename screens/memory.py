"""The Memory pane."""

from __future__ import annotations

from textual.app import ComposeResult

from screens.base import PaneScreen
from screens.pending import pending_body


class MemoryScreen(PaneScreen):
    PANE_ID = "memory"
    PANE_TITLE = "Memory"

    def compose_body(self) -> ComposeResult:
        yield pending_body(
            "## Memory\n\n"
            "Not built yet. This pane will estimate how much memory training needs (weights, gradients, optimizer, activations) and whether it fits this machine. "
            "Press **?** to read what this step of fine-tuning is about."
        )
